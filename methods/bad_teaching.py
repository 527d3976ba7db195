"""`bad_teaching`: "Can Bad Teaching Induce Forgetting?" (Chundawat, Tarun, Mandal, Kankanhalli; AAAI 2023).

A student (a copy of θ*, trained in train mode) is distilled from two teachers in eval mode: θ* itself (competent)
on retain samples, and a randomly initialised network of the same architecture (incompetent, never trained) on forget
samples. The loss per sample is KL(teacher ‖ student) between temperature-softened outputs; labels are never used.
Data: every forget sample and a random 30% of the retain set, shuffled together.

Defaults (GitHub vikram2000b/bad-teaching-unlearning @f1aa988, as the experiments ran it, not the function's own
defaults of 10 epochs / lr 0.01): Adam lr 1e-4, 1 epoch, batch 256, T = 1, retain fraction 0.3.
The incompetent teacher is the architecture's random init, made as the official code's is: the official code's teacher
is a fresh torchvision ResNet-18 (`ResNet18(num_classes, pretrained=False)`, eval mode), whose residual branches are
live at init, so the random network makes confident, arbitrary predictions. timm instead zero-initialises the last
BatchNorm of every residual block (`zero_init_last`), which makes a fresh timm ResNet nearly the identity through its
blocks and its softmax nearly uniform (MNIST, ResNet-34: entropy 2.302 of 2.303 nats); the student then learns "no
preference" on forget images and keeps part of the class (README, results). `teacher_init = "residual"` (default)
sets those zeroed BatchNorm weights to 1, which is torchvision's init; `"model"` keeps the model's own init (what this
harness did before 2026-11-26; the results of that date and earlier). Models without zero-initialised BatchNorm
(DenseNet, ConvNeXt) are the same either way.
Deviation: the released loss is `F.kl_div(..., reduction="mean")`, which divides by batch × classes; we default to
the per-sample KL ("batchmean"). Under Adam it is only a rescale of the loss; `kl_reduction = "mean"` restores it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearnbench.config import TrainRecipe, since
from unlearnbench.data import Batch
from unlearnbench.method import UnlearnTask, register_method
from unlearnbench.runtime import generator
from unlearnbench.train import LossFn, fit


@dataclass(frozen=True)
class BadTeachingHP:
    lr: float = 1e-4  # as run in the official experiments
    epochs: int = 1  # as run
    batch_size: int = 256  # as run
    temperature: float = 1.0  # official
    retain_fraction: float = 0.3  # official: a random 30% of the retain set
    kl_reduction: Literal["batchmean", "mean"] = "batchmean"  # official code: "mean" (see above)
    teacher_init: Literal["residual", "model"] = since("model", "residual")  # official: torchvision's init


def bad_teacher_loss(competent: nn.Module, incompetent: nn.Module, hp: BadTeachingHP) -> LossFn:
    """KL(teacher ‖ student); the teacher is the incompetent one for forget samples (part 0), θ* otherwise."""

    def loss(student: nn.Module, batch: Batch) -> Tensor:
        with torch.no_grad():
            good = F.softmax(competent(batch.x).float() / hp.temperature, dim=1)
            bad = F.softmax(incompetent(batch.x).float() / hp.temperature, dim=1)
            target = torch.where((batch.part == 0)[:, None], bad, good)
        log_student = F.log_softmax(student(batch.x).float() / hp.temperature, dim=1)
        kl = F.kl_div(log_student, target, reduction="sum")
        return kl / (target.numel() if hp.kl_reduction == "mean" else len(target))

    return loss


def live_residual_branches(model: nn.Module) -> nn.Module:
    """Undo timm's `zero_init_last`: BatchNorm layers whose scale is all zero get scale 1 (torchvision's init)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.any():
                m.weight.fill_(1.0)
    return model


def incompetent_teacher(task: UnlearnTask, seed: int, init: str = "residual") -> nn.Module:
    """The randomly initialised network the student imitates on forget samples (a fixed draw per seed)."""
    model = task.new_model(int(torch.randint(2**31, (1,), generator=generator(seed, 61))))
    return (live_residual_branches(model) if init == "residual" else model).eval()


@register_method("bad_teaching", hparams=BadTeachingHP, needs=("forget", "retain"),
                 cost=lambda hp, n: (n.forget + hp.retain_fraction * n.retain) * hp.epochs * 5 / 3)  # + 2 teachers
def bad_teaching(model: nn.Module, task: UnlearnTask, hp: BadTeachingHP, seed: int) -> nn.Module:
    """Distil from θ* on retain data and from a random network on forget data."""
    competent = copy.deepcopy(model).eval()
    incompetent = incompetent_teacher(task, seed, hp.teacher_init)
    data = task.forget + task.retain.random_subset(hp.retain_fraction, generator(seed, 62))
    recipe = TrainRecipe(optimizer="adam", lr=hp.lr, epochs=hp.epochs, batch_size=hp.batch_size,
                         precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    fit(model, data, recipe, task.runtime, generator(seed, 63), loss_fn=bad_teacher_loss(competent, incompetent, hp),
        what="bad teaching")
    return model
