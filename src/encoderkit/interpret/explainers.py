"""Which explainer answers for which task: a plain dict keyed by a predictor's ``task``.

A retrieval explainer (``interpret/retrieval.py``: ``explain_similarity(predictor, query, document,
method)``, a ``Probe`` whose score is the cosine of one side with the other side's fixed vector, run
once per side) and a translation explainer (``interpret/translation.py``: the decoder's
cross-attention as a heatmap) each add one entry here.
"""

from __future__ import annotations

from encoderkit.interpret.classify import explain_classification

#: task name -> ``explainer(predictor, texts, method=None, target=None, **options)``.
EXPLAINERS = {"classify": explain_classification}
