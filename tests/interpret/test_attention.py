"""Attention maps: every layer and head from the reference path, rollout rows that sum to 1, the
attention pooler's weights, transformers' eager attention switched on for explanation only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from support_models import TEXTS, build_classifier, build_pretrained_classifier

from encoderkit.errors import ConfigError
from encoderkit.interpret.attention import pooling_weights, rollout


def test_rollout_rows_sum_to_one_and_match_the_hand_computation():
    generator = np.random.default_rng(0)
    raw = generator.random((3, 2, 5, 5))
    layers = raw / raw.sum(-1, keepdims=True)
    result = rollout(layers)
    np.testing.assert_allclose(result.sum(-1), np.ones(5), atol=1e-12)
    by_hand = np.eye(5)
    for weights in layers:  # Abnar & Zuidema: (0.5 mean_h A + 0.5 I), rows renormalised, multiplied up
        mixed = 0.5 * weights.mean(0) + 0.5 * np.eye(5)
        by_hand = (mixed / mixed.sum(-1, keepdims=True)) @ by_hand
    np.testing.assert_allclose(result, by_hand, atol=1e-12)
    assert not np.allclose(result, np.eye(5))


def test_transformer_maps_come_from_every_layer_and_head_and_change_nothing(family_models):
    model = family_models["transformer"]
    encoder = model.model.text_encoder.encoder
    assert encoder.impl == "fused"
    explanation = model.explain(TEXTS[0], method="attention")
    maps = explanation.attention
    length = len(explanation.encoded.ids)
    assert maps.layers.shape == (2, 2, length, length)
    np.testing.assert_allclose(maps.layers.sum(-1), np.ones((2, 2, length)), atol=1e-6)
    np.testing.assert_allclose(maps.rollout.sum(-1), np.ones(length), atol=1e-9)
    np.testing.assert_allclose(maps.pooling, np.full(length, 1 / length))  # mean pooling
    assert float(maps.relevance.sum()) == pytest.approx(1.0)
    # scores are the relevance of each word's positions ([CLS] belongs to no word)
    np.testing.assert_allclose(explanation.scores, [maps.relevance[list(p)].sum() for p in explanation.encoded.pieces])
    assert all(layer.attention.keep_weights is False and layer.attention.last_weights is None
               for layer in encoder.layers)
    # the weights are the softmax the layer really computed: redo layer 1's by hand
    ids = torch.tensor([explanation.encoded.ids])
    with torch.no_grad():
        x = encoder.input_projection(model.model.text_encoder.embedding(ids))
        x = x + encoder.positions(x.shape[1])
        attention = encoder.layers[0].attention
        q, k, _ = attention.qkv(encoder.layers[0].attention_norm(x)).view(1, length, 3, 2, 8).permute(2, 0, 3, 1, 4)
        by_hand = torch.softmax(q @ k.transpose(-2, -1) / np.sqrt(8), dim=-1)[0]
    np.testing.assert_allclose(maps.layers[0], by_hand.numpy(), atol=1e-5)


def test_the_rnn_attention_pooler_gives_its_weights(family_models):
    model = family_models["lstm-attention"]
    explanation = model.explain(TEXTS[1], method="attention")
    text_encoder = model.model.text_encoder
    ids = torch.tensor([explanation.encoded.ids])
    mask = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad():
        expected = text_encoder.pooler.attention_weights(text_encoder.token_states(ids, mask), mask)[0].numpy()
    assert explanation.attention.layers is None
    np.testing.assert_allclose(explanation.attention.relevance, expected, atol=1e-6)
    assert float(explanation.scores.sum()) == pytest.approx(1.0 - expected[0], abs=1e-6)  # all but [CLS]


def test_max_pooling_weights_count_the_dimensions_each_position_supplies():
    class Pooler:
        kind, num_directions = "max", 1

    states = torch.tensor([[[1.0, 0.0, 5.0], [2.0, 3.0, 0.0], [0.0, 9.0, 1.0]]])
    weights = pooling_weights(Pooler(), states, torch.ones(1, 3, dtype=torch.bool))
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 1 / 3])
    states[0, 0, 1] = 10.0
    np.testing.assert_allclose(pooling_weights(Pooler(), states, torch.ones(1, 3, dtype=torch.bool)), [2 / 3, 1 / 3, 0])


@pytest.mark.parametrize("family", ["bow", "cnn", "gru"])
def test_models_without_attention_name_the_methods_they_can_give(family_models, family):
    with pytest.raises(ConfigError, match=r"has no attention weights; methods it can give: ig, grad-input, occlusion$"):
        family_models[family].explain(TEXTS[0], method="attention")


def test_a_bag_of_embeddings_with_the_attention_pooler_gives_attention():
    model = build_classifier({"encoder": {"kind": "bow"}, "pooling": "attention"})
    explanation = model.explain(TEXTS[0], method="attention")
    assert explanation.attention.layers is None and len(explanation.scores) == 4


def test_pretrained_attention_is_read_with_eager_attention_and_sdpa_restored(tiny_bert):
    model = build_pretrained_classifier(tiny_bert, pooling="cls")
    hf = model.model.text_encoder.encoder.model
    before = hf.config._attn_implementation
    explanation = model.explain(TEXTS[0], method="attention")
    assert hf.config._attn_implementation == before
    length = len(explanation.encoded.ids)
    assert explanation.attention.layers.shape == (2, 2, length, length)
    np.testing.assert_allclose(explanation.attention.pooling, np.eye(length)[0])  # cls pooling
    np.testing.assert_allclose(explanation.attention.relevance, explanation.attention.rollout[0], atol=1e-12)
    # the same states as the model's own (sdpa) forward
    ids = torch.tensor([explanation.encoded.ids])
    with torch.no_grad():
        sdpa = hf(input_ids=ids).last_hidden_state
    from encoderkit.interpret.attention import eager_attention

    with torch.no_grad(), eager_attention(model.model.text_encoder.encoder):
        eager = hf(input_ids=ids).last_hidden_state
    torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=1e-5)
