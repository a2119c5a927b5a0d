"""Poolers: token states (B,T,H) + mask (B,T) -> one sentence vector (B,H).

One ``pooling`` choice, no boolean flags:
- ``mean``: average of real tokens, ``sum_t m_t h_t / sum_t m_t``;
- ``max``: element-wise maximum over real tokens;
- ``cls``: the first token's state (the ``[CLS]`` token every tokenizer puts first);
- ``last``: the last real token's state; for bidirectional encoders the forward half is taken at
  the last real token and the backward half at the first token, where each direction ends;
- ``attention``: a learned weighted average, ``a = softmax(w . tanh(W h_t))`` over real tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from encoderkit.errors import ConfigError


class Pooler(nn.Module):
    def __init__(self, kind: str, dim: int, num_directions: int = 1):
        super().__init__()
        if kind not in POOLINGS:
            raise ConfigError(f"unknown pooling {kind!r}; valid poolings: {', '.join(POOLINGS)}")
        self.kind = kind
        self.dim = dim
        self.num_directions = num_directions
        if kind == "attention":
            self.attention_hidden = nn.Linear(dim, dim)
            self.attention_score = nn.Linear(dim, 1, bias=False)

    @property
    def output_dim(self) -> int:
        return self.dim

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"_{self.kind}")(states, mask)

    def _mean(self, states, mask):
        weights = mask.unsqueeze(-1).to(states.dtype)  # (B,T,1)
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def _max(self, states, mask):
        filled = states.masked_fill(~mask.unsqueeze(-1), torch.finfo(states.dtype).min)
        return filled.max(dim=1).values

    def _cls(self, states, mask):
        return states[:, 0]

    def _last(self, states, mask):
        last_index = mask.long().sum(1).clamp(min=1) - 1  # (B,)
        rows = torch.arange(states.size(0), device=states.device)
        last = states[rows, last_index]  # (B,H)
        if self.num_directions == 1:
            return last
        half = self.dim // 2
        # The backward direction reads right to left, so it ends at position 0.
        return torch.cat([last[:, :half], states[:, 0, half:]], dim=-1)

    def _attention(self, states, mask):
        scores = self.attention_score(torch.tanh(self.attention_hidden(states))).squeeze(-1)  # (B,T)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1).unsqueeze(-1)  # (B,T,1)
        return (weights * states).sum(1)

    def attention_weights(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,T) weights of the attention pooler (for interpretation)."""
        scores = self.attention_score(torch.tanh(self.attention_hidden(states))).squeeze(-1)
        return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), dim=-1)


POOLINGS = ("last", "mean", "max", "cls", "attention")
