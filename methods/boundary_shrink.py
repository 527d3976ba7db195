"""`boundary_shrink`: Boundary Shrink (Chen, Gao, Liu, Peng, Wang, "Boundary Unlearning", CVPR 2023).

For each forget batch, a frozen copy of θ* finds every sample's nearest wrong class by an untargeted FGSM step (one
signed-gradient step of `bound` pixels that raises its cross-entropy on the true label); the label θ* gives the
perturbed image becomes the sample's new label, and the model is fine-tuned with cross-entropy on the clean images
and those labels, so the forget class's region is absorbed by its neighbours. Data: the forget set only.

Defaults and their sources. The authors' code was a Dropbox archive; TY-LEE-KR/Boundary-Unlearning-Code @86c2f1f is a
copy of it (README: "Original Work"), cited as BU below:
    FGSM, bound 0.1 pixels, no random start  BU boundary_unlearning.py, lines 15, 19, 25 (the paper's value; also
                                             OPTML-Group/Unlearn-Saliency @a6e89fd, unlearn/boundary_sh.py, line 69)
    the step on [0, 1] pixels, clamped to    BU line 18 (norm = True) with adv_generator.py, lines 96-106 and 65-67:
    [0, 1] and rounded to 1/255              un-normalise, step, clamp, discretise, normalise again
    new label: argmax of θ*(x_adv), θ* in    BU lines 42-45; it is the true label again where the step did not cross
    eval mode, recomputed every batch        a boundary (`attack_success` in the diagnostics counts the crossings)
    CE(f(x), new label), model in train mode BU lines 52-57
    SGD lr 1e-5, momentum 0.9, 10 epochs     BU lines 15, 31 (poison_epoch = 10)
    batch 64, no augmentation                BU main.py, line 32; utils.py, lines 14-40 (ToTensor + Normalize only)
The recipe was published for CIFAR-10 (and VGGFace2) and is taken as published.

Deviations: the attack normalises with the data set's own mean and std (BU hard-codes CIFAR-10's, with a typo in the
third channel's mean, 0.2265 for 0.4465); the input gradient comes from `torch.autograd.grad`, so θ*'s copy
accumulates no parameter gradients (BU calls `backward`, whose parameter gradients are never used). The optional
"Enhanced Boundary Unlearning" terms (`extra_exp`: curvature regulariser, reweighting) are not the default and are
not implemented.

Variant `boundary_shrink+keep_bn` (ours; `bn_stats = "keep"`, as `pbu+keep_bn`): every batch is still normalised by its
own statistics, but BatchNorm's running statistics stay θ*'s instead of drifting toward the forget class's; why
that matters is in docs/methods_retain_free.md ("BatchNorm's running statistics: the `+keep_bn` variants").
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.budget import Schedule, cifar10_class, forget_pass
from unlearnbench.attacks import PixelSpace, fgsm
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, TrainRecipe, at_least, param, positive
from unlearnbench.data import Batch
from unlearnbench.method import Sizes, UnlearnTask, register_method, register_variant
from unlearnbench.runtime import generator
from unlearnbench.train import LossFn, fit, running_stats


@dataclass(frozen=True)
class BoundaryShrinkHP:
    lr: float = positive(1e-5)  # BU
    epochs: int = at_least(1, 10, le=EPOCHS_MAX)  # BU
    batch_size: int = at_least(1, 64, le=BATCH_MAX)  # BU main.py
    momentum: float = param(0.9, ge=0, lt=1)  # BU
    bound: float = param(0.1, gt=0, le=1)  # FGSM step in pixels of [0, 1] (BU, the paper)
    discretize: bool = True  # round adversarial pixels to 1/255 (BU)
    augment: bool = False  # BU's forget loader has no augmentation
    bn_stats: Literal["update", "keep"] = "update"  # official: running statistics move on forget batches


def neighbour_labels(reference: nn.Module, x: Tensor, y: Tensor, bound: float, space: PixelSpace,
                     discretize: bool = True) -> Tensor:
    """The label `reference` gives each sample after an FGSM step of `bound` pixels away from its label `y`: the
    nearest wrong class where the step crosses a boundary, `y` itself where it does not."""
    x_adv = fgsm(reference, x, y, bound, space, discretize)
    with torch.no_grad():
        return reference(x_adv).argmax(1)


def shrink_loss(reference: nn.Module, hp: BoundaryShrinkHP, space: PixelSpace) -> LossFn:
    """CE(f(x), neighbour label); `crossed`: how many samples of the batch got a label other than their own."""

    def loss(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        target = neighbour_labels(reference, batch.x, batch.y, hp.bound, space, hp.discretize)
        ce = F.cross_entropy(model(batch.x), target)
        return ce, {"crossed": (target != batch.y).sum().float()}

    return loss


def _cost(hp: BoundaryShrinkHP, n: Sizes) -> float:
    """Per forget sample and epoch: the attack's forward + input backward, the labelling forward, a training step."""
    return n.forget * hp.epochs * (2 + 1 / 3)


@register_method("boundary_shrink", hparams=BoundaryShrinkHP, needs=("forget",), cost=_cost,
                 schedule=Schedule(("epochs",), forget_pass(), cifar10_class(
                     "TY-LEE-KR/Boundary-Unlearning-Code @86c2f1f, boundary_unlearning.py lines 15, 31: 10 epochs")),
                 display="Boundary Shrink", group="retain-free", order=20)
def boundary_shrink(model: nn.Module, task: UnlearnTask, hp: BoundaryShrinkHP, seed: int) -> tuple[nn.Module, dict]:
    """Boundary Shrink: relabel forget samples with their nearest wrong class (FGSM on θ*) and fine-tune.
    Forget set only; θ* stays frozen as the attacked reference."""
    if task.input_norm is None:
        raise ValueError("boundary_shrink needs the task's input normalisation (task.input_norm) for its pixel attack")
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    space = PixelSpace(*task.input_norm, device=task.runtime.device)
    recipe = TrainRecipe(optimizer="sgd", lr=hp.lr, epochs=hp.epochs, batch_size=hp.batch_size,
                         momentum=hp.momentum, augment=task.recipe.augment if hp.augment else "none",
                         precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    with running_stats(model, hp.bn_stats):
        logs = fit(model, task.forget, recipe, task.runtime, generator(seed, 82),
                   loss_fn=shrink_loss(reference, hp, space), what="boundary shrink")
    crossed = sum(s.means()["crossed"] * s.steps for s in logs)  # the per-step mean times the steps: the total
    draws = sum(s.samples for s in logs)
    return model, {"steps": sum(s.steps for s in logs), "attack_success": round(crossed / max(draws, 1), 4)}


register_variant("boundary_shrink+keep_bn", "boundary_shrink", {"bn_stats": "keep"},
                 "ours: BatchNorm's running statistics stay θ*'s while fine-tuning (official: they move)")
