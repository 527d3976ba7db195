"""`salun`: "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency" (Fan et al., ICLR 2024).

First a weight-saliency mask: the gradient of the forget loss at θ*, summed over the forget set, in absolute value;
the top `mask_fraction` of all weights by that magnitude, ranked over the whole network at once (not per layer), are
salient. Then random-label training (`methods/random_label.py`, the same code as the `random_label` baseline) in
which only salient weights move: their gradients pass, the others are zeroed and those weights stay at θ*.

Defaults: official code, GitHub OPTML-Group/Unlearn-Saliency @a6e89fd, `Classification/`:
    mask from generate_mask.py: model in eval mode (line 25); loss −CE per batch of the forget set, gradients summed
        over its batches (lines 30-44), then |·| (lines 46-48); every parameter is ranked in one list (line 57,
        all `named_parameters`, BatchNorm and biases included) and the first int(N · fraction) by magnitude are kept
        (lines 60-79). Batches of 256 (arg_parser.py line 69) of the training loader, so with θ*'s augmentation.
    mask_fraction 0.5   the README's SalUn command uses `mask/with_0.5.pt` (Classification/README.md line 34);
                        generate_mask.py writes masks for 0.1 … 1.0 (line 50)
    mask_mode "freeze"  unlearn/RL.py as of a6e89fd: gradients multiplied by the mask after backward (lines 11-14,
                        84-85), and after each step the masked-out weights are put back to their θ* values and their
                        momentum cleared (lines 17-34, 89-90): "Keep masked-out weights exactly at initialization
                        value (theta0)" (line 28). We put the weights back after each step; clearing their momentum
                        changes nothing further (SGD and Adam act per coordinate, and those coordinates are reset
                        every step).
    training            everything of `random_label` (its defaults: labels uniform over all classes, sequential
                        forget-then-retain passes for 10 classes, SGD lr 0.01, momentum 0.9, wd 5e-4, 10 epochs,
                        batch 256). The official SalUn README example (random 10% of CIFAR-10) uses lr 0.013; no
                        class-wise value is published, so the arg_parser default lr 0.01 is kept as config.

`mask_mode = "grad"` is RL.py as released with the paper, until a6e89fd (Unlearn-Saliency pull request #33, "Fix
weight decay"): only the gradients are masked, so SGD's weight decay (and the momentum it feeds) still shrinks the
non-salient weights.

Deviations: those of `random_label`; the mask's forget batches are taken in data-set order (the official loader
shuffles them; only which images share the last, partial batch differs); ties in saliency are broken by position
(the official argsort leaves them to the sort).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.config import param
from unlearnbench.data import Batch
from unlearnbench.method import Sizes, UnlearnTask, register_method
from unlearnbench.runtime import generator
from unlearnbench.train import StepHook, summed_gradients

from .random_label import SCHEDULE as RL_SCHEDULE
from .random_label import RandomLabelHP, train_random_labels

log = logging.getLogger("unlearnbench")


@dataclass(frozen=True)
class SalUnHP(RandomLabelHP):
    mask_fraction: float = param(0.5, gt=0, le=1)  # official README: with_0.5.pt (top half of all weights)
    mask_mode: Literal["freeze", "grad"] = "freeze"  # official (RL.py at a6e89fd); "grad": before its PR #33


def top_fraction_mask(saliency: dict[str, Tensor], fraction: float) -> dict[str, Tensor]:
    """Boolean masks keeping the int(N · fraction) largest entries of all tensors together (N entries in all), ranked
    over the whole dict, not per tensor; among equal values the earlier (dict order, then flat position) wins."""
    flat = torch.cat([s.flatten() for s in saliency.values()])
    keep = torch.zeros(len(flat), dtype=torch.bool, device=flat.device)
    k = int(len(flat) * fraction)
    keep[torch.argsort(flat, descending=True, stable=True)[:k]] = True
    masks, start = {}, 0
    for name, s in saliency.items():
        masks[name] = keep[start:start + s.numel()].view(s.shape)
        start += s.numel()
    return masks


def negative_cross_entropy(model: nn.Module, batch: Batch) -> Tensor:
    return -F.cross_entropy(model(batch.x), batch.y)


def saliency_mask(model: nn.Module, task: UnlearnTask, hp: SalUnHP, seed: int) -> dict[str, Tensor]:
    """generate_mask.py: |Σ_batches ∇θ (−CE)| on the forget set at θ* (eval mode), its top `mask_fraction`."""
    was_training = model.training
    model.eval()
    batches = task.forget.batches(hp.batch_size, augment=task.recipe.augment, generator=generator(seed, 73))
    grads = summed_gradients(model, batches, negative_cross_entropy, task.runtime)
    model.train(was_training)
    return top_fraction_mask({k: g.abs_() for k, g in grads.items()}, hp.mask_fraction)


def mask_hooks(model: nn.Module, masks: dict[str, Tensor], mode: str) -> tuple[StepHook, StepHook | None]:
    """The hooks that confine training to the salient weights: zero the others' gradients after backward; with
    "freeze", also put the others back to their current (θ*) values after every step."""
    params = [(p, ~masks[name]) for name, p in model.named_parameters() if name in masks]
    start = [p.detach().clone() for p, _ in params]

    def zero_gradients() -> None:
        for p, frozen in params:
            if p.grad is not None:
                p.grad.masked_fill_(frozen, 0)

    @torch.no_grad()
    def restore() -> None:
        for (p, frozen), p0 in zip(params, start):
            p.copy_(torch.where(frozen, p0, p))

    return zero_gradients, (restore if mode == "freeze" else None)


def _cost(hp: SalUnHP, n: Sizes) -> float:
    return n.forget + (n.forget + n.retain) * hp.epochs


@register_method("salun", hparams=SalUnHP, needs=("forget", "retain"), cost=_cost, schedule=RL_SCHEDULE,
                 display="SalUn", group="baseline", order=50)
def salun(model: nn.Module, task: UnlearnTask, hp: SalUnHP, seed: int) -> nn.Module:
    """Random-label unlearning of only the weights most salient to the forget loss (top half by |gradient|)."""
    start = time.perf_counter()
    masks = saliency_mask(model, task, hp, seed)
    task.runtime.sync()
    mask_seconds = time.perf_counter() - start
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    log.info("salun: %d of %d weights salient (%.1f s)", kept, total, mask_seconds)
    after_backward, after_step = mask_hooks(model, masks, hp.mask_mode)
    steps = train_random_labels(model, task, hp, seed, after_backward=after_backward, after_step=after_step)
    return model, {"steps": steps, "salient_fraction": round(kept / total, 6), "mask_seconds": round(mask_seconds, 3)}
