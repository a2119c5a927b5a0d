"""A Transformer decoder layer: causal self-attention, cross-attention on the source, feed-forward.

Each sub-block has a residual and a layer norm, post-norm (Vaswani et al. 2017) or pre-norm
(Xiong et al. 2020), as the encoder layer of ``nn/transformer.py``::

    post:  y = LN(y + Dropout(CausalMHSA(y)))          pre:  y = y + Dropout(CausalMHSA(LN(y)))
           y = LN(y + Dropout(MHA(y, M, M)))                 y = y + Dropout(MHA(LN(y), M, M))
           y = LN(y + Dropout(FFN(y)))                       y = y + Dropout(FFN(LN(y)))

    CausalMHSA: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + C) V,  C[i, j] = 0 if j <= i else -inf
    MHA(y, M, M): queries from the target states y, keys and values from the source states M,
                  padding keys of the source masked out.

Shapes: y (B,T,H) target states, M (B,S,H_M) source (memory) states, source mask (B,S) bool.

Incremental decoding: a ``cache`` dict per layer keeps the keys and values of the target tokens
decoded so far, so step t computes attention for its one new query against t cached keys instead of
recomputing the whole prefix (O(T) per step instead of O(T^2)); the source's keys and values are
projected once per sentence (``CrossAttention.project_memory``). A test proves both equal full
recomputation. ``copy_from_torch_decoder_layer`` maps ``torch.nn.TransformerDecoderLayer`` onto this
layer (the parity tests).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from encoderkit.nn.attention import IMPLS, scaled_dot_product_attention
from encoderkit.nn.transformer import ACTIVATIONS, check_layer_options


def _check(hidden_size: int, num_heads: int, impl: str) -> None:
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; valid: {', '.join(IMPLS)}")


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B,T,H) -> (B,heads,T,d_k)."""
    batch, length, hidden = x.shape
    return x.view(batch, length, num_heads, hidden // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B,heads,T,d_k) -> (B,T,H): the concatenation [head_1; ...; head_h]."""
    batch, heads, length, size = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * size)


def causal_attend(queries: int, keys: int, device=None) -> Tensor:
    """(T_q,T_k) bool: query i (the last T_q of T_k positions) may attend key j when j <= its position."""
    positions = torch.arange(keys - queries, keys, device=device).unsqueeze(1)  # (T_q,1)
    return torch.arange(keys, device=device).unsqueeze(0) <= positions


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position i sees positions <= i, with an optional key/value cache.

    ``qkv`` is one (3H,H) matrix with rows [W^Q; W^K; W^V], the layout of torch's ``in_proj_weight``.
    Right padding needs no key mask here: a real target token never sees the padding after it.

    Args:
        hidden_size: H = heads * d_k.
        num_heads: number of heads.
        dropout: dropout on the attention weights.
        impl: ``fused`` (torch's scaled_dot_product_attention) or ``reference`` (the softmax written out).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, impl: str = "fused"):
        super().__init__()
        _check(hidden_size, num_heads, impl)
        self.num_heads = num_heads
        self.dropout = dropout
        self.impl = impl
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        """(B,T,H) -> (B,T,H). With ``cache`` (a dict, empty at the first step) the T new positions
        follow those cached: their keys and values are appended to ``cache["key"]``/``cache["value"]``."""
        q, k, v = (split_heads(part, self.num_heads) for part in self.qkv(x).chunk(3, dim=-1))  # (B,heads,T,d_k)
        if cache is not None:
            if "key" in cache:
                k = torch.cat([cache["key"], k], dim=2)
                v = torch.cat([cache["value"], v], dim=2)
            cache["key"], cache["value"] = k, v
        queries, keys = q.shape[2], k.shape[2]
        dropout = self.dropout if self.training else 0.0
        if self.impl == "fused":
            if queries == keys:
                context = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
            else:  # one new query sees every cached key: no mask at all for a single step
                attend = None if queries == 1 else causal_attend(queries, keys, x.device)
                context = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=dropout)
        else:
            context, _ = scaled_dot_product_attention(q, k, v, causal_attend(queries, keys, x.device), dropout,
                                                      self.training)
        return self.out_proj(merge_heads(context))


