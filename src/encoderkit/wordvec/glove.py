"""GloVe (Pennington, Socher & Manning, 2014) in PyTorch: streaming co-occurrence counts, then
weighted least squares with AdaGrad.

1. Co-occurrence, symmetric window of ``window`` words inside one line, weighted by distance:

       X_ij = sum over occurrences of i, and of j at distance d <= window, of 1/d

   Counting is vectorised per chunk of tokens: for each offset d the pairs
   ``(ids[:-d], ids[d:])`` are taken at once, summed into a scipy sparse matrix, and the chunk
   matrices are added up. The corpus is streamed, never held in memory as tokens. Words outside
   the vocabulary are removed before windowing, as in the reference ``cooccur`` tool.

2. Objective, over the non-zero entries only:

       J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2
       f(x) = (x / x_max)^alpha if x < x_max else 1,   x_max = 100, alpha = 0.75

   minimised with AdaGrad on shuffled mini-batches of entries. The saved vector of word i is
   ``w_i + w~_i`` (the paper's choice: the two are symmetric roles and their sum is better).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from encoderkit.errors import DataError
from encoderkit.wordvec.corpus import Vocabulary


def cooccurrence_matrix(
    corpus: Iterable[list[str]],
    vocab: dict[str, int],
    *,
    window: int = 10,
    chunk_tokens: int = 500_000,
) -> sp.csr_matrix:
    """Count distance-weighted co-occurrences into a sparse symmetric (V, V) matrix.

    Args:
        corpus: Iterable of token lists; a window never crosses from one list to the next.
        vocab: Word -> row; other words are dropped before windowing.
        window: Context words on each side.
        chunk_tokens: Tokens buffered before one vectorised counting step (bounds memory).

    Returns:
        float64 CSR matrix X with ``X[i, j] = X[j, i] = sum 1/d``.
    """
    if window < 1:
        raise DataError(f"window must be at least 1 (got {window})")
    size = len(vocab)
    upper = sp.csr_matrix((size, size), dtype=np.float64)  # X_ij for i to the left of j
    ids: list[np.ndarray] = []
    buffered = 0

    def flush() -> sp.csr_matrix:
        # document id per token, so that pairs never straddle two lines
        lengths = np.array([len(a) for a in ids], dtype=np.int64)
        tokens = np.concatenate(ids)
        document = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
        rows, cols, weights = [], [], []
        for distance in range(1, window + 1):
            same = document[distance:] == document[:-distance]
            rows.append(tokens[:-distance][same])
            cols.append(tokens[distance:][same])
            weights.append(np.full(int(same.sum()), 1.0 / distance))
        chunk = sp.coo_matrix(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
        ).tocsr()  # tocsr sums duplicate (i, j) entries
        return upper + chunk

    for tokens in corpus:
        known = np.fromiter((vocab[t] for t in tokens if t in vocab), dtype=np.int32)
        if len(known) < 2:
            continue
        ids.append(known)
        buffered += len(known)
        if buffered >= chunk_tokens:
            upper = flush()
            ids, buffered = [], 0
    if ids:
        upper = flush()
    if upper.nnz == 0:
        raise DataError("no co-occurrences counted: the corpus has no line with two vocabulary words (lower min_count?)")
    # a pair at distance d is a right context for its first word and a left context for the second
    return (upper + upper.T).tocsr()


@dataclass
class GloVeConfig:
    """Hyper-parameters: the paper's objective (x_max 100, alpha 0.75) and learning rate 0.05.

    15 epochs: on WikiText-2 (1.75M tokens) WS353 levels off by then (0.278 at 10, 0.283 at
    15, 0.285 at 20, 0.280 at 30 epochs).
    """

    dim: int = 100
    window: int = 10
    min_count: int = 5
    max_vocab: int | None = None
    x_max: float = 100.0
    alpha: float = 0.75
    epochs: int = 15
    lr: float = 0.05
    batch_size: int = 2048
    seed: int = 0
    #: torch threads while training. One by default: the batches are small (2048 x D), and on a
    #: shared machine a second OpenMP thread that has to wait for a core slows each step ~100x.
    threads: int = 1


@dataclass
class GloVeResult:
    """Trained vectors (``w + w~``) with the loss after each epoch and timings."""

    words: list[str]
    vectors: np.ndarray
    losses: list[float] = field(default_factory=list)
    counting_seconds: float = 0.0
    training_seconds: float = 0.0
    nonzeros: int = 0


def _gather(table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table[rows]`` for a 2-D table; the embedding kernel is the fastest row gather on CPU."""
    return torch.embedding(table, rows) if table.dim() == 2 else table[rows]


