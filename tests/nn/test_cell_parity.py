"""Each reference cell equals torch's fused cell (outputs and gradients) given the same weights."""

from __future__ import annotations

import pytest
import torch

from encoderkit.nn.cells import elman_cell, gru_cell, lstm_cell

ATOL = 1e-5


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize(
    "torch_cell_class, our_cell, is_lstm",
    [(torch.nn.RNNCell, elman_cell, False), (torch.nn.LSTMCell, lstm_cell, True), (torch.nn.GRUCell, gru_cell, False)],
)
def test_cell_matches_torch(torch_cell_class, our_cell, is_lstm):
    torch.manual_seed(0)
    torch_cell = torch_cell_class(6, 9)
    x = torch.randn(5, 6, requires_grad=True)
    h = torch.randn(5, 9, requires_grad=True)
    c = torch.randn(5, 9, requires_grad=True)
    weights = (torch_cell.weight_ih, torch_cell.weight_hh, torch_cell.bias_ih, torch_cell.bias_hh)
    upstream = torch.randn(5, 9)

    expected = torch_cell(x, (h, c))[0] if is_lstm else torch_cell(x, h)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), [x, h, *weights])
    ours = our_cell(x, (h, c), *weights)[0] if is_lstm else our_cell(x, h, *weights)
    our_grads = torch.autograd.grad((ours * upstream).sum(), [x, h, *weights])

    assert max_diff(ours, expected) <= ATOL
    for mine, theirs in zip(our_grads, expected_grads):
        assert max_diff(mine, theirs) <= ATOL


def test_lstm_cell_state_matches_torch():
    torch.manual_seed(1)
    torch_cell = torch.nn.LSTMCell(4, 3)
    x, h, c = torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 3)
    weights = (torch_cell.weight_ih, torch_cell.weight_hh, torch_cell.bias_ih, torch_cell.bias_hh)
    torch.testing.assert_close(lstm_cell(x, (h, c), *weights)[1], torch_cell(x, (h, c))[1], atol=ATOL, rtol=0)


def test_cell_without_bias():
    torch.manual_seed(2)
    torch_cell = torch.nn.GRUCell(4, 3, bias=False)
    x, h = torch.randn(2, 4), torch.randn(2, 3)
    ours = gru_cell(x, h, torch_cell.weight_ih, torch_cell.weight_hh, None, None)
    torch.testing.assert_close(ours, torch_cell(x, h), atol=ATOL, rtol=0)
