"""Load and save word vectors: GloVe text, word2vec text and binary, fastText ``.vec``.

Files may be plain or compressed with gzip, bzip2 or xz (detected from their first bytes, not
their name). The text formats differ only in the header: word2vec and fastText start with a
``"<count> <dim>"`` line, GloVe has none; every other line is ``word v_1 ... v_D``.

Why this is faster than a line-by-line reader: decompression runs in a background thread (the
zlib/bz2/lzma modules release the GIL while they work) and hands over large blocks of bytes,
which the main thread parses whole with pandas' C CSV parser instead of splitting and converting
one line at a time in Python. The two overlap, so loading a bzip2 file costs little more than
decompressing it.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import queue
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from encoderkit.compression import (DECOMPRESSION_ERRORS, OPENERS, compression_from_suffix, detect_compression,
                                    without_compression_suffix)
from encoderkit.errors import DataError

#: Accepted values of the ``format`` argument. "text" covers GloVe, word2vec text and fastText .vec.
FORMATS = ("auto", "text", "binary")

_CHUNK_BYTES = 1 << 23  # 8 MiB of decompressed text per parse call: big enough to amortise pandas' overhead
_log = logging.getLogger(__name__)


class _CountingReader(io.RawIOBase):
    """Wraps a raw file and reports bytes read, so the progress bar follows the compressed file."""

    def __init__(self, raw: BinaryIO, bar: tqdm):
        self._raw, self._bar = raw, bar

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self._bar.update(count)
        return count


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"word vector file not found: {path} (pass the path of a .txt/.vec/.bin file, optionally "
                        f".gz/.bz2/.xz, or train one: encoderkit wordvec train CORPUS -o {path})")
    if path.stat().st_size == 0:
        raise DataError(f"word vector file is empty: {path}")
    return path


@contextmanager
def _open_stream(path: Path, bar: tqdm) -> Iterator[BinaryIO]:
    """Open ``path`` for binary reading, decompressing transparently.

    Every layer is closed explicitly: neither the counting reader nor gzip/bz2/lzma opened on a
    file object close what they wrap.
    """
    with open(path, "rb") as raw, io.BufferedReader(_CountingReader(raw, bar), buffer_size=1 << 20) as counted:
        compression = detect_compression(path)
        if compression is None:
            yield counted
        else:
            with OPENERS[compression](counted, "rb") as stream:
                yield stream


def _background_chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """Yield ``stream.read(size)`` blocks read (and decompressed) by a background thread."""
    blocks: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                block = stream.read(size)
                while not stop.is_set():
                    try:
                        blocks.put(block, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if not block:
                    return
        except BaseException as error:  # re-raised in the consumer, where the user sees it
            blocks.put(error)

    worker = threading.Thread(target=produce, daemon=True, name="wordvec-reader")
    worker.start()
    try:
        while True:
            block = blocks.get()
            if isinstance(block, BaseException):
                raise block
            if not block:
                return
            yield block
    finally:
        stop.set()
        worker.join(timeout=5)


def _parse_header(line: bytes) -> tuple[int, int] | None:
    """``b"400000 50"`` -> (400000, 50); anything else (a GloVe vector line) -> None."""
    fields = line.split()
    if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
        return int(fields[0]), int(fields[1])
    return None


def _checked_header(line: bytes, path: Path) -> tuple[int, int] | None:
    """``_parse_header``, refusing a header whose dimension is 0 (no vector has 0 numbers)."""
    header = _parse_header(line)
    if header is not None and header[1] < 1:
        raise DataError(f"{path}:1: the header {_shown(line)} says the vectors have {header[1]} numbers; "
                        "it must be 'count dim' with dim at least 1")
    return header


def _shown(raw: bytes, limit: int = 80) -> str:
    """Bytes of the file as quoted text for an error line (never a ``b'...'`` repr, never two lines)."""
    return repr(raw[:limit].decode("utf-8", errors="replace"))


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _trailing_numbers(fields: list[bytes]) -> int:
    """How many fields after the word, counted from the end, are numbers."""
    count = 0
    for field in reversed(fields[1:]):
        if not _is_number(field):
            break
        count += 1
    return count


def _decode_or_fail(block: bytes, path: Path, first_line: int, errors: str) -> None:
    """Raise a DataError naming the file and line when ``block`` is not valid UTF-8."""
    if errors != "strict":
        return
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + block.count(b"\n", 0, error.start)
        column = error.start - block.rfind(b"\n", 0, error.start)
        raise DataError(
            f"{path}:{line}: not valid UTF-8 ({error.reason} at byte {column} of the line); "
            "re-save the file as UTF-8 or pass unicode_errors='replace'"
        ) from None


def _count_error(where: str, numbers: int, dim: int, header: bool) -> DataError:
    plural = "" if numbers == 1 else "s"
    source, fix = ("the header, line 1", "fix the header or the line") if header else ("line 1", "fix or remove the line")
    spaces = " (a word with spaces cannot have only numbers after its first part)" if numbers > dim else ""
    return DataError(f"{where}: {numbers} number{plural} where the file's vectors have {dim} (from {source}); {fix}{spaces}")


def _split_vector_line(line: bytes, dim: int, where: str, header: bool) -> tuple[bytes, list[bytes]]:
    """``word v_1 ... v_D`` -> (word, D number fields).

    The last ``dim`` fields are the numbers and the word is everything before them, so words with
    spaces read (GloVe 840B has a few) - unless everything after the word's first part is a number
    too: then the line has too many numbers (``cherry 0.7 0.8 0.9 1.0`` in a 3-d file), and
    reading ``cherry 0.7`` as the word would hide the damage.
    """
    fields = line.split(b" ")
    if len(fields) < dim + 1:
        raise _count_error(where, _trailing_numbers(fields), dim, header)
    values = fields[-dim:]
    for value in values:
        if not _is_number(value):
            raise DataError(f"{where}: a vector value is not a number: {_shown(value)} in {_shown(line)}")
    extra = fields[1:-dim]
    if extra and all(_is_number(field) for field in extra):
        raise _count_error(where, len(fields) - 1, dim, header)
    return b" ".join(fields[:-dim]), values


def _parse_lines_slow(block: bytes, dim: int, path: Path, first_line: int, errors: str, header: bool):
    """Line-by-line fallback for blocks pandas cannot split (words containing spaces, CRLF, bad rows)."""
    words, rows = [], []
    for offset, line in enumerate(block.split(b"\n")):
        line = line.rstrip(b"\r\n ")
        if not line:
            continue
        word, values = _split_vector_line(line, dim, f"{path}:{first_line + offset}", header)
        rows.append(np.array(values, dtype=np.float32))
        words.append(word.decode("utf-8", errors=errors))
    matrix = np.vstack(rows) if rows else np.zeros((0, dim), np.float32)
    return words, matrix


def _parse_text_block(block: bytes, dim: int, path: Path, first_line: int, errors: str, header: bool):
    """Parse complete lines ``word v_1 ... v_D`` into (words, float32 matrix (n, D))."""
    _decode_or_fail(block, path, first_line, errors)
    try:
        frame = pd.read_csv(
            io.BytesIO(block),
            sep=" ",
            header=None,
            quoting=csv.QUOTE_NONE,  # a word may be a lone quote character
            na_filter=False,  # words such as "nan" or "null" stay words
            dtype={0: object},
            engine="c",
            index_col=False,
            lineterminator="\n",
            encoding="utf-8",
            encoding_errors=errors,
        )
    except (pd.errors.ParserError, ValueError):
        return _parse_lines_slow(block, dim, path, first_line, errors, header)
    width = frame.shape[1]
    if width == dim + 2 and (frame.iloc[:, -1].astype(str) == "").all():
        frame = frame.iloc[:, :-1]  # fastText .vec lines end with a space: drop the empty last column
        width -= 1
    if width != dim + 1 or not all(pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes.iloc[1:]):
        return _parse_lines_slow(block, dim, path, first_line, errors, header)  # it finds and names the bad line
    matrix = frame.iloc[:, 1:].to_numpy(dtype=np.float32)
    if np.isnan(matrix).any():  # a short row is padded with NaN by the parser: find and report it
        return _parse_lines_slow(block, dim, path, first_line, errors, header)
    return frame.iloc[:, 0].astype(str).tolist(), matrix


def _complete_lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Re-cut arbitrary byte blocks so that each yielded block ends with a newline."""
    carry = b""
    for block in blocks:
        data = carry + block
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield data[: cut + 1]
    if carry.strip():
        yield carry + b"\n"  # the last line had no newline


