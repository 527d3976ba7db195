"""Metrics of an unlearned model, computed by the runner from model outputs (never inside a method).

Each is a small function of logits or numbers, tested against hand-computed values: peers' MIA and ZRF code had bugs
no test caught (BASELINES.md).

- `mia_score`   membership inference as SSD defines it: the entropy of the softmax is the only feature; a logistic
                regression with balanced class weights learns member (retain-train) vs non-member (test); the score
                is the fraction of forget-train samples it calls "member". Compare it with the retrained model's.
- `zrf`         Bad Teaching's zero-retrain forgetting score, 1 − mean JS(model, random-init model) over the forget
                class's test images (the runner picks the images and the random network: EvalConfig.zrf_protocol),
                with a correct Jensen–Shannon divergence: ½KL(p‖m) + ½KL(q‖m), m = (p+q)/2, base 2, so
                ZRF ∈ [0, 1]. (The released code uses KL(m‖p) and divides by the number of classes.)
- `kl_divergence`, `activation_distance`: how far the model's outputs are from the retrained model's.
- `speedup`     retrain time / method time.
- `is_collapse` a method collapses the model where its A_Dr falls more than COLLAPSE (10) points below θ*'s: the
                reporter's ↓, the cells `benchmarks/bn_statistics.py --collapsed` explains.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def entropy(logits: Tensor) -> Tensor:
    """Shannon entropy (nats) of softmax(logits), per row; 0·log 0 = 0."""
    logp = F.log_softmax(logits.double(), dim=-1)
    return -(logp.exp() * logp).nan_to_num(0.0).sum(-1)


def mia_score(member_logits: Tensor, nonmember_logits: Tensor, target_logits: Tensor) -> float:
    """Fraction of `target` samples that an entropy-only attack, trained on members vs non-members, calls member."""
    from sklearn.linear_model import LogisticRegression
    x = torch.cat([entropy(member_logits), entropy(nonmember_logits)]).numpy().reshape(-1, 1)
    y = np.concatenate([np.ones(len(member_logits)), np.zeros(len(nonmember_logits))])
    attack = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(attack.predict(entropy(target_logits).numpy().reshape(-1, 1)).mean())


def js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen–Shannon divergence between rows of probability matrices, in bits (0 … 1)."""
    p, q = p.double(), q.double()
    m = (p + q) / 2

    def kl(a: Tensor, b: Tensor) -> Tensor:
        return torch.where(a > 0, a * (a.log() - b.log()), torch.zeros_like(a)).sum(-1)

    return (kl(p, m) + kl(q, m)) / (2 * math.log(2))


def zrf(model_logits: Tensor, random_logits: Tensor) -> float:
    """1 − mean JS(model, random-init model): 1 when the model answers like a network that never learned anything."""
    return float(1 - js_divergence(model_logits.softmax(-1), random_logits.softmax(-1)).mean())


def kl_divergence(reference_logits: Tensor, logits: Tensor) -> float:
    """Mean over samples of KL(reference ‖ model), in nats."""
    ref = F.log_softmax(reference_logits.double(), -1)
    out = F.log_softmax(logits.double(), -1)
    return float((ref.exp() * (ref - out)).sum(-1).mean())


def activation_distance(reference_logits: Tensor, logits: Tensor) -> float:
    """Mean over samples of the L2 distance between the two softmax vectors (Bad Teaching's activation distance)."""
    return float((reference_logits.double().softmax(-1) - logits.double().softmax(-1)).norm(dim=-1).mean())


def speedup(retrain_seconds: float, method_seconds: float) -> float:
    return retrain_seconds / method_seconds if method_seconds > 0 else float("inf")


#: A method "collapses" the model where its A_Dr falls more than this many points below θ*'s (the Initial column).
COLLAPSE = 10.0
COLLAPSE_MARK = "↓"


def is_collapse(acc_retain: float, theta_acc_retain: float) -> bool:
    """A_Dr more than COLLAPSE points below θ*'s: the grid's ↓, the cells `bn_statistics.py --collapsed` explains."""
    return acc_retain < theta_acc_retain - COLLAPSE
