"""Data augmentation for distillation (Tang et al. 2019, section 3.2): more texts for the teacher to label.

For each training text, ``n_iter`` times::

    for each word w_i:  X_i ~ U[0, 1]
        X_i < p_mask                   -> [MASK]
        p_mask <= X_i < p_mask + p_pos -> another word of the same kind (below)
        otherwise                      -> w_i
    with probability p_ng: keep only an n-gram of the result, n ~ U{1, ..., max_ngram}

and keep the results that are new (not a training text, not an earlier result, not in ``exclude``).

Tang et al. swap a word for one with the same part-of-speech tag, drawn from the unigram
distribution of that tag. No POS tagger runs here without downloading a model, so the stand-in
(``WordSwapper``) groups words by shape (lower, Title, UPPER, number, punctuation) and frequency
class ``floor(log2 count)`` in the training texts, and draws from the group by frequency: numbers
stay numbers, punctuation stays punctuation, rare content words swap with rare content words,
frequent function words with frequent function words. Words are whitespace-separated tokens.

Each text draws from its own random stream, seeded by (seed, its index), so the result is the same
for the same seed and data, and one text's draws do not depend on how many texts come before it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from encoderkit.config import AugmentConfig

MASK = "[MASK]"


def word_shape(word: str) -> str:
    """``number``, ``punct``, ``UPPER``, ``Title`` or ``lower``: the word's coarse kind."""
    if any(ch.isdigit() for ch in word) and not any(ch.isalpha() for ch in word):
        return "number"
    if not any(ch.isalnum() for ch in word):
        return "punct"
    if word.isupper() and len(word) > 1:
        return "UPPER"
    return "Title" if word[0].isupper() else "lower"


class _Group:
    """Words and their cumulative counts, for drawing a word in proportion to its frequency."""

    def __init__(self, counts: dict[str, int]):
        self.words = list(counts)
        self.cumulative = np.cumsum([counts[word] for word in self.words])

    def draw(self, rng: np.random.Generator, avoid: str, tries: int = 8) -> str | None:
        """A word other than ``avoid`` (None when the group holds no other word)."""
        if len(self.words) < 2:
            return None
        for _ in range(tries):  # rejection: within a frequency class, ``avoid`` is rarely drawn
            word = self.words[int(np.searchsorted(self.cumulative, rng.random() * self.cumulative[-1], "right"))]
            if word != avoid:
                return word
        return None


class WordSwapper:
    """The stand-in for Tang et al.'s POS-guided swap: see the module docstring."""

    def __init__(self, texts: Iterable[str]):
        counts = Counter(word for text in texts for word in text.split())
        by_key: dict[tuple[str, int], dict[str, int]] = {}
        by_shape: dict[str, dict[str, int]] = {}
        self.key: dict[str, tuple[str, int]] = {}
        for word, count in counts.items():
            key = (word_shape(word), int(math.log2(count)))
            self.key[word] = key
            by_key.setdefault(key, {})[word] = count
            by_shape.setdefault(key[0], {})[word] = count
        self.groups = {key: _Group(words) for key, words in by_key.items()}
        self.shapes = {shape: _Group(words) for shape, words in by_shape.items()}

    def swap(self, word: str, rng: np.random.Generator) -> str:
        """Another word of the same shape and frequency class (else of the same shape; else ``word``)."""
        key = self.key.get(word)
        if key is None:
            return word
        return self.groups[key].draw(rng, word) or self.shapes[key[0]].draw(rng, word) or word


def augment_words(words: Sequence[str], settings: AugmentConfig, swapper: WordSwapper,
                  rng: np.random.Generator) -> list[str]:
    """One augmented copy of a text's words (see the module docstring)."""
    draws = rng.random(len(words))
    out = [MASK if x < settings.p_mask else swapper.swap(word, rng) if x < settings.p_mask + settings.p_pos
           else word for word, x in zip(words, draws)]
    if out and rng.random() < settings.p_ng:
        n = min(int(rng.integers(1, settings.max_ngram + 1)), len(out))
        start = int(rng.integers(0, len(out) - n + 1))
        out = out[start:start + n]
    return out


def augment_texts(texts: Sequence[str], settings: AugmentConfig, seed: int,
                  exclude: Iterable[str] = ()) -> list[str]:
    """New texts from ``texts``: ``settings.n_iter`` tries each, duplicates dropped, in text order.

    Args:
        texts: the training texts (also what the word swaps draw from).
        settings: the ``distill.augment`` section.
        seed: the run's seed.
        exclude: texts already in the transfer set (unlabelled texts): a copy equal to one is dropped.
    """
    if settings.n_iter == 0:
        return []
    swapper = WordSwapper(texts)
    seen = set(texts) | {" ".join(text.split()) for text in texts} | set(exclude)
    augmented = []
    for index, text in enumerate(texts):
        words = text.split()
        if not words:
            continue
        rng = np.random.default_rng([seed % 2**63, index])
        for _ in range(settings.n_iter):
            new = " ".join(augment_words(words, settings, swapper, rng))
            if new not in seen:
                seen.add(new)
                augmented.append(new)
    return augmented
