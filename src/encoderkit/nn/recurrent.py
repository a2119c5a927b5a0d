"""Stacked, optionally bidirectional recurrences unrolled in Python over the cells of ``cells.py``.

``reference_recurrence(module, inputs, mask)`` computes what ``module(pack_padded_sequence(...))``
computes for a ``torch.nn.RNN`` (tanh), ``LSTM`` or ``GRU`` built with ``batch_first=True``, reading
the module's own parameters (``weight_ih_l0``, ``weight_hh_l0_reverse``, ...) so that the two
implementations share one state_dict.

Padding: at a padded step the state is carried over unchanged and the output is zero. With right
padding this is exactly a packed sequence: the forward direction stops at the last real token and
the backward direction starts there from a zero state, because every padded step before it leaves
the zero initial state untouched.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from encoderkit.nn.cells import elman_cell, gru_cell, lstm_cell

State = Tensor | tuple[Tensor, Tensor]


def _cell_for(module: nn.RNNBase) -> Callable[..., State]:
    if isinstance(module, nn.LSTM):
        return lstm_cell
    if isinstance(module, nn.GRU):
        return gru_cell
    if isinstance(module, nn.RNN) and module.nonlinearity == "tanh":
        return elman_cell
    raise TypeError(f"no reference cell for {module!r}; expected nn.RNN(tanh), nn.LSTM or nn.GRU")


def run_direction(
    cell: Callable[..., State],
    inputs: Tensor,
    mask: Tensor,
    weights: tuple[Tensor, Tensor, Tensor | None, Tensor | None],
    hidden_size: int,
    reverse: bool,
    is_lstm: bool,
) -> tuple[Tensor, State]:
    """Unroll one cell over time in one direction.

    Args:
        cell: ``elman_cell``, ``lstm_cell`` or ``gru_cell``.
        inputs: (B,T,E) inputs.
        mask: (B,T) bool, True at real tokens.
        weights: ``(weight_ih, weight_hh, bias_ih, bias_hh)`` in torch's layout.
        hidden_size: H.
        reverse: run from t = T-1 down to 0 (the backward direction).
        is_lstm: the state is ``(h, c)`` instead of ``h``.

    Returns:
        ``(outputs, final)``: outputs (B,T,H), zero at padding; final state ``h`` (B,H) or
        ``(h, c)``, the state after the last real token of this direction.
    """
    batch, length, _ = inputs.shape
    zeros = inputs.new_zeros(batch, hidden_size)
    state: State = (zeros, zeros) if is_lstm else zeros
    outputs: list[Tensor] = [zeros] * length
    steps = range(length - 1, -1, -1) if reverse else range(length)
    for t in steps:
        real = mask[:, t].unsqueeze(1)  # (B,1): padded rows keep their state
        new_state = cell(inputs[:, t], state, *weights)
        if is_lstm:
            state = (torch.where(real, new_state[0], state[0]), torch.where(real, new_state[1], state[1]))
            h = state[0]
        else:
            state = torch.where(real, new_state, state)
            h = state
        outputs[t] = h * real.to(h.dtype)
    return torch.stack(outputs, dim=1), state


def reference_recurrence(module: nn.RNNBase, inputs: Tensor, mask: Tensor) -> tuple[Tensor, State]:
    """Run ``module``'s equations step by step with its own parameters.

    Args:
        module: a batch-first ``nn.RNN`` (tanh), ``nn.LSTM`` or ``nn.GRU``, without projections.
        inputs: (B,T,E) float inputs.
        mask: (B,T) bool, True at real tokens (right padding).

    Returns:
        ``(outputs, final)`` as torch returns them: outputs (B,T,D*H) laid out ``[forward ; backward]``
        and zero at padding; final ``h_n`` (L*D,B,H), or ``(h_n, c_n)`` for an LSTM, ordered
        layer by layer with the forward direction first.
    """
    if not module.batch_first:
        raise ValueError("reference_recurrence expects a batch_first module")
    if getattr(module, "proj_size", 0):
        raise ValueError("LSTM projections (proj_size) have no reference cell")
    cell = _cell_for(module)
    is_lstm = isinstance(module, nn.LSTM)
    directions = ["", "_reverse"] if module.bidirectional else [""]
    finals_h: list[Tensor] = []
    finals_c: list[Tensor] = []
    layer_input = inputs
    for layer in range(module.num_layers):
        direction_outputs = []
        for suffix in directions:
            name = f"l{layer}{suffix}"
            weights = (
                getattr(module, f"weight_ih_{name}"),
                getattr(module, f"weight_hh_{name}"),
                getattr(module, f"bias_ih_{name}", None),
                getattr(module, f"bias_hh_{name}", None),
            )
            outputs, final = run_direction(
                cell, layer_input, mask, weights, module.hidden_size, reverse=bool(suffix), is_lstm=is_lstm
            )
            direction_outputs.append(outputs)
            finals_h.append(final[0] if is_lstm else final)
            if is_lstm:
                finals_c.append(final[1])
        layer_input = torch.cat(direction_outputs, dim=-1)  # (B,T,D*H) = [forward ; backward]
        if layer < module.num_layers - 1 and module.dropout > 0:
            # torch applies dropout to the outputs of every layer but the last.
            layer_input = F.dropout(layer_input, module.dropout, module.training)
    h_n = torch.stack(finals_h)  # (L*D,B,H)
    if is_lstm:
        return layer_input, (h_n, torch.stack(finals_c))
    return layer_input, h_n