def _load_text(blocks: Iterator[bytes], path: Path, limit: int | None, errors: str):
    words: list[str] = []
    matrices: list[np.ndarray] = []
    dim = expected = None
    line_number = 1  # 1-based number of the first line of the next parsed block
    for data in _complete_lines(blocks):
        if dim is None:
            data = data.removeprefix(codecs.BOM_UTF8)  # written by Windows editors; not part of the first word
            first_end = data.find(b"\n")
            header = _checked_header(data[:first_end], path)
            if header is not None:
                expected, dim = header
                data = data[first_end + 1 :]
                line_number += 1
            else:
                dim = len(data[:first_end].rstrip(b"\r ").split(b" ")) - 1
                if dim < 1:
                    raise DataError(f"{path}:1: expected 'word v_1 ... v_D' or a 'count dim' header, found {_shown(data[:first_end])}")
        if limit is not None:  # parse only the lines still needed
            data = _first_lines(data, limit - len(words))
        if data:
            chunk_words, matrix = _parse_text_block(data, dim, path, line_number, errors, expected is not None)
            words.extend(chunk_words)
            matrices.append(matrix)
            line_number += data.count(b"\n")
        if limit is not None and len(words) >= limit:
            break
    if dim is None:
        raise DataError(f"{path}: no word vectors found (empty after decompression?)")
    if expected is not None and limit is None and len(words) != expected:
        raise DataError(f"{path}: header announces {expected} vectors but the file holds {len(words)}; is it truncated?")
    vectors = np.concatenate(matrices) if matrices else np.zeros((0, dim), np.float32)
    return words, vectors


