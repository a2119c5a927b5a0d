"""Search: beam search finds what exhaustive search finds, batched equals one sentence at a time,
beam 1 is greedy, limits and banned tokens hold, and every decoder's ``step`` equals its ``forward``."""

from __future__ import annotations

import itertools

import pytest
import torch

from encoderkit.config import RecurrentDecoderConfig, TransformerDecoderConfig
from encoderkit.heads.seq2seq import RecurrentDecoder, TransformerDecoder
from encoderkit.search import beam_search, greedy_search, length_penalty

PAD, BOS, EOS = 0, 1, 2
VOCAB = 6  # real tokens 3, 4, 5
BANNED = (PAD, BOS)


def transformer_decoder(seed=0, vocab=VOCAB, memory_size=8, **options):
    torch.manual_seed(seed)
    config = TransformerDecoderConfig(hidden_size=8, num_layers=2, num_heads=2, ff_size=16, dropout=0.0, **options)
    return TransformerDecoder(config, vocab, PAD, memory_size).eval()


def recurrent_decoder(seed=0, vocab=VOCAB, memory_size=8, **options):
    torch.manual_seed(seed)
    config = RecurrentDecoderConfig(**{"embedding_dim": 6, "hidden_size": 8, "dropout": 0.0, **options})
    return RecurrentDecoder(config, vocab, PAD, memory_size).eval()


