"""`random_label`: random labels on the forget set, with fine-tuning on the retain set (RL; Amnesiac's relabelling).

Every epoch, each forget image gets a freshly drawn random label and the model is trained with cross-entropy on
those images and on the retain set with its true labels: the forget class loses its own outputs while the retain
data holds the other classes in place. SalUn (`methods/salun.py`) is this training with a weight-saliency mask.

Defaults: the official code of SalUn, GitHub OPTML-Group/Unlearn-Saliency @a6e89fd (`Classification/`), whose
`unlearn/RL.py` is both its RL baseline (run by `main_forget.py` without a mask) and SalUn's training:
    labels "any"       uniform over all C classes, the true one included, drawn anew each epoch
                       (unlearn/RL.py line 125 `torch.randint(0, num_classes, ...)`; line 53 for CIFAR-100)
    order "auto"       the code's per-data-set choice: for CIFAR-10 / SVHN (10 classes) one pass over all forget
                       batches, then one over all retain batches, each epoch (RL.py lines 109, 123, 142; the authors
                       confirm the sequential update in Unlearn-Saliency issue #21, the paper's retain weight α = 1);
                       for CIFAR-100 / TinyImageNet one shuffled loader over forget ∪ retain (lines 51, 58-59).
                       "auto" takes "mixed" for 100 classes or more, else "sequential".
    optimizer SGD, momentum 0.9, weight decay 5e-4   unlearn/impl.py lines 68-73; arg_parser.py lines 71, 72
    lr 0.01, 10 epochs, batch 256                    arg_parser.py lines 117, 121, 69 (the official defaults; the
                       README's one example, random 10% forgetting on CIFAR-10, uses lr 0.013; no class-wise value
                       is published, so these CIFAR values are config here, not tuned for MNIST)
    constant lr        impl.py lines 95-97: MultiStepLR at epochs 91 and 136 (arg_parser.py line 78), which never
                       fires within 10 epochs; no warm-up (line 76)
    train mode         RL.py lines 64, 114 (BatchNorm updates its running statistics on every batch)

Deviations (none changes the objective):
    - Images come through this harness's pipeline (its normalisation, no augmentation unless θ*'s recipe has one on
      tensor data sets; the official loaders augment CIFAR with crop + flip).
    - Random labels come from a seeded generator per batch; the official CIFAR-100 branch draws them per epoch for
      the whole forget set (np.random). Both are i.i.d. uniform per image per epoch.
    - Epochs beyond 91 keep the lr constant (the official step decay at 91 and 136 is not implemented).

`labels = "other"` draws among the classes other than the true one (y′ ≠ y, as the SSD repository's `amnesiac`
does). Variant `random_label+amnesiac` is that baseline as the SSD repository runs it for full-class forgetting
(GitHub if-loops/selective-synaptic-dampening @cdfdc0e, src/forget_full_class_strategies.py lines 246-262, src/
unlearn.py line 60): labels among the other classes, forget ∪ retain shuffled together, batch 128, Adam lr 1e-4, no
weight decay, 3 epochs. It differs in one respect: the SSD code draws each image's label once for all 3 epochs.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Iterator, Literal

import torch
from torch import Tensor, nn

from unlearnbench.budget import Schedule, batches, cifar10_class
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, at_least, param, positive
from unlearnbench.data import Batch
from unlearnbench.method import Sizes, UnlearnTask, register_method, register_variant
from unlearnbench.runtime import generator
from unlearnbench.train import StepHook, make_optimizer, train_steps

#: From this many classes on, "auto" trains on forget ∪ retain shuffled together, as the official code does for
#: CIFAR-100 and TinyImageNet (sequential passes for CIFAR-10 and SVHN).
MIXED_FROM_CLASSES = 100


@dataclass(frozen=True)
class RandomLabelHP:
    lr: float = positive(0.01)  # official arg_parser default (unlearn_lr)
    epochs: int = at_least(1, 10, le=EPOCHS_MAX)  # official arg_parser default (unlearn_epochs)
    batch_size: int = at_least(1, 256, le=BATCH_MAX)  # official arg_parser default
    optimizer: Literal["sgd", "adam"] = "sgd"  # official (unlearn/impl.py)
    momentum: float = param(0.9, ge=0, lt=1)  # official arg_parser default (SGD only)
    weight_decay: float = at_least(0, 5e-4)  # official arg_parser default
    labels: Literal["any", "other"] = "any"  # official: uniform over all classes; "other": never the true class
    order: Literal["auto", "sequential", "mixed"] = "auto"  # official: sequential for 10 classes, mixed for 100


def random_labels(y: Tensor, num_classes: int, rule: str, gen: torch.Generator) -> Tensor:
    """A random label per entry of `y`: uniform over all `num_classes` ("any"), or over the classes other than the
    entry's own ("other": a draw r from C−1 values, moved past y, so r < y stays r and r ≥ y becomes r + 1)."""
    if rule == "any":
        return torch.randint(num_classes, y.shape, generator=gen).to(y.device)
    if rule == "other":
        r = torch.randint(num_classes - 1, y.shape, generator=gen).to(y.device)
        return r + (r >= y).long()
    raise ValueError(f"unknown label rule {rule!r}")


