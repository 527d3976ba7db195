"""`delete`: DELETE, Decoupled Distillation to Erase (Zhou, Zheng, Mo, Lu, Lin, Zheng, CVPR 2025).

Mask distillation on the forget samples: a frozen copy of θ* (eval mode) gives each forget image its logits; the
forget class's logit is masked to −1e10, and the softmax of what remains, θ*'s "dark knowledge" about the other
classes, is the target the model (train mode) is distilled toward with KL(target ‖ model). The forget class loses
its probability while the ranking among the remaining classes is kept. Data: the forget set only (the code's
`--retain_data` defaults to False, and DELETE never reads the retain loader).

Defaults and their sources (official code, shaaaaron/DELETE @60018a1):
    the loss above, KLDivLoss(batchmean)     method/delete.py, lines 30, 57-70 (teacher in eval mode, its logit of
    on log_softmax(model) vs softmax(masked  the sample's label set to -1e10; the label is the forget class here)
    θ* logits), model in train mode          method/delete.py, line 47
    SGD lr 1e-4, momentum 0.9, no decay      method/delete.py, line 33, with config/cifar10_resnet18.yaml
    20 epochs, batch 128                     config/cifar10_resnet18.yaml (unlearn_epoch, unlearn_rate, batch_size);
                                             the ResNet-18 CIFAR-10 row (its VGG-16, ViT, Swin-T and CIFAR-100
                                             rows use 5e-5)
    forget set only                          main.py, line 75 (--retain_data False), lines 419-426
    forget batches shuffled, with training   utils.py, lines 412 and 420-421 (SubsetRandomSampler over the training
    augmentation                             set) with main.py, lines 143 and 160 (its training transform, crop + flip):
                                             here θ*'s own recipe augmentation (none on MNIST); `augment = false`
                                             turns it off
The recipe was published for CIFAR-10/100, Tiny-ImageNet and VGGFace2 and is taken as published (CIFAR-10 ResNet-18).

Deviations: none in the loss; the masked logit is the sample's own label, as in the code, which in class unlearning
is always the forget class.

Variant `delete+keep_bn` (ours; `bn_stats = "keep"`, as `pbu+keep_bn`): the model trains in train mode on batches of
the forget class alone, so BatchNorm's running statistics, which the tested model normalises with, drift toward that
one class's statistics. That drift alone changes the predictions, whatever the loss (on the test fixture a learning
rate of 1e-12 lowers the forget accuracy as much as the default does). With the switch, BatchNorm still normalises
each batch by its own statistics, but the running statistics stay θ*'s, so what changes is the loss's doing.
"""
from __future__ import annotations

import copy
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
from unlearnbench.train import LossFn, fit, running_stats


#: The value the official code writes over the masked logit.
MASKED = -1e10


@dataclass(frozen=True)
class DeleteHP:
    lr: float = positive(1e-4)  # config/cifar10_resnet18.yaml
    epochs: int = at_least(1, 20, le=EPOCHS_MAX)  # config/cifar10_resnet18.yaml
    batch_size: int = at_least(1, 128, le=BATCH_MAX)  # config/cifar10_resnet18.yaml
    momentum: float = param(0.9, ge=0, lt=1)  # method/delete.py
    augment: bool = True  # forget batches with θ*'s training augmentation (official: the training transform)
    bn_stats: Literal["update", "keep"] = "update"  # official: running statistics move on forget batches


def masked_targets(teacher_logits: Tensor, labels: Tensor) -> Tensor:
    """softmax of the teacher's logits with each sample's own label masked out: the distillation target."""
    logits = teacher_logits.float().clone()
    logits[torch.arange(len(labels), device=logits.device), labels] = MASKED
    return logits.softmax(1)


def delete_loss(teacher: nn.Module) -> LossFn:
    """KL(masked θ* ‖ model), averaged over the batch."""

    def loss(model: nn.Module, batch: Batch) -> Tensor:
        with torch.no_grad():
            target = masked_targets(teacher(batch.x), batch.y)
        return F.kl_div(F.log_softmax(model(batch.x).float(), 1), target, reduction="batchmean")

    return loss


@register_method("delete", hparams=DeleteHP, needs=("forget",), cost=lambda hp, n: n.forget * hp.epochs * 4 / 3,
                 schedule=Schedule(("epochs",), forget_pass(), cifar10_class(
                     "shaaaaron/DELETE @60018a1, config/cifar10_resnet18.yaml: 20 epochs of batch 128")),
                 display="DELETE", group="retain-free", order=50)
def delete(model: nn.Module, task: UnlearnTask, hp: DeleteHP, seed: int) -> tuple[nn.Module, dict]:
    """DELETE: distil θ*'s outputs on forget samples, the forget class masked out, into the model.
    Forget set only; θ* (eval mode) is the teacher."""
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    recipe = TrainRecipe(optimizer="sgd", lr=hp.lr, epochs=hp.epochs, batch_size=hp.batch_size,
                         momentum=hp.momentum, augment=task.recipe.augment if hp.augment else "none",
                         precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    with running_stats(model, hp.bn_stats):
        logs = fit(model, task.forget, recipe, task.runtime, generator(seed, 86), loss_fn=delete_loss(teacher),
                   what="delete")
    return model, {"steps": sum(s.steps for s in logs)}


register_variant("delete+keep_bn", "delete", {"bn_stats": "keep"},
                 "ours: BatchNorm's running statistics stay θ*'s while distilling (official: they move)")
