"""From model outputs to answers, with numpy alone: decisions, exact top-k search, ``Hits``.

Shared by the eager predictors (``tasks/classify.py``, ``tasks/retrieve.py``) and the ONNX ones
(``encoderkit.onnx.predictor``), which must run without torch: nothing here imports it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from encoderkit.errors import DataError
from encoderkit.texts import as_text_list


def softmax_or_sigmoid(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """(N, C) probabilities: softmax over classes, or independent sigmoids for multi-label data."""
    logits = np.asarray(logits, dtype=np.float32)
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # minus the row max: no overflow
    return shifted / shifted.sum(axis=1, keepdims=True)


def decide_ids(probabilities: np.ndarray, multi_label: bool, threshold: float) -> np.ndarray:
    """Predicted class ids (N,), or a 0/1 (N, C) matrix of labels at or above ``threshold``."""
    if multi_label:
        return (probabilities >= threshold).astype(int)
    return probabilities.argmax(axis=1)


class Hits(NamedTuple):
    """Search results: for each query, document ids, scores and texts, best first.

    ``ids, scores, texts = index.search(["q1", "q2"], k=3)`` gives ``ids[0]`` (the 3 ids for "q1"),
    ``scores`` a (Q,k) float32 array, ``texts[0]`` the 3 texts; for a single ``str`` query, just
    that query's row of each.
    """

    ids: list
    scores: np.ndarray
    texts: list

    def first(self) -> "Hits":
        """The first query's row of each field (what a single ``str`` query gets)."""
        return Hits(self.ids[0], self.scores[0], self.texts[0])


def top_k(queries: np.ndarray, documents: np.ndarray, k: int, chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact search by dot product: the ``k`` best documents of each query, best first.

    Args:
        queries: (Q,H) float32.
        documents: (D,H) float32.
        k: results per query (at most D).
        chunk_size: queries scored at once, bounding memory to ``chunk_size * D`` scores.

    Returns:
        ids (Q,k) int64 document positions and scores (Q,k) float32.
    """
    k = min(k, documents.shape[0])
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    for start in range(0, queries.shape[0], chunk_size):
        block = queries[start : start + chunk_size] @ documents.T  # (q, D)
        part = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < block.shape[1] else \
            np.tile(np.arange(block.shape[1]), (block.shape[0], 1))
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        ids[start : start + chunk_size] = np.take_along_axis(part, order, axis=1)
        scores[start : start + chunk_size] = np.take_along_axis(part_scores, order, axis=1)
    return ids, scores


def check_k(k, corpus_size: int) -> None:
    """k must be a positive integer no larger than the corpus."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise DataError(f"k must be a positive whole number, got {k!r}")
    if corpus_size == 0:
        raise DataError("the corpus is empty; there is nothing to search")
    if k > corpus_size:
        raise DataError(f"k={k} is larger than the corpus ({corpus_size} documents); ask for at most {corpus_size}")


class LabelDecisions:
    """``predict`` and ``decide`` of a classifier, given its ``predict_proba``, ``labels``,
    ``multi_label`` and ``threshold`` (the eager and the ONNX classifier share them)."""

    def predict(self, texts, batch_size: int = 64):
        """One label per text (multi-class), or the list of labels above the threshold (multi-label)."""
        items, single = as_text_list(texts)
        decided = self.decide(self.predict_proba(items, batch_size))
        return decided[0] if single else decided

    def decide(self, probabilities: np.ndarray) -> list:
        ids = decide_ids(probabilities, self.multi_label, self.threshold)
        if self.multi_label:
            return [[self.labels[j] for j in np.flatnonzero(row)] for row in ids]
        return [self.labels[j] for j in ids]


class SearchMethods:
    """``encode`` and ``search`` of a bi-encoder, given its ``encode_queries`` and ``encode_documents``
    (the eager and the ONNX retrieval model share them)."""

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        """Query embeddings (with shared towers, the one embedding of any text)."""
        return self.encode_queries(texts, batch_size)

    def search(self, queries, documents, k: int = 10, batch_size: int = 64) -> Hits:
        """The ``k`` best of ``documents`` for each query, by exact dot product (cosine when normalised).

        Returns:
            ``Hits(ids, scores, texts)``: ids are positions in ``documents``; for a list of queries
            each field holds one row per query, for one ``str`` just that query's row.
        """
        items, single = as_text_list(queries)
        corpus, _ = as_text_list(documents, where=None)
        check_k(k, len(corpus))
        ids, scores = top_k(self.encode_queries(items, batch_size), self.encode_documents(corpus, batch_size), k)
        hits = Hits(ids.tolist(), scores, [[corpus[i] for i in row] for row in ids])
        return hits.first() if single else hits
