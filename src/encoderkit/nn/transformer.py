"""A Transformer encoder layer: self-attention and a feed-forward block, each with a residual and
layer norm, in the post-norm (Vaswani et al. 2017) or pre-norm (Xiong et al. 2020) arrangement::

    post:  x = LN(x + Dropout(MHSA(x)))          pre:  x = x + Dropout(MHSA(LN(x)))
           x = LN(x + Dropout(FFN(x)))                 x = x + Dropout(FFN(LN(x)))

    FFN(x) = W_2 Dropout(act(W_1 x + b_1)) + b_2        W_1: (F,H), W_2: (H,F)

Shapes: x (B,T,H), mask (B,T) bool True at real tokens. ``copy_from_torch_layer`` maps the
parameters of ``torch.nn.TransformerEncoderLayer`` onto this layer (used by the parity tests).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from encoderkit.nn.attention import MultiHeadSelfAttention

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def check_layer_options(norm: str, activation: str) -> None:
    """Refuse an unknown norm arrangement or activation (encoder and decoder layers)."""
    if norm not in ("pre", "post"):
        raise ValueError(f"unknown norm {norm!r}; valid: pre, post")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")


class TransformerEncoderLayer(nn.Module):
    """One encoder layer.

    Args:
        hidden_size: H.
        num_heads: attention heads (divide H).
        ff_size: F, the inner size of the feed-forward block.
        dropout: dropout on attention weights, after each sub-block and inside the feed-forward block.
        norm: ``pre`` or ``post`` layer norm.
        activation: ``relu`` or ``gelu`` inside the feed-forward block.
        impl: attention implementation, ``fused`` or ``reference``.
        layer_norm_eps: epsilon of both layer norms (torch's default).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        ff_size: int,
        dropout: float = 0.1,
        norm: str = "pre",
        activation: str = "gelu",
        impl: str = "fused",
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        check_layer_options(norm, activation)
        self.norm = norm
        self.activation = activation
        self.attention = MultiHeadSelfAttention(hidden_size, num_heads, dropout, impl)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ff_in = nn.Linear(hidden_size, ff_size)
        self.ff_out = nn.Linear(ff_size, hidden_size)
        self.ff_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def feed_forward(self, x: Tensor) -> Tensor:
        """``W_2 Dropout(act(W_1 x + b_1)) + b_2``: (B,T,H) -> (B,T,F) -> (B,T,H)."""
        return self.ff_out(self.dropout(ACTIVATIONS[self.activation](self.ff_in(x))))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B,T,H) states, (B,T) bool mask -> (B,T,H) states (padding rows not zeroed)."""
        if self.norm == "pre":
            x = x + self.dropout(self.attention(self.attention_norm(x), mask))
            return x + self.dropout(self.feed_forward(self.ff_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attention(x, mask)))
        return self.ff_norm(x + self.dropout(self.feed_forward(x)))


#: encoderkit name -> torch.nn.TransformerEncoderLayer name.
TORCH_PARAMETER_NAMES = {
    "attention.qkv.weight": "self_attn.in_proj_weight",
    "attention.qkv.bias": "self_attn.in_proj_bias",
    "attention.out_proj.weight": "self_attn.out_proj.weight",
    "attention.out_proj.bias": "self_attn.out_proj.bias",
    "attention_norm.weight": "norm1.weight",
    "attention_norm.bias": "norm1.bias",
    "ff_in.weight": "linear1.weight",
    "ff_in.bias": "linear1.bias",
    "ff_out.weight": "linear2.weight",
    "ff_out.bias": "linear2.bias",
    "ff_norm.weight": "norm2.weight",
    "ff_norm.bias": "norm2.bias",
}


@torch.no_grad()
def copy_from_torch_layer(layer: TransformerEncoderLayer, torch_layer: nn.TransformerEncoderLayer) -> None:
    """Copy the parameters of a ``torch.nn.TransformerEncoderLayer`` into ``layer`` in place.

    ``norm1`` is the norm around attention and ``norm2`` the one around the feed-forward block in
    both of torch's arrangements (``norm_first`` True = pre, False = post), as here.

    Args:
        layer: the destination, with the same sizes.
        torch_layer: the source, built with ``batch_first=True``.
    """
    if torch_layer.norm_first != (layer.norm == "pre"):
        raise ValueError(f"norm mismatch: torch norm_first={torch_layer.norm_first}, ours {layer.norm!r}")
    source = dict(torch_layer.named_parameters())
    for name, parameter in layer.named_parameters():
        parameter.copy_(source[TORCH_PARAMETER_NAMES[name]])