def _first_lines(data: bytes, count: int) -> bytes:
    """The first ``count`` lines of ``data`` (which ends with a newline)."""
    position = -1
    for _ in range(max(count, 0)):
        position = data.find(b"\n", position + 1)
        if position < 0:
            return data
    return data[: position + 1]


def _load_binary(stream_blocks: Iterator[bytes], path: Path, limit: int | None, errors: str):
    """word2vec binary: ``"count dim\\n"`` then, per word, ``word<space><dim float32 LE>[\\n]``."""
    buffer = bytearray()
    blocks = iter(stream_blocks)
    header = None
    for block in blocks:
        buffer += block
        end = buffer.find(b"\n")
        if end >= 0:
            header = _checked_header(bytes(buffer[:end]).removeprefix(codecs.BOM_UTF8), path)
            del buffer[: end + 1]
            break
    if header is None:
        raise DataError(f"{path}: a word2vec binary file must start with a 'count dim' line; pass format='text' for GloVe files")
    count, dim = header
    if limit is not None:
        count = min(count, limit)
    record = 4 * dim
    words: list[str] = []
    # Grown as records arrive, not allocated from the header's count: a damaged header may announce
    # billions of vectors, and only the bytes really read should decide the memory used.
    vectors = np.empty((0, dim), dtype=np.float32)
    position = 0
    exhausted = False
    while len(words) < count:
        space = buffer.find(b" ", position)
        if space < 0 or len(buffer) - (space + 1) < record:
            if exhausted:
                raise DataError(f"{path}: header announces {header[0]} vectors but the file ends after {len(words)}; is it truncated?")
            del buffer[:position]
            position = 0
            block = next(blocks, b"")
            exhausted = not block
            buffer += block
            continue
        word = bytes(buffer[position:space]).lstrip(b"\n")  # the C tool ends each record with a newline
        try:
            words.append(word.decode("utf-8", errors=errors))
        except UnicodeDecodeError:
            raise DataError(f"{path}: vector {len(words) + 1} has a word that is not valid UTF-8: {_shown(word, 40)}; pass unicode_errors='replace'") from None
        if len(words) > len(vectors):
            grown = np.empty((min(count, 2 * len(vectors) + 1024), dim), dtype=np.float32)
            grown[: len(vectors)] = vectors
            vectors = grown
        vectors[len(words) - 1] = np.frombuffer(buffer, dtype="<f4", count=dim, offset=space + 1)
        position = space + 1 + record
    return words, vectors[: len(words)]


def _looks_binary(path: Path) -> bool:
    """Sniff: a header line followed by a line that is not UTF-8 text ending in a number.

    A binary record is the word, a space, then raw float32 bytes, which almost never decode to a
    number. A text line of the wrong length still reads as text, so its error names the line
    (a "4 5" header on 3-d vectors is a header problem, not a truncated binary file).
    """
    with _open_stream(path, tqdm(disable=True)) as stream:
        head = stream.read(1 << 16).removeprefix(codecs.BOM_UTF8)
    end = head.find(b"\n")
    if end < 0 or _parse_header(head[:end]) is None:
        return False
    following = head.find(b"\n", end + 1)
    line = head[end + 1 : following if following >= 0 else len(head)]
    try:
        fields = line.decode("utf-8").split()
    except UnicodeDecodeError:
        return True
    return not (len(fields) >= 2 and _is_number(fields[-1].encode()))


