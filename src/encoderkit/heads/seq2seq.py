"""Decoders for translation, and ``Translator`` = a ``TextEncoder`` (the source side) + a decoder.

    source ids (B,S), mask (B,S) --TextEncoder.token_states--> memory (B,S,M)
    target ids y_0..y_{T-1} (B,T) + memory --decoder--> logits (B,T,V) for y_1..y_T

Every decoder has the same four methods, which is all that search (``encoderkit.search``) and the
training loss use:

- ``forward(target_in, memory, source_mask) -> logits (B,T,V)``: teacher forcing, all steps at once
  where the architecture allows it;
- ``start(memory, source_mask) -> state``: what decoding a batch of sentences needs (a dict of
  batch-first tensors, so ``select_rows`` can reorder it for beam search);
- ``step(tokens (B,), state, need_attention) -> (logits (B,V), attention (B,S) or None, state)``: one
  output position, given the previous token; the attention weights are those over the source for
  this output token (for a Transformer: its last layer's cross-attention, averaged over heads);
- ``max_length``: the longest output it can produce (None: unlimited).

``step`` run T times gives the same logits as ``forward`` (tests prove it for both decoders).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from encoderkit.config import RecurrentDecoderConfig, TransformerDecoderConfig
from encoderkit.encoders.transformer import sinusoidal_positions
from encoderkit.errors import ConfigError, EncoderkitError
from encoderkit.nn.alignment import AdditiveAttention, MultiplicativeAttention
from encoderkit.nn.decoder import TransformerDecoderLayer
from encoderkit.nn.precision import float32_recurrence

State = dict[str, Any]


def select_rows(state: Any, index: Tensor) -> Any:
    """``state`` with every tensor's rows (dim 0) taken at ``index`` (lists, tuples, dicts followed;
    other values kept): reorders or repeats decoding states for beam search."""
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {key: select_rows(value, index) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(select_rows(value, index) for value in state)
    return state


def target_embedding(vocab_size: int, dim: int, pad_id: int, shared: nn.Embedding | None) -> nn.Embedding:
    """The decoder's token table: ``shared`` (the source's, for a joint vocabulary) or a new one,
    N(0, 1/dim) as the encoder's, row ``pad_id`` zero."""
    if shared is not None:
        if shared.weight.shape != (vocab_size, dim):
            raise ConfigError(f"share_source_embedding needs the source table to be {vocab_size} x {dim} "
                              f"(the target vocabulary x the decoder's embedding size), but it is "
                              f"{tuple(shared.weight.shape)}; set embedding.dim to {dim} and use vocabulary: joint")
        return shared
    table = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
    nn.init.normal_(table.weight, std=dim ** -0.5)
    with torch.no_grad():
        table.weight[pad_id].zero_()
    return table