def resolved_order(hp: RandomLabelHP, num_classes: int) -> str:
    if hp.order != "auto":
        return hp.order
    return "mixed" if num_classes >= MIXED_FROM_CLASSES else "sequential"


def epoch_batches(task: UnlearnTask, hp: RandomLabelHP, order: str, data_gen: torch.Generator,
                  label_gen: torch.Generator) -> Iterator[Batch]:
    """One epoch: forget images with random labels and retain images with their own, in the given order."""
    augment = task.recipe.augment

    def relabel(batches: Iterable[Batch], forget_part: int | None) -> Iterator[Batch]:
        for b in batches:
            new = random_labels(b.y, task.num_classes, hp.labels, label_gen)
            y = new if forget_part is None else torch.where(b.part == forget_part, new, b.y)
            yield Batch(b.x, y, b.part)

    if order == "sequential":
        forget = task.forget.batches(hp.batch_size, shuffle=True, generator=data_gen, augment=augment)
        retain = task.retain.batches(hp.batch_size, shuffle=True, generator=data_gen, augment=augment)
        return itertools.chain(relabel(forget, None), retain)
    union = task.forget + task.retain  # part 0: forget, part 1: retain
    return relabel(union.batches(hp.batch_size, shuffle=True, generator=data_gen, augment=augment), 0)


def cross_entropy_loss(model: nn.Module, batch: Batch) -> Tensor:
    return nn.functional.cross_entropy(model(batch.x), batch.y)


def train_random_labels(model: nn.Module, task: UnlearnTask, hp: RandomLabelHP, seed: int, *,
                        after_backward: StepHook | None = None, after_step: StepHook | None = None) -> int:
    """The RL training loop of RL.py (train mode), through the shared `train_steps`; the hooks are SalUn's mask.
    Returns the number of steps taken."""
    order = resolved_order(hp, task.num_classes)
    optimizer = make_optimizer(model.parameters(), hp.optimizer, hp.lr, hp.weight_decay, hp.momentum)
    data_gen, label_gen = generator(seed, 71), generator(seed, 72)
    model.train()
    step_model = task.runtime.for_training(model)
    steps = 0
    for _ in range(hp.epochs):
        stats = train_steps(step_model, optimizer, epoch_batches(task, hp, order, data_gen, label_gen),
                            cross_entropy_loss, task.runtime, after_backward=after_backward, after_step=after_step)
        steps += stats.steps
    return steps


def _cost(hp: RandomLabelHP, n: Sizes) -> float:
    return (n.forget + n.retain) * hp.epochs


#: One epoch: a pass over S_f and one over D_r (the official order for 10 classes; one loader over both for more).
SCHEDULE = Schedule(("epochs",), lambda hp, f, forget, retain, classes: batches(forget, hp.batch_size)
                    + batches(retain, hp.batch_size), cifar10_class(
                        "OPTML-Group/Unlearn-Saliency @a6e89fd, Classification/arg_parser.py line 121: 10 epochs"))


@register_method("random_label", hparams=RandomLabelHP, needs=("forget", "retain"), cost=_cost, schedule=SCHEDULE,
                 display="Random labels", group="baseline", order=70)
def random_label(model: nn.Module, task: UnlearnTask, hp: RandomLabelHP, seed: int) -> nn.Module:
    """Train on the forget set with random labels and on the retain set with its own (RL, SalUn's baseline)."""
    steps = train_random_labels(model, task, hp, seed)
    return model, {"steps": steps, "order": resolved_order(hp, task.num_classes)}


register_variant("random_label+amnesiac", "random_label",
                 {"labels": "other", "order": "mixed", "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0,
                  "epochs": 3, "batch_size": 128},
                 "the SSD repository's amnesiac: other-class labels, mixed batches of 128, Adam lr 1e-4, 3 epochs")
