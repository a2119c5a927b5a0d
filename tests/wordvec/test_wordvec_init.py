"""Starting encoders from word vectors: alignment, OOV policies, coverage, and the real pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoderkit.config import validate_config
from encoderkit.errors import ConfigError
from encoderkit.wordvec.init import SUBWORD_REFUSAL, align_vectors, describe_coverage, extend_vocabulary, is_special_token
from encoderkit.wordvec.io import load_vectors, save_vectors
from support import shared, tiny_config

WORDS = ["the", "paris", "cat", "dog"]
VECTORS = np.arange(12, dtype=np.float32).reshape(4, 3) + 1.0
VOCAB = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "the": 3, "Paris": 4, "zebra": 5, "dog": 6}


def test_found_rows_special_rows_and_coverage() -> None:
    matrix, coverage = align_vectors(VOCAB, WORDS, VECTORS, oov="zero", token_counts={"the": 6, "zebra": 2, "[CLS]": 5, "dog": 2})
    assert matrix.shape == (7, 3) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[:3], 0.0)  # special tokens
    np.testing.assert_array_equal(matrix[3], VECTORS[0])
    np.testing.assert_array_equal(matrix[4], VECTORS[1])  # "Paris" found as "paris"
    np.testing.assert_array_equal(matrix[5], 0.0)  # zebra: zero policy
    np.testing.assert_array_equal(matrix[6], VECTORS[3])
    assert coverage == {"vocab_coverage": 0.75, "token_coverage": 0.8, "found": 3, "vocab_size": 7, "dim": 3,
                        "train_vocab_coverage": 2 / 3, "train_vocab_found": 2, "train_vocab_size": 3}
    assert "3 of 7" in describe_coverage(coverage)


def test_coverage_of_an_extended_vocabulary_reports_the_training_words_own_share() -> None:
    # extend_vocab fills the vocabulary with the vectors' own words: every one of them is "found"
    words = WORDS + [f"extra{i}" for i in range(96)]
    vectors = np.ones((len(words), 3), dtype=np.float32)
    vocab = extend_vocabulary(VOCAB, words, max_words=len(words))
    counts = {"the": 6, "zebra": 2, "Paris": 0, "[CLS]": 5}  # what the training text holds ("Paris": never)
    _, coverage = align_vectors(vocab, words, vectors, oov="zero", token_counts=counts)
    assert coverage["vocab_coverage"] == 101 / 102  # 4 trained + 98 added entries: only zebra lacks a vector
    assert (coverage["train_vocab_found"], coverage["train_vocab_size"], coverage["train_vocab_coverage"]) == (1, 2, 0.5)
    assert coverage["token_coverage"] == 0.75
    assert describe_coverage(coverage, "v.txt") == (
        "v.txt: 101 of 105 vocabulary entries have a pretrained vector (99.0% of the vocabulary, "
        "50.0% of the 2 distinct training tokens, 75.0% of training tokens), dim 3")
    _, same = align_vectors(VOCAB, WORDS, VECTORS, oov="zero", token_counts={"the": 1, "dog": 1, "Paris": 1, "zebra": 1})
    assert "distinct training tokens" not in describe_coverage(same)  # 75.0% both: said once


def test_lowercase_fallback_can_be_disabled() -> None:
    _, coverage = align_vectors(VOCAB, WORDS, VECTORS, oov="zero", lowercase_fallback=False)
    assert coverage["found"] == 2 and coverage["token_coverage"] is None


def test_oov_policies() -> None:
    mean, _ = align_vectors(VOCAB, WORDS, VECTORS, oov="mean")
    np.testing.assert_allclose(mean[5], VECTORS.mean(axis=0))
    np.testing.assert_array_equal(mean[0], 0.0)
    rng_vectors = np.random.default_rng(0).normal(scale=0.4, size=(2000, 20)).astype(np.float32)
    words = [f"w{i}" for i in range(2000)]
    vocab = {"[PAD]": 0} | {f"x{i}": i + 1 for i in range(3000)}  # nothing found: all random
    random, _ = align_vectors(vocab, words, rng_vectors, oov="random", seed=1)
    assert random[1:].std() == pytest.approx(0.4, rel=0.05)  # same scale as the pretrained vectors
    again, _ = align_vectors(vocab, words, rng_vectors, oov="random", seed=1)
    np.testing.assert_array_equal(random, again)
    with pytest.raises(ConfigError, match="random, zero, mean"):
        align_vectors(VOCAB, WORDS, VECTORS, oov="gaussian")


def test_extend_vocabulary_appends_missing_frequent_words() -> None:
    extended = extend_vocabulary(VOCAB, ["the", "cat", "dog", "emu", "yak"], max_words=4)
    assert {token: extended[token] for token in VOCAB} == VOCAB  # existing ids kept
    assert extended["cat"] == 7 and extended["emu"] == 8 and "yak" not in extended
    assert "cat" not in VOCAB  # the input is not modified


def test_special_token_patterns() -> None:
    assert all(is_special_token(t) for t in ["[PAD]", "[UNK]", "[CLS]", "<pad>", "<s>", "</s>", "<unk>"])
    assert not any(is_special_token(t) for t in ["<", "[", "the", "<3", "[1]"])


@pytest.fixture
def small_glove(tmp_path: Path) -> Path:
    words, vectors = load_vectors(shared("glove.6B.50d.txt.bz2"), limit=8000, progress=False)
    path = tmp_path / "glove.8k.50d.txt.gz"
    save_vectors(path, words, vectors, header=False)
    return path


def test_classifier_starts_from_frozen_vectors(trec_slice, tmp_path: Path, small_glove: Path) -> None:
    from encoderkit.model_dir import load_model
    from encoderkit.tasks.classify import train

    raw = tiny_config(trec_slice, tmp_path / "run", embedding={"dim": 50, "dropout": 0.0, "pretrained": str(small_glove), "freeze": True, "oov": "zero"})
    raw["train"]["epochs"] = 1
    result = train(validate_config(raw), echo=lambda *_: None)
    coverage = result.coverage
    assert set(coverage) == {"vocab_coverage", "token_coverage", "found", "vocab_size", "dim",
                             "train_vocab_coverage", "train_vocab_found", "train_vocab_size"}
    assert coverage["dim"] == 50 and 0.5 < coverage["vocab_coverage"] <= 1.0 and coverage["token_coverage"] > 0.8
    assert 0.5 < coverage["train_vocab_coverage"] <= 1.0 and coverage["train_vocab_size"] <= coverage["vocab_size"]
    model = load_model(result.model_dir)
    table = model.model.text_encoder.embedding.weight_table.weight.detach().numpy()
    words, vectors = load_vectors(small_glove, progress=False)
    vocab = model.tokenizer.get_vocab()
    for word in ["what", "the", "city", "?"]:
        np.testing.assert_allclose(table[vocab[word]], vectors[words.index(word)], rtol=1e-6)  # frozen: unchanged


def test_subword_tokenizer_is_refused_with_the_reason(trec_slice, tmp_path: Path, small_glove: Path) -> None:
    from encoderkit.tasks.classify import train

    raw = tiny_config(trec_slice, tmp_path / "run", embedding={"dim": 50, "pretrained": str(small_glove)})
    raw["tokenizer"] = {"kind": "wordpiece", "vocab_size": 500}
    with pytest.raises(ConfigError, match="word-level tokenizer") as error:
        train(validate_config(raw), echo=lambda *_: None)
    assert "##ing" in SUBWORD_REFUSAL and "##ing" in str(error.value)
