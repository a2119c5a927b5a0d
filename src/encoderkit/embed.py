"""Fast sentence embedding: in memory (``encode``) and streamed from files (``embed_file``).

The fast path, and why each piece is there:

* tokenize a whole block at once with the Rust tokenizer (parallel, no per-text Python),
* sort the block by *token* count (not characters) so each batch pads to almost nothing,
* pad each batch only to its own longest text (dynamic padding), and pass no attention mask at
  all when a batch has no padding so SDPA takes its unmasked kernel,
* run under ``torch.inference_mode()`` and write each batch straight into a preallocated output.

Files are read in blocks of ``block_size`` texts, so memory stays bounded however large the input;
each block is sorted on its own and written back in input order.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from encoderkit.compression import without_compression_suffix
from encoderkit.data.readers import (check_text, delimited_records, field_names, jsonl_records,
                                     plain_text_lines)
from encoderkit.errors import ConfigError, DataError
from encoderkit.text_encoder import run_in_length_order


class SentenceEmbedder:
    """Any ``TextEncoder`` (tokenizer + encoder + pooler) as a fast text -> vector function.

    ``encode(texts) -> (N,H) float32`` in input order. Build one with ``load_embedder`` from a
    Hugging Face / sentence-transformers checkpoint or from an encoderkit model directory.
    """

    def __init__(self, text_encoder: torch.nn.Module) -> None:
        self.text_encoder = text_encoder.eval()

    @property
    def tokenizer(self):
        return self.text_encoder.tokenizer

    @property
    def dim(self) -> int:
        return int(self.text_encoder.output_dim)

    def with_precision(self, precision: str) -> "SentenceEmbedder":
        """A copy whose encoder runs in ``float32``, ``int8`` or ``bf16`` (tokenizer and pooler
        shared, the original untouched). See ``encoderkit.quantize``."""
        from encoderkit.quantize import convert_precision

        if precision == "float32":
            return self
        text_encoder = copy.copy(self.text_encoder)  # shallow: a new module dict, shared children
        text_encoder._modules = dict(self.text_encoder._modules)
        text_encoder.encoder = convert_precision(self.text_encoder.encoder, precision)
        return SentenceEmbedder(text_encoder)

    def encode_ids(self, sequences: Sequence[Sequence[int]], batch_size: int = 32, progress=None) -> np.ndarray:
        """Embed already-tokenized texts, longest first; (N,H) float32 in input order.

        Args:
            sequences: N lists of token ids (special tokens included).
            batch_size: texts per forward pass.
            progress: optional callable taking the number of texts just finished.
        """
        return run_in_length_order(self.text_encoder, sequences, self.tokenizer.pad_id, batch_size, self.dim,
                                   progress)

    def encode(
        self,
        texts: Sequence[str] | str,
        batch_size: int = 32,
        progress: bool = False,
        block_size: int = 8192,
    ) -> np.ndarray:
        """Embed texts: (N,H) float32 in input order, or (H,) for a single ``str``.

        Args:
            texts: N strings (the rules of ``encoderkit.texts.as_text_list``: no empty texts, no
                non-strings).
            batch_size: texts per forward pass.
            progress: show a progress bar (tqdm, on stderr).
            block_size: texts tokenized and length-sorted together; bounds the token-id memory.
        """
        from encoderkit.texts import as_text_list

        texts, single = as_text_list(texts)
        if single:
            return self.encode(texts, batch_size, progress, block_size)[0]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with _progress_bar(len(texts), progress) as bar:
            for start in range(0, len(texts), block_size):
                block = texts[start : start + block_size]
                out[start : start + len(block)] = self.encode_ids(
                    self.tokenizer.encode_batch(block), batch_size, bar
                )
        return out


def load_embedder(
    path: str | Path,
    pooling: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
    precision: str = "float32",
) -> SentenceEmbedder:
    """A ``SentenceEmbedder`` from an encoderkit model directory or a local checkpoint folder (or the
    onnxruntime predictor of an ONNX export, which has the same ``encode`` and ``dim``).

    Args:
        path: an encoderkit model directory (``RUN/model``), or a Hugging Face / sentence-transformers
            checkpoint folder (never downloaded).
        pooling, normalize, max_length: checkpoint folders only (see ``checkpoint_text_encoder``);
            a trained encoderkit model keeps the pooling it was trained with.
        precision: ``float32``, ``int8`` or ``bf16``.
    """
    from encoderkit.onnx.predictor import is_onnx_export

    path = Path(path)
    if is_onnx_export(path):  # runs on onnxruntime, at the precision it was exported with
        if pooling is not None or normalize is not None or max_length is not None:
            raise ConfigError(f"{path} is an ONNX export: its pooling and max_length are fixed")
        from encoderkit.onnx.predictor import load_onnx_model

        return load_onnx_model(path).with_precision(precision)
    if _is_encoderkit_model(path):
        if pooling is not None or normalize is not None or max_length is not None:
            raise ConfigError(f"{path} is a trained encoderkit model: its pooling and max_length are fixed")
        from encoderkit.model_dir import load_model

        embedder = SentenceEmbedder(load_model(path).model.text_encoder)
    else:
        from encoderkit.text_encoder import checkpoint_text_encoder

        embedder = SentenceEmbedder(checkpoint_text_encoder(path, pooling, normalize, max_length))
    return embedder.with_precision(precision)


def _is_encoderkit_model(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == "encoderkit-model"
    except (json.JSONDecodeError, AttributeError):
        return False


class _progress_bar:
    """A tqdm bar used as ``bar(n)`` to advance; a no-op when disabled."""

    def __init__(self, total: int | None, enabled: bool, description: str = "embedding") -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="text", desc=description)

    def __enter__(self):
        return self if self.bar is not None else None

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, count: int) -> None:
        self.bar.update(count)


# ---------------------------------------------------------------------------------------------
# Streaming files


@dataclass
class EmbedReport:
    """What ``embed_file`` did: rows written, vector size, seconds and texts per second."""

    rows: int
    dim: int
    seconds: float
    output: str

    @property
    def texts_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf


def _input_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = without_compression_suffix(path).suffix.lower()  # texts.jsonl.gz reads as JSONL
    return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}.get(suffix, "text")


_INT64 = (-(2**63), 2**63 - 1)
_CSV_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")  # "007" is a code, not the number 7: it stays text


def _typed_id(value, from_text: bool) -> int | str:
    """An id as the input typed it: JSON integers (and CSV cells written as integers) stay integers."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif from_text and isinstance(value, str) and _CSV_INTEGER.fullmatch(value):
        number = int(value)
    else:
        return str(value)
    return number if _INT64[0] <= number <= _INT64[1] else str(value)  # Parquet ids are int64


