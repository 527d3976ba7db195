"""`grad_ascent`: gradient ascent on the forget set, "NegGrad" (folklore; the standard retain-free baseline).

θ* is trained further on the forget samples with the sign of the loss flipped: SGD minimises −CE(f(x), y), pushing
the forget class's likelihood down. Nothing holds the other classes in place, so the recipe (lr × steps) decides how
much of them survives. Data: the forget set only, shuffled, in train mode.

Defaults and their sources (no paper gives one recipe; these are the OPTML group's released code and commands):
    loss −CE on forget batches, train mode   OPTML-Group/Unlearn-Saliency @a6e89fd, Classification/unlearn/GA.py,
                                             line 118 (and line 51: model.train(); line 46: data_loaders["forget"])
    SGD, momentum 0.9, weight decay 5e-4     Unlearn-Saliency, Classification/unlearn/impl.py, lines 68-73, with
                                             Classification/arg_parser.py, lines 71-72
    batch 256, shuffled                      arg_parser.py, line 69; main_forget.py, lines 38-47
    lr 1e-4, 5 epochs                        OPTML-Group/Unlearn-Sparse @80ba55d, README.MD, line 74 (the group's GA
                                             command; Unlearn-Saliency's README leaves both as placeholders and its
                                             argparse defaults, lr 0.01 / 10 epochs, are shared by every method).
                                             The recipe was published for CIFAR-10 and is taken as published; the
                                             maintainers answer (Unlearn-Saliency issue #8) that on CIFAR-10 ResNet-18
                                             1e-4 can be too small and suggest 5e-4 or 1e-3.
    augmentation on the forget batches       the forget set is cut from the training set with its training transform
                                             (Unlearn-Saliency, Classification/dataset.py, line 569): here θ*'s own
                                             recipe augmentation (none on MNIST); `augment = false` turns it off

Deviations: the released loop's MultiStepLR (milestones 91, 136) and warm-up (0 epochs) never act within 5 epochs and
are left out; its SalUn saliency mask is another method's and is not applied.

Variant `grad_ascent+keep_bn` (ours; `bn_stats = "keep"`, as `pbu+keep_bn`): the model trains in train mode on batches
of the forget class alone, so BatchNorm's running statistics, which the tested model normalises with, drift toward
that one class's statistics. That drift alone changes the predictions, whatever the loss (on the test fixture a
learning rate of 1e-12 lowers the forget accuracy as much as the default does). With the switch, BatchNorm still
normalises each batch by its own statistics, but the running statistics stay θ*'s, so what changes is the loss's
doing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.budget import Schedule, cifar10_class, forget_pass
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, TrainRecipe, at_least, param, positive
from unlearnbench.data import Batch
from unlearnbench.method import UnlearnTask, register_method, register_variant
from unlearnbench.runtime import generator
from unlearnbench.train import fit, running_stats


@dataclass(frozen=True)
class GradAscentHP:
    lr: float = positive(1e-4)  # Unlearn-Sparse README GA command
    epochs: int = at_least(1, 5, le=EPOCHS_MAX)  # Unlearn-Sparse README GA command
    batch_size: int = at_least(1, 256, le=BATCH_MAX)  # Unlearn-Saliency argparse default
    momentum: float = param(0.9, ge=0, lt=1)  # Unlearn-Saliency argparse default
    weight_decay: float = at_least(0, 5e-4)  # Unlearn-Saliency argparse default
    augment: bool = True  # forget batches with θ*'s training augmentation (official: the training transform)
    bn_stats: Literal["update", "keep"] = "update"  # official: running statistics move on forget batches


def ascent_loss(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
    """−CE: minimising it ascends the cross-entropy of the forget samples."""
    ce = F.cross_entropy(model(batch.x), batch.y)
    return -ce, {"ce": ce}


@register_method("grad_ascent", hparams=GradAscentHP, needs=("forget",),
                 cost=lambda hp, n: n.forget * hp.epochs, schedule=Schedule(("epochs",), forget_pass(), cifar10_class(
                     "OPTML-Group/Unlearn-Sparse @80ba55d, README.MD line 74: 5 epochs on CIFAR-10")),
                 display="NegGrad", group="retain-free", order=10)
def grad_ascent(model: nn.Module, task: UnlearnTask, hp: GradAscentHP, seed: int) -> tuple[nn.Module, dict]:
    """NegGrad: ascend the cross-entropy of the forget samples (forget set only).
    Plain SGD with the loss negated; nothing protects the retained classes."""
    recipe = TrainRecipe(optimizer="sgd", lr=hp.lr, epochs=hp.epochs, batch_size=hp.batch_size,
                         momentum=hp.momentum, weight_decay=hp.weight_decay,
                         augment=task.recipe.augment if hp.augment else "none",
                         precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    with running_stats(model, hp.bn_stats):
        logs = fit(model, task.forget, recipe, task.runtime, generator(seed, 81), loss_fn=ascent_loss,
                   what="gradient ascent")
    return model, {"steps": sum(s.steps for s in logs)}


register_variant("grad_ascent+keep_bn", "grad_ascent", {"bn_stats": "keep"},
                 "ours: BatchNorm's running statistics stay θ*'s while ascending (official: they move)")
