"""Analogy and word-pair figures equal gensim's on the same (real) vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from encoderkit.errors import DataError
from encoderkit.wordvec.evaluate import (
    evaluate_all,
    evaluate_analogies,
    evaluate_similarity,
    gensim_test_file,
    match_word,
    nearest_neighbors,
)
from encoderkit.wordvec.io import load_vectors
from support import shared

RESTRICT = 6000  # keeps gensim's one-question-at-a-time loop to a few seconds


@pytest.fixture(scope="module")
def glove_prefix() -> tuple[list[str], np.ndarray, KeyedVectors]:
    words, vectors = load_vectors(shared("glove.6B.50d.txt.bz2"), limit=20_000, progress=False)
    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(words, vectors)
    return words, vectors, kv


def test_analogies_equal_gensim(glove_prefix) -> None:
    words, vectors, kv = glove_prefix
    ours = evaluate_analogies(words, vectors, restrict_vocab=RESTRICT)
    score, sections = kv.evaluate_word_analogies(str(gensim_test_file("questions-words.txt")), restrict_vocab=RESTRICT)
    assert ours.accuracy == pytest.approx(score, abs=1e-12)
    assert ours.total == len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
    assert ours.total > 1000 and 0.3 < ours.accuracy < 0.9  # a real, non-trivial check
    for section in sections[:-1]:
        mine = ours.sections[section["section"]]
        assert mine["correct"] == len(section["correct"])
        assert mine["total"] == len(section["correct"]) + len(section["incorrect"])


@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
@pytest.mark.parametrize("restrict", [RESTRICT, 300_000])
def test_word_pairs_equal_gensim(glove_prefix, name: str, restrict: int) -> None:
    words, vectors, kv = glove_prefix
    ours = evaluate_similarity(words, vectors, gensim_test_file(name), restrict_vocab=restrict)
    pearson, spearman, oov_percent = kv.evaluate_word_pairs(str(gensim_test_file(name)), restrict_vocab=restrict)
    assert ours.spearman == pytest.approx(spearman[0], abs=1e-9)
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert ours.oov_ratio * 100 == pytest.approx(oov_percent)


def test_case_variants_follow_gensim(tmp_path: Path) -> None:
    """'Paris' and 'paris' fold together (first wins); a case variant of a question word is skipped."""
    rng = np.random.default_rng(3)
    words = ["paris", "france", "berlin", "germany", "Germany", "Paris", "rome", "italy"]
    vectors = rng.normal(size=(len(words), 8)).astype(np.float32)
    vectors[4] = vectors[3] + 0.01  # "Germany" next to "germany"
    questions = tmp_path / "q.txt"
    questions.write_text(": capitals\nparis france berlin germany\nrome italy paris france\nrome italy tokyo japan\n")
    kv = KeyedVectors(8)
    kv.add_vectors(words, vectors)
    ours = evaluate_analogies(words, vectors, questions)
    score, sections = kv.evaluate_word_analogies(str(questions))
    assert (ours.correct, ours.total, ours.oov_questions) == (len(sections[-1]["correct"]), 2, 1)
    assert ours.accuracy == pytest.approx(score)


def test_evaluate_all_and_neighbors(glove_prefix) -> None:
    words, vectors, kv = glove_prefix
    report = evaluate_all(words[:3000], vectors[:3000])
    assert set(report) == {"analogy", "wordsim353", "simlex999"}
    neighbours = nearest_neighbors(words, vectors, "King", k=5)  # falls back to lower case
    assert [w for w, _ in neighbours] == [w for w, _ in kv.most_similar("king", topn=5)]
    with pytest.raises(DataError, match="not in the vocabulary"):
        nearest_neighbors(words, vectors, "qwzxv")


def test_match_word_prefers_the_exact_word_then_the_first_case_variant() -> None:
    words = ["frog", "Frog", "TOAD", "toad"]
    assert match_word(words, "Frog") == "Frog" and match_word(words, "frog") == "frog"
    assert match_word(words, "FROG") == "frog" and match_word(words, "Toad") == "TOAD"
    with pytest.raises(DataError, match="'newt' is not in the vocabulary"):
        match_word(words, "newt")


def test_evaluation_files_saved_with_a_byte_order_mark(tmp_path: Path) -> None:
    words, vectors = ["a", "b", "c", "d"], np.eye(4, dtype=np.float32) + 0.1
    questions = tmp_path / "q.txt"
    questions.write_text("\ufeff: family\na b c d\n", encoding="utf-8")
    assert evaluate_analogies(words, vectors, questions).total == 1
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\ufeffa\tb\t1.0\na\tc\t2.0\nb\td\t3.0\n", encoding="utf-8")
    assert evaluate_similarity(words, vectors, pairs).pairs == 3


def test_bad_evaluation_files(tmp_path: Path) -> None:
    words, vectors = ["a", "b"], np.eye(2, dtype=np.float32)
    headless = tmp_path / "q.txt"
    headless.write_text("a b a b\n")
    with pytest.raises(DataError, match="missing ': section' header"):
        evaluate_analogies(words, vectors, headless)
    pairs = tmp_path / "p.tsv"
    pairs.write_text("x\ty\t1.0\n")
    with pytest.raises(DataError, match="no word pair"):
        evaluate_similarity(words, vectors, pairs)
