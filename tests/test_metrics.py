"""Metrics against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from unlearnbench.metrics import (activation_distance, entropy, js_divergence, kl_divergence, mia_score, speedup,
                                  zrf)

LOG = torch.log


def test_entropy_by_hand():
    logits = LOG(torch.tensor([[0.5, 0.5], [1.0, 1e-300], [0.25, 0.75]]))
    h = entropy(logits)
    assert h[0].item() == pytest.approx(math.log(2))
    assert h[1].item() == pytest.approx(0.0, abs=1e-12)
    assert h[2].item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_js_divergence_by_hand():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.3, 0.7]])
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]])
    js = js_divergence(p, q)
    # row 0: m = (0.75, 0.25); KL(p||m) = .5 log2(.5/.75) + .5 log2(.5/.25); KL(q||m) = log2(1/.75)
    kl_pm = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2.0)
    kl_qm = math.log2(1 / 0.75)
    assert js[0].item() == pytest.approx((kl_pm + kl_qm) / 2)
    assert js[1].item() == pytest.approx(1.0)  # disjoint supports: the maximum, 1 bit
    assert js[2].item() == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(js_divergence(q, p), js)  # symmetric


def test_zrf_by_hand_and_against_the_released_formula():
    confident = LOG(torch.tensor([[0.97] + [0.03 / 19] * 19]))
    uniform = torch.zeros(1, 20)
    p, q = confident.softmax(-1), uniform.softmax(-1)
    m = (p + q) / 2
    kl = lambda a, b: float((a * (a / b).log()).sum())  # noqa: E731
    expected = 1 - (kl(p, m) + kl(q, m)) / (2 * math.log(2))
    assert zrf(confident, uniform) == pytest.approx(expected)
    assert zrf(uniform, uniform) == pytest.approx(1.0)  # behaves exactly like the random network
    # the released code: ½KL(m‖p) + ½KL(m‖q) with kl_div's 'mean' (÷ classes) — much closer to 1
    released = 1 - (0.5 * kl(m, p) / 20 + 0.5 * kl(m, q) / 20)
    assert released > 0.9 and zrf(confident, uniform) < 0.6


def test_kl_and_activation_distance_by_hand():
    ref = LOG(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    out = LOG(torch.tensor([[0.25, 0.75], [0.9, 0.1]]))
    kl0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(ref, out) == pytest.approx(kl0 / 2)  # the second row contributes 0
    assert activation_distance(ref, out) == pytest.approx(math.sqrt(0.25**2 + 0.25**2) / 2)
    assert kl_divergence(ref, ref) == pytest.approx(0.0, abs=1e-12)


def _logits_with_entropy(h_values):
    """Two-class logits whose softmax entropy takes the given values (nats)."""
    out = []
    for h in h_values:
        lo, hi = 1e-9, 0.5  # entropy of (p, 1-p) grows with p on (0, 0.5]
        for _ in range(100):
            mid = (lo + hi) / 2
            if -(mid * math.log(mid) + (1 - mid) * math.log(1 - mid)) < h:
                lo = mid
            else:
                hi = mid
        out.append([math.log(lo), math.log(1 - lo)])
    return torch.tensor(out)


def test_mia_by_hand():
    """Members are confident (low entropy), non-members are not: a target set that looks like the members is
    called member, one that looks like the non-members is not; a mix gives its share."""
    members = _logits_with_entropy([0.01, 0.02, 0.03, 0.04] * 10)
    nonmembers = _logits_with_entropy([0.5, 0.55, 0.6, 0.65] * 5)  # fewer: class weights balance them
    assert mia_score(members, nonmembers, _logits_with_entropy([0.015] * 8)) == 1.0
    assert mia_score(members, nonmembers, _logits_with_entropy([0.6] * 8)) == 0.0
    mixed = _logits_with_entropy([0.015, 0.02, 0.6, 0.62, 0.64])
    assert mia_score(members, nonmembers, mixed) == pytest.approx(2 / 5)


def test_speedup():
    assert speedup(300.0, 10.0) == 30.0
    assert speedup(300.0, 0.0) == float("inf")