def load_vectors(
    path: str | Path,
    *,
    format: str = "auto",
    limit: int | None = None,
    unicode_errors: str = "strict",
    deduplicate: bool = True,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """Load word vectors from any of the supported formats.

    Args:
        path: GloVe ``.txt``, word2vec ``.txt``/``.bin`` or fastText ``.vec`` file, optionally
            ``.gz``/``.bz2``/``.xz`` compressed (detected from the bytes).
        format: "auto" (binary if the name ends in .bin or the bytes after the header are not
            text), "text" or "binary".
        limit: Read only the first ``limit`` vectors (files are usually sorted by frequency).
        unicode_errors: "strict" raises on a non-UTF-8 word, naming the file and line; "replace"
            or "ignore" are passed to the decoder.
        deduplicate: Keep only the first vector of a word that appears more than once (as gensim
            does); how many lines were dropped is logged as a warning (logger
            ``encoderkit.wordvec.io``).
        progress: Show a progress bar over the (compressed) bytes read (on a terminal only).

    Returns:
        ``(words, vectors)``: the words in file order and a float32 array of shape (len(words), D).
    """
    path = _check_file(path)
    if format not in FORMATS:
        raise DataError(f"unknown word vector format {format!r}; valid formats: {', '.join(FORMATS)}")
    try:
        if format == "auto":
            binary = without_compression_suffix(path).suffix == ".bin" or _looks_binary(path)
        else:
            binary = format == "binary"
        words, vectors = _load(path, binary, limit, unicode_errors, progress)
    except DECOMPRESSION_ERRORS as error:
        raise DataError(f"{path}: cannot decompress ({error}); is the file complete?") from None
    if not words:
        raise DataError(f"{path}: no word vectors found")
    return _first_of_each_word(words, vectors, path) if deduplicate else (words, vectors)


def _load(path: Path, binary: bool, limit: int | None, errors: str, progress: bool):
    bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"loading {path.name}",
               disable=None if progress else True, leave=False)
    try:
        with _open_stream(path, bar) as stream:
            blocks = _background_chunks(stream, _CHUNK_BYTES)
            try:
                return (_load_binary if binary else _load_text)(blocks, path, limit, errors)
            finally:
                blocks.close()
    finally:
        bar.close()


def _first_of_each_word(words: list[str], vectors: np.ndarray, path: Path) -> tuple[list[str], np.ndarray]:
    """Keep the first vector of each word, and say how many lines a repeated word cost."""
    first: dict[str, int] = {}
    for index, word in enumerate(words):
        first.setdefault(word, index)
    dropped = len(words) - len(first)
    if not dropped:
        return words, vectors
    repeated = list(dict.fromkeys(word for index, word in enumerate(words) if first[word] != index))
    examples = ", ".join(repr(word) for word in repeated[:3]) + (", ..." if len(repeated) > 3 else "")
    _log.warning(f"{path}: dropped {dropped:,} line{'' if dropped == 1 else 's'} whose word was already read "
                 f"({examples}); kept the first vector of each word")
    keep = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    return list(first), vectors[keep]


def _open_for_writing(path: Path) -> BinaryIO:
    compression = compression_from_suffix(path)
    return open(path, "wb") if compression is None else OPENERS[compression](path, "wb")


def save_vectors(
    path: str | Path,
    words: list[str],
    vectors: np.ndarray,
    *,
    binary: bool = False,
    header: bool = True,
    precision: int = 7,
) -> None:
    """Write vectors in word2vec format (text by default), compressed when the name ends in .gz/.bz2/.xz.

    Args:
        path: Output file.
        words: One word per row of ``vectors``; words may not contain spaces or newlines.
        vectors: Array of shape (len(words), D).
        binary: Write the word2vec binary format (float32 little-endian) instead of text.
        header: Write the ``"count dim"`` first line (text only; False gives the GloVe format).
        precision: Significant digits of each number in the text format.

    Returns:
        None.
    """
    path = Path(path)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DataError(f"cannot save {len(words)} words with vectors of shape {vectors.shape}: one row per word is needed")
    for word in words:
        if not word or " " in word or "\n" in word:
            raise DataError(f"cannot save the word {word!r}: words in these formats may not be empty or contain spaces/newlines")
    count, dim = vectors.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open_for_writing(path) as handle:
        if binary:
            handle.write(f"{count} {dim}\n".encode())
            little = vectors.astype("<f4", copy=False)
            for word, row in zip(words, little):
                handle.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
            return
        if header:
            handle.write(f"{count} {dim}\n".encode())
        line = "%s" + f" %.{precision}g" * dim + "\n"
        lines: list[str] = []
        for word, row in zip(words, vectors.tolist()):
            lines.append(line % (word, *row))
            if len(lines) >= 10_000:
                handle.write("".join(lines).encode("utf-8"))
                lines.clear()
        handle.write("".join(lines).encode("utf-8"))

