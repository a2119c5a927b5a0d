"""TransformerEncoder: the tensor contract, padding invariance, positions, fused == reference."""

from __future__ import annotations

import pytest
import torch

from encoderkit.config import TransformerConfig
from encoderkit.encoders.transformer import TransformerEncoder, sinusoidal_positions
from encoderkit.errors import EncoderkitError

IMPLS = ["fused", "reference"]


def make_encoder(impl: str = "fused", input_size: int = 10, **overrides) -> TransformerEncoder:
    torch.manual_seed(0)
    settings = dict(hidden_size=16, num_layers=2, num_heads=4, ff_size=32, dropout=0.0, impl=impl, max_positions=32)
    settings.update(overrides)
    return TransformerEncoder(input_size, TransformerConfig(**settings)).eval()


def right_padded_mask(lengths: list[int], length: int) -> torch.Tensor:
    return torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
@pytest.mark.parametrize("impl", IMPLS)
def test_padding_never_changes_real_states(impl, positions, norm):
    encoder = make_encoder(impl, positions=positions, norm=norm)
    sentence = torch.randn(1, 4, 10)
    alone = encoder(sentence, torch.ones(1, 4, dtype=torch.bool))
    assert alone.shape == (1, 4, 16) and encoder.output_dim == 16

    padded = torch.cat([torch.cat([sentence, 50 * torch.randn(1, 3, 10)], dim=1), torch.randn(1, 7, 10)])
    mask = right_padded_mask([4, 7], 7)
    batched = encoder(padded, mask)
    torch.testing.assert_close(batched[0, :4], alone[0], atol=1e-5, rtol=0)
    assert torch.all(batched[~mask] == 0)

    bigger = torch.cat([torch.nn.functional.pad(padded, (0, 0, 0, 2)), torch.randn(1, 9, 10)])
    bigger_states = encoder(bigger, right_padded_mask([4, 7, 9], 9))
    torch.testing.assert_close(bigger_states[:2, :7], batched, atol=1e-5, rtol=0)


def test_all_padding_row_is_zero_and_finite_gradients():
    encoder = make_encoder().train()
    inputs = torch.randn(2, 3, 10, requires_grad=True)
    states = encoder(inputs, right_padded_mask([3, 0], 3))
    assert torch.all(states[1] == 0)
    states.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


def test_fused_and_reference_share_weights():
    fused = make_encoder("fused", positions="learned")
    reference = make_encoder("reference", positions="learned", input_size=10)
    reference.load_state_dict(fused.state_dict())
    inputs, mask = torch.randn(3, 6, 10), right_padded_mask([6, 2, 5], 6)
    torch.testing.assert_close(reference(inputs, mask), fused(inputs, mask), atol=1e-5, rtol=0)
    fused.impl = "reference"
    assert all(layer.attention.impl == "reference" for layer in fused.layers)


def test_projection_only_when_sizes_differ():
    assert isinstance(make_encoder(input_size=16).input_projection, torch.nn.Identity)
    assert isinstance(make_encoder(input_size=10).input_projection, torch.nn.Linear)


def test_sinusoidal_table_matches_formula():
    table = sinusoidal_positions(6, 8)
    p, i = 5, 1
    assert table[p, 2 * i].item() == pytest.approx(torch.sin(torch.tensor(p / 10000 ** (2 * i / 8))).item())
    assert table[p, 2 * i + 1].item() == pytest.approx(torch.cos(torch.tensor(p / 10000 ** (2 * i / 8))).item())
    assert sinusoidal_positions(4, 7).shape == (4, 7)  # odd sizes work too


def test_too_long_input_is_a_clear_error():
    encoder = make_encoder(max_positions=4)
    with pytest.raises(EncoderkitError, match="max_positions"):
        encoder(torch.randn(1, 5, 10), torch.ones(1, 5, dtype=torch.bool))
