"""Tang et al. (2019) augmentation: determinism, the three probabilities, duplicates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from encoderkit.config import AugmentConfig
from encoderkit.distill.augment import MASK, WordSwapper, augment_texts, augment_words, word_shape
from support import shared


@pytest.fixture(scope="module")
def texts() -> list[str]:
    lines = shared("trec", "train.jsonl").read_text(encoding="utf-8").splitlines()[:400]
    return [json.loads(line)["text"] for line in lines]


def test_same_seed_same_texts_other_seed_other_texts(texts):
    settings = AugmentConfig(n_iter=5)
    first = augment_texts(texts, settings, seed=13)
    assert first == augment_texts(texts, settings, seed=13)
    assert first != augment_texts(texts, settings, seed=14)
    # Each text has its own random stream: without swaps (whose words come from all the texts),
    # the copies of text 0 do not depend on the texts after it.
    no_swaps = AugmentConfig(n_iter=5, p_pos=0.0)
    alone = augment_texts(texts[:1], no_swaps, seed=13)
    assert augment_texts(texts, no_swaps, seed=13)[: len(alone)] == alone


def test_duplicates_and_training_texts_are_dropped(texts):
    augmented = augment_texts(texts, AugmentConfig(n_iter=10, p_ng=0.5), seed=13, exclude=["Who"])
    assert len(augmented) == len(set(augmented))
    assert not set(augmented) & set(texts) and "Who" not in augmented
    assert augment_texts(texts, AugmentConfig(n_iter=0), seed=13) == []


def draws(texts, settings, rounds=3):
    """(original words, augmented words) pairs from ``augment_words`` without dropping duplicates."""
    swapper, rng = WordSwapper(texts), np.random.default_rng(0)
    return [(text.split(), augment_words(text.split(), settings, swapper, rng)) for _ in range(rounds) for text in texts]


def test_mask_probability(texts):
    pairs = draws(texts, AugmentConfig(p_mask=0.3, p_pos=0.0, p_ng=0.0))
    words = [word for _, new in pairs for word in new]
    assert all(len(old) == len(new) for old, new in pairs)
    assert sum(word == MASK for word in words) / len(words) == pytest.approx(0.3, abs=0.015)
    assert all(w in (MASK, o) for old, new in pairs for o, w in zip(old, new))


def test_swaps_keep_the_word_shape_and_follow_p_pos(texts):
    pairs = draws(texts, AugmentConfig(p_mask=0.0, p_pos=0.2, p_ng=0.0))
    changed = [(o, w) for old, new in pairs for o, w in zip(old, new) if o != w]
    total = sum(len(old) for old, _ in pairs)
    # A word with no other word of its shape stays (rare), so slightly under p_pos.
    assert 0.17 < len(changed) / total <= 0.21
    assert all(word_shape(o) == word_shape(w) for o, w in changed)
    assert {w for _, w in changed} <= {word for text in texts for word in text.split()}


def test_ngram_sampling(texts):
    pairs = draws(texts, AugmentConfig(p_mask=0.0, p_pos=0.0, p_ng=1.0, max_ngram=5), rounds=1)
    for old, new in pairs:
        n = len(new)
        assert 1 <= n <= min(5, len(old))
        assert any(old[i:i + n] == new for i in range(len(old) - n + 1))
    kept = draws(texts, AugmentConfig(p_mask=0.0, p_pos=0.0, p_ng=0.25), rounds=4)
    shortened = sum(new != old for old, new in kept) / len(kept)
    assert shortened == pytest.approx(0.25, abs=0.04)  # an n-gram as long as the text changes nothing


def test_word_shapes():
    assert [word_shape(w) for w in ["the", "Hamlet", "NASA", "1984", "3.5", "?", "I"]] == \
        ["lower", "Title", "UPPER", "number", "number", "punct", "Title"]
