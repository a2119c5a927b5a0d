"""Ranking metrics for retrieval: recall@k, precision@k, MRR@k, nDCG@k, MAP@k.

Each query has a ranked list of document ids (best first) and judgements ``{doc_id: grade}``
(grade > 0 is relevant; binary qrels are all 1). Definitions, per query, averaged over queries
(the TREC / ``ranx`` conventions, which a test checks):

- ``recall@k    = |relevant in top k| / |relevant|``
- ``precision@k = |relevant in top k| / k``
- ``mrr@k       = 1 / rank of the first relevant document in the top k`` (0 if none)
- ``ndcg@k      = DCG@k / IDCG@k`` with ``DCG@k = sum_{i<=k} grade_i / log2(i + 1)`` (linear gain)
  and ``IDCG@k`` the DCG of the judgements sorted by grade
- ``map@k       = sum_{i<=k, doc_i relevant} precision@i / |relevant|``

A query without any relevant document is skipped by nothing: it scores 0 on every metric, as in
``ranx``; callers should not pass such queries.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

#: Metric families this module computes (``family@k``).
FAMILIES = ("recall", "precision", "mrr", "ndcg", "map")


def _judgements(relevant) -> dict:
    """``{doc: grade}`` from a set/list of ids (grade 1) or a mapping; grades <= 0 are dropped."""
    if isinstance(relevant, Mapping):
        return {doc: float(grade) for doc, grade in relevant.items() if grade > 0}
    return {doc: 1.0 for doc in relevant}


def query_metrics(ranked: Sequence[Hashable], relevant, ks: Sequence[int]) -> dict[str, float]:
    """Every metric at every ``k`` of ``ks`` for one query.

    Args:
        ranked: document ids, best first (at least ``max(ks)`` long when the corpus allows).
        relevant: the relevant ids (a set/list), or ``{id: grade}``.
        ks: cut-offs.
    """
    grades = _judgements(relevant)
    gains = [grades.get(doc, 0.0) for doc in ranked[: max(ks)]]
    ideal = sorted(grades.values(), reverse=True)
    out: dict[str, float] = {}
    for k in ks:
        top = gains[:k]
        hits = [i for i, gain in enumerate(top) if gain > 0]  # 0-based ranks of relevant documents
        n_relevant = len(grades)
        out[f"recall@{k}"] = len(hits) / n_relevant if n_relevant else 0.0
        out[f"precision@{k}"] = len(hits) / k
        out[f"mrr@{k}"] = 1.0 / (hits[0] + 1) if hits else 0.0
        dcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(top))
        idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal[:k]))
        out[f"ndcg@{k}"] = dcg / idcg if idcg > 0 else 0.0
        # precision at the j-th hit, found at 0-based rank i: (j + 1) / (i + 1)
        out[f"map@{k}"] = (sum((j + 1) / (i + 1) for j, i in enumerate(hits)) / n_relevant) if n_relevant else 0.0
    return out


def retrieval_metrics(ranked: Sequence[Sequence[Hashable]], relevant: Sequence, ks: Sequence[int] = (1, 5, 10, 100),
                      families: Sequence[str] = FAMILIES) -> dict[str, float]:
    """Mean of each metric over queries.

    Args:
        ranked: per query, document ids best first (a list of lists, or a (Q, k) integer array).
        relevant: per query, its relevant ids (set/list) or ``{id: grade}``.
        ks: cut-offs; ``k`` beyond a ranked list's length sees only that list.
        families: which of ``recall``, ``precision``, ``mrr``, ``ndcg``, ``map`` to report.

    Returns:
        ``{"ndcg@10": ..., "recall@1": ..., ...}``.
    """
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings but {len(relevant)} judgement sets")
    if not len(ranked):
        raise ValueError("no queries to evaluate")
    totals: dict[str, float] = {}
    for row, judged in zip(ranked, relevant):
        row = row.tolist() if isinstance(row, np.ndarray) else list(row)
        for name, value in query_metrics(row, judged, ks).items():
            totals[name] = totals.get(name, 0.0) + value
    wanted = {f"{family}@{k}" for family in families for k in ks}
    return {name: value / len(ranked) for name, value in totals.items() if name in wanted}


def per_query(metric: str, ranked: Sequence[Sequence[Hashable]], relevant: Sequence) -> np.ndarray:
    """One metric (``"ndcg@10"``) for each query, e.g. to find the worst queries."""
    k = int(metric.split("@")[1])
    return np.array([query_metrics(list(row), judged, [k])[metric] for row, judged in zip(ranked, relevant)])


def recall_curve(ranked: Sequence[Sequence[Hashable]], relevant: Sequence, ks: Sequence[int]) -> dict[int, float]:
    """Mean recall@k for each ``k`` (the points of a recall-against-k plot)."""
    metrics = retrieval_metrics(ranked, relevant, ks=ks, families=("recall",))
    return {k: metrics[f"recall@{k}"] for k in ks}
