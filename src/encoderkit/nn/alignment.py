"""Attention for recurrent decoders: additive (Bahdanau et al. 2015) and multiplicative (Luong et al. 2015).

A decoder state ``s`` (the query) scores every source state ``h_j``, the scores become weights over the
real source tokens, and the context is their weighted mean::

    bahdanau:       e_j = v^T tanh(W_q s + W_k h_j)
    luong_dot:      e_j = s^T h_j                       (needs the sizes of s and h_j equal)
    luong_general:  e_j = s^T W_a h_j
    a = softmax(e) over real source tokens (padding gets weight 0),   c = sum_j a_j h_j

``keys(memory)`` computes the part that depends on the source only (``W_k h_j``, ``W_a h_j``, or
``h_j`` itself) once per sentence; ``forward`` takes queries of any number of steps T (1 while
decoding step by step, all of them at once where the decoder allows it).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def masked_weights(scores: Tensor, source_mask: Tensor) -> Tensor:
    """softmax over the last axis with padding keys excluded: scores (B,T,S), mask (B,S) -> (B,T,S)."""
    return torch.softmax(scores.masked_fill(~source_mask.unsqueeze(1), float("-inf")), dim=-1)


class AdditiveAttention(nn.Module):
    """``e_j = v^T tanh(W_q s + W_k h_j)`` (Bahdanau et al. 2015).

    Args:
        query_size: size of the decoder state s.
        memory_size: size of the source states h_j.
        hidden_size: size of the inner tanh layer (rows of W_q and W_k).
    """

    def __init__(self, query_size: int, memory_size: int, hidden_size: int):
        super().__init__()
        self.query_projection = nn.Linear(query_size, hidden_size, bias=False)  # W_q
        self.key_projection = nn.Linear(memory_size, hidden_size)  # W_k (its bias stands for the layer's)
        self.score = nn.Linear(hidden_size, 1, bias=False)  # v

    def keys(self, memory: Tensor) -> Tensor:
        """(B,S,M) source states -> (B,S,A) ``W_k h_j``."""
        return self.key_projection(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, source_mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B,T,Q), keys (B,S,A), memory (B,S,M), mask (B,S) -> context (B,T,M), weights (B,T,S)."""
        hidden = torch.tanh(self.query_projection(query).unsqueeze(2) + keys.unsqueeze(1))  # (B,T,S,A)
        weights = masked_weights(self.score(hidden).squeeze(-1), source_mask)  # (B,T,S)
        return weights @ memory, weights


class MultiplicativeAttention(nn.Module):
    """``e_j = s^T h_j`` (``general=False``) or ``e_j = s^T W_a h_j`` (Luong et al. 2015).

    Args:
        query_size: size of the decoder state s.
        memory_size: size of the source states h_j (must equal ``query_size`` for dot attention).
        general: learn ``W_a`` (query_size, memory_size).
    """

    def __init__(self, query_size: int, memory_size: int, general: bool):
        super().__init__()
        if not general and query_size != memory_size:
            raise ValueError(f"dot attention needs the decoder state ({query_size}) and the source states "
                             f"({memory_size}) to have one size; use general attention")
        self.projection = nn.Linear(memory_size, query_size, bias=False) if general else None  # W_a

    def keys(self, memory: Tensor) -> Tensor:
        """(B,S,M) -> (B,S,Q): ``W_a h_j``, or ``h_j`` itself for dot attention."""
        return memory if self.projection is None else self.projection(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, source_mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B,T,Q), keys (B,S,Q), memory (B,S,M), mask (B,S) -> context (B,T,M), weights (B,T,S)."""
        weights = masked_weights(query @ keys.transpose(1, 2), source_mask)  # (B,T,S)
        return weights @ memory, weights
