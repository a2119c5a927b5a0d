"""Stream a raw text corpus as token lists, one per line (or per JSONL record).

Nothing is held in memory beyond one line: both trainers make two passes (vocabulary, then
training or co-occurrence counting), the way the original GloVe and word2vec tools do.
Files may be plain text or JSONL (one text field per record), optionally gz/bz2/xz compressed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Iterable, Iterator

from tqdm.auto import tqdm

from encoderkit.compression import (DECOMPRESSION_ERRORS, OPENERS, corrupt_file_error, detect_compression,
                                    without_compression_suffix)
from encoderkit.data.readers import BOM
from encoderkit.errors import DataError

#: Words are runs of letters/digits, optionally joined by an apostrophe ("don't", "o'neill").
#: Punctuation is dropped: it carries little meaning for word vectors and WikiText's " @-@ "
#: hyphen markers would otherwise become the most frequent "words".
TOKEN_PATTERN = re.compile(r"\w+(?:['’]\w+)*")
#: Both trainers' message for a corpus without a single word (whatever min_count is).
EMPTY_CORPUS = "the corpus is empty: no words found in the given files (wrong --field, or only punctuation?)"


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into words with ``TOKEN_PATTERN``, lower-cased by default."""
    return TOKEN_PATTERN.findall(text.lower() if lowercase else text)


def _open_binary(path: Path):
    """(line iterator source, raw file): the raw file's position drives the progress bar."""
    raw = open(path, "rb")
    compression = detect_compression(path)
    return (raw if compression is None else OPENERS[compression](raw, "rb")), raw


@dataclass
class Corpus:
    """A re-iterable corpus: every ``iter(corpus)`` streams the files again.

    Args:
        paths: Text or JSONL files (``.jsonl``/``.json`` names, or ``json_field`` set, mean JSONL), or
            ``corpus:NAME`` for a named text corpus (``encoderkit.data.corpora``), fetched once.
        json_field: JSONL field holding the text (default "text" for JSONL files).
        lowercase: Lower-case before tokenizing.
        progress: Show a progress bar over bytes read.
        description: Progress bar label.
    """

    paths: list[Path]
    json_field: str | None = None
    lowercase: bool = True
    progress: bool = True
    description: str = "reading corpus"
    _size: int = dataclass_field(init=False, default=0)

    def __post_init__(self) -> None:
        from encoderkit.data.corpora import resolve_corpus_path

        self.paths = [resolve_corpus_path(p) for p in self.paths]  # "corpus:wikitext2" is fetched once
        if not self.paths:
            raise DataError("no corpus file given; pass one or more text or JSONL files")
        for path in self.paths:
            if not path.is_file():
                raise DataError(f"corpus file not found: {path}")
        self._size = sum(path.stat().st_size for path in self.paths)

    def _is_jsonl(self, path: Path) -> bool:
        return self.json_field is not None or without_compression_suffix(path).suffix in (".jsonl", ".json", ".ndjson")

    @staticmethod
    def _lines(path: Path, bar: tqdm) -> Iterator[tuple[int, str]]:
        """(line number, decoded line); the bar follows the bytes read from disk (compressed or not)."""
        handle, raw = _open_binary(path)
        number = 0
        try:
            with raw, handle:
                seen = 0
                for number, line in enumerate(handle, start=1):
                    position = raw.tell()
                    bar.update(position - seen)
                    seen = position
                    try:
                        text = line.decode("utf-8")
                    except UnicodeDecodeError as error:
                        raise DataError(f"{path}:{number}: not valid UTF-8 ({error.reason}); re-save the corpus as UTF-8") from None
                    yield number, text.removeprefix(BOM) if number == 1 else text
        except DECOMPRESSION_ERRORS as error:  # a truncated or corrupt .gz/.bz2/.xz
            raise corrupt_file_error(path, number, error) from None

    def _texts(self, path: Path, bar: tqdm) -> Iterator[str]:
        jsonl = self._is_jsonl(path)
        key = self.json_field or "text"
        for number, text in self._lines(path, bar):
            if not jsonl:
                yield text
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: not valid JSON ({error.msg}); pass a plain text file without --field") from None
            if not isinstance(record, dict) or key not in record:
                found = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
                raise DataError(f"{path}:{number}: no field {key!r} in the JSON record (found: {found}); choose it with --field")
            value = record[key]
            if isinstance(value, str):
                yield value
            elif isinstance(value, list):  # e.g. several captions per record
                yield from (item for item in value if isinstance(item, str))

    def __iter__(self) -> Iterator[list[str]]:
        """Yield the token list of each non-empty line (plain text) or record (JSONL)."""
        with tqdm(total=self._size, unit="B", unit_scale=True, desc=self.description, disable=None if self.progress else True, leave=False) as bar:
            for path in self.paths:
                for text in self._texts(path, bar):
                    tokens = tokenize(text, self.lowercase)
                    if tokens:
                        yield tokens


@dataclass
class Vocabulary:
    """Words kept for training, most frequent first, with their corpus counts."""

    words: list[str]
    counts: list[int]
    total_tokens: int

    @property
    def index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)


def build_vocabulary(corpus: Iterable[list[str]], min_count: int = 5, max_size: int | None = None) -> Vocabulary:
    """Count words and keep those seen at least ``min_count`` times (at most ``max_size``).

    Args:
        corpus: Iterable of token lists.
        min_count: Minimum corpus frequency of a kept word.
        max_size: Keep only the most frequent words (None: no cap).

    Returns:
        Vocabulary sorted by decreasing count (ties alphabetical, so runs are reproducible).
    """
    counter: Counter = Counter()
    for tokens in corpus:
        counter.update(tokens)
    total = sum(counter.values())
    if total == 0:
        raise DataError(EMPTY_CORPUS)
    kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda item: (-item[1], item[0]))
    if max_size is not None:
        kept = kept[:max_size]
    if not kept:
        raise DataError(f"no word occurs at least min_count={min_count} times in the corpus ({total} tokens); lower --min-count")
    return Vocabulary([w for w, _ in kept], [c for _, c in kept], total)
