"""Corpora: records of a file, or overlapping passages of a folder of .txt/.md/.html documents."""

import pytest

from encoderkit.errors import DataError
from encoderkit.index.documents import folder_passages, html_text, iter_documents, passages


def test_passages_overlap_and_keep_the_original_text():
    text = " ".join(f"w{i}" for i in range(25))
    cut = list(passages(text, passage_words=10, overlap_words=3))
    assert [p.split()[0] for _, p in cut] == ["w0", "w7", "w14", "w21"]
    assert cut[0][1] == " ".join(f"w{i}" for i in range(10))
    assert cut[-1][1].split()[-1] == "w24"
    assert text[cut[1][0]:].startswith("w7")
    assert list(passages("short text", 10, 3)) == [(0, "short text")]


def test_a_folder_becomes_passages_with_file_and_line(tmp_path):
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "router.md").write_text("# Router\n\nHold the reset button for ten seconds.\n" + "word " * 300)
    (tmp_path / "faq.html").write_text("<html><head><title>x</title><script>var a;</script></head>"
                                       "<body><h1>Returns</h1><p>Returns are free within 30 days.</p></body></html>")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.txt").write_text("not indexed")
    documents = list(folder_passages(tmp_path, passage_words=100, overlap_words=20))
    files = [d.source["file"] for d in documents]
    assert files[0] == "faq.html" and set(files) == {"faq.html", "guide/router.md"}
    assert documents[0].text == "Returns\nReturns are free within 30 days."
    router = [d for d in documents if d.source["file"] == "guide/router.md"]
    assert router[0].id == "guide/router.md#0" and router[0].source == {"file": "guide/router.md", "passage": 0,
                                                                        "line": 1}
    assert len(router) == 4  # 308 words, windows of 100 every 80
    assert router[1].source["line"] == 4


def test_html_text_drops_scripts_and_styles():
    assert html_text("<style>p {}</style><p>One &amp; two</p><script>x()</script><br>three") == "One & two\nthree"


def test_empty_folder_and_undecodable_file(tmp_path):
    with pytest.raises(DataError, match="holds no .txt, .md"):
        list(folder_passages(tmp_path))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="latin1.txt: not valid UTF-8"):
        list(folder_passages(tmp_path))


def test_corpus_files_keep_ids_and_lines(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "text": "first"}\n\n{"id": 7, "text": "second"}\n')
    documents = list(iter_documents(path))
    assert [(d.id, d.text, d.source) for d in documents] == [("a", "first", {"line": 1}), (7, "second", {"line": 3})]
    with pytest.raises(DataError, match="corpus not found"):
        iter_documents(tmp_path / "missing.jsonl")
