"""Bag of embeddings: the token vectors themselves, pooled (mean/max) by the pooler.

    input (B,T,E) + mask (B,T) -> states (B,T,E), zero at padding

With ``mean`` pooling this is the fastText / deep-averaging-network idea: cheap and strong on
short texts. All of its parameters live in the embedding table.
"""

from __future__ import annotations

import torch

from encoderkit.config import BagOfEmbeddingsConfig
from encoderkit.encoders.base import Encoder, zero_padding


class BagOfEmbeddingsEncoder(Encoder):
    def __init__(self, input_size: int, config: BagOfEmbeddingsConfig | None = None):
        super().__init__()
        self.output_dim = input_size

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return zero_padding(inputs, mask)
