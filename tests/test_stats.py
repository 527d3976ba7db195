"""The report's statistics against hand-computed values and simulated data with a known mean."""
from __future__ import annotations

import math

import numpy as np
import pytest

from unlearnbench import stats


@pytest.mark.slow
def test_the_interval_covers_a_known_mean_at_least_93_percent_of_1000_draws():
    """1,000 simulated benchmarks of 30 θ*s × 2 unlearning runs (θ* effect SD 5, run SD 3, mean 50): the nominal 95%
    cluster-bootstrap interval holds the mean in at least 93% of them. One vectorised call, a fixed seed."""
    rng = np.random.default_rng(1)
    mean, draws, thetas, runs = 50.0, 1000, 30, 2
    x = mean + rng.normal(0, 5, (draws, thetas, 1)) + rng.normal(0, 3, (draws, thetas, runs))
    lo, hi = stats.percentile_interval(x, resamples=400, rng=rng)
    covered = float(((lo <= mean) & (mean <= hi)).mean())
    assert covered >= 0.93, covered
    # and it is an interval about the mean, not the whole range: narrower than ±4 standard errors
    assert float(np.median(hi - lo)) < 8 * math.sqrt(5 ** 2 / thetas + 3 ** 2 / (thetas * runs))


def test_the_interval_stays_in_the_range_of_bounded_data():
    """Accuracies near 0 and 100 with a huge spread (the Student-t interval of these leaves [0, 100])."""
    for clusters in ([[0.0, 0.0], [0.0, 95.0], [0.0, 0.0]], [[100.0], [2.0], [100.0], [100.0]],
                     [[0.0, 100.0, 0.0], [100.0], [0.0, 0.0]]):
        lo, hi = stats.cluster_interval(clusters)
        values = [v for c in clusters for v in c]
        assert min(values) <= lo <= hi <= max(values) and 0.0 <= lo and hi <= 100.0


def test_no_interval_from_fewer_than_three_trained_models():
    assert all(math.isnan(v) for v in stats.cluster_interval([[1.0, 2.0], [3.0, 4.0]]))
    assert all(math.isnan(v) for v in stats.cluster_interval([[1.0], [float("nan")], [None], [3.0]]))  # 2 with data
    assert stats.NA == "n/a (needs ≥ 3 trained models)"


def test_three_single_runs_give_their_min_and_max():
    """Each of the 27 resamples of three θ*s is equally likely; all-min and all-max have 1/27 = 3.7% > 2.5% each."""
    assert stats.cluster_interval([[10.0], [20.0], [60.0]]) == (10.0, 60.0)


def test_a_theta_star_with_more_runs_weighs_more_and_its_runs_are_resampled():
    """The mean is over all runs; a θ* of 3 runs contributes 3 draws from its runs to each resample."""
    x = stats.padded([[1.0, 2.0, 3.0], [5.0], [7.0]])
    assert x.shape == (3, 3) and np.isnan(x[1, 1:]).all()
    means = stats.bootstrap_means(x, 20000, np.random.default_rng(0))
    assert 1.0 <= means.min() and means.max() <= 7.0
    balanced = stats.bootstrap_means(stats.padded([[1.0, 2.0], [5.0, 6.0], [7.0, 9.0]]), 20000,
                                     np.random.default_rng(0))
    assert balanced.mean() == pytest.approx(5.0, abs=0.05)  # equal runs per θ*: centred on the mean of all runs
    # within a θ*, runs are drawn: the identical-θ* case has the runs' own bootstrap spread, not zero
    same = stats.bootstrap_means(np.array([[0.0, 10.0]] * 3), 20000, np.random.default_rng(0))
    assert same.std() == pytest.approx(math.sqrt(25.0 / 6), rel=0.05)  # var of a mean of 6 fair 0/10 draws


@pytest.mark.parametrize("differences, p", [
    ([1.0, 2.0, 3.0], 2 / 8),  # sums ±1±2±3: 6, 4, 2, 0, 0, −2, −4, −6; |s| ≥ 6 in 2 of 8
    ([1.0, 2.0, -3.0], 1.0),  # observed sum 0: every pattern reaches it
    ([1.0] * 5, 2 / 32),  # all five the same sign: the smallest p with n = 5
    ([2.0, 1.0, 1.0, 0.0], 2 / 8),  # the zero carries no sign: n = 3; |sum| 4 only at all + or all −
    ([3.0, -1.0, 1.0, 1.0], 8 / 16),  # observed 4; ±3±1±1±1 reaches |4|: 6 and 4 (3 ways), −6 and −4 (3 ways)
    ([], 1.0),
])
def test_sign_flip_p_values_by_hand(differences, p):
    assert stats.sign_flip_pvalue(differences) == pytest.approx(p)


def test_sign_flip_beyond_the_exact_range_is_close_to_the_exact_value():
    d = np.linspace(0.5, 2.0, 22)  # all positive: exact p = 2 / 2^22
    assert stats.sign_flip_pvalue(d) < 1e-4
    mixed = np.array([1.0, -1.0] * 11) + np.linspace(0, 0.1, 22)
    assert stats.sign_flip_pvalue(mixed) > 0.5


def test_holm_step_by_hand():
    # sorted 0.01 (×3 = 0.03), 0.03 (×2 = 0.06), 0.04 (×1 = 0.04 → 0.06, kept non-decreasing)
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = stats.holm([0.5, float("nan"), 0.001])  # NaN: no test, not counted in m = 2
    assert out[0] == pytest.approx(0.5) and math.isnan(out[1]) and out[2] == pytest.approx(0.002)
    assert stats.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_ranks_share_ties():
    assert stats.ranks([3.0, 1.0, 1.0, 2.0]) == [4.0, 1.5, 1.5, 3.0]
    assert stats.ranks([90.0, 99.0, 95.0], higher_is_better=True) == [3.0, 1.0, 2.0]


def test_spread_tells_theta_star_from_the_runs():
    # θ* means 1.5, 4, 4: SD 1.4434; within: (0.5, 2, 0 squared deviations summed) 0.5+2+0 over 3 dof → √(2.5/3)
    between, within = stats.spread([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]])
    assert between == pytest.approx(np.std([1.5, 4.0, 4.0], ddof=1))
    assert within == pytest.approx(math.sqrt(2.5 / 3))
    assert math.isnan(stats.spread([[1.0], [2.0]])[1])  # no θ* with two runs: no within-θ* SD
