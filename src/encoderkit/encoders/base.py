"""The encoder contract every family implements.

An encoder maps embedded tokens to token states and honours the padding mask:

    forward(inputs (B,T,E) float, mask (B,T) bool, True = real token) -> states (B,T,H)

``H == output_dim``. Padding never changes the states of real tokens, and states at padded
positions are zero so a pooler cannot pick up garbage. Bidirectional encoders lay out each
state as ``[forward ; backward]`` and set ``num_directions = 2`` so the ``last`` pooler can take
the last real token of the forward direction and the first token of the backward one.
"""

from __future__ import annotations

import torch
from torch import nn

from encoderkit.errors import EncoderkitError
from encoderkit.nn.attention import IMPLS


class Encoder(nn.Module):
    """Base class: subclasses set ``output_dim`` (and ``num_directions`` when bidirectional)."""

    output_dim: int
    num_directions: int = 1
    #: True for encoders that embed token ids themselves (pretrained Transformers).
    takes_token_ids: bool = False

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class SwitchableImpl:
    """Mixin for encoders with a ``fused`` (PyTorch kernel) and a ``reference`` (readable) path.

    ``impl`` is settable on a live model; both paths share one set of parameters.
    """

    _impl: str = "fused"

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in IMPLS:
            raise EncoderkitError(f"unknown impl {value!r}; valid: {', '.join(IMPLS)}")
        self._impl = value
        self._impl_changed(value)

    def _impl_changed(self, value: str) -> None:
        """Hook for encoders whose sub-layers follow the choice."""


def zero_padding(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set states at padded positions to zero: (B,T,H) * (B,T,1)."""
    return states * mask.unsqueeze(-1).to(states.dtype)
