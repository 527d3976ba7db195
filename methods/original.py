"""`original`: no unlearning at all; θ* as trained. The "Initial" column of the paper's table."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from unlearnbench.method import UnlearnTask, register_method


@dataclass(frozen=True)
class OriginalHP:
    """No hyperparameters."""


@register_method("original", hparams=OriginalHP, needs=(), display="Initial", group="paper", order=10)
def original(model: nn.Module, task: UnlearnTask, hp: OriginalHP, seed: int) -> nn.Module:
    """The original model θ*, unchanged (the reference every method starts from)."""
    return model