def read_records(
    path: str | Path, fmt: str = "auto", text_field: str = "text", id_field: str | None = None
) -> Iterator[tuple[int | str, str]]:
    """Stream ``(id, text)`` pairs from a text (one per line), JSONL, CSV or TSV file, plain or gz/bz2/xz.

    Args:
        path: input file.
        fmt: ``auto`` (by suffix), ``text``, ``jsonl``, ``csv`` or ``tsv``.
        text_field: the field holding the text (JSONL/CSV/TSV).
        id_field: the field holding an id; default: ``id`` if present, else the 0-based record number.

    Returns:
        An iterator of ``(id, text)`` in file order. Ids keep their type: JSON integers, CSV cells
        written as integers (``"42"``, not ``"042"``) and record numbers are ``int``, others ``str``.

    Raises:
        DataError: a missing file or field, or an empty text, named by ``path:line``.
    """
    return ((key, text) for _, key, text in read_numbered_records(path, fmt, text_field, id_field))


def read_numbered_records(
    path: str | Path, fmt: str = "auto", text_field: str = "text", id_field: str | None = None
) -> Iterator[tuple[int, int | str, str]]:
    """``read_records`` with each record's line number first: ``(line, id, text)``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    fmt = _input_format(path, fmt)
    if fmt == "text":  # a blank line is an error: skipping it would shift every later row
        return ((number, number - 1, text) for number, text in plain_text_lines(path))
    if fmt == "jsonl":
        records = jsonl_records(path, text_field)
    elif fmt in ("csv", "tsv"):
        records = delimited_records(path, "," if fmt == "csv" else "\t")
    else:
        raise ConfigError(f"unknown input format {fmt!r}; valid: auto, text, jsonl, csv, tsv")
    return _keyed_texts(path, records, text_field, id_field, from_text=fmt != "jsonl")


def _keyed_texts(path: Path, records: Iterable[tuple[int, dict]], text_field: str, id_field: str | None,
                 from_text: bool) -> Iterator[tuple[int, int | str, str]]:
    for row, (number, record) in enumerate(records):
        where = f"{path}:{number}"
        if text_field not in record:
            raise DataError(f"{where}: no field {text_field!r} (fields: {field_names(record)}); "
                            "choose it with --text-field")
        if id_field and id_field not in record:
            raise DataError(f"{where}: no id field {id_field!r} (fields: {field_names(record)}); "
                            "choose it with --id-field")
        key = id_field or ("id" if "id" in record else None)
        yield number, (_typed_id(record[key], from_text) if key else row), check_text(record[text_field], where, text_field)


def _blocks(records: Iterable[tuple[int | str, str]], size: int) -> Iterator[tuple[list, list[str]]]:
    ids, texts = [], []
    for key, text in records:
        ids.append(key)
        texts.append(text)
        if len(texts) == size:
            yield ids, texts
            ids, texts = [], []
    if texts:
        yield ids, texts


def embed_file(
    embedder: SentenceEmbedder,
    input_path: str | Path,
    output_path: str | Path,
    fmt: str = "auto",
    text_field: str = "text",
    id_field: str | None = None,
    batch_size: int = 32,
    block_size: int = 8192,
    progress: bool = True,
) -> EmbedReport:
    """Embed every text of a file into ``.npy`` (N,H) float32 or Parquet (``id``, ``embedding``).

    The input is read twice: a cheap first pass checks every record, counts them (so ``.npy`` can be
    a preallocated memory map) and finds the id type (int64 when every id is an integer, else
    string); the second embeds ``block_size`` texts at a time, so memory stays bounded. The output
    is written under a temporary name beside it and moved into place only when complete: a failed
    run leaves an existing file as it was.

    Args:
        embedder: anything with ``encode(texts, batch_size) -> (n,H)`` and ``dim``.
        input_path: text (one per line), JSONL, CSV or TSV.
        output_path: ``*.npy`` or ``*.parquet``.
        fmt, text_field, id_field: see ``read_records``; ``id_field`` needs Parquet output.
        batch_size: texts per forward pass.
        block_size: texts read, sorted and embedded together.
        progress: show a progress bar.

    Returns:
        An ``EmbedReport``.
    """
    output_path = Path(output_path)
    suffix = output_path.suffix.lower()
    if suffix not in (".npy", ".parquet"):
        raise ConfigError(f"output {output_path} must end in .npy or .parquet")
    if suffix == ".npy" and id_field is not None:
        raise ConfigError(f"--id-field {id_field!r} needs Parquet output: {output_path.name} holds only the "
                          "vectors (row i is input record i); write OUT.parquet to keep the ids")
    records = lambda: read_records(input_path, fmt, text_field, id_field)  # noqa: E731
    start = time.perf_counter()
    total, integer_ids = 0, True
    for key, _ in records():  # every record is checked before any output exists
        total += 1
        integer_ids = integer_ids and isinstance(key, int)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with _replace_when_complete(output_path) as partial:
        if suffix == ".npy":
            written = _write_npy(embedder, records(), partial, total, batch_size, block_size, progress)
        else:
            written = _write_parquet(embedder, records(), partial, integer_ids, batch_size, block_size, progress)
    return EmbedReport(written, embedder.dim, time.perf_counter() - start, str(output_path))


@contextmanager
def _replace_when_complete(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved over it (atomically) only if the block succeeds.

    Writing ``path`` itself would turn a good file into a valid-looking partial one (Parquet
    closes a readable file even on error) when a run fails or is interrupted part-way.
    """
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")  # same folder: os.replace is atomic
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:  # Ctrl-C too: never leave the partial file behind
        partial.unlink(missing_ok=True)
        raise


