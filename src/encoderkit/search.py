"""Search: greedy and batched beam search over any decoder of ``heads/seq2seq.py``.

Kept apart from the models (as joeynmt's ``search.py``): a search needs only a decoder's
``start(memory, source_mask)`` and ``step(tokens, state) -> logits``, and ``select_rows`` to reorder
its state. Both searches run a whole batch of sentences at once and drop finished sentences from
the batch as they go.

Scores. A hypothesis y_1..y_n (its last token ``</s>``) has log-probability
``log p(y | x) = sum_t log p(y_t | y_<t, x)``; beam search ranks finished hypotheses by the GNMT length
penalty (Wu et al. 2016)::

    score(y) = log p(y | x) / lp(n),    lp(n) = ((5 + n) / 6) ** alpha

(alpha = 0: plain log-probability, which favours short outputs; alpha = 1: about per-token).
Lengths: sentence b may have at most ``max_lengths[b]`` output tokens, ``</s>`` included; at that
length only ``</s>`` may follow. Tokens in ``banned`` (padding, ``<s>``) are never produced.

Beam search keeps ``beam_size`` open hypotheses per sentence (fairseq's scheme): each step takes
the best ``2 * beam_size`` extensions, a ``</s>`` among the best ``beam_size`` finishes a hypothesis,
and the best ``beam_size`` others stay open. Early finish: a sentence is done once it has
``beam_size`` finished hypotheses (none still open can then enter the final n-best list without
displacing one that finished earlier at a higher rank), or at its maximum length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from encoderkit.heads.seq2seq import select_rows


@dataclass
class Hypothesis:
    """One output: its tokens (``</s>`` excluded), the ranking score, the log-probability, and the
    attention over the source for each output token, ``</s>`` included: (n+1, S) or None."""

    tokens: list[int]
    score: float
    log_probability: float
    attention: Tensor | None = None


def length_penalty(length: int | Tensor, alpha: float):
    """GNMT's ``((5 + n) / 6) ** alpha``."""
    return ((5.0 + length) / 6.0) ** alpha


def _log_probs(decoder, tokens: Tensor, state, need_attention: bool, banned: Tensor | None,
               eos_id: int, at_limit: Tensor) -> tuple[Tensor, Tensor | None, dict]:
    """One step: log-softmax (B,V) with banned tokens at -inf and only ``</s>`` allowed at the limit."""
    logits, attention, state = decoder.step(tokens, state, need_attention)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    if banned is not None:
        log_probs[:, banned] = float("-inf")
    if bool(at_limit.any()):
        eos_column = log_probs[at_limit, eos_id].clone()
        log_probs[at_limit] = float("-inf")
        log_probs[at_limit, eos_id] = eos_column
    return log_probs, attention, state


def _banned_tensor(banned: Sequence[int], eos_id: int, device) -> Tensor | None:
    ids = sorted({int(i) for i in banned} - {eos_id})
    return torch.tensor(ids, dtype=torch.long, device=device) if ids else None


@torch.no_grad()
def greedy_search(decoder, memory: Tensor, source_mask: Tensor, *, bos_id: int, eos_id: int, max_lengths: Tensor,
                  banned: Sequence[int] = (), need_attention: bool = False) -> list[Hypothesis]:
    """The most probable next token at every step, for a batch of sentences.

    Args:
        decoder: a decoder of ``heads/seq2seq.py`` (``start``/``step``).
        memory: (B,S,M) source states.
        source_mask: (B,S) bool.
        bos_id: the first input token (``<s>``).
        eos_id: the token that ends an output (``</s>``).
        max_lengths: (B,) long, the most output tokens per sentence, ``</s>`` included (>= 1).
        banned: token ids never produced (padding, ``<s>``).
        need_attention: keep each output token's attention over the source.

    Returns:
        One ``Hypothesis`` per sentence, in input order (``score`` = log-probability).
    """
    batch, device = memory.shape[0], memory.device
    banned_ids = _banned_tensor(banned, eos_id, device)
    state = decoder.start(memory, source_mask)
    alive = torch.arange(batch, device=device)  # which input sentence each row is
    tokens = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    totals = [0.0] * batch
    attentions: list[list[Tensor]] = [[] for _ in range(batch)]
    limits = max_lengths.to(device)
    step = 0
    while alive.numel():
        log_probs, attention, state = _log_probs(decoder, tokens, state, need_attention, banned_ids, eos_id,
                                                 limits[alive] <= step + 1)
        best, tokens = log_probs.max(dim=-1)
        for row, (sentence, token, value) in enumerate(zip(alive.tolist(), tokens.tolist(), best.tolist())):
            totals[sentence] += value
            if token != eos_id:
                outputs[sentence].append(token)
            if attention is not None:
                attentions[sentence].append(attention[row].cpu())
        keep = (tokens != eos_id).nonzero().squeeze(1)
        if keep.numel() < alive.numel():
            alive, tokens, state = alive[keep], tokens[keep], select_rows(state, keep)
        step += 1
    return [Hypothesis(outputs[b], totals[b], totals[b], torch.stack(attentions[b]) if need_attention else None)
            for b in range(batch)]


