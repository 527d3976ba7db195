"""`retrain`: the oracle. A new model trained from scratch on D_r only, with θ*'s recipe and init seed.

Source: PBU's official code retrains a newly initialised model on D_r (Adam, 10 epochs); here the recipe is the one
the original was trained with (same optimiser, lr, epochs, batch, augmentation), and the same initialisation seed,
so that retrain differs from θ* only by the missing class (with `bn_recalibrate`, its BatchNorm statistics are
recomputed over D_r at the end, as θ*'s are over D). It sees every retain sample and no forget sample.
Its output depends on its config alone, so it is trained once per (original, forget class) and cached.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from unlearnbench.config import EPOCHS_MAX, at_least
from unlearnbench.method import UnlearnTask, register_method
from unlearnbench.runtime import DATA_ORDER, generator
from unlearnbench.train import fit


@dataclass(frozen=True)
class RetrainHP:
    epochs: int | None = at_least(1, None, le=EPOCHS_MAX)  # None: as many epochs as θ* was trained for (its recipe)


@register_method("retrain", hparams=RetrainHP, needs=("retain",), cached=True,
                 cost=lambda hp, n: n.retain * (hp.epochs or n.recipe.epochs),
                 display="Retrain", group="paper", order=20)
def retrain(model: nn.Module, task: UnlearnTask, hp: RetrainHP, seed: int) -> nn.Module:
    """Train a fresh model on the retain set with θ*'s recipe (the gold standard, and the costliest)."""
    recipe = task.recipe if hp.epochs is None else dataclasses.replace(task.recipe, epochs=hp.epochs)
    fresh = task.new_model(seed)
    fit(fresh, task.retain, recipe, task.runtime, generator(seed, DATA_ORDER), what="retrain")
    return fresh
