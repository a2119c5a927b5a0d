"""word2vec (Mikolov et al. 2013) through gensim: skip-gram or CBOW with negative sampling.

gensim's optimised C implementation is used as is; this module only feeds it the same streamed,
tokenized corpus as GloVe (so the two are comparable) and reports progress per epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from tqdm.auto import tqdm

from encoderkit.errors import ConfigError, DataError
from encoderkit.wordvec.corpus import EMPTY_CORPUS

ARCHITECTURES = ("skipgram", "cbow")


@dataclass
class Word2VecConfig:
    """gensim's defaults, except the window (10, to match GloVe) and the architecture named in full."""

    dim: int = 100
    window: int = 10
    min_count: int = 5
    max_vocab: int | None = None
    architecture: str = "skipgram"
    negative: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float = 0.025
    workers: int = 2
    seed: int = 0


@dataclass
class Word2VecResult:
    """Vectors most frequent word first, and the training time."""

    words: list[str]
    vectors: np.ndarray
    training_seconds: float = 0.0


def train_word2vec(corpus: Iterable[list[str]], config: Word2VecConfig, *, progress: bool = True) -> Word2VecResult:
    """Train skip-gram or CBOW with negative sampling on a re-iterable corpus of token lists.

    Args:
        corpus: Re-iterable token lists (e.g. ``encoderkit.wordvec.corpus.Corpus``), read once for
            the vocabulary and once per epoch.
        config: Hyper-parameters; ``architecture`` is "skipgram" or "cbow".
        progress: Show a progress bar over epochs.

    Returns:
        Word2VecResult with the vocabulary sorted by decreasing frequency.
    """
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    if config.architecture not in ARCHITECTURES:
        raise ConfigError(f"unknown word2vec architecture {config.architecture!r}; valid: {', '.join(ARCHITECTURES)}")
    if config.negative < 1:
        raise ConfigError("word2vec here trains with negative sampling: negative must be at least 1")

    bar = tqdm(total=config.epochs, desc="word2vec", unit="epoch", disable=None if progress else True, leave=False)

    class _Progress(CallbackAny2Vec):
        def on_epoch_end(self, model) -> None:  # noqa: D401 - gensim's callback API
            bar.update(1)

    model = Word2Vec(
        vector_size=config.dim,
        window=config.window,
        min_count=config.min_count,
        max_final_vocab=config.max_vocab,
        sg=1 if config.architecture == "skipgram" else 0,
        hs=0,
        negative=config.negative,
        sample=config.sample,
        alpha=config.lr,
        workers=config.workers,
        seed=config.seed,
        epochs=config.epochs,
    )
    started = time.perf_counter()
    model.build_vocab(corpus)  # gensim reads the corpus once for the vocabulary, then once per epoch
    if not model.corpus_total_words:
        raise DataError(EMPTY_CORPUS)  # no min_count would help
    if not model.wv.index_to_key:
        raise DataError(f"no word occurs at least min_count={config.min_count} times in the corpus; lower --min-count")
    model.train(corpus, total_examples=model.corpus_count, epochs=config.epochs, callbacks=[_Progress()])
    elapsed = time.perf_counter() - started
    bar.close()
    return Word2VecResult(words=list(model.wv.index_to_key), vectors=np.asarray(model.wv.vectors, dtype=np.float32), training_seconds=elapsed)
