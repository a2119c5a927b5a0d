"""gzip, bzip2 and xz files, told apart by their first bytes (a suffix can be missing or wrong).

Every reader of text (training data, texts to embed or predict, word-vector corpora and files) opens
its input through here, so a ``.gz`` works wherever a plain file does.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from pathlib import Path
from typing import BinaryIO

from encoderkit.errors import DataError

MAGIC = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
OPENERS = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}
SUFFIXES = {".gz": "gz", ".bz2": "bz2", ".xz": "xz", ".lzma": "xz"}
#: What reading a truncated or corrupt compressed stream raises (EOFError would print click's bare "Aborted.";
#: zlib.error, e.g. "invalid block type", is what gzip raises for damaged data inside a good header).
DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)


def corrupt_file_error(path: str | Path, after_line: int, error: BaseException) -> DataError:
    """The one-line error for a compressed file that stops decompressing part-way."""
    return DataError(f"{path}: cannot decompress after line {after_line} ({error}); "
                     "the file is truncated or corrupt: download or compress it again")


def detect_compression(path: str | Path) -> str | None:
    """Return "gz", "bz2", "xz" or None from the file's magic bytes."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    return next((name for magic, name in MAGIC.items() if head.startswith(magic)), None)


def open_decompressed(path: str | Path) -> BinaryIO:
    """Open ``path`` for binary reading, decompressing gzip, bzip2 or xz transparently."""
    compression = detect_compression(path)
    return open(path, "rb") if compression is None else OPENERS[compression](path, "rb")


def compression_from_suffix(path: str | Path) -> str | None:
    """The compression a file name asks for when writing ("out.txt.gz" -> "gz"), or None."""
    return next((name for suffix, name in SUFFIXES.items() if str(path).endswith(suffix)), None)


def without_compression_suffix(path: str | Path) -> Path:
    """``train.jsonl.gz`` -> ``train.jsonl``: the name that tells the format inside."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in SUFFIXES else path
