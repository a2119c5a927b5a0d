"""Loaders and writers: every format round-trips, agrees with gensim, and fails with a useful line."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from encoderkit.errors import DataError
from encoderkit.wordvec import io as wvio
from encoderkit.wordvec.io import load_vectors, save_vectors
from support import shared

# words a naive CSV reader would mangle: quotes, "nan"/"null", comment marks, non-ASCII
WORDS = ["the", '"', "''", "nan", "null", "#", "naïve", "東京", "don't", "a,b", "NA", "-1"]


@pytest.fixture
def vectors() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(len(WORDS), 7)).astype(np.float32)


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("kind", ["word2vec", "glove", "binary"])
def test_round_trip_every_format_and_compression(tmp_path: Path, vectors: np.ndarray, kind: str, suffix: str) -> None:
    path = tmp_path / f"vectors.{'bin' if kind == 'binary' else 'txt'}{suffix}"
    save_vectors(path, WORDS, vectors, binary=kind == "binary", header=kind != "glove")
    words, loaded = load_vectors(path, progress=False)
    assert words == WORDS
    assert loaded.dtype == np.float32 and loaded.shape == vectors.shape
    if kind == "binary":
        np.testing.assert_array_equal(loaded, vectors)
    else:
        np.testing.assert_allclose(loaded, vectors, rtol=1e-6)


def test_compression_is_detected_from_bytes_not_name(tmp_path: Path, vectors: np.ndarray) -> None:
    plain = tmp_path / "plain.txt"
    save_vectors(plain, WORDS, vectors)
    for opener, name in ((gzip.open, "a.vec"), (bz2.open, "b.vec"), (lzma.open, "c.vec")):
        target = tmp_path / name
        with opener(target, "wb") as handle:
            handle.write(plain.read_bytes())
        assert wvio.detect_compression(target) is not None
        assert load_vectors(target, progress=False)[0] == WORDS


def test_binary_is_sniffed_without_bin_suffix(tmp_path: Path, vectors: np.ndarray) -> None:
    path = tmp_path / "vectors.w2v"
    save_vectors(path, WORDS, vectors, binary=True)
    words, loaded = load_vectors(path, progress=False)
    assert words == WORDS
    np.testing.assert_array_equal(loaded, vectors)


def test_gensim_reads_ours_and_we_read_gensims(tmp_path: Path, vectors: np.ndarray) -> None:
    for binary in (False, True):
        suffix = ".bin" if binary else ".txt"
        ours = tmp_path / f"ours{suffix}"
        save_vectors(ours, WORDS, vectors, binary=binary)
        kv = KeyedVectors.load_word2vec_format(str(ours), binary=binary)
        assert kv.index_to_key == WORDS
        np.testing.assert_allclose(kv.vectors, vectors, rtol=1e-6)

        kv_out = tmp_path / f"gensim{suffix}.gz"
        kv.save_word2vec_format(str(kv_out), binary=binary)
        words, loaded = load_vectors(kv_out, progress=False)
        assert words == WORDS
        np.testing.assert_allclose(loaded, vectors, rtol=1e-6)


def test_fasttext_vec_trailing_spaces_and_crlf(tmp_path: Path, vectors: np.ndarray) -> None:
    lines = [f"{len(WORDS)} {vectors.shape[1]}"]
    lines += [word + " " + " ".join(repr(float(v)) for v in row) + " " for word, row in zip(WORDS, vectors)]
    vec = tmp_path / "wiki.vec"
    vec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    words, loaded = load_vectors(vec, progress=False)
    assert words == WORDS
    np.testing.assert_allclose(loaded, vectors, rtol=1e-6)
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(vec.read_bytes().replace(b" \n", b"\r\n"))
    assert load_vectors(crlf, progress=False)[0] == WORDS


def test_block_boundaries_do_not_split_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(500)]
    matrix = rng.normal(size=(500, 5)).astype(np.float32)
    path = tmp_path / "many.txt.gz"
    save_vectors(path, words, matrix, header=False)
    monkeypatch.setattr(wvio, "_CHUNK_BYTES", 997)  # odd size: blocks end mid-line and mid-number
    loaded_words, loaded = load_vectors(path, progress=False)
    assert loaded_words == words
    np.testing.assert_allclose(loaded, matrix, rtol=1e-6)
    assert load_vectors(path, limit=123, progress=False)[1].shape == (123, 5)
    binary = tmp_path / "many.bin.xz"
    save_vectors(binary, words, matrix, binary=True)
    loaded_words, loaded = load_vectors(binary, progress=False)
    assert loaded_words == words
    np.testing.assert_array_equal(loaded, matrix)


def test_duplicates_keep_the_first_vector_and_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "dup.txt"
    path.write_text("a 1 2\nb 3 4\na 5 6\nb 7 8\na 9 9\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="encoderkit.wordvec.io"):
        words, loaded = load_vectors(path, progress=False)
    assert words == ["a", "b"]
    np.testing.assert_array_equal(loaded, [[1, 2], [3, 4]])
    assert [record.getMessage() for record in caplog.records] == [
        f"{path}: dropped 3 lines whose word was already read ('a', 'b'); kept the first vector of each word"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="encoderkit.wordvec.io"):
        assert load_vectors(path, progress=False, deduplicate=False)[0] == ["a", "b", "a", "b", "a"]
    assert not caplog.records


def test_words_with_spaces_read_but_an_extra_number_does_not_join_the_word(tmp_path: Path) -> None:
    path = tmp_path / "spaces.txt"  # GloVe 840B holds a few such words
    path.write_text("apple 0.1 0.2 0.3\nat name@domain.com 1 2 3\n. . . 4 5 6\n", encoding="utf-8")
    words, loaded = load_vectors(path, progress=False)
    assert words == ["apple", "at name@domain.com", ". . ."]
    np.testing.assert_array_equal(loaded[1:], [[1, 2, 3], [4, 5, 6]])
    for header in ("", "2 3\n"):
        path.write_text(f"{header}apple 0.1 0.2 0.3\ncherry 0.7 0.8 0.9 1.0\n", encoding="utf-8")
        with pytest.raises(DataError, match=r"spaces.txt:\d: 4 numbers where the file's vectors have 3 "
                                            r"\(from (the header, )?line 1\).*a word with spaces"):
            load_vectors(path, progress=False)


def test_a_byte_order_mark_before_the_first_line_is_dropped(tmp_path: Path) -> None:
    for header in ("", "2 3\n"):
        path = tmp_path / "bom.txt"
        path.write_bytes(("\ufeff" + header + "apple 0.1 0.2 0.3\ncherry 0.7 0.8 0.9\n").encode("utf-8"))
        words, loaded = load_vectors(path, progress=False)
        assert words == ["apple", "cherry"] and loaded.shape == (2, 3)


def test_real_glove_prefix_matches_gensim() -> None:
    path = shared("glove.6B.50d.txt.bz2")
    words, loaded = load_vectors(path, limit=3000, progress=False)
    kv = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True, limit=3000)
    assert words == kv.index_to_key
    np.testing.assert_array_equal(loaded, kv.vectors)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"a 1 2\nb 3 4\nc 5\n", r":3: 1 number where the file's vectors have 2 \(from line 1\); fix or remove the line$"),
        (b"a 1 2\nb \xff\xfe 4\n", ":2: not valid UTF-8"),
        (b"3 2\na 1 2\nb 3 4\n", "announces 3 vectors but the file holds 2"),
        (b"a 1 2\nb 3 x\n", r":2: a vector value is not a number: 'x' in 'b 3 x'$"),
        (b"4 5\napple 0.1 0.2 0.3\ncherry 0.7 0.8 0.9\n",
         r":2: 3 numbers where the file's vectors have 5 \(from the header, line 1\); fix the header or the line$"),
        (b"2 0\na\nb\n", r":1: the header '2 0' says the vectors have 0 numbers"),
        (b"99999999999 3\na 1 2 3\n", "announces 99999999999 vectors but the file holds 1"),
    ],
)
def test_bad_files_name_the_line_and_the_fix(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_vectors(path, progress=False)


def test_a_binary_header_announcing_more_than_the_file_holds_is_truncation(tmp_path: Path, vectors: np.ndarray) -> None:
    path = tmp_path / "huge.bin"
    save_vectors(path, WORDS, vectors, binary=True)
    data = path.read_bytes()
    path.write_bytes(b"99999999999 7" + data[data.index(b"\n"):])  # memory follows the bytes read, not the header
    with pytest.raises(DataError, match=f"announces 99999999999 vectors but the file ends after {len(WORDS)}"):
        load_vectors(path, progress=False)


@pytest.mark.parametrize("name", ["v.txt", "v.txt.gz", "v.bin.bz2"])
def test_every_file_opened_is_closed(tmp_path: Path, vectors: np.ndarray, name: str) -> None:
    import gc
    import warnings

    path = tmp_path / name
    save_vectors(path, WORDS, vectors, binary=".bin" in name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        load_vectors(path, progress=False)  # format sniffing opens the file once more
        gc.collect()
    assert [str(warning.message) for warning in caught if warning.category is ResourceWarning] == []


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_vectors(tmp_path / "nope.txt")
    path = tmp_path / "ok.txt"
    path.write_text("a 1\n", encoding="utf-8")
    with pytest.raises(DataError, match="valid formats"):
        load_vectors(path, format="fasttext-bin")


def test_truncated_binary_is_reported(tmp_path: Path, vectors: np.ndarray) -> None:
    path = tmp_path / "cut.bin"
    save_vectors(path, WORDS, vectors, binary=True)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="truncated"):
        load_vectors(path, progress=False)


def test_unsaveable_words_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="spaces"):
        save_vectors(tmp_path / "x.txt", ["new york"], np.zeros((1, 2)))
