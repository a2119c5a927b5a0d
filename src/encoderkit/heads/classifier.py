"""Classifier head: sentence vector (B,H) -> logits (B,C).

dropout -> [linear -> GELU -> dropout]* -> linear. With no ``hidden_sizes`` it is the classic
dropout + linear layer.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    def __init__(self, input_dim: int, num_labels: int, hidden_sizes: list[int] | tuple[int, ...] = (),
                 dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        width = input_dim
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_labels))
        self.layers = nn.Sequential(*layers)

    def forward(self, sentence_vectors: torch.Tensor) -> torch.Tensor:
        return self.layers(sentence_vectors)


class TextClassifier(nn.Module):
    """TextEncoder + ClassifierHead: ids (B,T), mask (B,T) -> logits (B,C)."""

    def __init__(self, text_encoder: nn.Module, head: ClassifierHead):
        super().__init__()
        self.text_encoder = text_encoder
        self.head = head

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.text_encoder(ids, mask))
