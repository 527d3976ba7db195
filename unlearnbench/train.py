"""The training and evaluation loops: one inner loop that every method and the original training share.

`train_steps` is the only place where forward, backward and optimiser step happen. Training the original θ*,
retraining, fine-tuning, UNSIR's impair/repair, Bad Teaching's distillation and PBU's ascent all call it with their
own loss function; what differs between methods is the loss and the data, never the loop. `summed_gradients` is
its step-less sibling: the gradient of a loss summed over a set of batches (SalUn's weight saliency).

`fit` ends with `recalibrate_bn` when the recipe asks for it (`bn_recalibrate`): θ*'s and the oracle's recipe may;
every method that derives its recipe from θ*'s switches it off, so a method's published recipe stays as published.
"""
from __future__ import annotations

import copy
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TrainRecipe
from . import progress
from .data import Batch, SampleSet
from .runtime import Runtime

log = logging.getLogger("unlearnbench")

#: A loss maps (model, batch) to a scalar, or to (scalar, {name: term}) when its parts are worth logging.
LossFn = Callable[[nn.Module, Batch], "Tensor | tuple[Tensor, dict[str, Tensor]]"]
#: Called after every step with the running log; returning True stops the loop (a blind stopping rule).
StopFn = Callable[["StepLog"], bool]
#: Called with no arguments between backward and the optimiser step (the gradients are in `.grad`, scaled by the
#: loss scale under fp16, so a hook must not depend on their scale), or right after the step.
StepHook = Callable[[], None]


@dataclass
class StepLog:
    """What a run of steps did: counts, and the mean of the loss and of each named term."""

    steps: int = 0
    samples: int = 0
    stopped: bool = False
    lr: float = float("nan")  # the learning rate after the last step
    _sums: dict[str, Tensor] = field(default_factory=dict)

    def add(self, n: int, loss: Tensor, terms: dict[str, Tensor]) -> None:
        self.steps += 1
        self.samples += n
        for name, value in {"loss": loss, **terms}.items():
            v = value.detach().float()
            self._sums[name] = self._sums[name] + v if name in self._sums else v

    def means(self) -> dict[str, float]:
        return {k: float(v) / max(self.steps, 1) for k, v in self._sums.items()}


def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    def loss(model: nn.Module, batch: Batch) -> Tensor:
        return F.cross_entropy(model(batch.x), batch.y, label_smoothing=label_smoothing)
    return loss


def make_optimizer(params: Iterable[Tensor], name: str, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Batch], loss_fn: LossFn,
                runtime: Runtime, *, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                should_stop: StopFn | None = None, after_backward: StepHook | None = None,
                after_step: StepHook | None = None, accumulate: bool = False) -> StepLog:
    """Forward, backward, step over `batches`. The model's train/eval mode is the caller's choice.

    `accumulate`: the gradients are never zeroed here, so step k applies the sum of batches 1..k's gradients (what a
    released loop that zeroes once before its loop does; the caller zeroes them first).

    `after_backward` / `after_step` let a method act on the gradients before the step (SalUn zeroes those of
    non-salient weights) or on the weights after it (and puts frozen ones back), without a loop of its own.
    """
    scaler = torch.amp.GradScaler(runtime.device.type) if runtime.precision == "fp16" else None
    stats = StepLog()
    for batch in batches:
        batch = Batch(runtime.inputs(batch.x), batch.y, batch.part)
        with runtime.autocast():
            out = loss_fn(model, batch)
        loss, terms = out if isinstance(out, tuple) else (out, {})
        if not accumulate:
            optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if after_backward is not None:
                after_backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if after_backward is not None:
                after_backward()
            optimizer.step()
        if after_step is not None:
            after_step()
        if scheduler is not None:
            scheduler.step()
        stats.add(len(batch.y), loss, terms)
        progress.advance(len(batch.y))
        stats.lr = optimizer.param_groups[0]["lr"]
        if should_stop is not None and should_stop(stats):
            stats.stopped = True
            break
    return stats


def summed_gradients(model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, runtime: Runtime
                     ) -> dict[str, Tensor]:
    """Σ over `batches` of ∇θ loss_fn (each batch's loss as the loss defines it), per trainable parameter, float32;
    no step is taken and the model's `.grad`s are left empty. Train/eval mode is the caller's choice."""
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    sums = {k: torch.zeros_like(p, dtype=torch.float32) for k, p in params.items()}
    for batch in batches:
        batch = Batch(runtime.inputs(batch.x), batch.y, batch.part)
        with runtime.autocast():
            out = loss_fn(model, batch)
        loss = out[0] if isinstance(out, tuple) else out
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for k, g in zip(params, grads):
            if g is not None:
                sums[k].add_(g.float())
    return sums


