"""Input-space attacks that methods share: steps measured in pixels, on images that stay valid images.

The harness hands models normalised inputs, x = (pixel - mean) / std. An attack of a published size ("FGSM with
bound 0.1") is defined on pixels in [0, 1], so it converts to pixels, steps, clamps to [0, 1], optionally rounds to
8-bit values (the image it could be saved as), and converts back. Boundary Shrink's neighbour search uses `fgsm`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PixelSpace:
    """Converts between the model's normalised inputs and pixels in [0, 1], per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu") -> None:
        shape = (1, len(mean), 1, 1)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(shape)

    def to_pixels(self, x: Tensor) -> Tensor:
        return x.float() * self.std + self.mean

    def from_pixels(self, pixels: Tensor) -> Tensor:
        return (pixels - self.mean) / self.std


def fgsm(model: nn.Module, x: Tensor, y: Tensor, eps: float, space: PixelSpace, discretize: bool = True) -> Tensor:
    """One fast-gradient-sign step of `eps` pixels that raises CE(model(x), y), as normalised inputs.

    The step is taken on pixels, which are then clamped to [0, 1] and (with `discretize`) rounded to multiples of
    1/255. Only the input gradient is computed: the model's parameters get no `.grad`, and its train/eval mode is
    the caller's. Returned detached."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x).float(), y)
    (grad,) = torch.autograd.grad(loss, x)
    pixels = (space.to_pixels(x.detach()) + eps * grad.sign()).clamp(0.0, 1.0)
    if discretize:
        pixels = torch.round(pixels * 255) / 255
    return space.from_pixels(pixels).to(x.dtype)
