"""Deep forgetting: has the class left the model, or is it only hidden at the output?

A_Df reads the output layer only. Three measurements, taken by the runner after the timed unlearning call (the method
never sees them), for the unlearned model, θ* and the retrained oracle of the same cell, on the same seeded images:

- `linear_probe`      a multinomial logistic regression (scikit-learn) fitted on the penultimate features (timm's
                      `forward_features`, then `forward_head(pre_logits=True)`, eval mode) of a seeded class-balanced
                      sample of training images of every class, the forget class included; its accuracy on the forget
                      class's test images and on the others' (`probe_acc_forget`, `probe_acc_retain`).
- `prototype_attack`  Spotter's prototypical relearning attack (Seung-B/Spotter-Unlearning@af7aac8, proto_utils.py,
                      `update_fc_with_prototypes`, lines 27-82): the forget class's head row and bias replaced by a mix
                      of the unlearned ones and a prototype, the normalised mean feature of a few forget-class training
                      images; A_Df after the edit (`proto_acc_forget`). No training. A model whose logits are not one
                      linear layer applied to those features gets the reason instead (`proto_not_applicable`).
- `relearn`           relearn time (Chundawat et al., zero-shot unlearning, ayushkumartarun/zero-shot-unlearning@
                      89f4ce6, metrics.py, `relearn_time` and `ain`, lines 37-120): Adam on a small seeded relearn set
                      of k forget and k retain training images, A_Df on the forget class's test images checked every
                      few steps; the steps until it reaches a fraction of θ*'s (`relearn_steps`, `relearn_censored` at
                      the cap), and the Anamnesis Index AIN = relearn_steps(model) / relearn_steps(oracle) (`ain`).

θ*'s and the oracle's measurements depend on their checkpoints, the class, the seed and the settings alone, so they
are computed once and kept beside the checkpoint cache (`<cache>/deep/<key>.json`): a sweep measures them once per
cell, whatever the number of methods, processes or reruns. Settings: `EvalConfig.deep*`, `probe_*`, `proto_*`,
`relearn_*` (docs/deep_forgetting.md).
"""
from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from .config import EvalConfig, as_dict, stable_hash
from .data import DataBundle, SampleSet
from .files import atomic_write_json, guarded_lock
from .runtime import Runtime, deterministic, generator
from .train import accuracy, cross_entropy, predict, train_steps

if TYPE_CHECKING:  # the runner imports this module
    from .config import Cell
    from .runner import Runner

log = logging.getLogger("unlearnbench")

#: Bumped when a measurement changes what it would give for the same model and settings (the reference cache key).
DEEP_VERSION = 1
#: Generator salts: the test images measured on, the probe's training images, the prototype's images, the relearn
#: set and its batch order (all from the cell's seed, so θ*, the oracle and every method meet the same images).
TEST_SAMPLE, PROBE_TRAIN, PROTO_IMAGES, RELEARN_SET, RELEARN_ORDER = 81, 82, 83, 84, 85
#: The probe's logistic regression: scikit-learn's defaults (C = 1, lbfgs, multinomial), on standardised features,
#: with iterations enough to converge on a few thousand 512-2048-dimensional features.
PROBE_MAX_ITER = 1000
#: How close the logits must be to the head applied to the pre-logit features for the prototype attack to apply.
HEAD_TOLERANCE = 1e-3

#: The settings of EvalConfig that shape these measurements (the reference cache key holds them).
SETTINGS = ("deep_test_per_class", "probe_per_class", "proto_images", "proto_alpha", "proto_metric", "relearn_k",
            "relearn_lr", "relearn_batch_size", "relearn_target", "relearn_every", "relearn_cap")
#: What one model's measurement gives (a record carries them for the method, and prefixed `original_` / `retrain_`
#: for θ* and the oracle).
FIELDS = ("probe_acc_forget", "probe_acc_retain", "proto_acc_forget", "relearn_steps", "relearn_censored",
          "relearn_acc_forget", "relearn_target", "deep_acc_forget")


# --------------------------------------------------------------------------------------------------------------------
# the measurements, on tensors (unit-tested on hand-made cases)
# --------------------------------------------------------------------------------------------------------------------
def per_class_sample(labels: Tensor, n: int, gen: torch.Generator) -> Tensor:
    """Positions of `n` randomly drawn samples of every class in `labels` (all of a class with fewer; n = 0: all),
    sorted. The classes are drawn in label order, each with its own permutation from `gen`: seeded, reproducible."""
    picked = []
    for c in torch.unique(labels).tolist():
        where = (labels == c).nonzero().flatten()
        picked.append(where if n == 0 else where[torch.randperm(len(where), generator=gen)[:n]])
    return torch.sort(torch.cat(picked)).values if picked else torch.zeros(0, dtype=torch.int64)


