"""Recurrent cells written from their equations, one time step each.

Every cell takes the weights in the layout of ``torch.nn.RNN/LSTM/GRU`` (gates stacked along the
first dimension of ``weight_ih``/``weight_hh``), so the reference path can read the very tensors of
a fused module and a model trained with one implementation runs with the other.

Shapes: ``x`` (B,E) input at step t, ``h`` (B,H) previous hidden state, ``weight_ih`` (G*H,E),
``weight_hh`` (G*H,H), ``bias_ih``/``bias_hh`` (G*H,) with G gates (1 Elman, 4 LSTM, 3 GRU).
``W x`` below is ``x @ W.T`` in code, because the rows of a torch weight are output units.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _affine(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``W x + b`` for a batch of row vectors: (B,in) @ (in,out) + (out,) -> (B,out)."""
    out = x @ weight.t()
    return out if bias is None else out + bias


def elman_cell(
    x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None
) -> Tensor:
    """Elman RNN step: ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)``.

    torch keeps two biases, so ``b_h = b_ih + b_hh``.

    Args:
        x: (B,E) input at step t.
        h: (B,H) hidden state h_{t-1}.
        weight_ih: (H,E) W_xh.
        weight_hh: (H,H) W_hh.
        bias_ih: (H,) or None.
        bias_hh: (H,) or None.

    Returns:
        (B,H) hidden state h_t.
    """
    return torch.tanh(_affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh))


def lstm_cell(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None,
    bias_hh: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """LSTM step (Hochreiter & Schmidhuber 1997, with a forget gate), gates stacked i, f, g, o::

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate        (B,H)
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate       (B,H)
        g_t = tanh   (W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)      candidate cell    (B,H)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate       (B,H)
        c_t = f_t * c_{t-1} + i_t * g_t                           cell state        (B,H)
        h_t = o_t * tanh(c_t)                                     hidden state      (B,H)

    Args:
        x: (B,E) input at step t.
        state: ``(h_{t-1}, c_{t-1})``, each (B,H).
        weight_ih: (4H,E) rows [W_ii; W_if; W_ig; W_io].
        weight_hh: (4H,H) rows [W_hi; W_hf; W_hg; W_ho].
        bias_ih: (4H,) or None.
        bias_hh: (4H,) or None.

    Returns:
        ``(h_t, c_t)``, each (B,H).
    """
    h, c = state
    gates = _affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)  # (B,4H)
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c


def gru_cell(
    x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None
) -> Tensor:
    """GRU step (Cho et al. 2014), gates stacked r, z, n as in torch::

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate    (B,H)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate   (B,H)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))     candidate     (B,H)
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}                         hidden state  (B,H)

    The reset gate multiplies ``W_hn h_{t-1} + b_hn`` *after* the matrix product (Keras calls
    this ``reset_after=True``, cuDNN's variant); the original paper resets ``h_{t-1}`` before it.

    Args:
        x: (B,E) input at step t.
        h: (B,H) hidden state h_{t-1}.
        weight_ih: (3H,E) rows [W_ir; W_iz; W_in].
        weight_hh: (3H,H) rows [W_hr; W_hz; W_hn].
        bias_ih: (3H,) or None.
        bias_hh: (3H,) or None.

    Returns:
        (B,H) hidden state h_t.
    """
    input_r, input_z, input_n = _affine(x, weight_ih, bias_ih).chunk(3, dim=1)
    hidden_r, hidden_z, hidden_n = _affine(h, weight_hh, bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(input_r + hidden_r)
    z = torch.sigmoid(input_z + hidden_z)
    n = torch.tanh(input_n + r * hidden_n)
    return (1 - z) * n + z * h