class TransformerDecoder(nn.Module):
    """A stack of ``TransformerDecoderLayer`` with token embeddings, positions and an output layer::

        y = Dropout(sqrt(H) E[y_t] + P[t])          (B,T,H)   E the (V,H) table, P sinusoidal or learned
        y = layer_l(y, M), l = 1..L                  causal self-attention, cross-attention on M, FFN
        logits = W_o LN(y)                           (B,T,V)   LN for pre-norm only; W_o = E when tied

    Args:
        config: the ``translate.decoder`` section.
        vocab_size: V, the target vocabulary.
        pad_id: the target padding id.
        memory_size: M, the width of the source states.
        shared_embedding: the source embedding table to share (``share_source_embedding``).
    """

    def __init__(self, config: TransformerDecoderConfig, vocab_size: int, pad_id: int, memory_size: int,
                 shared_embedding: nn.Embedding | None = None):
        super().__init__()
        hidden = config.hidden_size
        self.hidden_size = hidden
        self.embedding = target_embedding(vocab_size, hidden, pad_id, shared_embedding)
        self.scale = math.sqrt(hidden)
        self.max_length = config.max_positions
        self.positions_kind = config.positions
        if config.positions == "learned":
            self.position_embedding = nn.Embedding(config.max_positions, hidden)
            nn.init.normal_(self.position_embedding.weight, std=0.02)
        else:
            self.register_buffer("position_table", sinusoidal_positions(config.max_positions, hidden), persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(hidden, config.num_heads, config.ff_size, dropout=config.dropout, norm=config.norm,
                                    impl=config.impl, memory_size=memory_size)
            for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(hidden) if config.norm == "pre" else nn.Identity()
        self.output = nn.Linear(hidden, vocab_size, bias=False)
        if config.tie_output:
            self.output.weight = self.embedding.weight

    @property
    def impl(self) -> str:
        return self.layers[0].impl

    @impl.setter
    def impl(self, value: str) -> None:
        for layer in self.layers:
            layer.impl = value

    def positions(self, start: int, length: int) -> Tensor:
        """(T,H) position vectors for positions start..start+T-1."""
        if start + length > self.max_length:
            raise EncoderkitError(f"a target of {start + length} tokens is longer than translate.decoder.max_positions="
                                  f"{self.max_length}")
        table = self.position_embedding.weight if self.positions_kind == "learned" else self.position_table
        return table[start:start + length]

    def embed(self, tokens: Tensor, start: int) -> Tensor:
        """(B,T) ids at positions start.. -> (B,T,H) ``Dropout(sqrt(H) E[y] + P[t])``."""
        x = self.embedding(tokens) * self.scale
        return self.dropout(x + self.positions(start, tokens.shape[1]).to(x.dtype))

    def forward(self, target_in: Tensor, memory: Tensor, source_mask: Tensor) -> Tensor:
        """target_in (B,T) ids, memory (B,S,M), source_mask (B,S) bool -> logits (B,T,V)."""
        y = self.embed(target_in, 0)
        for layer in self.layers:
            y, _ = layer(y, layer.cross_attention.project_memory(memory), source_mask)
        return self.output(self.final_norm(y))

    def start(self, memory: Tensor, source_mask: Tensor) -> State:
        """The source's keys and values per layer (projected once), empty self-attention caches."""
        return {"memory_kv": [layer.cross_attention.project_memory(memory) for layer in self.layers],
                "source_mask": source_mask, "cache": [{} for _ in self.layers], "position": 0}

    def step(self, tokens: Tensor, state: State, need_attention: bool = False) -> tuple[Tensor, Tensor | None, State]:
        """tokens (B,) -> logits (B,V), the last layer's cross-attention (B,S) averaged over heads (or None)."""
        y = self.embed(tokens.unsqueeze(1), state["position"])  # (B,1,H)
        weights = None
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            y, weights = layer(y, state["memory_kv"][index], state["source_mask"], cache=state["cache"][index],
                               need_weights=need_attention and index == last)
        state = {**state, "position": state["position"] + 1}
        attention = weights.mean(dim=1)[:, 0] if weights is not None else None
        return self.output(self.final_norm(y[:, 0])), attention, state


class RecurrentDecoder(nn.Module):
    """A GRU or LSTM decoder with attention over the source states, one output token per step::

        x_t = Dropout(sqrt(E) E[y_{t-1}])                                   (B,E)
        bahdanau:  c_t, a_t = Attention(s_{t-1}, h);  s_t = RNN([x_t; c_t (; h~_{t-1})], s_{t-1})
        luong_*:   s_t = RNN([x_t (; h~_{t-1})], s_{t-1});  c_t, a_t = Attention(s_t, h)
        h~_t = tanh(W_c [s_t; c_t; x_t])                 the attentional vector   (B,E)
        logits_t = W_o Dropout(h~_t)                                          (B,V)

    ``(; h~_{t-1})`` is input feeding (Luong et al. 2015): the previous attentional vector joins the
    input, so the decoder knows what it attended to before. The attentional vector has the size E of
    the embeddings (Luong's has the recurrent size H): the output layer, the largest matrix of the
    model (V rows), costs E/H as much, and it can be the embedding table itself (``tie_output``).
    As in the Transformer decoder the table starts at N(0, 1/E), small enough to be an output layer,
    and is scaled by sqrt(E) on the way in, so the recurrence sees inputs of unit size. The first state is
    ``s_0 = tanh(W_b mean_j h_j)`` (``init: mean``) or zeros; ``s_t`` is the top layer's state.
    Without input feeding, Luong attention reads states the recurrence has already produced, so
    ``forward`` runs the fused RNN over all steps at once; otherwise it steps through time.

    Args:
        config: the ``translate.decoder`` section (``kind: rnn``).
        vocab_size: V.
        pad_id: the target padding id.
        memory_size: M, the width of the source states (2 x hidden for a bidirectional encoder).
        shared_embedding: the source embedding table to share.
    """

    def __init__(self, config: RecurrentDecoderConfig, vocab_size: int, pad_id: int, memory_size: int,
                 shared_embedding: nn.Embedding | None = None):
        super().__init__()
        hidden, dim = config.hidden_size, config.embedding_dim
        self.cell = config.cell
        self.attention_kind = config.attention
        self.input_feeding = config.input_feeding
        self.num_layers = config.num_layers
        self.hidden_size = hidden
        self.max_length = None
        self.embedding = target_embedding(vocab_size, dim, pad_id, shared_embedding)
        self.scale = math.sqrt(dim)
        if config.attention == "bahdanau":
            self.attention = AdditiveAttention(hidden, memory_size, hidden)
        else:
            if config.attention == "luong_dot" and hidden != memory_size:
                raise ConfigError(f"attention luong_dot needs translate.decoder.hidden_size ({hidden}) equal to the "
                                  f"width of the source states ({memory_size}); set it so or use luong_general")
            self.attention = MultiplicativeAttention(hidden, memory_size, general=config.attention == "luong_general")
        input_size = dim + (memory_size if config.attention == "bahdanau" else 0) + (dim if config.input_feeding else 0)
        module = nn.GRU if config.cell == "gru" else nn.LSTM
        self.rnn = module(input_size, hidden, num_layers=config.num_layers, batch_first=True,
                          dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.bridge = nn.Linear(memory_size, config.num_layers * hidden) if config.init == "mean" else None
        self.combine = nn.Linear(hidden + memory_size + dim, dim)  # W_c
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(dim, vocab_size)  # W_o
        if config.tie_output:
            self.output.weight = self.embedding.weight

    def start(self, memory: Tensor, source_mask: Tensor) -> State:
        batch = memory.shape[0]
        if self.bridge is not None:
            weights = source_mask.unsqueeze(-1).to(memory.dtype)
            mean = (memory * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B,M)
            hidden = torch.tanh(self.bridge(mean)).view(batch, self.num_layers, self.hidden_size)
        else:
            hidden = memory.new_zeros(batch, self.num_layers, self.hidden_size)
        state = {"memory": memory, "source_mask": source_mask, "keys": self.attention.keys(memory), "hidden": hidden}
        if self.cell == "lstm":
            state["cell"] = torch.zeros_like(hidden)
        if self.input_feeding:
            state["feed"] = memory.new_zeros(batch, self.embedding.embedding_dim)
        return state

    def _recurrent_state(self, state: State):
        hidden = state["hidden"].transpose(0, 1).contiguous()  # torch wants (L,B,H)
        return (hidden, state["cell"].transpose(0, 1).contiguous()) if self.cell == "lstm" else hidden

    def _cells(self, inputs: Tensor, state: State) -> State:
        """One time step through every layer with torch's fused cells on the recurrent module's own
        weights (a length-1 call of ``nn.GRU`` costs several times more on a CPU): new hidden (and cell) states."""
        hidden, cells, layer_input = [], [], inputs
        for layer in range(self.num_layers):
            weights = [getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if self.cell == "lstm":
                h, c = float32_recurrence(torch.lstm_cell, layer_input, (state["hidden"][:, layer], state["cell"][:, layer]), *weights)
                cells.append(c)
            else:
                h = float32_recurrence(torch.gru_cell, layer_input, state["hidden"][:, layer], *weights)
            hidden.append(h)
            layer_input = nn.functional.dropout(h, self.rnn.dropout, self.training) if layer < self.num_layers - 1 else h
        new = {"hidden": torch.stack(hidden, dim=1)}
        if cells:
            new["cell"] = torch.stack(cells, dim=1)
        return new

    def _attend(self, query: Tensor, state: State) -> tuple[Tensor, Tensor]:
        return self.attention(query, state["keys"], state["memory"], state["source_mask"])

    def step(self, tokens: Tensor, state: State, need_attention: bool = False) -> tuple[Tensor, Tensor | None, State]:
        """tokens (B,) -> logits (B,V), attention over the source (B,S), the next state."""
        x = self.dropout(self.embedding(tokens) * self.scale)  # (B,E)
        inputs = [x]
        if self.attention_kind == "bahdanau":
            context, weights = self._attend(state["hidden"][:, -1:], state)  # query s_{t-1} (B,1,H)
            inputs.append(context[:, 0])
        if self.input_feeding:
            inputs.append(state["feed"])
        state = {**state, **self._cells(torch.cat(inputs, dim=-1), state)}
        s = state["hidden"][:, -1]  # s_t, the top layer's state (B,H)
        if self.attention_kind != "bahdanau":
            context, weights = self._attend(s.unsqueeze(1), state)
        attentional = torch.tanh(self.combine(torch.cat([s, context[:, 0], x], dim=-1)))  # h~_t (B,E)
        if self.input_feeding:
            state["feed"] = attentional
        return self.output(self.dropout(attentional)), weights[:, 0] if need_attention else None, state

    def forward(self, target_in: Tensor, memory: Tensor, source_mask: Tensor) -> Tensor:
        """target_in (B,T) ids, memory (B,S,M), source_mask (B,S) bool -> logits (B,T,V)."""
        state = self.start(memory, source_mask)
        if self.attention_kind == "bahdanau" or self.input_feeding:
            logits = []
            for t in range(target_in.shape[1]):
                step_logits, _, state = self.step(target_in[:, t], state)
                logits.append(step_logits)
            return torch.stack(logits, dim=1)
        x = self.dropout(self.embedding(target_in) * self.scale)  # (B,T,E)
        output, _ = float32_recurrence(self.rnn, x, self._recurrent_state(state))  # (B,T,H); padding comes after real tokens
        context, _ = self._attend(output, state)  # (B,T,M)
        attentional = torch.tanh(self.combine(torch.cat([output, context, x], dim=-1)))
        return self.output(self.dropout(attentional))


#: decoder kind -> class built as ``cls(config, vocab_size, pad_id, memory_size, shared_embedding)``.
DECODERS: dict[str, type[nn.Module]] = {"transformer": TransformerDecoder, "rnn": RecurrentDecoder}


class Translator(nn.Module):
    """A text encoder for the source and a decoder for the target.

    ``forward(source_ids (B,S), source_mask (B,S), target_in (B,T)) -> logits (B,T,V)``; ``encode``
    gives the memory the decoder attends to, ``text_encoder.token_states`` unchanged.
    """

    def __init__(self, text_encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.text_encoder = text_encoder
        self.decoder = decoder

    def encode(self, source_ids: Tensor, source_mask: Tensor) -> Tensor:
        return self.text_encoder.token_states(source_ids, source_mask)

    def forward(self, source_ids: Tensor, source_mask: Tensor, target_in: Tensor) -> Tensor:
        return self.decoder(target_in, self.encode(source_ids, source_mask), source_mask)


def build_decoder(config, vocab_size: int, pad_id: int, memory_size: int,
                  shared_embedding: nn.Embedding | None = None) -> nn.Module:
    """The decoder named by ``config.kind`` (``translate.decoder``)."""
    return DECODERS[config.kind](config, vocab_size, pad_id, memory_size, shared_embedding)
