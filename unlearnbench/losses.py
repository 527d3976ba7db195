"""Loss terms that more than one method uses: soft targets and the KL divergence of distillation.

Bad Teaching distils a student from per-sample teacher probabilities; SCRUB's max- and min-steps use the knowledge
distillation loss of Hinton et al. as RepDistiller's `DistillKL` computes it. Both are KL(target ‖ student) between
temperature-softened outputs, and differ only in how the sum is normalised, so both go through `kl_to_targets`.
"""
from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

Reduction = Literal["batchmean", "mean"]


def soft_targets(logits: Tensor, temperature: float) -> Tensor:
    """softmax(logits / T) over classes, in float32 (callers compute teacher outputs under no_grad)."""
    return F.softmax(logits.float() / temperature, dim=1)


def kl_to_targets(student_logits: Tensor, targets: Tensor, temperature: float,
                  reduction: Reduction = "batchmean") -> Tensor:
    """KL(targets ‖ softmax(student / T)), summed over classes and samples, then divided by the batch size
    ("batchmean", the per-sample KL) or by batch × classes ("mean", `F.kl_div`'s element mean)."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_student, targets, reduction="sum")
    return kl / (targets.numel() if reduction == "mean" else len(targets))


def distill_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """The distillation loss T² · KL(p_teacher ‖ p_student) at temperature T, per sample, averaged over the batch
    (RepDistiller's `DistillKL`: `kl_div(..., size_average=False) * T**2 / batch`). The T² keeps its gradient's scale
    independent of T. The teacher's logits are detached here."""
    return kl_to_targets(student_logits, soft_targets(teacher_logits.detach(), temperature), temperature) \
        * temperature ** 2
