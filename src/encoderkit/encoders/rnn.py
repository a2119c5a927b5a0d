"""Recurrent encoders: Elman RNN (tanh), LSTM and GRU, stacked and optionally bidirectional.

Tensor contract::

    forward(inputs (B,T,E) float, mask (B,T) bool, True = real token) -> states (B,T,H)

with ``H = output_dim = hidden_size * num_directions``. Each state is ``[forward ; backward]``;
states at padded positions are exactly zero, and padding never changes the states of real tokens
(each sentence is processed as if it were alone). Padding must be on the right (masks are a prefix
of True), which is what the batching code produces.

Two implementations share one set of parameters, those of a ``torch.nn.RNN/LSTM/GRU`` module:

- ``fused``: the module itself on a packed sequence (``pack_padded_sequence(enforce_sorted=False)``),
  or on the plain tensor when the batch has no padding;
- ``reference``: ``encoderkit.nn.recurrent.reference_recurrence``, the cell equations unrolled in
  Python over the module's own ``weight_ih_l0``, ``weight_hh_l0_reverse``, ... tensors.

A state_dict saved under one implementation therefore loads into the other with no renaming, and
``encoder.impl = "reference"`` switches a live model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from encoderkit.config import RecurrentConfig
from encoderkit.encoders.base import Encoder, SwitchableImpl, zero_padding
from encoderkit.errors import ConfigError, EncoderkitError
from encoderkit.nn.precision import float32_recurrence
from encoderkit.nn.recurrent import State, reference_recurrence

#: kind -> fused torch module. ``rnn`` is the Elman network, h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h).
RECURRENT_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class PaddingError(EncoderkitError):
    """A mask that is not right-padded (True for the first n tokens, False after)."""


def lengths_from_mask(mask: Tensor) -> Tensor:
    """(B,T) bool right-padded mask -> (B,) int64 lengths, refusing masks with holes or left padding."""
    lengths = mask.sum(dim=1)
    positions = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(positions.unsqueeze(0) < lengths.unsqueeze(1), mask.bool()):
        raise PaddingError(
            "recurrent encoders need right-padded masks (True for the real tokens, then False); "
            "got a mask with left padding or holes"
        )
    return lengths


class RecurrentEncoder(SwitchableImpl, Encoder):
    """An Elman RNN, LSTM or GRU encoder built from ``RecurrentConfig``.

    Args:
        input_size: E, the size of each input vector (the embedding dimension).
        config: kind (rnn | lstm | gru), hidden_size, num_layers, bidirectional, dropout between
            layers (needs num_layers > 1), impl (fused | reference).
    """

    def __init__(self, input_size: int, config: RecurrentConfig):
        super().__init__()
        if config.kind not in RECURRENT_MODULES:
            raise EncoderkitError(
                f"unknown recurrent kind {config.kind!r}; valid kinds: {', '.join(RECURRENT_MODULES)}"
            )
        self.kind = config.kind
        self.input_size = input_size
        self.hidden_size = config.hidden_size
        self.num_layers = config.num_layers
        self.num_directions = 2 if config.bidirectional else 1
        self.output_dim = config.hidden_size * self.num_directions
        if config.dropout > 0 and config.num_layers == 1:
            # Accepting it would be a setting that silently does nothing.
            raise ConfigError(
                f"encoder.dropout={config.dropout} applies between recurrent layers and has no effect with "
                "num_layers=1; set encoder.dropout=0 or use embedding.dropout / head.dropout"
            )
        dropout = config.dropout
        self.rnn = RECURRENT_MODULES[config.kind](
            input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=dropout,
            batch_first=True,
        )
        self.impl = config.impl

    def forward(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """(B,T,E) inputs, (B,T) bool mask -> (B,T,output_dim) states, zero at padding."""
        states, _ = self.forward_with_final_state(inputs, mask)
        return states

    def forward_with_final_state(self, inputs: Tensor, mask: Tensor) -> tuple[Tensor, State]:
        """States and the final state of every layer and direction.

        Args:
            inputs: (B,T,E) float.
            mask: (B,T) bool, True at real tokens, right-padded.

        Returns:
            ``(states, final)``: states (B,T,output_dim), zero at padding; final ``h_n``
            (num_layers*num_directions, B, hidden_size) as torch orders it (layer by layer,
            forward first), or ``(h_n, c_n)`` for an LSTM. The forward direction's final state is
            the state after the last real token, the backward one's after the first token.
            Sentences with no real token get zero states.
        """
        mask = mask.bool()
        lengths = lengths_from_mask(mask)
        if self.impl == "reference":
            states, final = reference_recurrence(self.rnn, inputs, mask)
        else:
            states, final = self._fused(inputs, lengths)
        empty = lengths == 0
        if bool(empty.any()):
            final = _zero_rows(final, empty)
        return zero_padding(states, mask), final

    def _fused(self, inputs: Tensor, lengths: Tensor) -> tuple[Tensor, State]:
        if bool((lengths == inputs.shape[1]).all()):
            # No padding: packing would change nothing but costs time (on CPU a packed GRU trains
            # about 1.8x slower than an unpacked one; see benchmarks/RESULTS.md).
            return float32_recurrence(self.rnn, inputs)
        # pack_padded_sequence rejects length 0: run such rows on one (padding) step, zeroed afterwards.
        packed = pack_padded_sequence(
            inputs, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        packed_states, final = float32_recurrence(self.rnn, packed)
        states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=inputs.shape[1])
        return states, final


def _zero_rows(final: State, rows: Tensor) -> State:
    """Zero the final state of batch rows ``rows`` (B,) bool; state tensors are (L*D,B,H)."""
    keep = (~rows).to(torch.get_default_dtype()).view(1, -1, 1)
    if isinstance(final, tuple):
        return tuple(part * keep.to(part.dtype) for part in final)
    return final * keep.to(final.dtype)
