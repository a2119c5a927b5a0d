"""Whatever a file holds, every reader either reads it or raises a one-line ``EncoderkitError``.

Random bytes, JSON lines, CSV/TSV and word-vector-like text are written under every suffix, plain,
gzip-compressed and gzip cut short, then read by ``read_examples``, ``read_texts``,
``embed.read_records`` and ``wordvec.io.load_vectors``. Any other exception (a crash, which the
CLI would print as a traceback) or a message on several lines fails the test. Derandomized, so CI
sees the same examples every run.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from encoderkit.data.readers import read_examples, read_texts
from encoderkit.embed import read_records
from encoderkit.errors import EncoderkitError
from encoderkit.wordvec.io import load_vectors

SUFFIXES = (".jsonl", ".csv", ".tsv", ".txt", ".ft")
PACKINGS = ("plain", "gzip", "gzip cut short")
READERS = {
    "read_examples": read_examples,
    "read_texts": lambda path: list(read_texts(path)),
    "read_records": lambda path: list(read_records(path)),
    "load_vectors": lambda path: load_vectors(path, progress=False),
}
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None)
# A number beyond float32 (1e300) loads as inf with numpy's cast warning; not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

suffixes = st.sampled_from(SUFFIXES)
packings = st.sampled_from(PACKINGS)
field_names = st.sampled_from(["text", "label", "id", "body"]) | st.text(max_size=6)
short_texts = st.text(max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | short_texts
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(field_names, inner, max_size=3), max_leaves=8)
# Mostly near-valid records, so the readers get past their first checks and into the parsing.
labelled = st.fixed_dictionaries({"text": short_texts | json_values},
                                 optional={"label": short_texts | json_values, "id": st.integers() | short_texts})
filled = st.text(min_size=1, max_size=12).filter(str.strip)
valid_records = st.lists(st.fixed_dictionaries({"text": filled, "label": filled}), min_size=1, max_size=4)
json_lines = (valid_records | st.lists(labelled | st.dictionaries(field_names, json_values, max_size=4) | json_values,
                                       max_size=6)).map(lambda records: "\n".join(json.dumps(r) for r in records))
cells = short_texts | st.sampled_from(["", " ", '"', "a,b", "x\ty", "line\nbreak", "7", "__label__a"])
headers = st.sampled_from([["text", "label"], ["id", "text", "label"], ["text"]]) | st.lists(cells, min_size=1, max_size=3)
numbers = st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers().map(str)


@st.composite
def delimited(draw) -> str:
    """A header and rows, written by csv (valid quoting) or joined raw (anything goes)."""
    delimiter = draw(st.sampled_from([",", "\t"]))
    if draw(st.booleans()):
        rows = [["text", "label"]] + draw(st.lists(st.lists(filled, min_size=2, max_size=2), min_size=1, max_size=4))
    else:
        rows = [draw(headers)] + draw(st.lists(st.lists(cells, min_size=1, max_size=4), max_size=5))
    if draw(st.booleans()):
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter).writerows(rows)
        return buffer.getvalue()
    return "\n".join(delimiter.join(row) for row in rows)


@st.composite
def vector_like(draw) -> str:
    """``word v_1 ... v_D`` lines, some with a number too many or too few, a word with spaces, or junk."""
    dim = draw(st.integers(1, 4))
    words = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=" \n\r"), min_size=1, max_size=5)
    line = st.tuples(words | short_texts, st.lists(numbers, min_size=dim - 1, max_size=dim + 1)
                     | st.lists(numbers | short_texts, max_size=dim + 2)).map(lambda t: " ".join([t[0], *t[1]]))
    lines = draw(st.lists(line, max_size=6))
    header = draw(st.sampled_from(["none", "right", "any"]))
    if header == "right":
        lines.insert(0, f"{len(lines)} {dim}")
    elif header == "any":
        lines.insert(0, f"{draw(st.integers(0, 10**12))} {draw(st.integers(0, 5))}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", " \n"]))


def texts(strategy):
    """Text as UTF-8 bytes, sometimes after a byte-order mark."""
    return st.tuples(st.booleans(), strategy).map(lambda t: ("\ufeff" if t[0] else "") + t[1]).map(str.encode)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_with_every_reader(folder: Path, content: bytes, suffix: str, packing: str) -> None:
    path = folder / f"input{suffix}{'' if packing == 'plain' else '.gz'}"
    data = content if packing == "plain" else gzip.compress(content, mtime=0)
    path.write_bytes(data[: max(len(data) // 2, 1)] if packing == "gzip cut short" else data)
    for name, read in READERS.items():
        try:
            read(path)
        except EncoderkitError as error:
            lines = str(error).splitlines()
            assert len(lines) == 1, f"{name} on {content!r} ({suffix}, {packing}): {str(error)!r}"


#: gzip magic and header, then data that is no deflate stream: gzip raises zlib.error, not OSError.
DAMAGED_GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 12


@FUZZ
@given(content=st.binary(max_size=200), suffix=suffixes, packing=packings)
@example(content=b"", suffix=".txt", packing="gzip cut short")  # EOFError while sniffing the format
@example(content=DAMAGED_GZIP, suffix=".jsonl", packing="plain")  # zlib.error in every reader
@example(content=DAMAGED_GZIP, suffix=".txt", packing="plain")
@example(content=b"[" * 100_000, suffix=".jsonl", packing="plain")  # RecursionError in json.loads
@example(content=b"text,label\nbro\rken,b\n", suffix=".csv", packing="plain")  # csv.Error: a lone CR in a cell
def test_random_bytes(folder, content, suffix, packing):
    read_with_every_reader(folder, content, suffix, packing)


@FUZZ
@given(content=texts(json_lines), suffix=suffixes, packing=packings)
def test_random_json_lines(folder, content, suffix, packing):
    read_with_every_reader(folder, content, suffix, packing)


@FUZZ
@given(content=texts(delimited()), suffix=suffixes, packing=packings)
def test_random_csv_and_tsv(folder, content, suffix, packing):
    read_with_every_reader(folder, content, suffix, packing)


@FUZZ
@given(content=texts(vector_like()), suffix=st.sampled_from(SUFFIXES + (".bin",)), packing=packings)
def test_random_word_vector_text(folder, content, suffix, packing):
    read_with_every_reader(folder, content, suffix, packing)
