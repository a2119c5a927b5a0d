"""Statistics of a comparison on one test set, written out so they can be checked by hand.

- ``bootstrap_interval``: a 95% percentile interval of a statistic of the test set, resampling its
  examples with replacement (Efron & Tibshirani 1993). Several seeds are averaged inside each resample,
  so the interval covers test-set sampling of the seed-averaged figure.
- ``paired_bootstrap_pvalue``: two systems on the same examples; the two-sided p-value of "no
  difference" is the share of resampled differences at least as far from the observed difference as
  the observed difference is from zero (the shift method; Berg-Kirkpatrick et al. 2012).
- ``mcnemar_exact``: McNemar's test on the examples where exactly one system is right: under "no
  difference" the b examples won by the first of b + c are Binomial(b + c, 1/2); two-sided exact p.
- ``pareto_front``: the candidates no other one beats on both accuracy and speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 2000
SEED = 0


def resample_indices(size: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, size) indices drawn with replacement; the same seed gives the same draws."""
    return np.random.default_rng(seed).integers(0, size, size=(resamples, size))


def accuracy(gold: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(gold == predicted))


def macro_f1(gold: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Macro-averaged F1 over the classes present in ``gold`` or ``predicted`` (scikit-learn's rule)."""
    gold, predicted = np.asarray(gold), np.asarray(predicted)
    true_positive = np.bincount(gold[gold == predicted], minlength=num_classes)
    gold_count = np.bincount(gold, minlength=num_classes)
    predicted_count = np.bincount(predicted, minlength=num_classes)
    present = (gold_count + predicted_count) > 0
    denominator = gold_count + predicted_count
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(num_classes), where=denominator > 0)
    return float(f1[present].mean()) if present.any() else 0.0


Statistic = Callable[[np.ndarray, np.ndarray], float]


def seed_mean(statistic: Statistic, gold: np.ndarray, runs: Sequence[np.ndarray], rows=None) -> float:
    """The statistic of each seed's predictions on ``rows`` of the test set (all rows: None), averaged."""
    if rows is None:
        return float(np.mean([statistic(gold, run) for run in runs]))
    return float(np.mean([statistic(gold[rows], run[rows]) for run in runs]))


def bootstrap_interval(statistic: Statistic, gold: np.ndarray, runs: Sequence[np.ndarray],
                       resamples: int = RESAMPLES, seed: int = SEED, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval of the seed-averaged statistic over resampled test sets."""
    values = [seed_mean(statistic, gold, runs, rows) for rows in resample_indices(len(gold), resamples, seed)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap_pvalue(gold: np.ndarray, runs_a: Sequence[np.ndarray], runs_b: Sequence[np.ndarray],
                            statistic: Statistic = accuracy, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """Two-sided p-value that systems a and b (each over its seeds) differ in ``statistic`` (shift method)."""
    observed = seed_mean(statistic, gold, runs_a) - seed_mean(statistic, gold, runs_b)
    differences = np.array([seed_mean(statistic, gold, runs_a, rows) - seed_mean(statistic, gold, runs_b, rows)
                            for rows in resample_indices(len(gold), resamples, seed)])
    if observed == 0:
        return 1.0
    return float(np.mean(np.abs(differences - observed) >= abs(observed)))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """``(b, c, p)``: examples only a got right, only b got right, and the exact two-sided p-value."""
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    n = b + c
    if n == 0:
        return b, c, 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n
    return b, c, min(1.0, 2 * tail)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (speed, accuracy) that no other point matches or beats on both, one strictly."""
    front = []
    for i, (speed, score) in enumerate(points):
        dominated = any(other_speed >= speed and other_score >= score and (other_speed, other_score) != (speed, score)
                        for j, (other_speed, other_score) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front
