"""`bad_teaching`: "Can Bad Teaching Induce Forgetting?" (Chundawat, Tarun, Mandal, Kankanhalli; AAAI 2023).

A student (a copy of θ*, trained in train mode) is distilled from two teachers in eval mode: θ* itself (competent)
on retain samples, and a randomly initialised network of the same architecture (incompetent, never trained) on forget
samples. The loss per sample is KL(teacher ‖ student) between temperature-softened outputs; labels are never used.
Data: every forget sample and a random 30% of the retain set, shuffled together.

Defaults (GitHub vikram2000b/bad-teaching-unlearning @f1aa988, as the experiments ran it, not the function's own
defaults of 10 epochs / lr 0.01): Adam lr 1e-4, 1 epoch, batch 256, T = 1, retain fraction 0.3, the loss
`F.kl_div(..., reduction="mean")` (divided by batch × classes), one random teacher drawn and used as it comes.
The incompetent teacher is the architecture's random init, made as the official code's is: the official code's teacher
is a fresh torchvision ResNet-18 (`ResNet18(num_classes, pretrained=False)`, eval mode), whose residual branches are
live at init, so the random network makes confident, arbitrary predictions. timm instead zero-initialises the last
BatchNorm of every residual block (`zero_init_last`), which makes a fresh timm ResNet nearly the identity through its
blocks and its softmax nearly uniform. `teacher_init = "residual"` (default) sets those zeroed BatchNorm weights to 1,
which is torchvision's init; `"model"` keeps the model's own init (variant `bad_teaching+timm_init`). Models without
zero-initialised BatchNorm (DenseNet, ConvNeXt) are the same either way.

Variant `bad_teaching+redraw` (ours; `teacher_redraws = 3`): a random network sends nearly every input to one
arbitrary class, and that class is the forget class itself for about one seed in C (`benchmarks/bad_teaching_targets.py
--teacher-seeds` counts it); the student is then taught to keep the class. The variant looks at the teacher's
predictions on the forget samples (which Bad Teaching sees anyway) and, while it prefers the forget class, draws the
next random network of the same seed's stream, at most `teacher_redraws` times (the last draw is kept regardless). A
teacher that is not rejected is the same network as without the switch, so only the unlucky draws change.
What "prefers" means (`teacher_check`): `"majority"` rejects a teacher that sends most forget samples to the forget
class; `"chance"` also rejects one whose mean softmax probability of the forget class exceeds 1/C, what a teacher that
knows nothing of the class would give it (the student learns the teacher's probabilities, not its argmax, so a
runner-up forget class survives in part).
`kl_reduction = "batchmean"` divides by the batch only (the per-sample KL); under Adam that is a rescale of the loss.

Variant `bad_teaching+keep_bn` (ours; `bn_stats = "keep"`, as `pbu+keep_bn`): the student trains in train mode on
batches whose class mix is not the training set's (every forget sample, 30% of the retain set), so BatchNorm's
running statistics, which the tested model normalises with, move with the batches while the weights barely do (a few
Adam steps at 1e-4). With the switch each batch is still normalised by its own statistics, but the running statistics
stay θ*'s (results/robustness/README.md measures what the drift costs).

Variant `bad_teaching+recal_bn` (ours; `bn_stats = "recalibrate"`): training as published, then BatchNorm's running
statistics are recomputed at the final weights (`recalibrate_bn`, torch's `update_bn`) from the retain subset the
method has just trained on, so no data beyond what Bad Teaching reads. On Fashion-MNIST ResNet-18 the published
recipe's drop of A_Dr is all in the running statistics, and freezing them (`+keep_bn`) makes it worse: the weights do
move, and θ*'s statistics no longer fit them.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from unlearnbench.budget import Schedule, batches, mnist_class8
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, TrainRecipe, at_least, fraction, positive, since
from unlearnbench.data import Batch
from unlearnbench.losses import kl_to_targets, soft_targets
from unlearnbench.method import UnlearnTask, register_method, register_variant
from unlearnbench.models import live_residual_branches
from unlearnbench.runtime import generator
from unlearnbench.train import LossFn, fit, predict, recalibrate_bn, running_stats


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BadTeachingHP:
    lr: float = positive(1e-4)  # as run in the official experiments
    epochs: int = at_least(1, 1, le=EPOCHS_MAX)  # as run
    batch_size: int = at_least(1, 256, le=BATCH_MAX)  # as run
    temperature: float = positive(1.0)  # official
    retain_fraction: float = fraction(0.3)  # official: a random 30% of the retain set
    kl_reduction: Literal["batchmean", "mean"] = since("batchmean", "mean")  # official code: "mean"
    teacher_init: Literal["residual", "model"] = since("model", "residual")  # official: torchvision's init
    teacher_redraws: int = since(0, 0, ge=0)  # official: 0 (one draw); > 0 is the variant bad_teaching+redraw
    teacher_check: Literal["majority", "chance"] = since("majority", "chance")  # with redraws: what "prefers" means
    bn_stats: Literal["update", "keep", "recalibrate"] = since("update", "update")  # official: they move


def bad_teacher_loss(competent: nn.Module, incompetent: nn.Module, hp: BadTeachingHP) -> LossFn:
    """KL(teacher ‖ student); the teacher is the incompetent one for forget samples (part 0), θ* otherwise."""

    def loss(student: nn.Module, batch: Batch) -> Tensor:
        with torch.no_grad():
            good = soft_targets(competent(batch.x), hp.temperature)
            bad = soft_targets(incompetent(batch.x), hp.temperature)
            target = torch.where((batch.part == 0)[:, None], bad, good)
        return kl_to_targets(student(batch.x), target, hp.temperature, hp.kl_reduction)

    return loss


def incompetent_teacher(task: UnlearnTask, seed: int, init: str = "residual", draw: int = 0) -> nn.Module:
    """The randomly initialised network the student imitates on forget samples (a fixed draw per seed; `draw` > 0:
    the next ones of the same stream)."""
    model_seeds = torch.randint(2**31, (draw + 1,), generator=generator(seed, 61))
    model = task.new_model(int(model_seeds[draw]))
    return (live_residual_branches(model) if init == "residual" else model).eval()


def prefers(logits: Tensor, avoid: int, hp: BadTeachingHP) -> bool:
    """Whether a random teacher's outputs on the forget samples favour the class to forget: most of them land on it,
    or (`teacher_check = "chance"`) its mean softmax probability at temperature T exceeds chance, 1/C. The student
    learns the probabilities, not just the argmax: MNIST ResNet-34 seed 0's teacher sends class-6 images to class 8
    (class 6 the argmax of 0.1% of them) yet gives class 6 a mean p of 0.31; the student kept 3.8-8.5% of class 6."""
    probs = (logits.float() / hp.temperature).softmax(1)
    majority = int(torch.bincount(probs.argmax(1), minlength=probs.shape[1]).argmax())
    if majority == avoid:
        return True
    return hp.teacher_check == "chance" and float(probs[:, avoid].mean()) > 1 / probs.shape[1]


def chosen_teacher(task: UnlearnTask, seed: int, hp: BadTeachingHP, avoid: int) -> tuple[nn.Module, int]:
    """The first draw that does not prefer `avoid` (see `prefers`), within `hp.teacher_redraws` redraws (the last
    draw is kept regardless), and its index; with no redraws, the official single draw without looking at it."""
    for draw in range(hp.teacher_redraws + 1):
        teacher = incompetent_teacher(task, seed, hp.teacher_init, draw)
        if draw == hp.teacher_redraws or not prefers(predict(teacher, task.forget, task.runtime), avoid, hp):
            break
        log.info("bad teaching: random teacher %d prefers the forget class %d (%s check); drawing another",
                 draw, avoid, hp.teacher_check)
    return teacher, draw


#: One epoch: a pass over S_f and the random share of D_r. Published on the data of the table it is compared in: the
#: PBU paper's full MNIST (class 8: (5,851 + 0.3 × 54,149) / 256 = 87 steps).
SCHEDULE = Schedule(("epochs",), lambda hp, f, forget, retain, classes: batches(
    forget + int(hp.retain_fraction * retain), hp.batch_size), mnist_class8(
    "vikram2000b/bad-teaching-unlearning @f1aa988 (one epoch, as its experiments ran), at the PBU paper's MNIST data"))


@register_method("bad_teaching", hparams=BadTeachingHP, needs=("forget", "retain"),
                 cost=lambda hp, n: (n.forget + hp.retain_fraction * n.retain) * hp.epochs * 5 / 3,  # + 2 teachers
                 schedule=SCHEDULE, display="Bad Teaching", group="paper", order=50)
def bad_teaching(model: nn.Module, task: UnlearnTask, hp: BadTeachingHP, seed: int) -> nn.Module:
    """Distil from θ* on retain data and from a random network on forget data."""
    competent = copy.deepcopy(model).eval()
    incompetent, draw = chosen_teacher(task, seed, hp, avoid=task.forget_class)
    retain = task.retain.random_subset(hp.retain_fraction, generator(seed, 62))
    data = task.forget + retain
    recipe = TrainRecipe(optimizer="adam", lr=hp.lr, epochs=hp.epochs, batch_size=hp.batch_size,
                         precision=task.recipe.precision, channels_last=task.recipe.channels_last)
    with running_stats(model, hp.bn_stats):
        logs = fit(model, data, recipe, task.runtime, generator(seed, 63),
                   loss_fn=bad_teacher_loss(competent, incompetent, hp), what="bad teaching")
    if hp.bn_stats == "recalibrate":
        recalibrate_bn(model, retain, task.runtime, hp.batch_size)
    return model, {"steps": sum(s.steps for s in logs), "teacher_redraws": draw}


register_variant("bad_teaching+redraw", "bad_teaching", {"teacher_redraws": 3, "teacher_check": "chance"},
                 "ours: redraw (up to 3 times) a random teacher that favours the forget class (official: one draw)")
register_variant("bad_teaching+timm_init", "bad_teaching", {"teacher_init": "model"},
                 "the random teacher with the model library's init (timm: near-uniform ResNets); official: torchvision's")
register_variant("bad_teaching+keep_bn", "bad_teaching", {"bn_stats": "keep"},
                 "ours: BatchNorm's running statistics stay θ*'s (official: they move)")
register_variant("bad_teaching+recal_bn", "bad_teaching", {"bn_stats": "recalibrate"},
                 "ours: BatchNorm statistics recomputed at the end on its retain subset")