class CrossAttention(nn.Module):
    """Multi-head attention of target states (queries) on source states (keys and values).

    ``query`` holds W^Q (H,H) and ``key_value`` holds [W^K; W^V] (2H,H_M): the source states may have
    another width than the decoder (a pretrained encoder's 384 under a 256-wide decoder).

    Args:
        hidden_size: H, the decoder width.
        num_heads: number of heads.
        memory_size: H_M, the width of the source states (default H).
        dropout: dropout on the attention weights.
        impl: ``fused`` or ``reference``.
    """

    def __init__(self, hidden_size: int, num_heads: int, memory_size: int | None = None, dropout: float = 0.0,
                 impl: str = "fused"):
        super().__init__()
        _check(hidden_size, num_heads, impl)
        self.num_heads = num_heads
        self.dropout = dropout
        self.impl = impl
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key_value = nn.Linear(memory_size or hidden_size, 2 * hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def project_memory(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of the source, each (B,heads,S,d_k): computed once per sentence."""
        key, value = self.key_value(memory).chunk(2, dim=-1)
        return split_heads(key, self.num_heads), split_heads(value, self.num_heads)

    def forward(self, x: Tensor, memory_kv: tuple[Tensor, Tensor], source_mask: Tensor,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Args:
            x: (B,T,H) target states.
            memory_kv: ``project_memory(memory)``.
            source_mask: (B,S) bool, True at real source tokens (every row has at least one).
            need_weights: also return the attention weights (always computed by the reference formula).

        Returns:
            (B,T,H) attended states and the weights (B,heads,T,S) or None.
        """
        q = split_heads(self.query(x), self.num_heads)
        k, v = memory_kv
        attend = source_mask.view(source_mask.shape[0], 1, 1, source_mask.shape[1])
        dropout = self.dropout if self.training else 0.0
        if self.impl == "fused" and not need_weights:
            context, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=dropout), None
        else:
            context, weights = scaled_dot_product_attention(q, k, v, attend, dropout, self.training)
        return self.out_proj(merge_heads(context)), weights


class TransformerDecoderLayer(nn.Module):
    """One decoder layer (see the module docstring).

    Args:
        hidden_size: H.
        num_heads: heads of both attentions (divide H).
        ff_size: F, the inner size of the feed-forward block.
        dropout: on attention weights, after each sub-block and inside the feed-forward block.
        norm: ``pre`` or ``post`` layer norm.
        activation: ``relu`` or ``gelu`` in the feed-forward block.
        impl: attention implementation, ``fused`` or ``reference``.
        memory_size: width of the source states (default H).
        layer_norm_eps: epsilon of the three layer norms (torch's default).
    """

    def __init__(self, hidden_size: int, num_heads: int, ff_size: int, dropout: float = 0.1, norm: str = "pre",
                 activation: str = "gelu", impl: str = "fused", memory_size: int | None = None,
                 layer_norm_eps: float = 1e-5):
        super().__init__()
        check_layer_options(norm, activation)
        self.norm = norm
        self.activation = activation
        self.self_attention = CausalSelfAttention(hidden_size, num_heads, dropout, impl)
        self.self_attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.cross_attention = CrossAttention(hidden_size, num_heads, memory_size, dropout, impl)
        self.cross_attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ff_in = nn.Linear(hidden_size, ff_size)
        self.ff_out = nn.Linear(ff_size, hidden_size)
        self.ff_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    @property
    def impl(self) -> str:
        return self.self_attention.impl

    @impl.setter
    def impl(self, value: str) -> None:
        self.self_attention.impl = self.cross_attention.impl = value

    def feed_forward(self, x: Tensor) -> Tensor:
        """``W_2 Dropout(act(W_1 x + b_1)) + b_2``: (B,T,H) -> (B,T,F) -> (B,T,H)."""
        return self.ff_out(self.dropout(ACTIVATIONS[self.activation](self.ff_in(x))))

    def forward(self, y: Tensor, memory_kv: tuple[Tensor, Tensor], source_mask: Tensor, cache: dict | None = None,
                need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Args:
            y: (B,T,H) target states (all positions, or the new ones when ``cache`` is given).
            memory_kv: ``self.cross_attention.project_memory(memory)``.
            source_mask: (B,S) bool.
            cache: this layer's key/value cache for incremental decoding (see ``CausalSelfAttention``).
            need_weights: return the cross-attention weights (B,heads,T,S).

        Returns:
            (B,T,H) states and the cross-attention weights (or None).
        """
        if self.norm == "pre":
            y = y + self.dropout(self.self_attention(self.self_attention_norm(y), cache))
            attended, weights = self.cross_attention(self.cross_attention_norm(y), memory_kv, source_mask, need_weights)
            y = y + self.dropout(attended)
            return y + self.dropout(self.feed_forward(self.ff_norm(y))), weights
        y = self.self_attention_norm(y + self.dropout(self.self_attention(y, cache)))
        attended, weights = self.cross_attention(y, memory_kv, source_mask, need_weights)
        y = self.cross_attention_norm(y + self.dropout(attended))
        return self.ff_norm(y + self.dropout(self.feed_forward(y))), weights


@torch.no_grad()
def copy_from_torch_decoder_layer(layer: TransformerDecoderLayer, torch_layer: nn.TransformerDecoderLayer) -> None:
    """Copy a ``torch.nn.TransformerDecoderLayer`` (``batch_first=True``) into ``layer`` in place.

    torch's ``norm1``/``norm2``/``norm3`` surround self-attention, cross-attention and the
    feed-forward block; its cross-attention ``in_proj_weight`` rows are [W^Q; W^K; W^V].
    """
    if torch_layer.norm_first != (layer.norm == "pre"):
        raise ValueError(f"norm mismatch: torch norm_first={torch_layer.norm_first}, ours {layer.norm!r}")
    hidden = layer.ff_out.out_features
    cross = torch_layer.multihead_attn
    pairs = {
        layer.self_attention.qkv.weight: torch_layer.self_attn.in_proj_weight,
        layer.self_attention.qkv.bias: torch_layer.self_attn.in_proj_bias,
        layer.self_attention.out_proj.weight: torch_layer.self_attn.out_proj.weight,
        layer.self_attention.out_proj.bias: torch_layer.self_attn.out_proj.bias,
        layer.cross_attention.query.weight: cross.in_proj_weight[:hidden],
        layer.cross_attention.query.bias: cross.in_proj_bias[:hidden],
        layer.cross_attention.key_value.weight: cross.in_proj_weight[hidden:],
        layer.cross_attention.key_value.bias: cross.in_proj_bias[hidden:],
        layer.cross_attention.out_proj.weight: cross.out_proj.weight,
        layer.cross_attention.out_proj.bias: cross.out_proj.bias,
        layer.self_attention_norm.weight: torch_layer.norm1.weight,
        layer.self_attention_norm.bias: torch_layer.norm1.bias,
        layer.cross_attention_norm.weight: torch_layer.norm2.weight,
        layer.cross_attention_norm.bias: torch_layer.norm2.bias,
        layer.ff_norm.weight: torch_layer.norm3.weight,
        layer.ff_norm.bias: torch_layer.norm3.bias,
        layer.ff_in.weight: torch_layer.linear1.weight,
        layer.ff_in.bias: torch_layer.linear1.bias,
        layer.ff_out.weight: torch_layer.linear2.weight,
        layer.ff_out.bias: torch_layer.linear2.bias,
    }
    for ours, theirs in pairs.items():
        ours.copy_(theirs)
