"""Which explainer answers for which task: a plain dict keyed by a predictor's ``task``.

Each explainer takes ``(predictor, texts, method=None, target=None, **options)``: classification
(``classify.py``: word attributions to a label's probability) and translation (``translation.py``:
the decoder's cross-attention; ``target`` is a given translation to align). A retrieval model scores
a pair of texts, not one text, so its explainer has its own signature and is reached by
``--query`` / ``--document`` (``retrieval.py``: ``explain_similarity(model_or_index, query, document)``).
"""

from __future__ import annotations

from encoderkit.interpret.classify import explain_classification
from encoderkit.interpret.translation import explain_translation

#: task name -> ``explainer(predictor, texts, method=None, target=None, **options)``.
EXPLAINERS = {"classify": explain_classification, "translate": explain_translation}
