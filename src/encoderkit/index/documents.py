"""The documents an index holds: records of a corpus file, or passages of a folder of your own files.

- A corpus file (text, JSONL, CSV, TSV; plain or .gz/.bz2/.xz) gives one document per record, with
  its ``id`` field (else the record number) and its text (``encoderkit.embed.read_numbered_records``).
- A folder gives passages: every ``.txt``, ``.md`` and ``.html`` file under it (sorted by path) is cut
  into windows of ``passage_words`` words, consecutive windows sharing ``overlap_words`` words, so
  a sentence cut by one window boundary is whole in the next. Each passage keeps its file, its
  number within the file and the line it starts on; its id is ``FILE#N``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from encoderkit.errors import ConfigError, DataError

#: Files a folder corpus reads, by suffix.
DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
PASSAGE_WORDS = 200
OVERLAP_WORDS = 40
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Document:
    id: int | str
    text: str
    #: Where the text came from: ``{"file", "passage", "line"}`` for a folder, ``{"line"}`` for a file.
    source: dict = field(default_factory=dict)


def iter_documents(source: str | Path, fmt: str = "auto", text_field: str = "text", id_field: str | None = None,
                   passage_words: int = PASSAGE_WORDS, overlap_words: int = OVERLAP_WORDS) -> Iterator[Document]:
    """Stream the documents of a corpus file or a folder (see the module docstring)."""
    source = Path(source)
    if source.is_dir():
        return folder_passages(source, passage_words, overlap_words)
    if not source.exists():
        raise DataError(f"corpus not found: {source} (give a corpus file or a folder of .txt/.md/.html files)")
    from encoderkit.embed import read_numbered_records

    records = read_numbered_records(source, fmt, text_field, id_field)
    return (Document(key, text, {"line": line}) for line, key, text in records)


def check_unique_ids(documents: Iterator[Document], where: str, taken: dict | None = None) -> Iterator[Document]:
    """Pass documents through, refusing an id seen before (in this corpus or in ``taken``)."""
    seen: dict = dict(taken or {})
    for document in documents:
        key = str(document.id)
        if key in seen:
            raise DataError(f"{where}: duplicate document id {document.id!r} ({_place(document.source)}; "
                            f"first {seen[key]}); every document needs its own id")
        seen[key] = _place(document.source) or "earlier"
        yield document


def _place(source: dict) -> str:
    if "file" in source:
        return f"{source['file']} passage {source['passage']}"
    return f"line {source['line']}" if "line" in source else ""


# -- folders of documents ----------------------------------------------------------------------


def document_files(folder: Path) -> list[Path]:
    files = sorted(path for path in folder.rglob("*")
                   if path.is_file() and path.suffix.lower() in DOCUMENT_SUFFIXES
                   and not any(part.startswith(".") for part in path.relative_to(folder).parts))
    if not files:
        raise DataError(f"{folder} holds no {', '.join(DOCUMENT_SUFFIXES)} files to index")
    return files


def folder_passages(folder: Path, passage_words: int = PASSAGE_WORDS,
                    overlap_words: int = OVERLAP_WORDS) -> Iterator[Document]:
    """Passages of every document file under ``folder`` (see the module docstring)."""
    if passage_words < 1 or not 0 <= overlap_words < passage_words:
        raise ConfigError(f"passages need passage_words >= 1 and 0 <= overlap_words < passage_words "
                          f"(got {passage_words} and {overlap_words})")
    for path in document_files(folder):
        name = path.relative_to(folder).as_posix()
        text = read_document(path)
        for number, (start, passage) in enumerate(passages(text, passage_words, overlap_words)):
            yield Document(f"{name}#{number}", passage,
                           {"file": name, "passage": number, "line": text.count("\n", 0, start) + 1})


def read_document(path: Path) -> str:
    """The text of a .txt/.md file, or the visible text of an .html file."""
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not valid UTF-8 (byte at offset {error.start}); save it as UTF-8") from None
    return html_text(raw) if path.suffix.lower() in (".html", ".htm") else raw


def passages(text: str, passage_words: int, overlap_words: int) -> Iterator[tuple[int, str]]:
    """``(character offset, passage)``: windows of words cut from ``text``, the original spacing kept."""
    words = [match.span() for match in _WORD.finditer(text)]
    step = passage_words - overlap_words
    for first in range(0, max(len(words) - overlap_words, 1), step):
        window = words[first : first + passage_words]
        if window:
            yield window[0][0], text[window[0][0] : window[-1][1]]


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page: no scripts, styles or head; block elements end a line."""

    SKIPPED = {"script", "style", "head", "noscript", "template"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre",
              "blockquote", "title", "table", "ul", "ol", "dd", "dt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
