"""Attribution methods against their definitions: completeness of integrated gradients, gradient x
input and occlusion computed by hand, batching and chunking that change no number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support_models import FAMILIES, TEXTS, build_classifier

pytest.importorskip("captum", reason="integrated gradients need captum (pip install 'encoderkit[interpret]')")

from encoderkit.interpret import attribution  # noqa: E402
from encoderkit.interpret.classify import classifier_probe  # noqa: E402


def probability(model, ids: list[int], label: int) -> float:
    """p(label | ids) straight from the model, no explanation code involved."""
    with torch.no_grad():
        logits = model.model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.bool))
    return float(torch.softmax(logits, dim=-1)[0, label])


#: The convergence error allowed at 128 steps: ReLU and max pooling make a CNN's path integral kinked,
#: so its Gauss-Legendre sum converges slowest (1e-4 of a probability at 256 steps).
DELTA_AT_128_STEPS = {"bow": 1e-5, "cnn": 1e-3, "gru": 1e-4, "lstm-attention": 1e-4, "transformer": 1e-4}


@pytest.mark.parametrize("family", sorted(DELTA_AT_128_STEPS))
def test_integrated_gradients_add_up_to_the_change_from_the_baseline(family_models, family):
    model = family_models[family]
    for explanation in model.explain(TEXTS, method="ig", steps=128):
        label = model.labels.index(explanation.target)
        inside = {position for unit in explanation.encoded.pieces for position in unit}
        baseline = [model.tokenizer.pad_id if i in inside else t for i, t in enumerate(explanation.encoded.ids)]
        expected = probability(model, list(explanation.encoded.ids), label) - probability(model, baseline, label)
        assert explanation.baseline_probability == pytest.approx(probability(model, baseline, label), abs=1e-6)
        # The reported delta is exactly the gap to completeness, and the gap is small.
        assert float(explanation.scores.sum()) == pytest.approx(expected + explanation.delta, abs=1e-6)
        assert abs(explanation.delta) < DELTA_AT_128_STEPS[family]
        assert np.abs(explanation.scores).max() > 10 * DELTA_AT_128_STEPS[family]


def test_gradient_x_input_equals_the_hand_computation_on_a_bag_of_embeddings():
    """Mean pooling + linear head: logits z = W mean_t(e_t) + b, p = softmax(z), so
    d p_c / d e_t = p_c (w_c - sum_k p_k w_k) / n and the score of token t is that dotted with e_t."""
    model = build_classifier(FAMILIES["bow"], seed=3)
    explanation = model.explain(TEXTS[1], method="grad-input", level="token")
    ids = torch.tensor(explanation.encoded.ids)
    embeddings = model.model.text_encoder.embedding.weight_table.weight[ids].detach().double()  # (T,E)
    weight = model.model.head.layers[-1].weight.detach().double()  # (C,E)
    bias = model.model.head.layers[-1].bias.detach().double()
    p = torch.softmax(weight @ embeddings.mean(0) + bias, dim=-1)
    c = model.labels.index(explanation.target)
    gradient = p[c] * (weight[c] - p @ weight) / len(ids)  # (E,), the same for every token
    by_hand = (embeddings @ gradient).numpy()
    positions = [unit[0] for unit in explanation.encoded.pieces]
    np.testing.assert_allclose(explanation.scores, by_hand[positions], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("family", ["cnn", "gru", "transformer"])
def test_occlusion_equals_leaving_each_word_out_by_hand(family_models, family):
    model = family_models[family]
    explanation = model.explain(TEXTS[1], method="occlusion")
    label = model.labels.index(explanation.target)
    ids = list(explanation.encoded.ids)
    full = probability(model, ids, label)
    for unit, pieces in enumerate(explanation.encoded.pieces):
        left = [token for position, token in enumerate(ids) if position not in pieces]
        assert explanation.scores[unit] == pytest.approx(full - probability(model, left, label), abs=1e-6)


@pytest.mark.parametrize("method", ["ig", "grad-input", "occlusion"])
@pytest.mark.parametrize("family", ["gru", "transformer"])
def test_explaining_texts_together_equals_one_at_a_time(family_models, family, method):
    """Texts of different lengths share padded batches; padding must change no score."""
    model = family_models[family]
    together = model.explain(TEXTS, method=method, steps=16)
    for text, joint in zip(TEXTS, together):
        alone = model.explain(text, method=method, steps=16)
        np.testing.assert_allclose(joint.scores, alone.scores, rtol=1e-4, atol=1e-6)


def test_integration_steps_in_small_chunks_give_the_same_scores(family_models, monkeypatch):
    """The memory bound (captum#245): fewer tokens per forward pass, the same integral."""
    model = family_models["transformer"]
    whole = model.explain(TEXTS, method="ig", steps=20)
    monkeypatch.setattr(attribution, "TOKENS_PER_PASS", 24)
    chunked = model.explain(TEXTS, method="ig", steps=20)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-7)


def test_explaining_leaves_the_model_as_it_was(family_models):
    model = family_models["lstm-attention"]
    model.model.train()
    model.model.head.layers[-1].weight.requires_grad_(False)
    before = {name: p.requires_grad for name, p in model.model.named_parameters()}
    for method in ("ig", "grad-input"):
        model.explain(TEXTS[0], method=method)
    assert model.model.training
    assert {name: p.requires_grad for name, p in model.model.named_parameters()} == before
    assert before["head.layers.1.weight"] is False and before["text_encoder.pooler.attention_score.weight"]
    assert all(p.grad is None for p in model.model.parameters())
    model.model.eval()


def test_word_scores_are_the_sums_of_their_pieces(tiny_bert):
    """A word split into WordPiece pieces gets the sum of the pieces' scores."""
    from support_models import build_pretrained_classifier

    model = build_pretrained_classifier(tiny_bert)
    text = "Who wrote Hamletesque unbelievably ?"
    words = model.explain(text, method="grad-input")
    tokens = model.explain(text, method="grad-input", level="token")
    assert words.units == ["Who", "wrote", "Hamletesque", "unbelievably", "?"]
    assert len(tokens.units) > len(words.units)
    position_score = {pieces[0]: score for pieces, score in zip(tokens.encoded.pieces, tokens.scores)}
    for pieces, score in zip(words.encoded.pieces, words.scores):
        assert score == pytest.approx(sum(position_score[p] for p in pieces), rel=1e-6, abs=1e-9)


def test_probe_scores_are_label_probabilities(family_models):
    model = family_models["cnn"]
    probe = classifier_probe(model)
    ids = model.tokenizer.encode_batch(TEXTS)
    scores = attribution.score_id_lists(probe, ids, [3, 3, 3])
    np.testing.assert_allclose(scores, model.predict_proba(TEXTS)[:, 3], rtol=1e-5)
