"""Attention written from the equations equals torch's SDPA, MultiheadAttention and
TransformerEncoderLayer (outputs and gradients, 1e-5 in float32, padded batches)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from encoderkit.nn.attention import MultiHeadSelfAttention, scaled_dot_product_attention
from encoderkit.nn.transformer import TORCH_PARAMETER_NAMES, TransformerEncoderLayer, copy_from_torch_layer

ATOL = 1e-5
LENGTHS = [6, 2, 4]


def padded_mask(lengths=LENGTHS):
    return torch.arange(max(lengths)).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def test_reference_sdpa_matches_torch_sdpa():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 4) for _ in range(3))
    attend = padded_mask().view(3, 1, 1, 6)
    ours, weights = scaled_dot_product_attention(q, k, v, attend)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=attend), atol=ATOL, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, 6))
    assert torch.all(weights[1, :, :, 2:] == 0)  # padding keys get no weight


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_multi_head_matches_torch_multihead_attention(impl):
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ours = MultiHeadSelfAttention(16, 4, impl=impl)
    with torch.no_grad():
        ours.qkv.weight.copy_(theirs.in_proj_weight)
        ours.qkv.bias.copy_(theirs.in_proj_bias)
        ours.out_proj.load_state_dict(theirs.out_proj.state_dict())
    x, mask = torch.randn(3, 6, 16), padded_mask()
    expected, _ = theirs(x, x, x, key_padding_mask=~mask, need_weights=False)
    actual = ours(x, mask)
    assert (actual[mask] - expected[mask]).abs().max().item() <= ATOL


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_encoder_layer_matches_torch(norm, activation, impl):
    torch.manual_seed(0)
    # dropout 0 and train mode: same numbers, and torch's inference fast path stays out of the way.
    theirs = torch.nn.TransformerEncoderLayer(
        16, 4, dim_feedforward=32, dropout=0.0, activation=activation, batch_first=True, norm_first=norm == "pre"
    )
    ours = TransformerEncoderLayer(16, 4, 32, dropout=0.0, norm=norm, activation=activation, impl=impl)
    copy_from_torch_layer(ours, theirs)
    mask = padded_mask()
    x = torch.randn(3, 6, 16)
    x_theirs, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)

    expected = theirs(x_theirs, src_key_padding_mask=~mask)
    actual = ours(x_ours, mask)
    assert (actual[mask] - expected[mask]).abs().max().item() <= ATOL

    upstream = torch.randn_like(expected) * mask.unsqueeze(-1)  # the loss sees real tokens only
    (expected * upstream).sum().backward()
    (actual * upstream).sum().backward()
    assert (x_ours.grad - x_theirs.grad).abs().max().item() <= ATOL
    their_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        difference = (parameter.grad - their_parameters[TORCH_PARAMETER_NAMES[name]].grad).abs().max().item()
        assert difference <= ATOL, f"gradient of {name} differs by {difference:.2e}"


def test_copy_refuses_mismatched_norm():
    theirs = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=False)
    with pytest.raises(ValueError, match="norm"):
        copy_from_torch_layer(TransformerEncoderLayer(8, 2, 16, norm="pre"), copy.deepcopy(theirs))
