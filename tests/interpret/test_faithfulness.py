"""ERASER comprehensiveness and sufficiency against hand computations, and faithful methods beating random."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support_models import TEXTS, build_classifier

from encoderkit.interpret.faithfulness import PERCENTS, faithfulness, random_scores, top_units


def test_top_units_take_at_least_one_and_break_ties_by_position():
    scores = np.array([0.1, 0.5, 0.5, -1.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert top_units(scores, 1) == {1}
    assert top_units(scores, 20) == {1, 2}
    assert top_units(scores, 50) == {1, 2, 4, 0, 5}
    assert top_units(np.array([3.0]), 50) == {0}


def probability(model, ids, label):
    with torch.no_grad():
        logits = model.model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.bool))
    return float(torch.softmax(logits, -1)[0, label])


def test_comprehensiveness_and_sufficiency_equal_the_definition():
    model = build_classifier({"encoder": {"kind": "cnn", "kernel_sizes": [1, 2], "num_filters": 8}, "pooling": "max"})
    explanations = model.explain(TEXTS, method="occlusion")
    result = faithfulness(model, explanations)
    comprehensiveness, sufficiency = [], []
    for explanation in explanations:
        label = model.labels.index(explanation.target)
        ids = list(explanation.encoded.ids)
        full = probability(model, ids, label)
        for percent in PERCENTS:
            count = int(np.ceil(percent / 100 * len(explanation.units)))
            top = np.argsort(-explanation.scores, kind="stable")[:max(1, count)]
            gone = {p for unit in top for p in explanation.encoded.pieces[unit]}
            kept = gone | {0}  # [CLS] stays
            comprehensiveness.append(full - probability(model, [t for p, t in enumerate(ids) if p not in gone], label))
            sufficiency.append(full - probability(model, [t for p, t in enumerate(ids) if p in kept], label))
    assert result["comprehensiveness"] == pytest.approx(np.mean(comprehensiveness), abs=1e-6)
    assert result["sufficiency"] == pytest.approx(np.mean(sufficiency), abs=1e-6)
    assert result["texts"] == 3 and set(result["by_percent"]) == {"1", "5", "10", "20", "50"}


def test_faithful_methods_beat_random_on_a_model_with_one_decisive_word():
    """A bag of embeddings whose head reads one coordinate that only 'president' sets: removing the
    top word must hurt far more for occlusion and integrated gradients than for random scores."""
    pytest.importorskip("captum")
    model = build_classifier({"encoder": {"kind": "bow"}, "pooling": "mean"}, scale=0.0)
    table = model.model.text_encoder.embedding.weight_table.weight
    head = model.model.head.layers[-1]
    word = model.tokenizer.get_vocab()["president"]
    with torch.no_grad():
        table.zero_()
        table[word, 0] = 5.0
        head.weight.zero_()
        head.bias.zero_()
        head.weight[3, 0] = 4.0  # HUM
    texts = ["Who was the president of the country in the year 1600 ?", "Was the president a man of the world ?"]
    floor = faithfulness(model, random_scores(model.explain(texts, method="occlusion"), seed=1))
    for method in ("occlusion", "ig", "grad-input"):
        measured = faithfulness(model, model.explain(texts, method=method))
        assert measured["comprehensiveness"] > floor["comprehensiveness"] + 0.1, method
        assert measured["sufficiency"] < floor["sufficiency"] - 0.1, method


def test_random_scores_keep_everything_but_the_scores():
    model = build_classifier({"encoder": {"kind": "bow"}, "pooling": "mean"})
    explanations = model.explain(TEXTS, method="occlusion")
    shuffled = random_scores(explanations, seed=0)
    assert [e.method for e in shuffled] == ["random"] * 3
    assert [e.units for e in shuffled] == [e.units for e in explanations]
    assert not np.allclose(shuffled[0].scores, explanations[0].scores)
    np.testing.assert_allclose(random_scores(explanations, seed=0)[1].scores, shuffled[1].scores)
