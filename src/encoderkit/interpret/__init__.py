"""Explanations: which tokens made a model say what it said.

    model = encoderkit.load("runs/cnn/model")
    explanation = model.explain("Who wrote Hamlet ?", method="ig")
    explanation.units, explanation.scores, explanation.target, explanation.delta

Layout (each piece usable on its own):

- ``tokens.py``        units of a text (words from subword pieces) and the ids behind them
- ``attribution.py``   integrated gradients, gradient x input, occlusion for any ``Probe`` (a score of token ids)
- ``attention.py``     attention per layer and head, rollout, the attention pooler's weights
- ``classify.py``      the classification explainer: probability of a label as the probe
- ``faithfulness.py``  ERASER comprehensiveness and sufficiency (AOPC) against random attributions
- ``render.py``        shaded tokens in the terminal, a self-contained HTML page, heatmaps
- ``cli.py``           ``encoderkit explain``

``EXPLAINERS`` maps a predictor's ``task`` to its explainer. A retrieval explainer (why did this
document match this query: a ``Probe`` whose score is the cosine with the other side's vector, once
per side) and a translation explainer (cross-attention alignment as a heatmap) each add one entry.
"""

from __future__ import annotations

from encoderkit.interpret.classify import (DEFAULT_METHOD, METHODS, available_methods,
                                           explain_classification)
from encoderkit.interpret.explanation import Explanation, Segment

#: task name -> ``explainer(predictor, texts, method=None, target=None, **options)``.
EXPLAINERS = {"classify": explain_classification}

__all__ = ["DEFAULT_METHOD", "EXPLAINERS", "METHODS", "Explanation", "Segment", "available_methods",
           "explain_classification"]
