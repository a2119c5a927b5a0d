"""Explanations: which tokens made a model say what it said.

    model = encoderkit.load("runs/cnn/model")
    explanation = model.explain("Who wrote Hamlet ?", method="ig")
    explanation.units, explanation.scores, explanation.target, explanation.delta

Layout (each piece usable on its own):

- ``tokens.py``        units of a text (words from subword pieces) and the ids behind them
- ``attribution.py``   integrated gradients, gradient x input, occlusion for any ``Probe`` (a score of token ids)
- ``attention.py``     attention per layer and head, rollout, the attention pooler's weights
- ``classify.py``      the classification explainer: probability of a label as the probe
- ``retrieval.py``     the similarity explainer: each word's share of a query-document score (both sides)
- ``translation.py``   the translation explainer: the decoder's cross-attention as an alignment heatmap
- ``faithfulness.py``  ERASER comprehensiveness and sufficiency (AOPC) against random attributions
- ``render.py``        shaded tokens in the terminal, a self-contained HTML page, heatmaps
- ``cli.py``           ``encoderkit explain``
- ``explainers.py``    ``EXPLAINERS``: a predictor's ``task`` -> its explainer

The names below are imported on first use, so ``encoderkit --help`` does not load torch.
"""

from __future__ import annotations

import importlib

#: public name -> the module that defines it.
_EXPORTS = {
    "DEFAULT_METHOD": "encoderkit.interpret.classify",
    "METHODS": "encoderkit.interpret.classify",
    "available_methods": "encoderkit.interpret.classify",
    "explain_classification": "encoderkit.interpret.classify",
    "EXPLAINERS": "encoderkit.interpret.explainers",
    "Explanation": "encoderkit.interpret.explanation",
    "Segment": "encoderkit.interpret.explanation",
    "SimilarityExplanation": "encoderkit.interpret.retrieval",
    "explain_similarity": "encoderkit.interpret.retrieval",
    "Alignment": "encoderkit.interpret.translation",
    "explain_translation": "encoderkit.interpret.translation",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'encoderkit.interpret' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
