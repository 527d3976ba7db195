"""`pbu`: Partially Blinded Unlearning (Panda, Sourav, Prathosh; AAAI 2025). Sees the forget class S_n only.

Minimise with Adam, over mini-batches of S_n,

    L(θ) = α · mean_batch log p_θ(y|x)  +  β · Σ_i F_ii (θ_i − θ*_i)²  +  γ · Σ_i (θ_i − θ*_i)²

F is the diagonal Fisher at θ*, computed once on S_n before unlearning (`unlearnbench.fisher`). θ* is a frozen copy:
no gradient and no graph reach it. Both penalties cover every trainable parameter; BatchNorm running statistics are
not penalised. The three terms are logged per epoch at debug level (`-v`).

Defaults and their sources (official code, GitHub Shash12-ship/pbu @a507760, MNIST ResNet-18):
    alpha, beta, gamma  721, 100, 4001   official values for class 8 (class 2: 631/100/4001, class 6: 721/90/4001;
                                         the MNIST benchmark files set the per-class values)
    lr 1e-4, batch 64, shuffled          official (Adam, no weight decay, no schedule)
    epochs 5, a fixed schedule           official (the notebook's loop; the paper gives no schedule). The budget rule
                                         of a table may scale it (unlearnbench.budget: published on full MNIST's
                                         class 8, 5 × 92 = 460 steps of 64)
    fisher "true"                        official (nngeometry FIM, PMatDiag, classif_logits); "empirical" and "mc"
                                         are cheaper options (C backward passes per sample are costly for C≈100)
    bn_mode "train"                      official (BatchNorm running statistics move on forget-only batches)

Variant `pbu+stop` (ours, `stop = "forget_acc"`): a blind stopping rule. The objective is unbounded below: after S_n
is forgotten, further steps only push log p(y|x) toward −∞ and drag the other classes down (the official notebook goes
from A_Dr ≈ 97% after 1–2 epochs to 70–80% after 5). A fixed epoch count is therefore fragile, and choosing it by
watching test accuracy on the retain classes uses data PBU claims not to need. The rule looks at S_n only: every
`stop_every` steps it evaluates the model (eval mode, as it will be tested) on a fixed probe of `stop_probe`
forget-training images and stops once their accuracy is ≤ `stop_threshold` %; `epochs` is then a ceiling. The probe
images are forget samples, so the method stays blind. Threshold 0 asks that every probe image is misclassified; that
is the point where the official runs have A_Df ≈ 0 while A_Dr is still intact (epoch 1–2).

Two switches, off by default (ours, variants `pbu+holdout`, which runs the stopping rule, and `pbu+keep_bn`, which
runs PBU's schedule; `benchmarks/pbu_stopping.py` compares them on the same θ* and Fisher):
    stop_holdout   the probe images are left out of the ascent, so the probe measures images the method has not
                   pushed down, as the test set's are (a probe that is trained on can reach 0% while unseen images of
                   the class are still recognised: the paper protocol's class 6, seed 0, stopped at A_Df 1.57%).
                   With it, the probe is at most a quarter of S_n.
    bn_stats       "keep": BatchNorm normalises with batch statistics as in the official train mode, but its running
                   statistics, which the tested model uses, stay θ*'s instead of drifting to forget-only batches.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.budget import Schedule, forget_pass, mnist_class8
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, at_least, param, positive, since
from unlearnbench.data import Batch
from unlearnbench.fisher import diagonal_fisher
from unlearnbench.method import Sizes, UnlearnTask, register_method, register_variant
from unlearnbench.runtime import generator
from unlearnbench.train import accuracy, make_optimizer, predict, running_stats, train_steps

log = logging.getLogger("unlearnbench")


@dataclass(frozen=True)
class PBUHP:
    alpha: float = positive(721.0)  # weight of the mean log-likelihood of S_n (official, class 8)
    beta: float = at_least(0, 100.0)  # weight of the Fisher-weighted distance to θ* (official, class 8)
    gamma: float = at_least(0, 4001.0)  # weight of the squared L2 distance to θ* (official)
    lr: float = positive(1e-4)  # Adam (official)
    batch_size: int = at_least(1, 64, le=BATCH_MAX)  # official
    epochs: int = at_least(1, 5, le=EPOCHS_MAX)  # official, fixed; an upper bound when a stopping rule is on
    fisher: Literal["true", "empirical", "mc"] = "true"  # official: true Fisher
    fisher_backend: Literal["layerwise", "func"] = "layerwise"  # same numbers; layerwise is faster (fisher.py)
    fisher_memory_mb: int = at_least(1, 1024)  # memory for one chunk of per-sample gradients (speed/memory trade-off only)
    bn_mode: Literal["train", "eval"] = "train"  # official: train mode during unlearning
    stop: Literal["forget_acc", "none"] = "none"  # official: the fixed schedule; "forget_acc": our blind stopping rule
    stop_threshold: float = param(0.0, ge=0, le=100)  # stop once accuracy on the probe of S_n is at most this (percent)
    stop_every: int = at_least(1, 10)  # steps between checks
    stop_probe: int = at_least(1, 256)  # forget-training images in the probe (the first ones of S_n)
    stop_holdout: bool = since(False, False)  # keep the probe out of the ascent: it then estimates unseen images
    bn_stats: Literal["update", "keep"] = since("update", "update")  # official: running stats move; keep: θ*'s stay


def set_bn_mode(model: nn.Module, mode: str) -> None:
    """train: batch statistics, running statistics updated from forget-only batches (official); eval: running
    statistics throughout (measured on MNIST: collapses A_Dr within 10 steps at the official settings)."""
    model.train()
    if mode == "eval":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def pbu_loss(params: list[Tensor], reference: list[Tensor], fisher: list[Tensor], hp: PBUHP):
    """The PBU objective as a `train_steps` loss, its three terms reported separately."""

    def loss(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        log_lik = F.log_softmax(model(batch.x).float(), -1).gather(1, batch.y[:, None]).mean()
        diff = torch._foreach_sub(params, reference)
        sq = torch._foreach_mul(diff, diff)
        l2 = torch.stack([s.sum() for s in sq]).sum()
        fisher_dist = torch.stack([(f * s).sum() for f, s in zip(fisher, sq)]).sum()
        terms = {"log_lik": hp.alpha * log_lik, "fisher": hp.beta * fisher_dist, "l2": hp.gamma * l2}
        return terms["log_lik"] + terms["fisher"] + terms["l2"], terms

    return loss


#: One epoch is one pass over S_n (the probe held out under `stop_holdout` is ignored: at most a quarter).
SCHEDULE = Schedule(("epochs",), forget_pass(), mnist_class8(
    "Shash12-ship/pbu @a507760, experiments/MNIST Resnet.ipynb: 5 epochs over class 8 of full MNIST, batch 64"))


def _cost(hp: PBUHP, n: Sizes) -> float:
    """Fisher: a forward and one backward per round (C rounds for the true Fisher); then, with the stopping rule,
    typically 1-2 epochs of S_n (measured on MNIST), else `epochs`."""
    rounds = n.num_classes if hp.fisher == "true" else 1
    epochs = min(hp.epochs, 2) if hp.stop != "none" else hp.epochs
    return n.forget * (1 + rounds) / 2 + n.forget * epochs


@register_method("pbu", hparams=PBUHP, needs=("forget",), cost=_cost, schedule=SCHEDULE,
                 display="PBU", group="paper", order=60)
def pbu(model: nn.Module, task: UnlearnTask, hp: PBUHP, seed: int) -> nn.Module:
    """Partially blinded: ascend the forget log-likelihood, held near θ* by Fisher and L2; 5 fixed epochs."""
    forget, runtime = task.forget, task.runtime
    start = time.perf_counter()
    fisher_by_name = diagonal_fisher(model, ((b.x, b.y) for b in forget.batches(512)), hp.fisher,
                                     backend=hp.fisher_backend, memory_mb=hp.fisher_memory_mb,
                                     generator=generator(seed, 31))
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    params = [dict(model.named_parameters())[k] for k in names]
    reference = [p.detach().clone() for p in params]  # θ*, frozen
    fisher = [fisher_by_name[k].to(p.dtype) for k, p in zip(names, params)]
    runtime.sync()  # the Fisher's time, not its launch
    fisher_seconds = time.perf_counter() - start
    log.info("pbu: %s Fisher on %d forget images in %.1f s", hp.fisher, len(forget), fisher_seconds)
    optimizer = make_optimizer(params, "adam", hp.lr)
    n_probe = min(hp.stop_probe, len(forget) // 4 if hp.stop_holdout else len(forget))  # held out: ≤ a quarter
    probe = forget.subset(torch.arange(n_probe))
    ascent = forget.subset(torch.arange(n_probe, len(forget))) if hp.stop_holdout and hp.stop != "none" else forget
    data_order = generator(seed, 32)

    def forgotten(step: int) -> bool:
        if hp.stop == "none" or step % hp.stop_every:
            return False
        acc = accuracy(predict(model, probe, runtime), probe.labels)
        set_bn_mode(model, hp.bn_mode)  # predict() restores train mode; BN may need eval again
        log.debug("pbu step %d: accuracy on the forget probe %.2f%%", step, acc)
        return acc <= hp.stop_threshold

    steps = 0
    for epoch in range(hp.epochs):
        set_bn_mode(model, hp.bn_mode)
        with running_stats(model, hp.bn_stats):
            stats = train_steps(model, optimizer, ascent.batches(hp.batch_size, shuffle=True, generator=data_order),
                                pbu_loss(params, reference, fisher, hp), runtime,
                                should_stop=lambda s: forgotten(steps + s.steps))
        steps += stats.steps
        log.debug("pbu epoch %d: %s", epoch + 1, " ".join(f"{k}={v:.4g}" for k, v in stats.means().items()))
        if stats.stopped:
            log.info("pbu: forget probe at <= %.2f%% after %d steps (epoch %d): stopping", hp.stop_threshold,
                     steps, epoch + 1)
            break
    return model, {"steps": steps, "epochs_run": epoch + 1, "stopped_early": stats.stopped,
                   "fisher_seconds": round(fisher_seconds, 3)}


register_variant("pbu+stop", "pbu", {"stop": "forget_acc"},
                 "ours: a blind stopping rule (a probe of S_n at 0%), the epochs a ceiling")
register_variant("pbu+holdout", "pbu", {"stop": "forget_acc", "stop_holdout": True},
                 "ours: pbu+stop with the stopping rule's probe images kept out of the ascent")
register_variant("pbu+keep_bn", "pbu", {"stop": "forget_acc", "bn_stats": "keep"},
                 "ours: pbu+stop with BatchNorm's running statistics kept at θ*'s while unlearning")
