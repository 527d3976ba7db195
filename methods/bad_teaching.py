"""`bad_teaching`: "Can Bad Teaching Induce Forgetting?" (Chundawat, Tarun, Mandal, Kankanhalli; AAAI 2023).

A student (a copy of θ*, trained in train mode) is distilled from two teachers in eval mode: θ* itself (competent)
on retain samples, and a randomly initialised network of the same architecture (incompetent, never trained) on forget
samples. The loss per sample is KL(teacher ‖ student) between temperature-softened outputs; labels are never used.
Data: every forget sample and a random 30% of the retain set, shuffled together.

Defaults (GitHub vikram2000b/bad-teaching-unlearning @f1aa988, as the experiments ran it, not the function's own
defaults of 10 epochs / lr 0.01): Adam lr 1e-4, 1 epoch, batch 256, T = 1, retain fraction 0.3.
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

from unlearnbench.config import TrainRecipe
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


def incompetent_teacher(task: UnlearnTask, seed: int) -> nn.Module:
    """The randomly initialised network the student imitates on forget samples (a fixed draw per seed)."""
    return task.new_model(int(torch.randint(2**31, (1,), generator=generator(seed, 61)))).eval()


@register_method("bad_teaching", hparams=BadTeachingHP, needs=("forget", "retain"),
                 cost=lambda hp, n: (n.forget + hp.retain_fraction * n.retain) * hp.epochs * 5 / 3)  # + 2 teachers
def bad_teaching(model: nn.Module, task: UnlearnTask, hp: BadTeachingHP, seed: int) -> nn.Module:
    """Distil from θ* on retain data and from a random network on forget data."""
    competent = copy.deepcopy(model).eval()
    incompetent = incompetent_teacher(task, seed)
    data = task.forget + task.retain.random_subset(hp.retain_fraction, generator(seed, 62))
    recipe = TrainRecipe(optimizer="adam", lr=hp.lr, epochs=hp.epochs, batch_size=hp.batch_size,
                         precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    fit(model, data, recipe, task.runtime, generator(seed, 63), loss_fn=bad_teacher_loss(competent, incompetent, hp),
        what="bad teaching")
    return model
