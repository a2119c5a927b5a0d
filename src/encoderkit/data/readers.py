"""Readers for labelled text: JSONL, CSV, TSV, Parquet and fastText ``__label__`` lines.

Each reader yields ``Example(text, labels)`` where ``labels`` is a tuple (one label for
multi-class data, any number for multi-label data, empty when the file has no labels).
Problems are reported as one line naming the file, the line and the fix.
"""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from encoderkit.compression import (DECOMPRESSION_ERRORS, corrupt_file_error, open_decompressed,
                                    without_compression_suffix)
from encoderkit.errors import DataError

FORMATS = ("jsonl", "csv", "tsv", "parquet", "fasttext")
_SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ft": "fasttext",
}
FASTTEXT_PREFIX = "__label__"
#: The byte-order mark Excel and Notepad put at the start of "UTF-8" files; it is not part of the text.
BOM = "\ufeff"


@dataclass(frozen=True)
class Example:
    text: str
    labels: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The single label of a multi-class example."""
        return self.labels[0]


def detect_format(path: Path, fmt: str = "auto") -> str:
    """Return the reader format for ``path``: the explicit ``fmt`` or one guessed from the suffix/content."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise DataError(f"unknown data format {fmt!r}; valid formats: {', '.join(FORMATS)}")
        return fmt
    suffix = without_compression_suffix(path).suffix.lower()  # train.jsonl.gz reads as JSONL
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    try:
        with open_decompressed(path) as handle:
            head = handle.read(4096).removeprefix(codecs.BOM_UTF8)
    except DECOMPRESSION_ERRORS as error:
        raise corrupt_file_error(path, 0, error) from None
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    if head.startswith(FASTTEXT_PREFIX.encode()):
        return "fasttext"
    raise DataError(
        f"cannot tell the format of {path}; name it with data.format= one of {', '.join(FORMATS)}"
    )


def _split_labels(value, multi_label: bool, separator: str, where: str) -> tuple[str, ...]:
    if value is None:
        raise DataError(f"{where}: the label is empty (null); give every example a label")
    if isinstance(value, (list, tuple)):
        labels = tuple(str(v).strip() for v in value)
        if not multi_label and len(labels) != 1:
            raise DataError(f"{where}: {len(labels)} labels given; set classify.multi_label=true for multi-label data")
        return labels
    text = str(value).strip()
    if isinstance(value, bool) or isinstance(value, (int, float)):
        text = str(value)
    if not text and not multi_label:
        raise DataError(f"{where}: the label is empty; give every example a label")
    if multi_label:
        return tuple(part.strip() for part in text.split(separator) if part.strip())
    return (text,)


def check_text(value, where: str, field: str) -> str:
    """The text of a record, or a one-line error if it is not a string or is blank (``where``: ``path:line``)."""
    if value is None or not isinstance(value, str):
        raise DataError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: the text in field {field!r} is empty; remove the line or fill it in")
    return value


def decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) decoding UTF-8 line by line, so a bad byte is reported with its line.

    gzip, bzip2 and xz files are decompressed on the fly (told by their first bytes).
    A byte-order mark at the start of the file is dropped.
    """
    number = 0
    try:
        with open_decompressed(path) as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(
                        f"{path}:{number}: not valid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1}); "
                        "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                    ) from None
                yield number, line.removeprefix(BOM) if number == 1 else line
    except DECOMPRESSION_ERRORS as error:
        raise corrupt_file_error(path, number, error) from None


def parse_json_object(line: str, where: str, text_field: str) -> dict:
    """One JSON-lines record; ``where`` (``path:line``) names it in the error."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg}); each line must be one JSON object") from None
    except RecursionError:  # json's C decoder gives up on very deep nesting
        raise DataError(f"{where}: the JSON nests too deeply; each line must be one flat JSON object") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: each line must be a JSON object with a {text_field!r} field")
    return record


def field_names(record: dict) -> str:
    """The record's field names for an error line: plain when printable, quoted (escaped) otherwise."""
    # A CSV header or JSON key may hold a line break; quoting keeps the error on one line.
    names = [name for name in record if name is not None]  # None: csv's key for cells beyond the header
    return ", ".join(name if isinstance(name, str) and name.isprintable() else repr(name) for name in names)


def jsonl_records(path: Path, text_field: str) -> Iterator[tuple[int, dict]]:
    """``(line number, JSON object)`` for each non-blank line of a JSON-lines file."""
    for number, line in decoded_lines(path):
        if line.strip():
            yield number, parse_json_object(line, f"{path}:{number}", text_field)


def delimited_records(path: Path, delimiter: str) -> Iterator[tuple[int, dict]]:
    """``(line number, row)`` of a CSV/TSV file with a header row; the number is the row's last line.

    csv reads the decoded lines as they come (quoted fields may span lines), never the whole file.
    """
    reader = csv.DictReader((line for _, line in decoded_lines(path)), delimiter=delimiter)
    kind = "CSV" if delimiter == "," else "TSV"
    try:
        if reader.fieldnames is None:
            raise DataError(f"{path}: the file is empty; it needs a header row naming the columns")
        for row in reader:
            yield reader.line_num, row
    except csv.Error as error:
        # csv's own hint ("open the file with newline=''") is for programmers, not for the user.
        reason = str(error).split(" - ")[0]
        raise DataError(f"{path}:{reader.line_num + 1}: not a valid {kind} row ({reason}); check its quotes") from None


def _read_jsonl(path, text_field, label_field, multi_label, separator, need_labels):
    for number, record in jsonl_records(path, text_field):
        where = f"{path}:{number}"
        yield number, _record_to_example(record, where, text_field, label_field, multi_label, separator, need_labels)


