"""`head_only`: the negative control of the deep-forgetting measurements (ours, not a published method).

It hides the forget class at the output and changes nothing else: the forget class's head row becomes a copy of the
row of the class most like it in θ*'s head (cosine of the weight rows), and its bias that class's minus `margin`.
The forget class's logit then trails that class's by `margin` on every input, so it is never the top class: A_Df is
0 by construction, for any input, without looking at a single image. The features, every other row and BatchNorm's
statistics stay θ*'s.

Why a copied row and not a zeroed row with a large negative bias: that bias also hides the class from the
measurements that edit or retrain the head (the prototype attack keeps half of it at Spotter's α = 0.5; Adam moves
a bias by about its learning rate per step), so it would read as deep forgetting on them although the features are
untouched; a copied row hides the class with the least change that guarantees A_Df = 0. A model whose classifier is
not one linear layer with a bias is refused (one line).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unlearnbench.config import positive
from unlearnbench.method import UnlearnTask, register_method


@dataclass(frozen=True)
class HeadOnlyHP:
    margin: float = positive(1.0)  # how far the forget class's logit trails the copied class's (logit units)


def shadow_class(weight: torch.Tensor, forget_class: int) -> int:
    """The class whose head row is most like the forget class's (largest cosine similarity), ties to the lowest."""
    rows = torch.nn.functional.normalize(weight.detach().double(), dim=1)
    similarity = rows @ rows[forget_class]
    similarity[forget_class] = -float("inf")
    return int(similarity.argmax())


@register_method("head_only", hparams=HeadOnlyHP, needs=(), display="Head only", group="reference", order=10)
def head_only(model: nn.Module, task: UnlearnTask, hp: HeadOnlyHP, seed: int) -> tuple[nn.Module, dict]:
    """ours, a control: hides the class at the head only (nothing else changes)."""
    head = model.get_classifier() if callable(getattr(model, "get_classifier", None)) else None
    if not isinstance(head, nn.Linear) or head.bias is None:
        raise ValueError(f"head_only needs a classifier that is one linear layer with a bias, not "
                         f"{type(head).__name__}")
    g = shadow_class(head.weight, task.forget_class)
    with torch.no_grad():
        head.weight[task.forget_class] = head.weight[g]
        head.bias[task.forget_class] = head.bias[g] - hp.margin
    return model, {"shadow_class": g}
