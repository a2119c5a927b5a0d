"""Corpus streaming: text and JSONL, compressed, errors that name file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from encoderkit.errors import DataError
from encoderkit.wordvec.corpus import Corpus, build_vocabulary, tokenize
from support import shared


def test_tokenize_drops_punctuation_and_wikitext_markers() -> None:
    assert tokenize("The well @-@ known 1 @,@ 000 Don't!") == ["the", "well", "known", "1", "000", "don't"]
    assert tokenize("Paris", lowercase=False) == ["Paris"]


def test_text_and_jsonl_and_gzip(tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("Hello world\n\n , \nhello again\n", encoding="utf-8")
    jsonl = tmp_path / "b.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"text": "Hello JSON"}) + "\n\n" + json.dumps({"text": ["two", "captions"]}) + "\n")
    corpus = Corpus([text, jsonl], progress=False)
    expected = [["hello", "world"], ["hello", "again"], ["hello", "json"], ["two"], ["captions"]]
    assert list(corpus) == expected
    assert list(corpus) == expected  # re-iterable: trainers read it twice
    vocabulary = build_vocabulary(corpus, min_count=2)
    assert vocabulary.words == ["hello"] and vocabulary.counts == [3] and vocabulary.total_tokens == 8


def test_a_byte_order_mark_starts_no_word_and_breaks_no_json(tmp_path: Path) -> None:
    (tmp_path / "bom.jsonl").write_text("\ufeff" + json.dumps({"text": "Hello JSON"}) + "\n", encoding="utf-8")
    (tmp_path / "bom.txt").write_text("\ufeffHello text\n", encoding="utf-8")
    assert list(Corpus([tmp_path / "bom.jsonl", tmp_path / "bom.txt"], progress=False)) == [["hello", "json"], ["hello", "text"]]


def test_real_trec_field() -> None:
    corpus = Corpus([shared("trec", "train.jsonl")], json_field="text", progress=False)
    first = next(iter(corpus))
    assert first and all(token == token.lower() for token in first)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        Corpus([tmp_path / "missing.txt"])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbad \xff line\n")
    with pytest.raises(DataError, match=r"bad.txt:2: not valid UTF-8"):
        list(Corpus([bad], progress=False))
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(json.dumps({"question": "x"}) + "\n")
    with pytest.raises(DataError, match=r"c.jsonl:1: no field 'text'.*found: question.*--field"):
        list(Corpus([jsonl], progress=False))
    empty = tmp_path / "empty.txt"
    empty.write_text(" , ; \n")
    with pytest.raises(DataError, match="corpus is empty"):
        build_vocabulary(Corpus([empty], progress=False))
    with pytest.raises(DataError, match="lower"):
        build_vocabulary([["a", "b"]], min_count=5)
    whole = gzip.compress(" ".join(f"word{i}" for i in range(20_000)).encode() + b"\n" * 3)
    (tmp_path / "cut.txt.gz").write_bytes(whole[: len(whole) // 2])  # a download that stopped half-way
    with pytest.raises(DataError, match=r"cut.txt.gz: cannot decompress after line 0 .*truncated or corrupt"):
        list(Corpus([tmp_path / "cut.txt.gz"], progress=False))