def _record_to_example(record, where, text_field, label_field, multi_label, separator, need_labels):
    if text_field not in record:
        raise DataError(f"{where}: no field {text_field!r} (fields: {field_names(record)}); set data.text_field")
    text = check_text(record[text_field], where, text_field)
    if label_field is None:  # texts only: a label column, if any, is not read
        return Example(text)
    if label_field not in record:
        if need_labels:
            raise DataError(f"{where}: no field {label_field!r} (fields: {field_names(record)}); "
                            "set classify.label_field")
        return Example(text)
    return Example(text, _split_labels(record[label_field], multi_label, separator, where))


def _read_delimited(path, delimiter, text_field, label_field, multi_label, separator, need_labels):
    for number, row in delimited_records(path, delimiter):
        where = f"{path}:{number}"
        yield number, _record_to_example(row, where, text_field, label_field, multi_label, separator, need_labels)


def _read_parquet(path, text_field, label_field, multi_label, separator, need_labels):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: cannot read as Parquet ({error})") from None
    columns = table.column_names
    for field in (text_field,) + ((label_field,) if need_labels else ()):
        if field not in columns:
            raise DataError(f"{path}: no column {field!r} (columns: {', '.join(columns)})")
    texts = table.column(text_field).to_pylist()
    labels = table.column(label_field).to_pylist() if label_field in columns else [None] * len(texts)
    for row, (text, label) in enumerate(zip(texts, labels), start=1):
        where = f"{path}: row {row}"
        text = check_text(text, where, text_field)
        if label_field is None or label_field not in columns:
            yield row, Example(text)
        else:
            yield row, Example(text, _split_labels(label, multi_label, separator, where))


def _read_fasttext(path, multi_label, need_labels):
    for number, line in decoded_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        tokens = line.split()
        labels = []
        while tokens and tokens[0].startswith(FASTTEXT_PREFIX):
            labels.append(tokens.pop(0)[len(FASTTEXT_PREFIX):])
        text = check_text(" ".join(tokens), where, "text")
        if need_labels and not labels:
            raise DataError(f"{where}: no {FASTTEXT_PREFIX} label at the start of the line")
        if len(labels) > 1 and not multi_label:
            raise DataError(f"{where}: {len(labels)} labels given; set classify.multi_label=true for multi-label data")
        yield number, Example(text, tuple(labels))


def _numbered_examples(path, fmt, text_field, label_field, multi_label, label_separator, need_labels):
    """``(line number, Example)`` pairs (the row number for Parquet); see ``iter_examples``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    kind = detect_format(path, fmt)
    common = (text_field, label_field, multi_label, label_separator, need_labels)
    if kind == "jsonl":
        return _read_jsonl(path, *common)
    if kind == "csv":
        return _read_delimited(path, ",", *common)
    if kind == "tsv":
        return _read_delimited(path, "\t", *common)
    if kind == "parquet":
        return _read_parquet(path, *common)
    return _read_fasttext(path, multi_label, need_labels)


def iter_examples(
    path: str | Path,
    *,
    fmt: str = "auto",
    text_field: str = "text",
    label_field: str = "label",
    multi_label: bool = False,
    label_separator: str = ",",
    need_labels: bool = True,
) -> Iterator[Example]:
    """Stream examples from one file.

    Args:
        path: the file to read.
        fmt: one of ``auto``, ``jsonl``, ``csv``, ``tsv``, ``parquet``, ``fasttext``.
        text_field: the field or column holding the text.
        label_field: the field or column holding the label(s).
        multi_label: allow several labels per example (lists, or strings split on ``label_separator``).
        label_separator: separator for multi-label strings.
        need_labels: raise if an example has no label (training and evaluation data).

    Yields:
        ``Example`` records in file order.
    """
    numbered = _numbered_examples(path, fmt, text_field, label_field, multi_label, label_separator, need_labels)
    return (example for _, example in numbered)


def read_examples(path: str | Path, **options) -> list[Example]:
    """Read every example of a file into a list; an empty file is an error."""
    examples = list(iter_examples(path, **options))
    if not examples:
        raise DataError(f"{path}: no examples found; the file is empty")
    return examples


def plain_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a file holding one text per line; a blank line is an error.

    Skipping it would shift every later output against its input line, so it is refused.
    """
    for number, line in decoded_lines(path):
        text = line.rstrip("\r\n")
        if not text.strip():
            raise DataError(f"{path}:{number}: the text is empty; remove the line or fill it in")
        yield number, text


def iter_texts_with_lines(path: str | Path, fmt: str = "auto", text_field: str = "text") -> Iterator[tuple[int, str]]:
    """Stream ``(line, text)``: plain text files (one text per line) or any labelled format's text field.

    Args:
        path: a ``.txt`` file (or one without a suffix), or a JSONL/CSV/TSV/Parquet/fastText file;
            plain or gz/bz2/xz.
        fmt: ``auto`` (``.txt`` and no suffix: one text per line; otherwise as ``iter_examples``) or
            one of ``FORMATS``.
        text_field: the field or column holding the text.

    Returns:
        An iterator of ``(line, text)``: ``line`` is the 1-based line of the text in the file (the
        last line of a CSV row whose quoted text spans lines; the 1-based row for Parquet).

    Raises:
        DataError: a missing file, or an empty or blank text, named by ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    if fmt == "auto" and without_compression_suffix(path).suffix.lower() in (".txt", ""):
        return plain_text_lines(path)
    numbered = _numbered_examples(path, fmt, text_field, None, False, ",", need_labels=False)
    return ((number, example.text) for number, example in numbered)


def read_texts(path: str | Path, *, fmt: str = "auto", text_field: str = "text") -> Iterator[str]:
    """Stream texts only (see ``iter_texts_with_lines``); a blank text is an error, never skipped."""
    return (text for _, text in iter_texts_with_lines(path, fmt, text_field))
