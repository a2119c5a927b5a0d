"""A Transformer encoder trained from scratch.

Tensor contract::

    forward(inputs (B,T,E) float, mask (B,T) bool, True = real token) -> states (B,T,H)

with ``H = output_dim = hidden_size``. Steps::

    x = W_in inputs                       (B,T,H)   only when E != H
    x = Dropout(x + P[0:T])               (B,T,H)   P sinusoidal or learned positions
    x = layer_l(x, mask), l = 1..L        (B,T,H)   see encoderkit.nn.transformer
    x = LN(x)                                       pre-norm only: the residual stream is never normalized otherwise
    states = x * mask                               padding states are exactly zero

Sinusoidal positions (Vaswani et al. 2017): ``P[p, 2i] = sin(p / 10000^(2i/H))``,
``P[p, 2i+1] = cos(p / 10000^(2i/H))``. Padding keys are masked out of every attention softmax,
so padding never changes the states of real tokens. ``impl`` (fused | reference) picks
``scaled_dot_product_attention`` or the softmax written out; both read the same parameters.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from encoderkit.config import TransformerConfig
from encoderkit.encoders.base import Encoder, SwitchableImpl, zero_padding
from encoderkit.errors import EncoderkitError
from encoderkit.nn.transformer import TransformerEncoderLayer


def sinusoidal_positions(max_positions: int, size: int) -> Tensor:
    """(max_positions, size) table: even columns sin(p / 10000^(2i/size)), odd columns cos(...)."""
    positions = torch.arange(max_positions, dtype=torch.float32).unsqueeze(1)  # (P,1)
    frequencies = torch.exp(torch.arange(0, size, 2, dtype=torch.float32) * (-math.log(10000.0) / size))
    table = torch.zeros(max_positions, size)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies[: size // 2])
    return table


class TransformerEncoder(SwitchableImpl, Encoder):
    """Stack of Transformer encoder layers with positions added inside.

    Args:
        input_size: E, the embedding dimension; projected to hidden_size when different.
        config: hidden_size, num_layers, num_heads, ff_size, dropout, positions (sinusoidal |
            learned), norm (pre | post), max_positions, impl (fused | reference).
    """

    def __init__(self, input_size: int, config: TransformerConfig):
        super().__init__()
        self.input_size = input_size
        self.output_dim = config.hidden_size
        self.max_positions = config.max_positions
        self.positions_kind = config.positions
        self.input_projection = (
            nn.Linear(input_size, config.hidden_size) if input_size != config.hidden_size else nn.Identity()
        )
        if config.positions == "learned":
            self.position_embedding = nn.Embedding(config.max_positions, config.hidden_size)
            nn.init.normal_(self.position_embedding.weight, std=0.02)
        else:
            # Not persistent: a function of the sizes, so it stays out of the saved weights.
            self.register_buffer(
                "position_table", sinusoidal_positions(config.max_positions, config.hidden_size), persistent=False
            )
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(
                config.hidden_size,
                config.num_heads,
                config.ff_size,
                dropout=config.dropout,
                norm=config.norm,
                impl=config.impl,
            )
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.hidden_size) if config.norm == "pre" else nn.Identity()
        self.impl = config.impl

    def _impl_changed(self, value: str) -> None:
        for layer in self.layers:
            layer.attention.impl = value

    def positions(self, length: int) -> Tensor:
        """(T,H) position vectors for positions 0..T-1."""
        if length > self.max_positions:
            raise EncoderkitError(
                f"sequence of {length} tokens is longer than encoder.max_positions={self.max_positions}; "
                "raise encoder.max_positions or lower tokenizer.max_length"
            )
        if self.positions_kind == "learned":
            return self.position_embedding.weight[:length]
        return self.position_table[:length]

    def forward(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """(B,T,E) inputs, (B,T) bool mask -> (B,T,hidden_size) states, zero at padding."""
        mask = mask.bool()
        x = self.input_projection(inputs)
        x = self.dropout(x + self.positions(x.shape[1]).to(x.dtype))
        for layer in self.layers:
            x = layer(x, mask)
        return zero_padding(self.final_norm(x), mask)
