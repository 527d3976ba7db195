"""`boundary_expand`: Boundary Expanding (Chen, Gao, Liu, Peng, Wang, "Boundary Unlearning", CVPR 2023).

The classifier head gains one output, a "shadow" class; the whole network is fine-tuned with cross-entropy to send
every forget sample to the shadow class; then the shadow output is pruned, leaving the head its original shape. The
forget class's features have moved into a region that now belongs to no class, so they scatter over the others.
Data: the forget set only.

Defaults and their sources. The authors' code was a Dropbox archive; TY-LEE-KR/Boundary-Unlearning-Code @86c2f1f is a
copy of it (README: "Original Work"), cited as BU below:
    head widened by one output; the old rows  BU boundary_unlearning.py, lines 111-123; the new output initialised
    copied, the new one Xavier-normal, bias 0 by models.py init_params (lines 39-49: xavier_normal_, zeros_)
    label = C (the shadow class) for every    BU lines 141-151
    forget sample, CE, model in train mode
    SGD lr 1e-5, momentum 0.9, 10 epochs      BU lines 127, 130 (optimizer_picker with main.py's default "sgd", line 25)
    all parameters trained                    BU line 130 (widen_model.parameters(): features and head)
    shadow output pruned afterwards           BU lines 156-164
    batch 64, no augmentation                 BU main.py, line 32; utils.py, lines 14-40
The recipe was published for CIFAR-10 (and VGGFace2) and is taken as published.

Deviations. The head: BU widens AllCNN's `classifier` by name, the re-implementations the last `nn.Linear`
(OPTML-Group/Unlearn-Saliency @a6e89fd, unlearn/boundary_ex.py, lines 34-67) or `model.fc` (shaaaaron/DELETE
@60018a1, method/boundary_expand.py, line 38). timm models name their head differently (`fc`, `head.fc`,
`classifier`), so the head is the module `model.get_classifier()` returns, which must be an `nn.Linear`. After
training, the first C rows of the widened head are copied back into the original head module, which is put back in
place: the returned model has θ*'s architecture, the same module objects, and loads into it. The new output's
initial weights are drawn from the method's own seeded stream (BU uses the global RNG). BU's first forward pass runs
before it switches the model to train mode (its model arrives in eval mode), so its very first batch is seen with
running BatchNorm statistics; here every step is in train mode, as in Unlearn-Saliency's boundary_ex.py (line 88).

Variant `boundary_expand+keep_bn` (ours; `bn_stats = "keep"`, as `pbu+keep_bn`): every batch is still normalised by its
own statistics, but BatchNorm's running statistics stay θ*'s instead of drifting toward the forget class's; why
that matters is in docs/methods_retain_free.md ("BatchNorm's running statistics: the `+keep_bn` variants").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.budget import Schedule, cifar10_class, forget_pass
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, TrainRecipe, at_least, param, positive
from unlearnbench.data import Batch
from unlearnbench.method import UnlearnTask, register_method, register_variant
from unlearnbench.runtime import generator
from unlearnbench.train import fit, running_stats


@dataclass(frozen=True)
class BoundaryExpandHP:
    lr: float = positive(1e-5)  # BU
    epochs: int = at_least(1, 10, le=EPOCHS_MAX)  # BU
    batch_size: int = at_least(1, 64, le=BATCH_MAX)  # BU main.py
    momentum: float = param(0.9, ge=0, lt=1)  # BU
    bn_stats: Literal["update", "keep"] = "update"  # official: running statistics move on forget batches


def classifier_name(model: nn.Module) -> str:
    """The dotted name of the model's classifier head (timm's `get_classifier()`), which must be a linear layer."""
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, nn.Linear):
        raise ValueError(f"boundary_expand needs a model whose get_classifier() is an nn.Linear head; "
                         f"{type(model).__name__} gives {type(head).__name__}")
    return next(name for name, module in model.named_modules() if module is head)


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def widen_head(model: nn.Module, name: str, g: torch.Generator) -> tuple[nn.Linear, nn.Linear]:
    """Replace head `name` (C outputs) by one with C + 1: the old rows copied, the new row Xavier-normal for the
    widened shape (BU's init), its bias 0. Returns (original head, widened head); the original is left untouched."""
    old = model.get_submodule(name)
    assert isinstance(old, nn.Linear)
    c, d = old.out_features, old.in_features
    wide = nn.Linear(d, c + 1, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype)
    std = math.sqrt(2.0 / (d + c + 1))  # xavier_normal_ with gain 1 on a (C + 1) × d weight
    with torch.no_grad():
        wide.weight[:c] = old.weight
        wide.weight[c] = (torch.randn(d, generator=g) * std).to(wide.weight)
        if old.bias is not None:
            wide.bias[:c] = old.bias
            wide.bias[c] = 0.0
    _set_module(model, name, wide)
    return old, wide


def prune_head(model: nn.Module, name: str, old: nn.Linear, wide: nn.Linear) -> None:
    """Drop the shadow output: the widened head's first C rows go back into the original head module, in place."""
    c = old.out_features
    with torch.no_grad():
        old.weight.copy_(wide.weight[:c])
        if old.bias is not None:
            old.bias.copy_(wide.bias[:c])
    _set_module(model, name, old)


def shadow_loss(shadow: int):
    """CE toward the shadow class for every sample of the batch."""

    def loss(model: nn.Module, batch: Batch) -> Tensor:
        logits = model(batch.x)
        return F.cross_entropy(logits, torch.full_like(batch.y, shadow))

    return loss


@register_method("boundary_expand", hparams=BoundaryExpandHP, needs=("forget",),
                 cost=lambda hp, n: n.forget * hp.epochs, schedule=Schedule(("epochs",), forget_pass(), cifar10_class(
                     "TY-LEE-KR/Boundary-Unlearning-Code @86c2f1f, boundary_unlearning.py lines 127, 130: 10 epochs")),
                 display="Boundary Expanding", group="retain-free", order=30)
def boundary_expand(model: nn.Module, task: UnlearnTask, hp: BoundaryExpandHP, seed: int) -> tuple[nn.Module, dict]:
    """Boundary Expanding: add a shadow class to the head, train forget samples into it, prune it.
    Forget set only; the returned model has θ*'s head shape."""
    name = classifier_name(model)
    old, wide = widen_head(model, name, generator(seed, 84))
    recipe = TrainRecipe(optimizer="sgd", lr=hp.lr, epochs=hp.epochs, batch_size=hp.batch_size,
                         momentum=hp.momentum, precision=task.recipe.precision,
                         channels_last=task.recipe.channels_last)
    try:
        with running_stats(model, hp.bn_stats):
            logs = fit(model, task.forget, recipe, task.runtime, generator(seed, 83),
                       loss_fn=shadow_loss(old.out_features), what="boundary expanding")
    finally:
        prune_head(model, name, old, wide)
    return model, {"steps": sum(s.steps for s in logs), "head": name}


register_variant("boundary_expand+keep_bn", "boundary_expand", {"bn_stats": "keep"},
                 "ours: BatchNorm's running statistics stay θ*'s while fine-tuning (official: they move)")
