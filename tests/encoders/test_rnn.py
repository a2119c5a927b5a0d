"""RecurrentEncoder: the tensor contract, padding invariance, and fused == reference on one state_dict."""

from __future__ import annotations

import pytest
import torch

from encoderkit.config import RecurrentConfig
from encoderkit.encoders.rnn import PaddingError, RecurrentEncoder
from encoderkit.errors import ConfigError

KINDS = ["rnn", "lstm", "gru"]
IMPLS = ["fused", "reference"]


def make_encoder(kind: str, impl: str = "fused", **overrides) -> RecurrentEncoder:
    torch.manual_seed(0)
    settings = dict(kind=kind, hidden_size=12, num_layers=2, bidirectional=True, impl=impl)
    settings.update(overrides)
    return RecurrentEncoder(7, RecurrentConfig(**settings)).eval()


def right_padded_mask(lengths: list[int], length: int) -> torch.Tensor:
    return torch.arange(length).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_shapes_and_zero_padding(kind, impl):
    encoder = make_encoder(kind, impl)
    inputs = torch.randn(3, 6, 7)
    mask = right_padded_mask([6, 2, 4], 6)
    states = encoder(inputs, mask)
    assert encoder.output_dim == 24 and encoder.num_directions == 2
    assert states.shape == (3, 6, 24)
    assert torch.all(states[~mask] == 0)
    assert torch.all(states[mask].abs().sum(-1) > 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_padding_never_changes_real_states(kind, impl):
    encoder = make_encoder(kind, impl)
    sentence = torch.randn(1, 4, 7)
    alone = encoder(sentence, torch.ones(1, 4, dtype=torch.bool))

    # The same sentence padded to 9 with garbage behind it, next to a longer sentence.
    longer = torch.randn(1, 9, 7)
    padded = torch.cat([torch.cat([sentence, 100 * torch.randn(1, 5, 7)], dim=1), longer])
    mask = right_padded_mask([4, 9], 9)
    batched = encoder(padded, mask)
    torch.testing.assert_close(batched[0, :4], alone[0], atol=1e-6, rtol=0)

    # Adding an even longer sentence to the batch leaves the earlier rows unchanged.
    longest = torch.randn(1, 12, 7)
    bigger = torch.cat([torch.nn.functional.pad(padded, (0, 0, 0, 3)), longest])
    bigger_states = encoder(bigger, right_padded_mask([4, 9, 12], 12))
    torch.testing.assert_close(bigger_states[:2, :9], batched, atol=1e-6, rtol=0)
    assert torch.all(bigger_states[:2, 9:] == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_final_state_is_state_at_the_ends(kind):
    encoder = make_encoder(kind, bidirectional=True, num_layers=1)
    inputs = torch.randn(2, 5, 7)
    mask = right_padded_mask([5, 3], 5)
    states, final = encoder.forward_with_final_state(inputs, mask)
    h_n = final[0] if kind == "lstm" else final
    # forward direction ends at the last real token, backward at the first token.
    torch.testing.assert_close(h_n[0, 1], states[1, 2, :12])
    torch.testing.assert_close(h_n[1, 1], states[1, 0, 12:])


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_is_shared_between_impls(kind):
    fused = make_encoder(kind, "fused")
    reference = make_encoder(kind, "reference")
    torch.nn.init.uniform_(reference.rnn.weight_hh_l0, -0.5, 0.5)  # make sure loading really overwrites
    reference.load_state_dict(fused.state_dict())  # strict: same names, no renaming
    inputs = torch.randn(3, 6, 7)
    mask = right_padded_mask([6, 1, 3], 6)
    torch.testing.assert_close(reference(inputs, mask), fused(inputs, mask), atol=1e-5, rtol=0)
    fused.impl = "reference"  # switching a live model
    torch.testing.assert_close(fused(inputs, mask), reference(inputs, mask), atol=0, rtol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_sentence_gives_zero_states(impl):
    encoder = make_encoder("lstm", impl)
    states, (h_n, c_n) = encoder.forward_with_final_state(torch.randn(2, 3, 7), right_padded_mask([3, 0], 3))
    assert torch.all(states[1] == 0) and torch.all(h_n[:, 1] == 0) and torch.all(c_n[:, 1] == 0)


def test_left_padding_is_refused():
    encoder = make_encoder("gru")
    with pytest.raises(PaddingError):
        encoder(torch.randn(1, 3, 7), torch.tensor([[False, True, True]]))


def test_trains_one_step_with_dropout():
    encoder = make_encoder("lstm", dropout=0.3).train()
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1)
    inputs, mask = torch.randn(4, 5, 7), right_padded_mask([5, 4, 2, 1], 5)
    before = encoder.rnn.weight_ih_l1.detach().clone()
    loss = encoder(inputs, mask).pow(2).sum()
    loss.backward()
    optimizer.step()
    assert not torch.equal(before, encoder.rnn.weight_ih_l1)


def test_dropout_on_a_single_layer_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="num_layers=1"):
        RecurrentEncoder(7, RecurrentConfig(kind="lstm", num_layers=1, dropout=0.2))
