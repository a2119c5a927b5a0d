"""word2vec through gensim, and the ``encoderkit wordvec`` commands end to end on real text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from encoderkit.errors import ConfigError, DataError
from encoderkit.wordvec.cli import app
from encoderkit.wordvec.corpus import Corpus
from encoderkit.wordvec.io import load_vectors, save_vectors
from encoderkit.wordvec.word2vec import Word2VecConfig, train_word2vec
from support import shared

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = shared("wikitext2", "wiki.train.raw").read_text(encoding="utf-8").splitlines()[:800]
    path = tmp_path_factory.mktemp("corpus") / "wiki800.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_word2vec_trains_frequency_sorted_vectors(corpus_file: Path, architecture: str) -> None:
    config = Word2VecConfig(dim=16, window=5, min_count=3, epochs=1, architecture=architecture, workers=1)
    result = train_word2vec(Corpus([corpus_file], progress=False), config, progress=False)
    assert result.vectors.shape == (len(result.words), 16)
    assert result.words[0] == "the"  # most frequent first, as evaluation expects
    assert np.isfinite(result.vectors).all() and result.vectors.std() > 0


def test_an_empty_corpus_says_so_rather_than_blaming_min_count(tmp_path: Path) -> None:
    empty = tmp_path / "punctuation.txt"
    empty.write_text(" , ; \n...\n")
    config = Word2VecConfig(dim=4, min_count=1, epochs=1, workers=1)
    with pytest.raises(DataError, match="^the corpus is empty: no words found") as error:
        train_word2vec(Corpus([empty], progress=False), config, progress=False)
    assert "min-count" not in str(error.value)
    (tmp_path / "few.txt").write_text("one two three\n")
    with pytest.raises(DataError, match="min_count=5 .*lower --min-count"):
        train_word2vec(Corpus([tmp_path / "few.txt"], progress=False), Word2VecConfig(dim=4, workers=1), progress=False)


def test_word2vec_rejects_unknown_architecture(corpus_file: Path) -> None:
    with pytest.raises(ConfigError, match="skipgram, cbow"):
        train_word2vec(Corpus([corpus_file], progress=False), Word2VecConfig(architecture="glove"))


@pytest.mark.parametrize("method, extra", [("glove", ["--epochs", "2"]), ("word2vec", ["--epochs", "1", "--architecture", "cbow"])])
def test_train_evaluate_neighbors(corpus_file: Path, tmp_path: Path, method: str, extra: list[str]) -> None:
    output = tmp_path / f"{method}.bin.gz"
    result = runner.invoke(app, ["train", str(corpus_file), "-o", str(output), "--method", method, "--dim", "16",
                                 "--window", "4", "--min-count", "3", "--binary", "--no-progress", *extra])
    assert result.exit_code == 0, result.output
    words, vectors = load_vectors(output, progress=False)
    assert vectors.shape[1] == 16 and words[0] == "the"

    report = tmp_path / "report.json"
    result = runner.invoke(app, ["evaluate", str(output), "--no-progress", "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "wordsim353 Spearman" in result.output and "capital-common-countries" in result.output
    figures = json.loads(report.read_text())
    assert figures["analogy"]["total"] > 0 and -1 <= figures["wordsim353"]["spearman"] <= 1

    result = runner.invoke(app, ["neighbors", str(output), "king", "-k", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "nearest to 'king'" in result.output


def test_train_from_jsonl_field(tmp_path: Path) -> None:
    output = tmp_path / "trec.txt"
    result = runner.invoke(app, ["train", str(shared("trec", "train.jsonl")), "--field", "text", "-o", str(output),
                                 "--dim", "8", "--epochs", "1", "--min-count", "20", "--no-progress"])
    assert result.exit_code == 0, result.output
    words, _ = load_vectors(output, progress=False)
    assert "what" in words


def test_user_errors_are_encoderkit_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "v.txt")])
    assert isinstance(result.exception, DataError) and "not found" in str(result.exception)
    result = runner.invoke(app, ["evaluate", str(tmp_path / "missing.vec")])
    assert isinstance(result.exception, DataError)


def test_brackets_in_paths_and_words_are_printed_as_written(tmp_path: Path) -> None:
    from encoderkit.cli import app as main_app

    corpus = tmp_path / "caps[v2].txt"  # Rich markup would read "[v2]" as a style and drop it
    corpus.write_text("the frog sat on the log\nthe toad sat on the frog\n" * 3)
    output = tmp_path / "vectors[bold].txt"
    result = runner.invoke(main_app, ["wordvec", "train", str(corpus), "-o", str(output), "--dim", "4", "--epochs", "1",
                                      "--min-count", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"to {output}" in result.output
    vectors = tmp_path / "special[v2].txt"
    save_vectors(vectors, ["[unk]", "[PAD]", "log"], np.eye(3, dtype=np.float32) + 0.1)
    result = runner.invoke(main_app, ["wordvec", "neighbors", str(vectors), "[unk]", "-k", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "nearest to '[unk]'" in result.output and "[PAD]" in result.output


def test_neighbors_says_when_it_shows_another_casing(tmp_path: Path) -> None:
    vectors = tmp_path / "v.txt"
    save_vectors(vectors, ["frog", "toad", "Toad", "log"], np.random.default_rng(0).normal(size=(4, 3)))
    result = runner.invoke(app, ["neighbors", str(vectors), "Frog", "-k", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("'Frog' is not in the vectors; showing 'frog'\n")
    assert "nearest to 'frog'" in result.output
    result = runner.invoke(app, ["neighbors", str(vectors), "Toad", "-k", "2", "--no-progress"])
    assert result.exit_code == 0 and "is not in the vectors" not in result.output  # the exact word wins
    assert "nearest to 'Toad'" in result.output


def test_mounted_under_encoderkit_wordvec() -> None:
    from encoderkit.cli import app as main_app

    result = CliRunner().invoke(main_app, ["wordvec", "--help"])
    assert result.exit_code == 0 and "neighbors" in result.output
