"""Scaled dot-product attention and multi-head self-attention, written from the equations.

``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V`` (Vaswani et al. 2017), where the mask
``M`` is 0 where a query may attend to a key and -inf where it may not (padding keys).

Two implementations with the same parameters: ``reference`` computes the softmax above with plain
tensor ops; ``fused`` calls ``torch.nn.functional.scaled_dot_product_attention`` with the padding
mask as a boolean ``attn_mask``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

IMPLS = ("fused", "reference")


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attend: Tensor | None = None,
    dropout: float = 0.0,
    training: bool = False,
) -> tuple[Tensor, Tensor]:
    """``softmax(Q K^T / sqrt(d_k) + M) V`` with ``M = 0`` where ``attend`` is True, ``-inf`` elsewhere.

    Args:
        query: (B,heads,T_q,d_k).
        key: (B,heads,T_k,d_k).
        value: (B,heads,T_k,d_v).
        attend: bool, broadcastable to (B,heads,T_q,T_k); True where the query may attend the key.
            Every query row must allow at least one key (else softmax is 0/0).
        dropout: dropout on the attention weights (training only).
        training: apply dropout.

    Returns:
        ``(context, weights)``: context (B,heads,T_q,d_v) and attention weights (B,heads,T_q,T_k).
    """
    d_k = query.shape[-1]
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_k)  # (B,heads,T_q,T_k)
    if attend is not None:
        scores = scores.masked_fill(~attend, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout > 0.0 and training:
        weights = F.dropout(weights, dropout, training=True)
    return weights @ value, weights


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention over one sequence.

    ``head_i = Attention(X W_i^Q, X W_i^K, X W_i^V)``, ``MultiHead(X) = [head_1; ...; head_h] W^O``.
    The three input projections are one (3H,H) matrix ``qkv`` (rows [W^Q; W^K; W^V]), the layout
    of ``torch.nn.MultiheadAttention.in_proj_weight``, so weights copy across directly.

    Args:
        hidden_size: H = heads * d_k.
        num_heads: number of heads.
        dropout: dropout on the attention weights.
        impl: ``fused`` (scaled_dot_product_attention) or ``reference``.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, impl: str = "fused"):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
        if impl not in IMPLS:
            raise ValueError(f"unknown impl {impl!r}; valid: {', '.join(IMPLS)}")
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.dropout = dropout
        self.impl = impl
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        #: Attention weights of the last reference forward pass, kept when ``keep_weights`` (for plots).
        self.keep_weights = False
        self.last_weights: Tensor | None = None

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        """Self-attention with padding keys hidden.

        Args:
            x: (B,T,H) inputs.
            key_mask: (B,T) bool, True at real tokens. A row without any real token is allowed
                to attend everywhere (its outputs are padding and get zeroed by the encoder),
                because a fully masked softmax row is 0/0 = NaN and NaN would leak into gradients.

        Returns:
            (B,T,H) attended states (padding rows are not zeroed here).
        """
        batch, length, hidden = x.shape
        # (B,T,3H) -> 3 x (B,heads,T,d_k)
        q, k, v = (
            self.qkv(x).view(batch, length, 3, self.num_heads, self.head_size).permute(2, 0, 3, 1, 4).unbind(0)
        )
        attend = (key_mask | ~key_mask.any(dim=1, keepdim=True)).view(batch, 1, 1, length)
        dropout = self.dropout if self.training else 0.0
        if self.impl == "fused" and not self.keep_weights:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=dropout)
        else:
            context, weights = scaled_dot_product_attention(q, k, v, attend, dropout, self.training)
            self.last_weights = weights.detach() if self.keep_weights else None
        context = context.transpose(1, 2).reshape(batch, length, hidden)  # concat heads: (B,T,H)
        return self.out_proj(context)
