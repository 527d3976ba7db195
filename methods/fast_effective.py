"""`fast_effective`: UNSIR (Tarun, Chundawat, Mandal, Kankanhalli, "Fast Yet Effective Machine Unlearning",
IEEE TNNLS 2023). "Zero-glance": it never looks at a forget sample; it uses θ* and a small retain subset.

1. Error-maximising noise for the forget class k: a learnable tensor N (B images of the input shape, init randn),
   θ* frozen, Adam on N, loss −CE(f(N), k) + λ · mean_b ‖N_b‖².
2. Impair: 1 epoch, high lr, cross-entropy on (retain subset, true labels) ∪ (copies of N, label k).
3. Repair: 1 epoch, lower lr, cross-entropy on the retain subset alone.

Defaults are the original notebook's (GitHub vikram2000b/Fast-Machine-Unlearning @252bc92, CIFAR-10): noise batch
256, 40 noise steps (5 × 8) at Adam lr 0.1, λ = 0.1; 20 noise copies in the impair set; retain subset = the first
1,000 images of each retain class; impair Adam lr 0.02, repair Adam lr 0.01, batch 256, one epoch each. The copies in
the bad-teaching repo and the SSD harness use other values (B 256/32, 250/25 noise steps, 80 copies, lr 1e-4,
500 per class): every one of them is a hyperparameter here.

Variant `fast_effective+released` (`released_code = true`) reproduces the three defects of every released copy (BASELINES.md), for comparison:
the impair set gets only the first 3 noise images of each copy (a loop over `batch[0].size(0)`, the channels),
every noise sample is labelled class 0, and the model stays in train mode while the noise is learned (BatchNorm
statistics move with the noise). The default is the corrected behaviour the paper describes.

Variant `fast_effective+bt_settings` runs the paper's corrected behaviour at the numbers of the bad-teaching
repository's UNSIR (GitHub vikram2000b/bad-teaching-unlearning @f1aa988: unlearn.py lines 100-133, Adam lr 0.1 on the
noise, 80 noise copies; CIFARSuper20_Rocket_Unlearn.ipynb cells 28-37: 500 retain images per class, 250 noise steps,
impair and repair one epoch each at Adam lr 1e-4, batch 256): the same authors' second published setting, whose
learning rates are 200 and 100 times smaller than the notebook's impair and repair rates.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.budget import Schedule, batches, cifar10_class
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, TrainRecipe, at_least, positive
from unlearnbench.data import Batch, SampleSet, TensorSource
from unlearnbench.method import Sizes, UnlearnTask, register_method, register_variant
from unlearnbench.runtime import generator
from unlearnbench.train import fit, make_optimizer, train_steps


@dataclass(frozen=True)
class FastEffectiveHP:
    noise_batch: int = at_least(1, 256, le=BATCH_MAX)  # noise images learned (notebook)
    noise_steps: int = at_least(0, 40)  # Adam steps on the noise (notebook: 5 epochs × 8 steps)
    noise_lr: float = positive(0.1)  # all copies
    noise_lambda: float = at_least(0, 0.1)  # weight of mean ‖N_b‖² (all copies)
    noise_copies: int = at_least(1, 20)  # copies of the noise batch in the impair set (notebook: 20 batches)
    retain_per_class: int = at_least(1, 1000)  # retain subset: first n images of each retain class (notebook)
    impair_lr: float = positive(0.02)  # notebook
    repair_lr: float = positive(0.01)  # notebook
    batch_size: int = at_least(1, 256, le=BATCH_MAX)  # impair and repair (notebook)
    impair_epochs: int = at_least(1, 1, le=EPOCHS_MAX)  # notebook
    repair_epochs: int = at_least(0, 1, le=EPOCHS_MAX)  # notebook
    released_code: bool = False  # reproduce the released code's defects (see the module docstring)


def learn_noise(model: nn.Module, shape: tuple[int, ...], forget_class: int, hp: FastEffectiveHP,
                task: UnlearnTask, seed: int) -> Tensor:
    """Error-maximising noise for `forget_class`, θ* frozen; returned detached, in the model's input space."""
    noise = nn.Parameter(torch.randn(hp.noise_batch, *shape, generator=generator(seed, 51)).to(task.runtime.device))
    labels = torch.full((hp.noise_batch,), forget_class, dtype=torch.long, device=noise.device)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    model.train(hp.released_code)  # the released code leaves the model in train mode here

    def maximise_error(m: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        ce = F.cross_entropy(m(batch.x), batch.y)
        norm = batch.x.float().square().flatten(1).sum(1).mean()
        return -ce + hp.noise_lambda * norm, {"ce": ce, "norm": norm}

    batches = (Batch(noise, labels, labels) for _ in repeat(None, hp.noise_steps))
    train_steps(model, make_optimizer([noise], "adam", hp.noise_lr), batches, maximise_error, task.runtime)
    for p in frozen:
        p.requires_grad_(True)
    return noise.detach()


def impair_set(noise: Tensor, retain_subset: SampleSet, forget_class: int, hp: FastEffectiveHP) -> SampleSet:
    """(noise copies labelled k) ∪ retain subset; with `released_code`, 3 images per copy labelled 0."""
    per_copy = 3 if hp.released_code else len(noise)
    label = 0 if hp.released_code else forget_class
    channels = noise.shape[1]  # the noise is already in the model's (normalised) input space
    source = TensorSource(noise, torch.full((len(noise),), label), (0.0,) * channels, (1.0,) * channels, noise.device)
    index = torch.arange(per_copy).repeat(hp.noise_copies)
    return SampleSet.of(source, index) + retain_subset


def _cost(hp: FastEffectiveHP, n: Sizes) -> float:
    subset = min(n.retain, hp.retain_per_class * (n.num_classes - 1))
    return (hp.noise_batch * hp.noise_steps + (hp.noise_copies * hp.noise_batch + subset) * hp.impair_epochs
            + subset * hp.repair_epochs)


def _epoch_steps(hp: FastEffectiveHP, field: str, forget: int, retain: int, classes: int) -> int:
    """Impair: the noise copies and the retain subset; repair: the retain subset (the noise steps are a fixed count)."""
    subset = min(hp.retain_per_class * (classes - 1), retain)
    noise = hp.noise_copies * hp.noise_batch if field == "impair_epochs" else 0
    return batches(noise + subset, hp.batch_size)


SCHEDULE = Schedule(("impair_epochs", "repair_epochs"), _epoch_steps, cifar10_class(
    "vikram2000b/Fast-Machine-Unlearning @252bc92, the CIFAR-10 notebook: one impair and one repair epoch"))


@register_method("fast_effective", hparams=FastEffectiveHP, needs=("retain",), cost=_cost, schedule=SCHEDULE,
                 display="Fast-Effective", group="paper", order=40)
def fast_effective(model: nn.Module, task: UnlearnTask, hp: FastEffectiveHP, seed: int) -> nn.Module:
    """UNSIR: learn noise that maximises the forget class's error, impair on it, repair on a retain subset."""
    subset = task.retain.per_class(hp.retain_per_class)
    noise = learn_noise(model, task.input_shape, task.forget_class, hp, task, seed)
    data_order = generator(seed, 52)
    step = TrainRecipe(optimizer="adam", lr=hp.impair_lr, epochs=hp.impair_epochs, batch_size=hp.batch_size,
                       precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    fit(model, impair_set(noise, subset, task.forget_class, hp), step, task.runtime, data_order, what="impair")
    step = TrainRecipe(optimizer="adam", lr=hp.repair_lr, epochs=hp.repair_epochs, batch_size=hp.batch_size,
                       precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    fit(model, subset, step, task.runtime, data_order, what="repair")
    return model


register_variant("fast_effective+released", "fast_effective", {"released_code": True},
                 "the released code: 3 noise images per copy, labelled 0, noise learned in train mode (paper: all, k)")
register_variant("fast_effective+bt_settings", "fast_effective",
                 {"noise_steps": 250, "noise_copies": 80, "retain_per_class": 500, "impair_lr": 1e-4,
                  "repair_lr": 1e-4},
                 "the bad-teaching repo's UNSIR settings: Adam 1e-4, 250 noise steps, 80 copies, 500 per class")
