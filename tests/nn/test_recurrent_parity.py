"""reference_recurrence == torch.nn.RNN/LSTM/GRU on packed, padded batches: outputs, final states
and gradients (inputs and every weight) agree to 1e-5 in float32, 1-2 layers, uni/bidirectional."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from encoderkit.config import RecurrentConfig
from encoderkit.encoders.rnn import RecurrentEncoder
from encoderkit.nn.recurrent import reference_recurrence

ATOL = 1e-5
MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
LENGTHS = [7, 3, 5, 1]


def torch_packed(module, inputs, lengths):
    packed = pack_padded_sequence(inputs, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    outputs, final = module(packed)
    outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.shape[1])
    return outputs, final


def flatten(final):
    return list(final) if isinstance(final, tuple) else [final]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_reference_matches_torch(kind, num_layers, bidirectional):
    torch.manual_seed(0)
    theirs = MODULES[kind](5, 8, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    ours = copy.deepcopy(theirs)  # same weights, separate gradients
    inputs = torch.randn(len(LENGTHS), max(LENGTHS), 5)
    mask = torch.arange(max(LENGTHS)).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    inputs_theirs = inputs.clone().requires_grad_(True)
    inputs_ours = inputs.clone().requires_grad_(True)

    expected, expected_final = torch_packed(theirs, inputs_theirs, LENGTHS)
    actual, actual_final = reference_recurrence(ours, inputs_ours, mask)

    assert (actual - expected).abs().max().item() <= ATOL
    for mine, reference in zip(flatten(actual_final), flatten(expected_final)):
        assert (mine - reference).abs().max().item() <= ATOL

    # A loss touching every output and the final states, so every gradient path is exercised.
    torch.manual_seed(1)
    weights = torch.randn_like(expected)
    final_weights = [torch.randn_like(f) for f in flatten(expected_final)]

    def loss(outputs, final):
        return (outputs * weights).sum() + sum((f * w).sum() for f, w in zip(flatten(final), final_weights))

    loss(expected, expected_final).backward()
    loss(actual, actual_final).backward()
    assert (inputs_ours.grad - inputs_theirs.grad).abs().max().item() <= ATOL
    their_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        difference = (parameter.grad - their_parameters[name].grad).abs().max().item()
        assert difference <= ATOL, f"gradient of {name} differs by {difference:.2e}"


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_encoder_reference_matches_torch_module(kind):
    """The encoder with impl=reference equals a plain torch module loaded with its weights."""
    torch.manual_seed(3)
    encoder = RecurrentEncoder(5, RecurrentConfig(kind=kind, hidden_size=8, num_layers=2, impl="reference"))
    plain = MODULES[kind](5, 8, num_layers=2, bidirectional=True, batch_first=True)
    plain.load_state_dict({name.removeprefix("rnn."): value for name, value in encoder.state_dict().items()})
    inputs = torch.randn(len(LENGTHS), max(LENGTHS), 5)
    mask = torch.arange(max(LENGTHS)).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)
    expected, _ = torch_packed(plain, inputs, LENGTHS)
    assert (encoder(inputs, mask) - expected).abs().max().item() <= ATOL