def linear_probe(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, forget_class: int
                 ) -> tuple[float, float]:
    """(accuracy on the forget class's test samples, on the others') of a multinomial logistic regression fitted on
    (train_x, train_y), features standardised with the training features' mean and deviation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=PROBE_MAX_ITER))
    probe.fit(train_x.double().numpy(), train_y.numpy())
    predicted = torch.as_tensor(probe.predict(test_x.double().numpy()))
    is_forget = test_y == forget_class
    hit = predicted == test_y

    def acc(mask: Tensor) -> float:
        return 100.0 * float(hit[mask].sum()) / int(mask.sum()) if int(mask.sum()) else float("nan")

    return acc(is_forget), acc(~is_forget)


def prototype_row(weight_row: Tensor, bias: Tensor, proto_x: Tensor, alpha: float, metric: str
                  ) -> tuple[Tensor, Tensor]:
    """The forget class's new head row and bias, as Spotter's `update_fc_with_prototypes` computes them
    (proto_utils.py lines 58-77): prototype p = the mean of `proto_x`'s rows, L2-normalised (normalize_proto=True);
    cosine: (w, b) = (p, 0); l2: (2p, -|p|²); then α (w, b) + (1 - α) (the row's own weight and bias)."""
    proto = torch.nn.functional.normalize(proto_x.double().mean(0), p=2, dim=0)
    if metric == "cosine":
        w, b = proto, torch.zeros((), dtype=torch.float64)
    elif metric == "l2":
        w, b = 2.0 * proto, -proto.pow(2).sum()
    else:
        raise ValueError(f"unknown prototype metric {metric!r}")
    return alpha * w + (1 - alpha) * weight_row.double(), alpha * b + (1 - alpha) * bias.double()


def prototype_attack(weight: Tensor, bias: Tensor, forget_class: int, proto_x: Tensor, test_x: Tensor,
                     test_y: Tensor, alpha: float, metric: str) -> float:
    """A_Df (%) after the forget class's head row is edited from the prototype of `proto_x` (`prototype_row`): the
    head (weight, bias) applied to the test features, on the forget class's test samples."""
    weight, bias = weight.detach().double().clone(), bias.detach().double().clone()
    weight[forget_class], bias[forget_class] = prototype_row(weight[forget_class], bias[forget_class], proto_x, alpha,
                                                             metric)
    is_forget = test_y == forget_class
    logits = test_x[is_forget].double() @ weight.T + bias
    return accuracy(logits, test_y[is_forget])


def count_steps(step: Callable[[], None], check: Callable[[], float], target: float, every: int, cap: int
                ) -> tuple[int, bool, float]:
    """Steps taken until `check()` (an accuracy) reaches `target`, checking before the first step and after every
    `every`-th step and the `cap`-th: (steps, censored, the last accuracy checked). Censored: the cap was reached
    without reaching the target (steps = cap)."""
    acc = check()
    steps = 0
    while acc < target and steps < cap:
        step()
        steps += 1
        if steps % every == 0 or steps == cap:
            acc = check()
    return steps, acc < target, acc


def anamnesis_index(steps: int | None, oracle_steps: int | None) -> float | None:
    """AIN = relearn steps of the model / relearn steps of the oracle (metrics.py line 119); None when the oracle's
    are 0 or unknown (the ratio is undefined)."""
    if steps is None or not oracle_steps:
        return None
    return steps / oracle_steps


# --------------------------------------------------------------------------------------------------------------------
# on a model
# --------------------------------------------------------------------------------------------------------------------
def probe_problem(model: nn.Module) -> str | None:
    """Why a model has no penultimate features to probe (None if it has)."""
    if not (callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None))):
        return f"{type(model).__name__} has no forward_features / forward_head (not a timm model)"
    return None