def _write_npy(embedder, records, output_path: Path, total: int, batch_size: int, block_size: int,
               progress: bool) -> int:
    out = np.lib.format.open_memmap(output_path, mode="w+", dtype=np.float32, shape=(total, embedder.dim))
    written = 0
    with _progress_bar(total, progress) as bar:
        for _, texts in _blocks(records, block_size):
            out[written : written + len(texts)] = embedder.encode(texts, batch_size=batch_size)
            written += len(texts)
            if bar is not None:
                bar(len(texts))
    out.flush()
    del out
    return written


def _write_parquet(embedder, records, output_path: Path, integer_ids: bool, batch_size: int, block_size: int,
                   progress: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    id_type = pa.int64() if integer_ids else pa.string()
    schema = pa.schema([("id", id_type), ("embedding", pa.list_(pa.float32(), embedder.dim))])
    written = 0
    with pq.ParquetWriter(str(output_path), schema) as writer, _progress_bar(None, progress) as bar:
        for ids, texts in _blocks(records, block_size):
            vectors = embedder.encode(texts, batch_size=batch_size)
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, embedder.dim)
            keys = ids if integer_ids else [str(key) for key in ids]
            writer.write_table(pa.table({"id": pa.array(keys, id_type), "embedding": column}, schema=schema))
            written += len(texts)
            if bar is not None:
                bar(len(texts))
    return written
