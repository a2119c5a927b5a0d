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
import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from encoderkit.compression import without_compression_suffix
from encoderkit.data.readers import decoded_lines, parse_json_object
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
        texts: Sequence[str],
        batch_size: int = 32,
        progress: bool = False,
        block_size: int = 8192,
    ) -> np.ndarray:
        """Embed texts: (N,H) float32 in input order.

        Args:
            texts: N strings.
            batch_size: texts per forward pass.
            progress: show a progress bar (tqdm, on stderr).
            block_size: texts tokenized and length-sorted together; bounds the token-id memory.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts; wrap a single text in a list")
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
    """A ``SentenceEmbedder`` from an encoderkit model directory or a local checkpoint folder.

    Args:
        path: an encoderkit model directory (``RUN/model``), or a Hugging Face / sentence-transformers
            checkpoint folder (never downloaded).
        pooling, normalize, max_length: checkpoint folders only (see ``checkpoint_text_encoder``);
            a trained encoderkit model keeps the pooling it was trained with.
        precision: ``float32``, ``int8`` or ``bf16``.
    """
    path = Path(path)
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

    def __init__(self, total: int | None, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="text", desc="embedding")

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


def read_records(
    path: str | Path, fmt: str = "auto", text_field: str = "text", id_field: str | None = None
) -> Iterator[tuple[str, str]]:
    """Stream ``(id, text)`` pairs from a text (one per line), JSONL, CSV or TSV file, plain or gz/bz2/xz.

    Args:
        path: input file.
        fmt: ``auto`` (by suffix), ``text``, ``jsonl``, ``csv`` or ``tsv``.
        text_field: the field holding the text (JSONL/CSV/TSV).
        id_field: the field holding an id; default: ``id`` if present, else the 0-based row number.

    Yields:
        ``(id, text)`` in file order; blank lines in text files are kept as empty texts so row
        numbers match line numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    fmt = _input_format(path, fmt)
    lines = decoded_lines(path)  # UTF-8 checked line by line: a bad byte is reported with its line
    if fmt == "text":
        for number, line in lines:
            yield str(number - 1), line.rstrip("\r\n")
        return
    if fmt == "jsonl":
        records: Iterable[dict] = (
            parse_json_object(line, f"{path}:{number}", text_field) for number, line in lines if line.strip()
        )
    elif fmt in ("csv", "tsv"):
        records = csv.DictReader((line for _, line in lines), delimiter="," if fmt == "csv" else "\t")
    else:
        raise ConfigError(f"unknown input format {fmt!r}; valid: auto, text, jsonl, csv, tsv")
    for row, record in enumerate(records):
        if text_field not in record:
            raise DataError(f"{path} record {row + 1} has no field {text_field!r} (fields: {', '.join(record)})")
        key = id_field or ("id" if "id" in record else None)
        if id_field and id_field not in record:
            raise DataError(f"{path} record {row + 1} has no id field {id_field!r}")
        yield (str(record[key]) if key else str(row)), str(record[text_field] or "")


def _blocks(records: Iterable[tuple[str, str]], size: int) -> Iterator[tuple[list[str], list[str]]]:
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

    The input is read twice for ``.npy`` (a cheap first pass counts rows so the output can be a
    preallocated memory map) and once for Parquet (row groups are appended per block); in both
    cases at most ``block_size`` texts and their vectors are held in memory.

    Args:
        embedder: anything with ``encode(texts, batch_size) -> (n,H)`` and ``dim``.
        input_path: text (one per line), JSONL, CSV or TSV.
        output_path: ``*.npy`` or ``*.parquet``.
        fmt, text_field, id_field: see ``read_records``.
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
    output_path.parent.mkdir(parents=True, exist_ok=True)
    records = lambda: read_records(input_path, fmt, text_field, id_field)  # noqa: E731
    start = time.perf_counter()
    if suffix == ".npy":
        total = sum(1 for _ in records())
        out = np.lib.format.open_memmap(output_path, mode="w+", dtype=np.float32, shape=(total, embedder.dim))
        written = 0
        with _progress_bar(total, progress) as bar:
            for _, texts in _blocks(records(), block_size):
                out[written : written + len(texts)] = embedder.encode(texts, batch_size=batch_size)
                written += len(texts)
                if bar is not None:
                    bar(len(texts))
        out.flush()
        del out
    else:
        written = _write_parquet(embedder, records(), output_path, batch_size, block_size, progress)
    return EmbedReport(written, embedder.dim, time.perf_counter() - start, str(output_path))


def _write_parquet(embedder, records, output_path: Path, batch_size: int, block_size: int, progress: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32(), embedder.dim))])
    written = 0
    with pq.ParquetWriter(str(output_path), schema) as writer, _progress_bar(None, progress) as bar:
        for ids, texts in _blocks(records, block_size):
            vectors = embedder.encode(texts, batch_size=batch_size)
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, embedder.dim)
            writer.write_table(pa.table({"id": pa.array(ids, pa.string()), "embedding": column}, schema=schema))
            written += len(texts)
            if bar is not None:
                bar(len(texts))
    return written
