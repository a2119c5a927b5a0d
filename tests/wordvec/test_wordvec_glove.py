"""GloVe: co-occurrence counts equal a brute-force count; the loss goes down; vectors come out."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderkit.errors import DataError
from encoderkit.wordvec.corpus import Corpus, build_vocabulary
from encoderkit.wordvec.glove import (
    GloVeConfig,
    GloVeModel,
    cooccurrence_matrix,
    train_glove,
    train_glove_from_cooccurrence,
    weighting,
)
from support import shared


def brute_force(lines: list[list[str]], vocab: dict[str, int], window: int) -> dict[tuple[int, int], float]:
    """The definition, one pair at a time: OOV words removed, then 1/d for |d| <= window, both sides."""
    counts: dict[tuple[int, int], float] = defaultdict(float)
    for tokens in lines:
        ids = [vocab[t] for t in tokens if t in vocab]
        for p, center in enumerate(ids):
            for q in range(max(0, p - window), min(len(ids), p + window + 1)):
                if q != p:
                    counts[(center, ids[q])] += 1.0 / abs(q - p)
    return counts


@pytest.mark.parametrize("chunk_tokens", [7, 1000])  # many flushes, or one
def test_cooccurrence_equals_brute_force(chunk_tokens: int) -> None:
    rng = np.random.default_rng(0)
    alphabet = [f"w{i}" for i in range(12)]
    lines = [list(rng.choice(alphabet, size=rng.integers(0, 15))) for _ in range(40)]
    vocab = {w: i for i, w in enumerate(alphabet[:9])}  # w9..w11 are out of vocabulary
    matrix = cooccurrence_matrix(lines, vocab, window=3, chunk_tokens=chunk_tokens).toarray()
    expected = np.zeros_like(matrix)
    for (i, j), value in brute_force(lines, vocab, 3).items():
        expected[i, j] = value
    np.testing.assert_allclose(matrix, expected, rtol=1e-12)
    np.testing.assert_allclose(matrix, matrix.T)


def test_cooccurrence_on_real_text_slice() -> None:
    text = shared("wikitext2", "wiki.valid.raw").read_text(encoding="utf-8").splitlines()[:60]
    lines = [line.lower().split() for line in text if line.strip()]
    vocab = {w: i for i, w in enumerate(sorted({t for line in lines for t in line}))}
    matrix = cooccurrence_matrix(lines, vocab, window=5, chunk_tokens=500).tocoo()
    expected = brute_force(lines, vocab, 5)
    assert matrix.nnz == len(expected)
    for i, j, value in zip(matrix.row[:2000], matrix.col[:2000], matrix.data[:2000]):
        assert value == pytest.approx(expected[(i, j)])


def test_weighting_function() -> None:
    x = np.array([1.0, 50.0, 100.0, 1000.0])
    np.testing.assert_allclose(weighting(x), [(1 / 100) ** 0.75, 0.5**0.75, 1.0, 1.0])


def test_step_equals_autograd_with_torch_adagrad() -> None:
    """Hand-written gradients of J = 1/2 sum f diff^2 plus our AdaGrad = autograd + torch.optim.Adagrad
    (batches without repeated rows, where the two definitions coincide)."""
    model = GloVeModel(6, 4, seed=1)
    i, j = torch.tensor([0, 1, 2, 5]), torch.tensor([2, 3, 4, 0])
    log_x, weight = torch.tensor([0.5, 1.0, 1.5, 2.0]), torch.tensor([0.3, 1.0, 0.2, 0.7])
    params = {name: value.clone().requires_grad_(True) for name, value in model.params.items()}
    optimizer = torch.optim.Adagrad(list(params.values()), lr=0.1, eps=1e-10)
    for _ in range(3):
        optimizer.zero_grad()
        diff = (params["w"][i] * params["w_ctx"][j]).sum(1) + params["b"][i] + params["b_ctx"][j] - log_x
        (0.5 * (weight * diff**2).sum()).backward()
        optimizer.step()
        model.step(i, j, log_x, weight, lr=0.1)
    for name, value in params.items():
        torch.testing.assert_close(model.params[name], value.detach(), rtol=1e-5, atol=1e-6)


def test_repeated_rows_take_bounded_steps() -> None:
    """k entries on one row move it by at most lr * sqrt(k) per coordinate in one batch."""
    model = GloVeModel(3, 2, seed=0)
    before = model.params["b"].clone()
    i = torch.zeros(16, dtype=torch.long)
    model.step(i, torch.ones(16, dtype=torch.long), torch.full((16,), 3.0), torch.ones(16), lr=0.05)
    assert (model.params["b"][0] - before[0]).abs() <= 0.05 * 4 + 1e-6


def test_loss_decreases_on_real_text(tmp_path: Path) -> None:
    corpus_file = tmp_path / "slice.txt"
    corpus_file.write_text("\n".join(shared("wikitext2", "wiki.train.raw").read_text(encoding="utf-8").splitlines()[:500]))
    corpus = Corpus([corpus_file], progress=False)
    vocabulary = build_vocabulary(corpus, min_count=3)
    config = GloVeConfig(dim=16, window=5, epochs=4, batch_size=512, lr=0.1, seed=0)
    result = train_glove(corpus, vocabulary, config, progress=False)
    assert result.vectors.shape == (len(vocabulary), 16) and result.vectors.dtype == np.float32
    assert result.words == vocabulary.words
    assert all(later < earlier for earlier, later in zip(result.losses, result.losses[1:]))
    assert result.losses[-1] < 0.8 * result.losses[0]
    assert result.nonzeros > 0 and np.isfinite(result.vectors).all()


def test_same_seed_same_vectors() -> None:
    lines = [["a", "b", "c", "a"], ["b", "c", "d"]] * 5
    vocab = {w: i for i, w in enumerate("abcd")}
    matrix = cooccurrence_matrix(lines, vocab, window=2)
    config = GloVeConfig(dim=4, epochs=2, batch_size=3)
    first = train_glove_from_cooccurrence(matrix, list("abcd"), config, progress=False)
    second = train_glove_from_cooccurrence(matrix, list("abcd"), config, progress=False)
    np.testing.assert_array_equal(first.vectors, second.vectors)


def test_nothing_to_count_is_an_error() -> None:
    with pytest.raises(DataError, match="no co-occurrences"):
        cooccurrence_matrix([["a"], ["b"]], {"a": 0, "b": 1}, window=2)
    with pytest.raises(DataError, match="window"):
        cooccurrence_matrix([["a", "b"]], {"a": 0, "b": 1}, window=0)
