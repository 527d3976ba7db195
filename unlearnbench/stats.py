"""The statistics of a report: intervals over trained models, paired tests between methods, Holm's step, ranks.

A method's results come in two levels: I trained models θ* (the seeds) and, for each, J unlearning runs (the
unlearning seeds). The variance of a method's mean is σ²_train / I + σ²_unlearn / (I·J) (Lanyon et al., arXiv
2510.26714), so an interval must resample θ*s, not records:

- `cluster_interval`: the 95% percentile interval of the mean from a two-stage cluster bootstrap (Davison & Hinkley,
  *Bootstrap Methods and their Application*, 1997, §3.8): draw I θ*s with replacement, then, within each drawn θ*, as
  many of its runs as it has, with replacement; the mean of the drawn runs, B times. Every resampled mean is a mean of
  observed values, so the interval never leaves the metric's range (an accuracy's [0, 100]), which a Student-t
  interval over few, skewed values does. With fewer than `MIN_CLUSTERS` θ*s there is no interval (NaN).
- `sign_flip_pvalue`: the exact two-sided sign-flip permutation test of a mean paired difference (Fisher's randomisation
  test; Good, *Permutation, Parametric and Bootstrap Tests of Hypotheses*, 2005, §3.1): under "no difference" each
  difference's sign is a fair coin, so the p-value is the share of the 2^n sign patterns whose |sum| reaches the
  observed one. Exact up to `EXACT_MAX` non-zero differences, a seeded Monte Carlo estimate beyond.
- `holm`: Holm's step-down adjustment (Holm, Scand. J. Statist. 6, 1979) of a family of p-values.
- `ranks`: each method's rank within a unit (1 = best, ties share their mean rank).

Every bootstrap draws from a generator seeded here, so a report made again from the same records is the same bytes.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

LEVEL = 0.95
MIN_CLUSTERS = 3  # fewer trained models: no interval
RESAMPLES = 10_000  # bootstrap resamples of a report's interval
EXACT_MAX = 20  # up to this many non-zero differences the sign-flip test enumerates all 2^n patterns
MONTE_CARLO = 200_000  # sign patterns drawn beyond EXACT_MAX
SEED = 0
NA = f"n/a (needs ≥ {MIN_CLUSTERS} trained models)"  # in place of an interval
NA_NOTE = f"n/a = no interval, fewer than {MIN_CLUSTERS} trained models"  # a table's note


def padded(clusters: Sequence[Sequence[float]]) -> np.ndarray:
    """Clusters of values (one list per θ*) as an (I, J) array, NaN where a cluster has fewer than J values; NaN
    values and empty clusters are dropped."""
    kept = [[float(v) for v in c if v is not None and not np.isnan(v)] for c in clusters]
    kept = [c for c in kept if c]
    if not kept:
        return np.empty((0, 0))
    out = np.full((len(kept), max(map(len, kept))), np.nan)
    for i, c in enumerate(kept):
        out[i, :len(c)] = c
    return out


def bootstrap_means(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The two-stage cluster bootstrap's resampled means. `x`: (..., I, J), NaN-padded, every cluster holding at least
    one value; leading axes are independent data sets (a simulation's draws). Returns (resamples, ...)."""
    x = np.asarray(x, dtype=float)
    *lead, n_clusters, width = x.shape
    present = ~np.isnan(x)
    sizes = present.sum(-1)  # (..., I)
    x = np.take_along_axis(x, np.argsort(~present, axis=-1, kind="stable"), axis=-1)  # values first, NaN last
    pick = rng.integers(0, n_clusters, size=(resamples, *lead, n_clusters))  # which θ*s
    drawn = np.take_along_axis(np.broadcast_to(x, (resamples, *x.shape)), pick[..., None], axis=-2)
    n = np.take_along_axis(np.broadcast_to(sizes, (resamples, *sizes.shape)), pick, axis=-1)[..., None]
    within = np.floor(rng.random((resamples, *lead, n_clusters, width)) * n).astype(np.int64)  # which runs
    values = np.take_along_axis(drawn, within, axis=-1)
    used = np.arange(width) < n  # a θ* with n runs contributes n draws
    return np.where(used, values, 0.0).sum((-1, -2)) / used.sum((-1, -2))


