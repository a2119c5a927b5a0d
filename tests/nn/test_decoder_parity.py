"""The decoder layer written from the equations equals torch's TransformerDecoderLayer (outputs and
gradients, both implementations, pre- and post-norm, padded sources), and incremental decoding with
the key/value cache equals recomputing the whole prefix."""

from __future__ import annotations

import pytest
import torch

from encoderkit.nn.decoder import (CausalSelfAttention, CrossAttention, TransformerDecoderLayer, causal_attend,
                                   copy_from_torch_decoder_layer)

ATOL = 1e-5
SOURCE_LENGTHS = [5, 2, 4]


def source_mask(lengths=SOURCE_LENGTHS):
    return torch.arange(max(lengths)).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def test_causal_attend_lets_each_position_see_itself_and_the_past():
    assert causal_attend(3, 3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_attend(1, 4).tolist() == [[True, True, True, True]]  # one new query after 3 cached
    assert causal_attend(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_decoder_layer_matches_torch(norm, activation, impl):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerDecoderLayer(16, 4, dim_feedforward=32, dropout=0.0, activation=activation,
                                              batch_first=True, norm_first=norm == "pre")
    ours = TransformerDecoderLayer(16, 4, 32, dropout=0.0, norm=norm, activation=activation, impl=impl)
    copy_from_torch_decoder_layer(ours, theirs)
    mask = source_mask()
    y, memory = torch.randn(3, 6, 16), torch.randn(3, 5, 16)
    y_theirs, y_ours = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    m_theirs, m_ours = memory.clone().requires_grad_(True), memory.clone().requires_grad_(True)

    expected = theirs(y_theirs, m_theirs, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(6),
                      tgt_is_causal=True, memory_key_padding_mask=~mask)
    actual, _ = ours(y_ours, ours.cross_attention.project_memory(m_ours), mask)
    assert (actual - expected).abs().max().item() <= ATOL

    upstream = torch.randn_like(expected)
    (expected * upstream).sum().backward()
    (actual * upstream).sum().backward()
    assert (y_ours.grad - y_theirs.grad).abs().max().item() <= ATOL
    assert (m_ours.grad - m_theirs.grad).abs().max().item() <= ATOL
    assert (ours.ff_in.weight.grad - theirs.linear1.weight.grad).abs().max().item() <= ATOL
    torch.testing.assert_close(ours.cross_attention.key_value.weight.grad, theirs.multihead_attn.in_proj_weight.grad[16:],
                               atol=ATOL, rtol=0)


def test_fused_and_reference_agree_and_padding_keys_get_no_weight():
    torch.manual_seed(1)
    layer = TransformerDecoderLayer(16, 4, 32, dropout=0.0, memory_size=12)  # memory narrower than the decoder
    y, memory, mask = torch.randn(3, 4, 16), torch.randn(3, 5, 12), source_mask()
    kv = layer.cross_attention.project_memory(memory)
    fused, _ = layer(y, kv, mask)
    layer.impl = "reference"
    reference, weights = layer(y, kv, mask, need_weights=True)
    torch.testing.assert_close(fused, reference, atol=ATOL, rtol=0)
    assert weights.shape == (3, 4, 4, 5)
    assert torch.all(weights[1, :, :, 2:] == 0) and torch.allclose(weights.sum(-1), torch.ones(3, 4, 4))
    # Changing what sits in padded source positions changes nothing.
    changed = memory.clone()
    changed[1, 2:] = 100.0
    again, _ = layer(y, layer.cross_attention.project_memory(changed), mask)
    torch.testing.assert_close(again, reference, atol=ATOL, rtol=0)


def test_a_future_token_never_changes_an_earlier_output():
    torch.manual_seed(2)
    layer = TransformerDecoderLayer(16, 4, 32, dropout=0.0)
    y, memory, mask = torch.randn(2, 5, 16), torch.randn(2, 5, 16), source_mask([5, 3])
    kv = layer.cross_attention.project_memory(memory)
    before, _ = layer(y, kv, mask)
    y[:, 3:] = torch.randn(2, 2, 16)
    after, _ = layer(y, kv, mask)
    torch.testing.assert_close(before[:, :3], after[:, :3], atol=ATOL, rtol=0)
    assert (before[:, 3:] - after[:, 3:]).abs().max() > 1e-3


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_key_value_cache_equals_full_recomputation(norm, impl):
    torch.manual_seed(3)
    layers = [TransformerDecoderLayer(16, 4, 32, dropout=0.0, norm=norm, impl=impl) for _ in range(2)]
    y, memory, mask = torch.randn(3, 6, 16), torch.randn(3, 5, 16), source_mask()
    kvs = [layer.cross_attention.project_memory(memory) for layer in layers]
    full = y
    for layer, kv in zip(layers, kvs):
        full, _ = layer(full, kv, mask)
    caches = [{} for _ in layers]
    steps = []
    for t in range(6):
        x = y[:, t:t + 1]
        for layer, kv, cache in zip(layers, kvs, caches):
            x, _ = layer(x, kv, mask, cache=cache)
        steps.append(x)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=ATOL, rtol=0)
    assert caches[0]["key"].shape == (3, 4, 6, 4)  # (B, heads, steps so far, d_k)


def test_cache_takes_several_new_positions_at_once():
    torch.manual_seed(4)
    attention = CausalSelfAttention(8, 2)
    x = torch.randn(2, 5, 8)
    full = attention(x)
    cache: dict = {}
    first = attention(x[:, :2], cache)
    rest = attention(x[:, 2:], cache)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=ATOL, rtol=0)


def test_cross_attention_reference_weights_match_torch_multihead_attention():
    torch.manual_seed(5)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    ours = CrossAttention(8, 2, impl="reference")
    with torch.no_grad():
        ours.query.weight.copy_(theirs.in_proj_weight[:8])
        ours.query.bias.copy_(theirs.in_proj_bias[:8])
        ours.key_value.weight.copy_(theirs.in_proj_weight[8:])
        ours.key_value.bias.copy_(theirs.in_proj_bias[8:])
        ours.out_proj.load_state_dict(theirs.out_proj.state_dict())
    y, memory, mask = torch.randn(3, 4, 8), torch.randn(3, 5, 8), source_mask()
    expected, expected_weights = theirs(y, memory, memory, key_padding_mask=~mask, average_attn_weights=False)
    actual, weights = ours(y, ours.project_memory(memory), mask, need_weights=True)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=ATOL, rtol=0)
