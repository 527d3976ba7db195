"""`finetune`: θ* trained further on D_r alone; the forget class fades because it is never shown again.

Defaults are PBU's official code (GitHub Shash12-ship/pbu @a507760, the MNIST notebook's fine-tune cell): Adam,
constant lr 1e-3, no weight decay, 10 epochs, batch 48 (the notebook's train loader, whose forget-class samples are
masked out of each batch). Other harnesses differ: SSD fine-tunes with SGD lr 0.02, momentum 0.9, wd 5e-4 for
5 epochs (set optimizer/lr/epochs/weight_decay to reproduce it).

Deviation (docs/methods.md, deviations table): our batches of 48 are drawn from D_r alone, where the official loader
draws 48 from the whole training set and drops the forget samples (about 43 retain images per step on MNIST).

Variant `finetune+cosine` (ours): the learning rate decays to zero with a cosine schedule and the batch is θ*'s own,
as θ* and the oracle are trained here; a constant Adam lr leaves the last iterate's BatchNorm running statistics
behind its weights, which can cost eval-mode accuracy on small data.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from torch import nn

from unlearnbench.budget import Schedule, batches, mnist_class8
from unlearnbench.config import BATCH_MAX, EPOCHS_MAX, at_least, positive
from unlearnbench.method import UnlearnTask, register_method, register_variant
from unlearnbench.runtime import generator
from unlearnbench.train import fit


@dataclass(frozen=True)
class FinetuneHP:
    epochs: int = at_least(1, 10, le=EPOCHS_MAX)  # PBU official code
    lr: float = positive(1e-3)  # PBU official code
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # PBU official code
    batch_size: int = at_least(0, 48, le=BATCH_MAX)  # PBU official code (its train loader); 0: θ*'s training batch
    weight_decay: float = at_least(0, 0.0)  # PBU official code (Adam, no weight decay)
    scheduler: Literal["cosine", "none"] = "none"  # PBU official code: a constant learning rate


#: One epoch: a pass over D_r. Batch 0 (θ*'s batch, unknown here) is counted as 1: the scaling is a ratio of passes.
SCHEDULE = Schedule(("epochs",), lambda hp, f, forget, retain, classes: batches(retain, hp.batch_size or 1), mnist_class8(
    "Shash12-ship/pbu @a507760, experiments/MNIST Resnet.ipynb, the fine-tune cell: 10 epochs over full MNIST less the "
    "forget class, batch 48"))


@register_method("finetune", hparams=FinetuneHP, needs=("retain",), cost=lambda hp, n: n.retain * hp.epochs,
                 schedule=SCHEDULE, display="Fine-tune", group="paper", order=30)
def finetune(model: nn.Module, task: UnlearnTask, hp: FinetuneHP, seed: int) -> nn.Module:
    """Keep training θ* on the retain set only (cheap, needs all of D_r)."""
    # θ*'s precision, augmentation and label smoothing carry over; its BatchNorm recalibration does not (the official
    # fine-tune has none)
    recipe = dataclasses.replace(task.recipe, optimizer=hp.optimizer, lr=hp.lr, epochs=hp.epochs,
                                 batch_size=hp.batch_size or task.recipe.batch_size,
                                 weight_decay=hp.weight_decay, scheduler=hp.scheduler, bn_recalibrate=False)
    logs = fit(model, task.retain, recipe, task.runtime, generator(seed, 2), what="finetune")
    return model, {"steps": sum(s.steps for s in logs)}


register_variant("finetune+cosine", "finetune", {"scheduler": "cosine", "batch_size": 0},
                 "ours: cosine-decayed lr and θ*'s batch, as θ* and the oracle train (official: constant lr, batch 48)")
