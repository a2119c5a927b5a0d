"""Retrieval metrics equal ranx's on the same runs (one and many relevant documents, graded qrels)."""

import numpy as np
import pytest

from encoderkit.metrics.retrieval import per_query, query_metrics, recall_curve, retrieval_metrics

ranx = pytest.importorskip("ranx")

KS = (1, 3, 10)
FAMILIES = ("recall", "precision", "mrr", "ndcg", "map")


def ranx_metrics(ranked, relevant, ks=KS):
    qrels = {}
    for i, judged in enumerate(relevant):
        grades = judged if isinstance(judged, dict) else {doc: 1 for doc in judged}
        qrels[f"q{i}"] = {f"d{doc}": int(grade) for doc, grade in grades.items()}
    # Distinct, decreasing scores so ranx keeps our order.
    run = {f"q{i}": {f"d{doc}": float(len(row) - rank) for rank, doc in enumerate(row)} for i, row in enumerate(ranked)}
    names = [f"{family}@{k}" for family in FAMILIES for k in ks]
    return ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), names)


def random_run(rng, queries, docs, depth, max_relevant, graded=False):
    ranked, relevant = [], []
    for _ in range(queries):
        ranked.append(rng.permutation(docs)[:depth].tolist())
        chosen = rng.choice(docs, size=rng.integers(1, max_relevant + 1), replace=False).tolist()
        relevant.append({doc: int(rng.integers(1, 4)) for doc in chosen} if graded else set(chosen))
    return ranked, relevant


@pytest.mark.parametrize("max_relevant, graded", [(1, False), (5, False), (4, True)])
def test_metrics_equal_ranx(max_relevant, graded):
    rng = np.random.default_rng(max_relevant)
    ranked, relevant = random_run(rng, queries=60, docs=30, depth=12, max_relevant=max_relevant, graded=graded)
    ours = retrieval_metrics(ranked, relevant, ks=KS)
    theirs = ranx_metrics(ranked, relevant)
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name


def test_hand_computed_query():
    # relevant 7 and 9; ranked 9 at rank 2, 7 at rank 4
    metrics = query_metrics([3, 9, 5, 7], {7, 9}, [1, 2, 4])
    assert metrics["recall@1"] == 0 and metrics["recall@2"] == 0.5 and metrics["recall@4"] == 1
    assert metrics["mrr@4"] == 0.5 and metrics["mrr@1"] == 0
    assert metrics["precision@4"] == 0.5
    assert metrics["map@4"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    assert metrics["ndcg@4"] == pytest.approx(dcg / (1 + 1 / np.log2(3)))


def test_a_ranking_shorter_than_k_and_an_array_input():
    ranked = np.array([[2, 0], [1, 2]])
    metrics = retrieval_metrics(ranked, [{0}, {0}], ks=(10,))
    assert metrics["recall@10"] == 0.5 and metrics["precision@10"] == pytest.approx(0.05)


def test_per_query_and_recall_curve():
    ranked, relevant = [[1, 2, 3], [3, 2, 1]], [{1}, {1}]
    assert per_query("mrr@3", ranked, relevant).tolist() == [1.0, pytest.approx(1 / 3)]
    assert recall_curve(ranked, relevant, [1, 2, 3]) == {1: 0.5, 2: 0.5, 3: 1.0}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 rankings but 1 judgement sets"):
        retrieval_metrics([[1], [2]], [{1}])