@torch.no_grad()
def features(model: nn.Module, data: SampleSet, runtime: Runtime, batch_size: int) -> Tensor:
    """Penultimate features (float32, CPU), eval mode: `forward_head(forward_features(x), pre_logits=True)`."""
    was_training = model.training
    model.eval()
    out = []
    for batch in data.batches(batch_size):
        with runtime.autocast():
            x = model.forward_features(runtime.inputs(batch.x))
            out.append(model.forward_head(x, pre_logits=True).float().flatten(1).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def head_problem(model: nn.Module, data: SampleSet, runtime: Runtime) -> str | None:
    """Why the prototype attack does not apply to `model` (None if it does): its classifier must be one linear layer
    with a bias, and its logits that layer applied to the pre-logit features (checked on a few of `data`'s images)."""
    head = model.get_classifier() if callable(getattr(model, "get_classifier", None)) else None
    if not isinstance(head, nn.Linear) or head.bias is None:
        return (f"its classifier is {type(head).__name__ if head is not None else 'not exposed (get_classifier)'}, "
                "not one linear layer with a bias")
    batch = next(data.batches(8))
    was_training = model.training
    model.eval()
    with runtime.autocast():
        x = runtime.inputs(batch.x)
        logits = model(x).float()
        again = head(model.forward_head(model.forward_features(x), pre_logits=True)).float()
    model.train(was_training)
    gap = float((logits - again).abs().max())
    if not math.isfinite(gap) or gap > HEAD_TOLERANCE * max(1.0, float(logits.abs().max())):
        return f"its logits are not its classifier applied to the pre-logit features (max difference {gap:.3g})"
    return None


@dataclass(frozen=True)
class Images:
    """The seeded images one cell's measurements use, the same for the method, θ* and the oracle."""

    test: SampleSet  # `deep_test_per_class` test images of every class
    check: SampleSet  # the forget class's among them: relearning's A_Df checks
    probe_train: SampleSet  # `probe_per_class` training images of every class
    proto: SampleSet  # `proto_images` forget-class training images
    relearn: SampleSet  # `relearn_k` forget-class and `relearn_k` retain training images


def images(data: DataBundle, forget_class: int, seed: int, ev: EvalConfig) -> Images:
    test, train = data.sample_set("test"), data.sample_set("train")
    test = test.subset(per_class_sample(test.labels, ev.deep_test_per_class, generator(seed, TEST_SAMPLE)))
    check = test.subset((test.labels == forget_class).nonzero().flatten())
    probe_train = train.subset(per_class_sample(train.labels, ev.probe_per_class, generator(seed, PROBE_TRAIN)))
    forget, retain = data.indices("train", forget_class)
    g = generator(seed, PROTO_IMAGES)
    proto = train.subset(torch.sort(forget[torch.randperm(len(forget), generator=g)[:ev.proto_images]]).values)
    g = generator(seed, RELEARN_SET)
    chosen = torch.cat([forget[torch.randperm(len(forget), generator=g)[:ev.relearn_k]],
                        retain[torch.randperm(len(retain), generator=g)[:ev.relearn_k]]])
    return Images(test, check, probe_train, proto, train.subset(torch.sort(chosen).values))


def relearn(model: nn.Module, shots: Images, runtime: Runtime, ev: EvalConfig, target: float, seed: int
            ) -> tuple[int, bool, float]:
    """Relearn a copy of `model` (train mode, Adam at `relearn_lr`, cross-entropy, batches of `relearn_batch_size`
    drawn from the relearn set, reshuffled every pass) until its A_Df on the check images reaches `target`:
    (steps, censored, A_Df at the last check). The model itself is not touched."""
    student = copy.deepcopy(model).train()
    optimizer = torch.optim.Adam(student.parameters(), lr=ev.relearn_lr)
    order = generator(seed, RELEARN_ORDER)
    batches = itertools.chain.from_iterable(
        shots.relearn.batches(ev.relearn_batch_size, shuffle=True, generator=order, drop_last=True)
        for _ in itertools.count())
    loss = cross_entropy()
    labels = shots.check.labels.cpu()

    def step() -> None:
        train_steps(student, optimizer, itertools.islice(batches, 1), loss, runtime)

    def check() -> float:
        return accuracy(predict(student, shots.check, runtime), labels)

    with deterministic(seed):  # dropout, where a model has it, draws from the global RNG
        return count_steps(step, check, target, ev.relearn_every, ev.relearn_cap)


def measure(model: nn.Module, shots: Images, forget_class: int, runtime: Runtime, ev: EvalConfig, seed: int,
            theta_acc_forget: float | None) -> dict[str, Any]:
    """The three measurements of one model (FIELDS, and the reasons where one does not apply). `theta_acc_forget`:
    θ*'s A_Df on the check images, which relearning aims at (None: this is θ*, its own)."""
    found: dict[str, Any] = {}
    labels = shots.test.labels.cpu()
    found["deep_acc_forget"] = accuracy(predict(model, shots.check, runtime, ev.batch_size), shots.check.labels.cpu())
    problem = probe_problem(model)
    if problem is None:
        test_x = features(model, shots.test, runtime, ev.batch_size)
        train_x = features(model, shots.probe_train, runtime, ev.batch_size)
        proto_x = features(model, shots.proto, runtime, ev.batch_size)
        if not (torch.isfinite(test_x).all() and torch.isfinite(train_x).all() and torch.isfinite(proto_x).all()):
            problem = "its features are not finite (NaN or infinity)"
    if problem is not None:
        found |= {"probe_acc_forget": None, "probe_acc_retain": None, "probe_not_applicable": problem,
                  "proto_acc_forget": None, "proto_not_applicable": problem}
    else:
        found["probe_acc_forget"], found["probe_acc_retain"] = linear_probe(
            train_x, shots.probe_train.labels.cpu(), test_x, labels, forget_class)
        problem = head_problem(model, shots.test, runtime)
        if problem is None:
            head = model.get_classifier()
            found["proto_acc_forget"] = prototype_attack(head.weight.float().cpu(), head.bias.float().cpu(),
                                                         forget_class, proto_x, test_x, labels, ev.proto_alpha,
                                                         ev.proto_metric)
        else:
            found |= {"proto_acc_forget": None, "proto_not_applicable": problem}
    reference = found["deep_acc_forget"] if theta_acc_forget is None else theta_acc_forget
    found["relearn_target"] = ev.relearn_target * reference
    found["relearn_steps"], found["relearn_censored"], found["relearn_acc_forget"] = relearn(
        model, shots, runtime, ev, found["relearn_target"], seed)
    return found


# --------------------------------------------------------------------------------------------------------------------
# in the runner: the method's, θ*'s and the oracle's, as record fields
# --------------------------------------------------------------------------------------------------------------------
def settings(ev: EvalConfig) -> dict[str, Any]:
    values = as_dict(ev)
    return {k: values[k] for k in SETTINGS}


def reference(runner: "Runner", cell: "Cell", model: nn.Module, checkpoint: dict[str, Any], shots: Images,
              theta_acc_forget: float | None) -> dict[str, Any]:
    """θ*'s or the oracle's measurements for this cell: from the process's memo, else from `<cache>/deep/`, else
    measured now and kept there (atomically, under a lock, so concurrent jobs measure it once)."""
    setup = cell.setup
    key = "deep-" + stable_hash({"checkpoint": checkpoint, "forget_class": cell.forget_class, "seed": setup.seed,
                                 "data": as_dict(setup.data), "settings": settings(cell.eval),
                                 "version": DEEP_VERSION})
    if key in runner._deep:
        return runner._deep[key]
    path = runner.cache.root / "deep" / f"{key}.json"
    with guarded_lock(path.with_suffix(".lock")):
        found = None
        try:
            found = json.loads(path.read_text())["measured"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if found is None:
            start = time.perf_counter()
            found = measure(model, shots, cell.forget_class, runner.runtime(setup.train), cell.eval, setup.seed,
                            theta_acc_forget)
            found["seconds"] = time.perf_counter() - start
            atomic_write_json(path, {"key": key, "checkpoint": checkpoint, "forget_class": cell.forget_class,
                                     "seed": setup.seed, "settings": settings(cell.eval), "measured": found})
    runner._deep[key] = found
    return found


def deep_metrics(runner: "Runner", cell: "Cell", model: nn.Module) -> dict[str, Any]:
    """The record fields of the deep measurements: the method's (FIELDS, `proto_not_applicable` where the attack does
    not apply, `ain`, `deep_seconds`: their wall time), θ*'s (`original_*`) and, with the oracle on, the oracle's
    (`retrain_*`)."""
    setup = cell.setup
    data = runner.data(setup.data)
    shots = images(data, cell.forget_class, setup.seed, cell.eval)
    original, original_meta, _ = runner.original(setup)
    theta = reference(runner, cell, original, {"key": original_meta["key"], "sha256": original_meta["sha256"]}, shots,
                      None)
    found: dict[str, Any] = {f"original_{k}": v for k, v in theta.items() if k != "seconds"}
    found["original_deep_seconds"] = theta.get("seconds")  # when it was measured (once per cell, then kept)
    oracle = None
    if cell.eval.oracle:
        oracle_model, facts = runner.oracle(cell)
        oracle = reference(runner, cell, oracle_model, facts["checkpoint"], shots, theta["deep_acc_forget"])
        found |= {f"retrain_{k}": v for k, v in oracle.items() if k != "seconds"}
        found["retrain_deep_seconds"] = oracle.get("seconds")
    start = time.perf_counter()
    if oracle is not None and runner.method_key(cell) == runner.method_key(runner.oracle_cell(cell)):
        mine = {k: v for k, v in oracle.items() if k != "seconds"}  # this cell is the oracle's: measured above
    elif cell.method == "original":
        mine = {k: v for k, v in theta.items() if k != "seconds"}  # θ* unchanged: measured above
    else:
        mine = measure(model, shots, cell.forget_class, runner.runtime(setup.train), cell.eval, setup.seed,
                       theta["deep_acc_forget"])
    found |= mine | {"deep_seconds": time.perf_counter() - start}
    found["ain"] = anamnesis_index(mine["relearn_steps"], oracle["relearn_steps"] if oracle else None)
    log.info("deep forgetting, %s: probe A_Df %s, prototype attack A_Df %s, relearn %d steps%s (%.1f s)",
             cell.method, _pct(mine["probe_acc_forget"]), _pct(mine["proto_acc_forget"]), mine["relearn_steps"],
             " (censored)" if mine["relearn_censored"] else "", found["deep_seconds"])
    return found


def _pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.1f}%"
