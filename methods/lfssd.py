"""`lfssd`: Loss-Free Selective Synaptic Dampening (Foster, Schoepf, Brintrup; "Loss-Free Machine Unlearning", ICLR
2024 Tiny Paper). SSD with an importance that needs no labels; a one-shot edit of θ*, no training loop.

The importance of parameter i is the mean over mini-batches of |∂L/∂θ_i| with L = mean over the batch of
‖f(x; θ)‖₂², the squared l2 norm of the logits (the sensitivity of Memory Aware Synapses); labels are never read.
Selection and dampening are SSD's (`methods.ssd`): θ_i ← θ_i · min((λ · []_D,i / []_Df,i) ** exponent, clamp) where
[]_Df,i > α · []_D,i, with []_Df on the forget set and []_D on the full training set D = D_r ∪ D_f.

Data: as SSD, the forget set and D, read as our retain and forget sets (both declared and counted).

Defaults and their sources (GitHub if-loops/selective-synaptic-dampening @cdfdc0e): the LFSSD recipe is README.md
section "Implementing LFSSD", which replaces, in the importance function(s) (src/ssd.py `calc_importance`, lines
161-175), the cross-entropy with `torch.norm(out, p="fro", dim=1).pow(2).mean()` and `grad.pow(2)` with `grad.abs()`.
It changes nothing else, so α = 10, λ = 1, exponent 1, clamp 1, batch 64 and the class-ordered D are SSD's, with the
same sources (see `methods.ssd`); the README says α and λ are set in the `forget_..._main.py` files.

Deviations: none in the computation (the importance goes through `torch.autograd.grad` on the batch loss, as SSD's).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from unlearnbench.methods.ssd import SSDHP, importance_cost, selective_dampening
from unlearnbench.method import UnlearnTask, register_method


@dataclass(frozen=True)
class LFSSDHP(SSDHP):
    """SSD's hyperparameters and defaults (README: LFSSD changes only the importance)."""


def output_norm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """LFSSD's importance loss: the batch mean of ‖logits‖₂² per sample; the labels are not used."""
    return logits.float().norm(p=2, dim=1).pow(2).mean()


@register_method("lfssd", hparams=LFSSDHP, needs=("forget", "retain"), cost=importance_cost,
                 display="LFSSD", group="baseline", order=20)
def lfssd(model: nn.Module, task: UnlearnTask, hp: LFSSDHP, seed: int) -> nn.Module:
    """SSD with a label-free importance: |gradient| of the squared l2 norm of the logits (one shot, no training).
    Selection and dampening as SSD, on D_f against D = D_r ∪ D_f."""
    return model, selective_dampening(model, task, hp, output_norm_loss, "abs")
