"""Is an explanation faithful to the model? ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020).

For a text x, the explained label y and the units ranked by score, let r_k be the top k% of units
(at least one: ceil(k/100 * n)). With p(y | .) the model's probability,

    comprehensiveness_k = p(y | x) - p(y | x without r_k)    large: the top units were needed
    sufficiency_k       = p(y | x) - p(y | r_k only)         small: the top units alone suffice

and each is averaged over k in {1, 5, 10, 20, 50} (the area over the perturbation curve, AOPC) and over
texts. Units are deleted, not masked (as occlusion does), special tokens stay. Random scores give the
floor every method must beat: ``random_scores``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from encoderkit.interpret.attribution import score_id_lists
from encoderkit.interpret.classify import classifier_probe

PERCENTS = (1, 5, 10, 20, 50)


def top_units(scores: np.ndarray, percent: float) -> set[int]:
    """The ``ceil(percent% of n)`` highest-scoring units (ties: the earlier unit first)."""
    count = max(1, math.ceil(percent / 100 * len(scores)))
    order = sorted(range(len(scores)), key=lambda unit: (-float(scores[unit]), unit))
    return set(order[:count])


def faithfulness(predictor, explanations: Sequence, percents: Sequence[float] = PERCENTS,
                 batch_size: int = 64) -> dict:
    """Comprehensiveness and sufficiency (AOPC) of ``explanations`` of ``predictor``'s decisions.

    Returns:
        ``{"comprehensiveness", "sufficiency", "texts", "by_percent": {k: {"comprehensiveness",
        "sufficiency"}}}``; texts without a unit are left out (and not counted).
    """
    probe = classifier_probe(predictor)
    variants: list[list[int]] = []
    targets: list[int] = []
    kept = [e for e in explanations if len(e.units)]
    for explanation in kept:
        label = predictor.labels.index(explanation.target)
        for percent in percents:
            top = top_units(explanation.scores, percent)
            variants += [explanation.encoded.without(top) or [probe.pad_id],
                         explanation.encoded.only(top) or [probe.pad_id]]
            targets += [label, label]
    values = score_id_lists(probe, variants, targets, batch_size).reshape(len(kept), len(percents), 2)
    full = np.array([e.probability for e in kept]).reshape(-1, 1)
    comprehensiveness = full - values[:, :, 0]  # (texts, percents)
    sufficiency = full - values[:, :, 1]
    return {
        "comprehensiveness": float(comprehensiveness.mean()) if kept else float("nan"),
        "sufficiency": float(sufficiency.mean()) if kept else float("nan"),
        "texts": len(kept),
        "by_percent": {str(percent): {"comprehensiveness": float(comprehensiveness[:, i].mean()),
                                      "sufficiency": float(sufficiency[:, i].mean())}
                       for i, percent in enumerate(percents)} if kept else {},
    }


def random_scores(explanations: Sequence, seed: int = 0) -> list:
    """The same explanations with uniformly random scores: the floor of faithfulness."""
    generator = np.random.default_rng(seed)
    return [dataclasses.replace(e, method="random", scores=generator.random(len(e.units)), delta=None,
                                baseline_probability=None, attention=None) for e in explanations]