@torch.no_grad()
def beam_search(decoder, memory: Tensor, source_mask: Tensor, *, beam_size: int, bos_id: int, eos_id: int,
                max_lengths: Tensor, alpha: float = 1.0, banned: Sequence[int] = (), need_attention: bool = False,
                n_best: int = 1) -> list[list[Hypothesis]]:
    """Batched beam search (see the module docstring).

    Args:
        decoder, memory, source_mask, bos_id, eos_id, max_lengths, banned, need_attention: as ``greedy_search``.
        beam_size: K, open hypotheses per sentence.
        alpha: the length penalty's exponent.
        n_best: how many finished hypotheses to return per sentence (<= beam_size), best first.

    Returns:
        Per sentence, in input order, its ``n_best`` hypotheses sorted by score (best first).
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be between 1 and beam_size ({beam_size}), got {n_best}")
    batch, device, k = memory.shape[0], memory.device, beam_size
    banned_ids = _banned_tensor(banned, eos_id, device)
    # Each sentence's state repeated K times: rows b*K .. b*K+K-1 are sentence b's beams.
    state = select_rows(decoder.start(memory, source_mask), torch.arange(batch, device=device).repeat_interleave(k))
    alive = torch.arange(batch, device=device)  # input sentence of each alive group of K rows
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # at the start all K beams are the same empty prefix: keep only one
    history = torch.empty(batch * k, 0, dtype=torch.long, device=device)  # tokens so far per row
    attention_history: Tensor | None = None  # (rows, t, S)
    tokens = torch.full((batch * k,), bos_id, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    limits = max_lengths.to(device)
    step = 0
    while alive.numel():
        groups = alive.numel()
        at_limit = (limits[alive] <= step + 1).repeat_interleave(k)
        log_probs, attention, state = _log_probs(decoder, tokens, state, need_attention, banned_ids, eos_id, at_limit)
        vocab = log_probs.shape[-1]
        if attention is not None:
            attention = attention.float().unsqueeze(1)
            attention_history = attention if attention_history is None else torch.cat([attention_history, attention], 1)
        candidates = (scores.view(-1, 1) + log_probs).view(groups, k * vocab)
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)  # (G,2K)
        top_beam, top_token = top_index // vocab, top_index % vocab
        ends = top_token == eos_id
        # A </s> among the best K finishes its hypothesis (never a -inf one).
        for group, position in (ends[:, :k] & torch.isfinite(top_scores[:, :k])).nonzero().tolist():
            sentence = int(alive[group])
            if len(finished[sentence]) >= k:
                continue
            row = group * k + int(top_beam[group, position])
            log_probability = float(top_scores[group, position])
            finished[sentence].append(Hypothesis(
                history[row].tolist(), log_probability / length_penalty(step + 1, alpha), log_probability,
                attention_history[row].cpu() if attention_history is not None else None))
        # The best K extensions that do not end stay open (at most K of the 2K end, so K remain).
        rank = ends.long() * top_index.shape[1] + torch.arange(top_index.shape[1], device=device)
        chosen = rank.topk(k, dim=1, largest=False).indices  # (G,K) positions among the 2K
        rows = (torch.arange(groups, device=device).unsqueeze(1) * k + top_beam.gather(1, chosen)).view(-1)
        scores = top_scores.gather(1, chosen)
        tokens = top_token.gather(1, chosen).view(-1)
        history = torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        if attention_history is not None:
            attention_history = attention_history[rows]
        state = select_rows(state, rows)
        step += 1
        done = torch.tensor([len(finished[int(s)]) >= k for s in alive.tolist()], device=device)
        done |= limits[alive] <= step
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            keep_rows = (keep.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
            alive, scores, tokens, history = alive[keep], scores[keep], tokens[keep_rows], history[keep_rows]
            if attention_history is not None:
                attention_history = attention_history[keep_rows]
            state = select_rows(state, keep_rows)
    return [sorted(hypotheses, key=lambda h: -h.score)[:n_best] for hypotheses in finished]
