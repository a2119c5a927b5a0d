"""Attention as an explanation: the weights of every layer and head, attention rollout, the attention pooler.

Attention rollout (Abnar & Zuidema 2020) follows information through the residual stream: with
``A_l`` layer ``l``'s attention averaged over heads (T,T),

    Â_l = normalize_rows(0.5 A_l + 0.5 I),      R = Â_L ... Â_2 Â_1        (T,T), rows sum to 1

so ``R[i, j]`` is the share of input position ``j`` in the final state at position ``i``. The sentence
vector is pooled from the final states with weights ``p`` over positions (``pooling_weights``: the
``attention`` pooler's own softmax, ``1/n`` for ``mean``, the first token for ``cls``...), and the
relevance of each input position is ``p R``: it sums to 1 over the text.

Attention weights only exist where a model computes a softmax over positions: Transformer encoders
(from scratch or pretrained) and the ``attention`` pooler. The fused kernels never materialise the
weights (``scaled_dot_product_attention``; transformers' ``sdpa`` silently returns no attentions),
so for explanation only the Transformer runs its reference path and a pretrained model runs
transformers' ``eager`` attention; both compute the same states.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from encoderkit.encoders.pretrained import PretrainedEncoder
from encoderkit.encoders.transformer import TransformerEncoder


@dataclass
class AttentionMaps:
    """Attention of one text.

    Attributes:
        tokens: the token of every position (special tokens included).
        layers: (L, heads, T, T) weights, ``layers[l, h, i, j]`` = attention of position ``i`` to ``j``;
            None when the model has no attention layers (an RNN with the attention pooler).
        rollout: (T, T) attention rollout; None without attention layers.
        pooling: (T,) weights with which the sentence vector is pooled from the final states.
        relevance: (T,) ``pooling @ rollout`` (or ``pooling`` alone): each position's share of the vector.
    """

    tokens: list[str]
    layers: np.ndarray | None
    rollout: np.ndarray | None
    pooling: np.ndarray
    relevance: np.ndarray


def has_attention_layers(text_encoder) -> bool:
    return isinstance(text_encoder.encoder, (TransformerEncoder, PretrainedEncoder))


def gives_attention(text_encoder) -> bool:
    """Whether the ``attention`` method applies: attention layers, or the attention pooler."""
    return has_attention_layers(text_encoder) or text_encoder.pooler.kind == "attention"


def rollout(layers: np.ndarray) -> np.ndarray:
    """(L, heads, T, T) attention -> (T, T) rollout; rows sum to 1 (see the module docstring)."""
    length = layers.shape[-1]
    result = np.eye(length)
    for weights in layers:
        mixed = 0.5 * weights.mean(axis=0) + 0.5 * np.eye(length)
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        result = mixed @ result
    return result


@torch.no_grad()
def pooling_weights(pooler, states: Tensor, mask: Tensor) -> np.ndarray:
    """(1,T,H) final states -> (T,) weights with which ``pooler`` forms the sentence vector.

    For ``max`` pooling: the share of the vector's dimensions each position supplies; for ``last``
    with two directions: half to the last token (forward) and half to the first (backward).
    """
    real = mask[0].double()
    length = int(real.sum())
    weights = torch.zeros_like(real)
    if pooler.kind == "attention":
        weights = pooler.attention_weights(states, mask)[0].double()
    elif pooler.kind == "mean":
        weights = real / length
    elif pooler.kind == "cls":
        weights[0] = 1.0
    elif pooler.kind == "last":
        if pooler.num_directions == 2:
            weights[0] += 0.5
            weights[length - 1] += 0.5
        else:
            weights[length - 1] = 1.0
    else:  # max
        filled = states[0].masked_fill(~mask[0].unsqueeze(-1), torch.finfo(states.dtype).min)
        winners = filled.argmax(dim=0)  # (H,) the position supplying each dimension
        weights = torch.bincount(winners, minlength=states.shape[1]).double() / states.shape[-1]
    return weights.cpu().numpy()


@contextlib.contextmanager
def weights_kept(encoder: TransformerEncoder) -> Iterator[list]:
    """Run the Transformer's reference attention and keep each layer's weights for the duration."""
    attentions = [layer.attention for layer in encoder.layers]
    for attention in attentions:
        attention.keep_weights = True
    try:
        yield attentions
    finally:
        for attention in attentions:
            attention.keep_weights = False
            attention.last_weights = None


@contextlib.contextmanager
def eager_attention(encoder: PretrainedEncoder) -> Iterator[None]:
    """transformers' eager attention (which returns its weights) for the duration, then the previous one."""
    model = encoder.model
    previous = getattr(model.config, "_attn_implementation", None)
    if previous == "eager" or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


@torch.no_grad()
def attention_maps(text_encoder, ids: list[int], tokens: list[str]) -> AttentionMaps:
    """The attention of ``text_encoder`` on one text (ids with special tokens), in eval mode."""
    from encoderkit.encoders.base import zero_padding

    parameter = next(text_encoder.parameters(), None)
    ids_tensor = torch.tensor([ids], device=parameter.device if parameter is not None else "cpu")
    mask = torch.ones_like(ids_tensor, dtype=torch.bool)
    encoder = text_encoder.encoder
    was_training = text_encoder.training
    text_encoder.eval()
    layers = None
    try:
        if isinstance(encoder, PretrainedEncoder):
            with eager_attention(encoder):
                output = encoder.model(input_ids=ids_tensor, attention_mask=mask.long(), output_attentions=True)
            states = zero_padding(output.last_hidden_state.float(), mask)
            layers = torch.stack([weights[0] for weights in output.attentions]).double().cpu().numpy()
        elif isinstance(encoder, TransformerEncoder):
            with weights_kept(encoder) as attentions:
                states = text_encoder.token_states(ids_tensor, mask)
                layers = torch.stack([attention.last_weights[0] for attention in attentions]).double().cpu().numpy()
        else:
            states = text_encoder.token_states(ids_tensor, mask)
    finally:
        text_encoder.train(was_training)
    pooling = pooling_weights(text_encoder.pooler, states, mask)
    rolled = rollout(layers) if layers is not None else None
    relevance = pooling @ rolled if rolled is not None else pooling
    return AttentionMaps(list(tokens), layers, rolled, pooling, relevance)