def percentile_interval(x: np.ndarray, resamples: int = RESAMPLES, level: float = LEVEL,
                        rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of the mean of `x` ((..., I, J) as `bootstrap_means` takes) at `level`."""
    means = bootstrap_means(x, resamples, rng if rng is not None else np.random.default_rng(SEED))
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi


def cluster_interval(clusters: Sequence[Sequence[float]], resamples: int = RESAMPLES,
                     level: float = LEVEL) -> tuple[float, float]:
    """The 95% interval of the mean of all values, resampling clusters (θ*s) and then their values (unlearning runs);
    (NaN, NaN) with fewer than MIN_CLUSTERS clusters holding a value."""
    x = padded(clusters)
    if len(x) < MIN_CLUSTERS:
        return float("nan"), float("nan")
    lo, hi = percentile_interval(x, resamples, level)
    return float(lo), float(hi)


def sign_flip_pvalue(differences: Sequence[float]) -> float:
    """Two-sided p-value of the sign-flip permutation test of mean difference 0: the share of sign patterns s with
    |Σ s·d| ≥ |Σ d|. Zero differences carry no sign and are left out; no non-zero difference: 1."""
    d = np.asarray([v for v in differences if v is not None and not np.isnan(v) and v != 0], dtype=float)
    if len(d) == 0:
        return 1.0
    observed = abs(d.sum())
    tolerance = 1e-9 * max(1.0, float(np.abs(d).sum()))  # equal sums computed in another order still count
    if len(d) <= EXACT_MAX:
        hits, total = 0, 0
        for chunk in _sign_chunks(len(d)):
            hits += int((np.abs(chunk @ d) >= observed - tolerance).sum())
            total += len(chunk)
        return hits / total
    rng = np.random.default_rng(SEED)
    hits = 0
    for _ in range(MONTE_CARLO // 10_000):
        signs = rng.choice([-1.0, 1.0], size=(10_000, len(d)))
        hits += int((np.abs(signs @ d) >= observed - tolerance).sum())
    return (hits + 1) / (MONTE_CARLO + 1)  # the observed pattern counts (Phipson & Smyth, 2010)


def _sign_chunks(n: int, rows: int = 1 << 16):
    """All 2^n sign patterns of length n, in blocks of at most `rows`."""
    bits = np.arange(n)
    for start in range(0, 1 << n, rows):
        codes = np.arange(start, min(start + rows, 1 << n))
        yield np.where((codes[:, None] >> bits) & 1, -1.0, 1.0)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's adjusted p-values, in the given order: the i-th smallest of m is multiplied by (m − i + 1), made
    non-decreasing, capped at 1. NaN (no test) stays NaN and does not count in m. A hypothesis is rejected at level α
    when its adjusted p-value is ≤ α."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        out[k] = running
    return out.tolist()


def ranks(values: Sequence[float], higher_is_better: bool = False) -> list[float]:
    """Ranks 1..n (1 = best); ties share the mean of their ranks."""
    v = np.asarray(values, dtype=float) * (-1.0 if higher_is_better else 1.0)
    out = np.empty(len(v))
    for value, group in itertools.groupby(sorted(range(len(v)), key=lambda i: v[i]), key=lambda i: v[i]):
        members = list(group)
        first = int((v < value).sum()) + 1
        out[members] = first + (len(members) - 1) / 2
    return out.tolist()


def spread(clusters: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(between-θ* SD, within-θ* SD): the sample SD of the θ*s' means, and the pooled SD of the runs around their θ*'s
    mean (√(Σ (n_i − 1) s_i² / Σ (n_i − 1))). NaN where there is too little to say (one θ*; no θ* with two runs)."""
    x = padded(clusters)
    if x.size == 0:
        return float("nan"), float("nan")
    means = np.nanmean(x, axis=1)
    between = float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")
    n = (~np.isnan(x)).sum(1)
    dof = int((n - 1).sum())
    within = float(np.sqrt(np.nansum((x - means[:, None]) ** 2) / dof)) if dof > 0 else float("nan")
    return between, within