def fit(model: nn.Module, data: SampleSet, recipe: TrainRecipe, runtime: Runtime, generator: torch.Generator,
        *, loss_fn: LossFn | None = None, what: str = "train") -> list[StepLog]:
    """Train `model` on `data` for `recipe.epochs` epochs with the recipe's optimiser, schedule and augmentation."""
    optimizer = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.weight_decay,
                               recipe.momentum)
    steps_per_epoch = -(-len(data) // recipe.batch_size)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs * steps_per_epoch)
                 if recipe.scheduler == "cosine" else None)
    loss_fn = loss_fn or cross_entropy(recipe.label_smoothing)
    model.train()
    step_model = runtime.for_training(model)
    logs = []
    for epoch in range(recipe.epochs):
        batches = data.batches(recipe.batch_size, shuffle=True, generator=generator, augment=recipe.augment)
        logs.append(train_steps(step_model, optimizer, batches, loss_fn, runtime, scheduler=scheduler))
        log.info("%s epoch %d/%d: %s", what, epoch + 1, recipe.epochs,
                 " ".join(f"{k}={v:.4g}" for k, v in logs[-1].means().items()))
    if recipe.bn_recalibrate:
        recalibrate_bn(model, data, runtime, recipe.batch_size)
        log.info("%s: BatchNorm running statistics recomputed over %d training images", what, len(data))
    return logs


def recalibrate_bn(model: nn.Module, data: SampleSet, runtime: Runtime, batch_size: int) -> None:
    """Replace every BatchNorm layer's running statistics by their average over `data` at the current weights.

    `torch.optim.swa_utils.update_bn` does the work: it resets the running statistics, switches the model to train
    mode with momentum None (a cumulative average, every batch weighted alike), runs the batches without gradients,
    then restores each layer's momentum and the model's mode. The images go unaugmented and in order (what eval mode
    sees; no draw from the training order's generator). A model without BatchNorm is left untouched."""
    with runtime.autocast():
        torch.optim.swa_utils.update_bn((runtime.inputs(b.x) for b in data.batches(batch_size)), model)


@contextmanager
def running_stats(model: nn.Module, mode: str) -> Iterator[None]:
    """Within the block, mode "keep" freezes every BatchNorm layer's running statistics (momentum 0): in train mode
    the layers still normalise with batch statistics, but the statistics the tested model uses stay what they were
    (θ*'s, for an unlearning method) instead of drifting toward forget-only batches. Any other mode changes nothing.
    The methods' `bn_stats="keep"` variants share it."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if mode == "keep" else []
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(bns, saved):
            m.momentum = momentum


@torch.no_grad()
def predict(model: nn.Module, data: SampleSet, runtime: Runtime, batch_size: int = 1024) -> Tensor:
    """Logits (float32, CPU) for every sample of `data`, in order, with the model in eval mode."""
    was_training = model.training
    out = _logits(model.eval(), data, runtime, batch_size)
    model.train(was_training)
    return out


@torch.no_grad()
def predict_batch_statistics(model: nn.Module, data: SampleSet, runtime: Runtime, batch_size: int, *,
                             drop_last: bool = False) -> Tensor:
    """Logits (float32, CPU), in order, with every BatchNorm layer normalising by each batch's own statistics (train
    mode). A copy runs, so the model's running statistics and mode stay as they are. `drop_last` leaves out a last
    partial batch (a batch of one has no batch statistics). Dropout in train mode draws from the global RNG: seed it
    around the call for a repeatable result."""
    return _logits(copy.deepcopy(model).train(), data, runtime, batch_size, drop_last)


def _logits(model: nn.Module, data: SampleSet, runtime: Runtime, batch_size: int, drop_last: bool = False) -> Tensor:
    """The model's logits (float32, CPU) for `data`'s batches in order, in whatever mode the model is in."""
    out = []
    for batch in data.batches(batch_size, drop_last=drop_last):
        with runtime.autocast():
            out.append(model(runtime.inputs(batch.x)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent, weighted by sample (not averaged over batches); NaN for an empty set."""
    if len(labels) == 0:
        return float("nan")
    return 100.0 * float((logits.argmax(1) == labels).sum()) / len(labels)


def forget_retain_accuracy(logits: Tensor, labels: Tensor, forget_class: int) -> tuple[float, float]:
    """(A_Df, A_Dr): top-1 on the samples of the forget class, and on all the others."""
    is_forget = labels == forget_class
    return accuracy(logits[is_forget], labels[is_forget]), accuracy(logits[~is_forget], labels[~is_forget])
