"""The comparison's statistics against hand computations (no scipy or statsmodels)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from encoderkit.compare.stats import (accuracy, bootstrap_interval, macro_f1, mcnemar_exact, paired_bootstrap_pvalue,
                                      pareto_front, resample_indices)


@pytest.mark.parametrize(("b", "c", "p"), [
    (1, 6, 2 * (1 + 7) / 2 ** 7),          # 2 * P(X <= 1), X ~ Binomial(7, 1/2) = 0.125
    (0, 10, 2 / 2 ** 10),
    (3, 3, 1.0),                            # 2 * P(X <= 3) of Binomial(6, 1/2) exceeds 1: capped
    (0, 0, 1.0),                            # no disagreement: no evidence
    (12, 4, 2 * sum(math.comb(16, k) for k in range(5)) / 2 ** 16),
])
def test_mcnemar_exact_p_values(b, c, p):
    # b examples only the first system gets right, c only the second; 5 both right, 2 both wrong
    first = np.array([True] * b + [False] * c + [True] * 5 + [False] * 2)
    second = np.array([False] * b + [True] * c + [True] * 5 + [False] * 2)
    assert mcnemar_exact(first, second) == (b, c, pytest.approx(p))
    assert mcnemar_exact(second, first) == (c, b, pytest.approx(p))


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_seed_means():
    generator = np.random.default_rng(5)
    gold = generator.integers(0, 3, 60)
    runs = [np.where(generator.random(60) < 0.8, gold, (gold + 1) % 3) for _ in range(2)]
    low, high = bootstrap_interval(accuracy, gold, runs, resamples=500, seed=7)
    draws = np.random.default_rng(7).integers(0, 60, size=(500, 60))
    by_hand = [np.mean([np.mean(gold[rows] == run[rows]) for run in runs]) for rows in draws]
    assert (low, high) == pytest.approx(tuple(np.percentile(by_hand, [2.5, 97.5])))
    assert low < np.mean([accuracy(gold, run) for run in runs]) < high
    assert bootstrap_interval(accuracy, gold, [gold.copy()]) == (1.0, 1.0)


def test_resampling_is_reproducible():
    np.testing.assert_array_equal(resample_indices(10, 4, seed=3), resample_indices(10, 4, seed=3))
    assert not np.array_equal(resample_indices(10, 4, seed=3), resample_indices(10, 4, seed=4))


def test_macro_f1_equals_scikit_learn():
    from sklearn.metrics import f1_score

    generator = np.random.default_rng(0)
    for _ in range(20):
        gold, predicted = generator.integers(0, 5, 40), generator.integers(0, 4, 40)
        assert macro_f1(gold, predicted, 5) == pytest.approx(f1_score(gold, predicted, average="macro"))


def test_paired_bootstrap_p_values():
    gold = np.zeros(50, dtype=int)
    right, wrong = np.zeros(50, dtype=int), np.ones(50, dtype=int)
    assert paired_bootstrap_pvalue(gold, [right], [right]) == 1.0
    assert paired_bootstrap_pvalue(gold, [right], [wrong]) == 0.0
    # one disagreement in 50: the difference vanishes in many resamples, far from significant
    almost = right.copy()
    almost[0] = 1
    p = paired_bootstrap_pvalue(gold, [right], [almost], resamples=400, seed=1)
    draws = np.random.default_rng(1).integers(0, 50, size=(400, 50))
    observed = 1 / 50
    differences = np.array([np.mean(right[rows] == 0) - np.mean(almost[rows] == 0) for rows in draws])
    assert p == pytest.approx(np.mean(np.abs(differences - observed) >= observed)) and p > 0.3


def test_pareto_front_keeps_the_points_nothing_beats_on_both_axes():
    points = [(100, 0.90), (1000, 0.85), (50, 0.88), (1000, 0.80), (10, 0.95), (100, 0.90)]
    # (50, 0.88) loses to (100, 0.90) on both; (1000, 0.80) to (1000, 0.85); the two (100, 0.90) tie: both kept
    assert pareto_front(points) == [0, 1, 4, 5]