def sources(lengths, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    mask = torch.arange(max(lengths)).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return torch.randn(len(lengths), max(lengths), size, generator=generator) * mask.unsqueeze(-1), mask


def sequence_log_probability(decoder, memory, mask, tokens):
    """log p(tokens + </s>) by teacher forcing (one sentence)."""
    target_in = torch.tensor([[BOS, *tokens]])
    with torch.no_grad():
        log_probs = torch.log_softmax(decoder(target_in, memory, mask).float(), dim=-1)[0]
    return sum(float(log_probs[t, token]) for t, token in enumerate([*tokens, EOS]))


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("make", [transformer_decoder, recurrent_decoder], ids=["transformer", "gru"])
def test_beam_search_with_a_wide_beam_equals_exhaustive_search(make, alpha):
    """Up to 3 output tokens over 3 real tokens: 1 + 3 + 9 = 13 hypotheses; a beam of 13 never prunes,
    so its best (and its whole ranking) must be the exhaustive one."""
    decoder = make(seed=7)
    memory, mask = sources([4], seed=3)
    limit = 3
    candidates = [list(tokens) for n in range(limit) for tokens in itertools.product((3, 4, 5), repeat=n)]
    exhaustive = sorted(((sequence_log_probability(decoder, memory, mask, tokens)
                          / length_penalty(len(tokens) + 1, alpha), tokens) for tokens in candidates), reverse=True)
    found = beam_search(decoder, memory, mask, beam_size=len(candidates), bos_id=BOS, eos_id=EOS,
                        max_lengths=torch.tensor([limit]), alpha=alpha, banned=BANNED, n_best=len(candidates))[0]
    assert len(found) == len(candidates)
    assert [h.tokens for h in found] == [tokens for _, tokens in exhaustive]
    assert [h.score for h in found] == pytest.approx([score for score, _ in exhaustive], abs=1e-5)


def test_a_narrow_beam_can_beat_greedy_and_never_loses_to_it_here():
    """Over many random models a beam of 4 finds a hypothesis at least as probable as greedy's, and
    strictly better for some (otherwise the test could not tell beam search from greedy)."""
    better = 0
    for seed in range(20):
        decoder = transformer_decoder(seed=seed)
        memory, mask = sources([5], seed=seed)
        limits = torch.tensor([6])
        greedy = greedy_search(decoder, memory, mask, bos_id=BOS, eos_id=EOS, max_lengths=limits, banned=BANNED)[0]
        beam = beam_search(decoder, memory, mask, beam_size=4, bos_id=BOS, eos_id=EOS, max_lengths=limits,
                           alpha=0.0, banned=BANNED)[0][0]
        assert beam.log_probability >= greedy.log_probability - 1e-5
        better += beam.log_probability > greedy.log_probability + 1e-4
    assert better > 0


@pytest.mark.parametrize("make", [transformer_decoder, recurrent_decoder], ids=["transformer", "gru"])
def test_beam_of_one_is_greedy(make):
    decoder = make(seed=3)
    memory, mask = sources([5, 2, 7, 3], seed=1)
    limits = torch.tensor([8, 4, 9, 6])
    greedy = greedy_search(decoder, memory, mask, bos_id=BOS, eos_id=EOS, max_lengths=limits, banned=BANNED)
    beam = beam_search(decoder, memory, mask, beam_size=1, bos_id=BOS, eos_id=EOS, max_lengths=limits, alpha=0.0,
                       banned=BANNED)
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    assert [h.log_probability for h in greedy] == pytest.approx([b[0].log_probability for b in beam], abs=1e-5)


@pytest.mark.parametrize("make", [transformer_decoder, recurrent_decoder], ids=["transformer", "gru"])
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_batched_search_equals_one_sentence_at_a_time(make, search):
    decoder = make(seed=11)
    lengths = [6, 2, 5, 3, 6, 1]
    memory, mask = sources(lengths, seed=5)
    limits = torch.tensor([9, 3, 8, 5, 10, 2])

    def run(memory, mask, limits):
        if search == "greedy":
            return [h for h in greedy_search(decoder, memory, mask, bos_id=BOS, eos_id=EOS, max_lengths=limits,
                                             banned=BANNED, need_attention=True)]
        return [b[0] for b in beam_search(decoder, memory, mask, beam_size=3, bos_id=BOS, eos_id=EOS,
                                          max_lengths=limits, alpha=1.0, banned=BANNED, need_attention=True)]

    together = run(memory, mask, limits)
    for b, length in enumerate(lengths):
        alone = run(memory[b:b + 1, :length], mask[b:b + 1, :length], limits[b:b + 1])[0]
        assert together[b].tokens == alone.tokens
        assert together[b].score == pytest.approx(alone.score, abs=1e-4)
        torch.testing.assert_close(together[b].attention[:, :length], alone.attention, atol=1e-5, rtol=0)
        assert torch.all(together[b].attention[:, length:] == 0)  # padding gets no attention


class EndsLate:
    """A decoder whose </s> is very unlikely, so outputs run to their length limit."""

    def __init__(self, decoder):
        self.decoder = decoder

    def start(self, memory, mask):
        return self.decoder.start(memory, mask)

    def step(self, tokens, state, need_attention=False):
        logits, attention, state = self.decoder.step(tokens, state, need_attention)
        logits[:, EOS] -= 30.0
        return logits, attention, state


def test_limits_banned_tokens_and_attention_shapes():
    decoder = EndsLate(transformer_decoder(seed=2))
    memory, mask = sources([4, 3], seed=2)
    limits = torch.tensor([5, 2])
    for hypotheses in (greedy_search(decoder, memory, mask, bos_id=BOS, eos_id=EOS, max_lengths=limits,
                                     banned=BANNED, need_attention=True),
                       [b[0] for b in beam_search(decoder, memory, mask, beam_size=3, bos_id=BOS, eos_id=EOS,
                                                  max_lengths=limits, banned=BANNED, need_attention=True)]):
        for hypothesis, limit, length in zip(hypotheses, limits.tolist(), [4, 3]):
            assert len(hypothesis.tokens) + 1 <= limit
            assert not set(hypothesis.tokens) & {PAD, BOS, EOS}
            assert hypothesis.attention.shape == (len(hypothesis.tokens) + 1, 4)
            torch.testing.assert_close(hypothesis.attention.sum(-1), torch.ones(len(hypothesis.tokens) + 1))
        assert len(hypotheses[1].tokens) == 1  # limit 2 = one token and </s>


def stepwise(decoder, memory, mask, target_in):
    """Logits (B,T,V) and attention (B,T,S) of ``step`` run over every position of ``target_in``."""
    state = decoder.start(memory, mask)
    logits, attention = [], []
    for t in range(target_in.shape[1]):
        step_logits, step_attention, state = decoder.step(target_in[:, t], state, need_attention=True)
        logits.append(step_logits)
        attention.append(step_attention)
    return torch.stack(logits, 1), torch.stack(attention, 1)


@pytest.mark.parametrize("options", [{}, {"norm": "post"}, {"positions": "learned"}, {"tie_output": False}])
def test_transformer_steps_with_cache_equal_teacher_forcing(options):
    decoder = transformer_decoder(seed=4, memory_size=6, **options)
    memory, mask = sources([5, 3], size=6, seed=4)
    target_in = torch.tensor([[BOS, 3, 4, 5, 3], [BOS, 5, 5, 0, 0]])
    full = decoder(target_in, memory, mask)
    steps, attention = stepwise(decoder, memory, mask, target_in)
    assert attention.shape == (2, 5, 5)
    torch.testing.assert_close(steps[:, :3], full[:, :3], atol=1e-5, rtol=0)
    torch.testing.assert_close(steps[0], full[0], atol=1e-5, rtol=0)  # row 1 is padding after 3 tokens


@pytest.mark.parametrize("options", [
    {"attention": "bahdanau"},
    {"attention": "bahdanau", "input_feeding": True, "cell": "lstm"},
    {"attention": "luong_general"},
    {"attention": "luong_general", "input_feeding": True},
    {"attention": "luong_dot", "num_layers": 2, "init": "zero"},
    {"attention": "luong_general", "cell": "lstm", "num_layers": 2},
], ids=["bahdanau", "bahdanau-feed-lstm", "general", "general-feed", "dot-2layers-zero", "general-lstm-2layers"])
def test_recurrent_steps_equal_teacher_forcing(options):
    decoder = recurrent_decoder(seed=5, **options)
    memory, mask = sources([5, 2], seed=6)
    target_in = torch.tensor([[BOS, 3, 4, 5], [BOS, 4, 3, 3]])
    full = decoder(target_in, memory, mask)
    steps, attention = stepwise(decoder, memory, mask, target_in)
    assert torch.all(attention[1, :, 2:] == 0)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=0)
