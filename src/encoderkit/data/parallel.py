"""Parallel text for translation: sentence pairs from line-aligned files, JSONL, TSV or CSV.

Three layouts, told apart by what exists on disk:

- line-aligned files ``PREFIX.SRC`` and ``PREFIX.TGT`` (``data.train: multi30k/train`` with
  ``translate.source: de`` and ``translate.target: en`` reads ``train.de`` and ``train.en``), line ``i``
  of one the translation of line ``i`` of the other;
- a JSON-lines file whose objects hold both sides (``{"de": "...", "en": "..."}``);
- a TSV or CSV file with a header row naming both columns.

Every problem is one line naming the file and line: sides of unequal length (both files and both
counts), an empty pair or an empty side, a byte that is not UTF-8, a missing field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from encoderkit.data.readers import (check_text, decoded_lines, delimited_records, detect_format, field_names,
                                     jsonl_records)
from encoderkit.errors import DataError

#: Formats of a single file of pairs (line-aligned files are recognised by their two suffixes).
PAIR_FORMATS = ("jsonl", "tsv", "csv")


@dataclass(frozen=True)
class Pair:
    """One sentence pair; ``where`` names its place in the files (``train.de:17``) for messages."""

    source: str
    target: str
    where: str = ""


def side_paths(path: str | Path, source: str, target: str) -> tuple[Path, Path]:
    """``PREFIX.SRC`` and ``PREFIX.TGT`` for a line-aligned corpus named by its prefix."""
    path = Path(path)
    return path.with_name(f"{path.name}.{source}"), path.with_name(f"{path.name}.{target}")


def read_pairs(path: str | Path, source: str, target: str, fmt: str = "auto") -> list[Pair]:
    """Read every sentence pair of a parallel corpus (see the module docstring for the layouts).

    Args:
        path: the prefix of line-aligned files, or a JSONL / TSV / CSV file of pairs.
        source: the source language suffix (line-aligned files) or field name (pair files).
        target: the target language suffix or field name.
        fmt: ``auto`` or one of ``jsonl``, ``tsv``, ``csv`` for a file of pairs.

    Raises:
        DataError: a missing file, unequal line counts, an empty text, a bad byte or a missing field.
    """
    path = Path(path)
    source_path, target_path = side_paths(path, source, target)
    if source == target:
        raise DataError(f"translate.source and translate.target are both {source!r}; name two languages or fields")
    if fmt == "auto" and (source_path.is_file() or target_path.is_file()) and not path.is_file():
        return read_line_aligned(source_path, target_path)
    if not path.is_file():
        raise DataError(f"data file not found: {path} (looked for {path}, and for the line-aligned pair "
                        f"{source_path.name} / {target_path.name} beside it)")
    try:
        kind = detect_format(path, fmt)
    except DataError:
        kind = None
    if kind not in PAIR_FORMATS:
        raise DataError(f"{path}: parallel data must be line-aligned files ({source_path.name} and "
                        f"{target_path.name}) or a JSONL, TSV or CSV file of pairs (name its format with "
                        f"data.format=jsonl|tsv|csv); got {kind or 'a file of unknown format'}")
    records = jsonl_records(path, source) if kind == "jsonl" else delimited_records(path, "\t" if kind == "tsv" else ",")
    pairs = []
    for number, record in records:
        where = f"{path}:{number}"
        missing = [name for name in (source, target) if name not in record]
        if missing:
            raise DataError(f"{where}: no field {missing[0]!r} (fields: {field_names(record)}); set translate.source "
                            "and translate.target to the fields holding the two sides")
        pairs.append(Pair(check_text(record[source], where, source), check_text(record[target], where, target), where))
    if not pairs:
        raise DataError(f"{path}: no sentence pairs found; the file is empty")
    return pairs


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    return [line.rstrip("\r\n") for _, line in decoded_lines(path)]


def read_line_aligned(source_path: Path, target_path: Path) -> list[Pair]:
    """Pairs from two line-aligned files; both must have the same number of lines, none empty."""
    sources, targets = _lines(source_path), _lines(target_path)
    if len(sources) != len(targets):
        raise DataError(f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}; the two "
                        "sides of a parallel corpus must be line-aligned (line i of one translates line i of the other)")
    if not sources:
        raise DataError(f"{source_path} and {target_path} are empty; no sentence pairs to read")
    pairs = []
    for number, (source, target) in enumerate(zip(sources, targets), start=1):
        blank_source, blank_target = not source.strip(), not target.strip()
        if blank_source and blank_target:
            raise DataError(f"{source_path}:{number} and {target_path}:{number} are both empty; remove the empty "
                            "line pair from both files")
        if blank_source or blank_target:
            empty, other = (source_path, target_path) if blank_source else (target_path, source_path)
            raise DataError(f"{empty}:{number} is empty but {other}:{number} is not; fill it in or remove line "
                            f"{number} from both files")
        pairs.append(Pair(source, target, f"{source_path}:{number}"))
    return pairs


def filter_pairs(lengths: list[tuple[int, int]], max_tokens: int, max_ratio: float) -> tuple[list[int], dict[str, int]]:
    """Indices of the pairs to keep, and how many each rule dropped.

    A pair is dropped when either side has more than ``max_tokens`` tokens (``too_long``), or when the
    longer side has more than ``max_ratio`` times the tokens of the shorter (``ratio``; such pairs
    are mostly misalignments: a sentence beside a paragraph).

    Args:
        lengths: ``(source tokens, target tokens)`` per pair.
    """
    kept, dropped = [], {"too_long": 0, "ratio": 0}
    for index, (source, target) in enumerate(lengths):
        if max(source, target) > max_tokens:
            dropped["too_long"] += 1
        elif max(source, target) > max_ratio * max(min(source, target), 1):
            dropped["ratio"] += 1
        else:
            kept.append(index)
    return kept, dropped