class GloVeModel:
    """The parameters ``W, W~ (V, D)`` and ``b, b~ (V,)`` with their AdaGrad accumulators."""

    def __init__(self, vocab_size: int, dim: int, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)

        def uniform(*shape: int) -> torch.Tensor:
            # the reference code's initialisation: U(-0.5, 0.5) / D
            return (torch.rand(*shape, generator=generator) - 0.5) / dim

        self.params = {"w": uniform(vocab_size, dim), "w_ctx": uniform(vocab_size, dim), "b": uniform(vocab_size), "b_ctx": uniform(vocab_size)}
        # AdaGrad's sums of squared gradients
        self.grad_sq = {name: torch.zeros_like(value) for name, value in self.params.items()}

    def vectors(self) -> np.ndarray:
        """Final word vectors ``w + w~``, (V, D) float32."""
        return (self.params["w"] + self.params["w_ctx"]).numpy().astype(np.float32)

    def _adagrad(self, name: str, rows: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        """AdaGrad, one gradient g_e per co-occurrence entry e touching row r:

            G_r += g_e^2,   theta_r -= lr * g_e / (sqrt(G_r) + eps)

        As in ``torch.optim.Adagrad`` the accumulator is updated before the step, so the first
        step of a coordinate is about ``lr`` whatever the gradient's scale. This matters here:
        vectors start at ~1e-3, their gradients are tiny, and the reference code's accumulator
        starting at 1 turns AdaGrad into plain SGD for many epochs. Entries of one batch that
        share a row add their squares first and then their steps (at most ``lr * sqrt(k)`` for
        k entries, by Cauchy-Schwarz), the batched analogue of glove.c's lock-free threads.
        """
        accumulator = self.grad_sq[name]
        accumulator.index_add_(0, rows, grad * grad)
        scale = _gather(accumulator, rows).sqrt_().add_(1e-10).reciprocal_()
        self.params[name].index_add_(0, rows, grad * scale, alpha=-lr)

    @torch.no_grad()
    def step(self, i: torch.Tensor, j: torch.Tensor, log_x: torch.Tensor, weight: torch.Tensor, lr: float) -> float:
        """One AdaGrad step on a batch of entries (i, j); returns the batch's share of J.

        With diff = w_i . w~_j + b_i + b~_j - log X_ij and J = 1/2 sum f(X_ij) diff^2 (the 1/2 of
        the reference code, which only rescales the learning rate):
            dJ/dw_i = f diff w~_j,   dJ/dw~_j = f diff w_i,   dJ/db_i = dJ/db~_j = f diff
        """
        w_i = _gather(self.params["w"], i)  # (B, D)
        w_j = _gather(self.params["w_ctx"], j)  # (B, D)
        diff = (w_i * w_j).sum(dim=1) + self.params["b"][i] + self.params["b_ctx"][j] - log_x  # (B,)
        g = weight * diff  # (B,)
        loss = float((g * diff).sum())
        g_col = g.unsqueeze(1)
        self._adagrad("w", i, g_col * w_j, lr)
        self._adagrad("w_ctx", j, g_col * w_i, lr)
        self._adagrad("b", i, g, lr)
        self._adagrad("b_ctx", j, g, lr)
        return loss


def weighting(x: np.ndarray, x_max: float = 100.0, alpha: float = 0.75) -> np.ndarray:
    """f(x) = (x / x_max)^alpha for x < x_max, else 1: rare pairs count less, frequent ones are capped."""
    return np.minimum(1.0, (x / x_max) ** alpha)


def train_glove_from_cooccurrence(
    matrix: sp.spmatrix,
    words: list[str],
    config: GloVeConfig,
    *,
    progress: bool = True,
) -> GloVeResult:
    """Fit GloVe vectors to a co-occurrence matrix.

    Args:
        matrix: (V, V) sparse co-occurrences (e.g. from ``cooccurrence_matrix``).
        words: The V words, row order.
        config: Hyper-parameters (dim, x_max, alpha, epochs, lr, batch_size, seed).
        progress: Show a progress bar over epochs with the current loss.

    Returns:
        GloVeResult with vectors ``w + w~`` and the mean loss per entry after each epoch.
    """
    coo = sp.coo_matrix(matrix)
    if coo.nnz == 0:
        raise DataError("the co-occurrence matrix is empty; nothing to train on")
    rows = torch.from_numpy(coo.row.astype(np.int64))
    cols = torch.from_numpy(coo.col.astype(np.int64))
    log_x = torch.from_numpy(np.log(coo.data).astype(np.float32))
    weight = torch.from_numpy(weighting(coo.data, config.x_max, config.alpha).astype(np.float32))
    model = GloVeModel(len(words), config.dim, config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    started = time.perf_counter()
    batches = math.ceil(coo.nnz / config.batch_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        _run_epochs(model, rows, cols, log_x, weight, config, generator, losses, batches, progress)
    finally:
        torch.set_num_threads(threads)
    return GloVeResult(
        words=list(words),
        vectors=model.vectors(),
        losses=losses,
        training_seconds=time.perf_counter() - started,
        nonzeros=int(coo.nnz),
    )


def _run_epochs(model, rows, cols, log_x, weight, config, generator, losses, batches, progress) -> None:
    """Shuffled passes over the non-zero entries; appends the mean loss per entry of each epoch."""
    nnz = len(rows)
    with tqdm(total=config.epochs * batches, desc="GloVe", unit="batch", disable=None if progress else True, leave=False) as bar:
        for epoch in range(config.epochs):
            order = torch.randperm(nnz, generator=generator)
            total = 0.0
            for start in range(0, nnz, config.batch_size):
                batch = order[start : start + config.batch_size]
                total += model.step(rows[batch], cols[batch], log_x[batch], weight[batch], config.lr)
                bar.update(1)
            losses.append(total / nnz)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}")


def train_glove(corpus: Iterable[list[str]], vocabulary: Vocabulary, config: GloVeConfig, *, progress: bool = True) -> GloVeResult:
    """Count co-occurrences over ``corpus`` for ``vocabulary`` and fit GloVe vectors.

    Args:
        corpus: Re-iterable token lists (e.g. ``encoderkit.wordvec.corpus.Corpus``).
        vocabulary: Words to learn, most frequent first.
        config: Hyper-parameters.
        progress: Progress bars for counting and training.

    Returns:
        GloVeResult (vectors in vocabulary order).
    """
    started = time.perf_counter()
    matrix = cooccurrence_matrix(corpus, vocabulary.index, window=config.window)
    counting = time.perf_counter() - started
    result = train_glove_from_cooccurrence(matrix, vocabulary.words, config, progress=progress)
    result.counting_seconds = counting
    return result
