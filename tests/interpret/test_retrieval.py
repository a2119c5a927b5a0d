"""Explaining a retrieval score: each word's share on both sides (integrated gradients, the exact
decomposition for mean pooling, occlusion), through Python, an index and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from support import run_cli
from support_models import build_retrieval, trec_texts

QUERY = "Who wrote the play Hamlet ?"
DOCUMENT = "What play did Shakespeare write about a prince of Denmark ?"
FAMILY_SECTIONS = {
    "bow-mean": {"encoder": {"kind": "bow"}, "pooling": "mean"},
    "cnn-max": {"encoder": {"kind": "cnn", "kernel_sizes": [1, 2], "num_filters": 8}, "pooling": "max"},
    "transformer-mean": {"encoder": {"kind": "transformer", "hidden_size": 16, "num_layers": 2, "num_heads": 2,
                                     "ff_size": 32, "dropout": 0.0}, "pooling": "mean"},
}


def pair_score(model, query: str, document: str) -> float:
    return float(model.encode_queries(query) @ model.encode_documents(document))


@pytest.mark.parametrize("family", ["bow-mean", "transformer-mean"])
@pytest.mark.parametrize("normalize", [True, False])
def test_the_decomposition_is_exact_on_both_sides(family, normalize):
    model = build_retrieval(FAMILY_SECTIONS[family], normalize=normalize)
    why = model.explain(QUERY, DOCUMENT, method="decomposition")
    assert why.score == pytest.approx(pair_score(model, QUERY, DOCUMENT), abs=1e-5)
    assert why.similarity == ("cosine" if normalize else "dot product")
    for side in (why.query, why.document):
        assert side.scores.sum() + side.special == pytest.approx(why.score, abs=1e-5)
        assert len(side.scores) == len(side.units) and np.abs(side.scores).max() > 0


def test_separate_towers_explain_the_document_with_the_document_tower():
    model = build_retrieval(FAMILY_SECTIONS["bow-mean"], towers="separate")
    score = pair_score(model, QUERY, DOCUMENT)
    assert score != pytest.approx(float(model.encode_queries(QUERY) @ model.encode_queries(DOCUMENT)), abs=1e-3)
    why = model.explain(QUERY, DOCUMENT, method="decomposition")
    assert why.document.scores.sum() + why.document.special == pytest.approx(score, abs=1e-5)


@pytest.mark.parametrize("family", sorted(FAMILY_SECTIONS))
def test_integrated_gradients_add_up_to_the_change_of_the_score(family):
    model = build_retrieval(FAMILY_SECTIONS[family])
    why = model.explain(QUERY, DOCUMENT, steps=64)
    assert why.method == "ig"
    for side, blanked in (("query", "document"), ("document", "query")):
        part = getattr(why, side)
        change = why.score - part.baseline_score
        assert part.scores.sum() == pytest.approx(change, abs=0.05 * abs(change) + 1e-3)
        assert abs(part.delta) <= 0.05 * abs(change) + 1e-3


def test_occlusion_is_the_drop_of_the_score_without_each_word():
    model = build_retrieval(FAMILY_SECTIONS["cnn-max"])
    why = model.explain(QUERY, DOCUMENT, method="occlusion")
    words = QUERY.split()
    for index, word in enumerate(words):
        without = " ".join(words[:index] + words[index + 1:])
        assert why.query.units[index] == word
        assert why.query.scores[index] == pytest.approx(why.score - pair_score(model, without, DOCUMENT), abs=1e-5)


def test_bad_requests_get_one_line():
    from encoderkit.errors import ConfigError, DataError

    model = build_retrieval(FAMILY_SECTIONS["cnn-max"])
    with pytest.raises(ConfigError, match="mean pooling only.*ig, grad-input, occlusion"):
        model.explain(QUERY, DOCUMENT, method="decomposition")
    with pytest.raises(ConfigError, match="unknown method 'attention'.*decomposition"):
        model.explain(QUERY, DOCUMENT, method="attention")
    with pytest.raises(DataError, match="the document is empty"):
        model.explain(QUERY, "  ")
    with pytest.raises(DataError, match="the query must be one text"):
        model.explain([QUERY], DOCUMENT)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    """A retrieval model directory and a hybrid index built with it over a few TREC questions."""
    from encoderkit.index.store import build_index
    from encoderkit.model_dir import save_model
    from encoderkit.tasks.retrieve import RetrieveSpec, RetrieveTask

    folder = tmp_path_factory.mktemp("explain-index")
    model = build_retrieval(FAMILY_SECTIONS["bow-mean"])
    model_dir = save_model(folder / "model", model.model, model.config, RetrieveTask(), RetrieveSpec("shared", True))
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": text}) + "\n"
                              for i, text in enumerate([DOCUMENT, *trec_texts(40)])), encoding="utf-8")
    build_index(model_dir, corpus, folder / "index", kind="hybrid", progress=False)
    build_index(None, corpus, folder / "bm25", kind="bm25", progress=False)
    return folder


def test_cli_explains_the_best_match_of_an_index_query(index_dir):
    import encoderkit

    out = index_dir / "why.json"
    done = run_cli("explain", index_dir / "index", "--query", QUERY, "--method", "decomposition", "--json", out,
                   "--quiet")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    record = json.loads(out.read_text(encoding="utf-8"))[0]
    best = encoderkit.load_index(index_dir / "index").search(QUERY, k=1, mode="dense")
    assert "explaining the best match" in output and str(best.ids[0]) in output
    assert record["document"]["text"] == best.texts[0]
    assert record["score"] == pytest.approx(float(best.scores[0]), abs=1e-4)
    assert [unit["text"] for unit in record["query"]["units"]] == QUERY.split()


def test_cli_explains_a_pair_of_a_retrieval_model_as_html(index_dir):
    page = index_dir / "why.html"
    done = run_cli("explain", index_dir / "model", "--query", QUERY, "--document", DOCUMENT, "--html", page)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "query:" in output and "document:" in output and "cosine" in output
    text = page.read_text(encoding="utf-8")
    assert "<b>query</b>" in text and "<b>document</b>" in text and "Shakespeare" in text


def test_cli_refusals_are_one_line(index_dir):
    cases = [
        (("explain", index_dir / "model", QUERY), "is a retrieval model: it explains a pair"),
        (("explain", index_dir / "model", "--query", QUERY), "pass the document of the pair"),
        (("explain", index_dir / "bm25", "--query", QUERY), "no dense part"),
        (("explain", index_dir / "index", "--document", DOCUMENT), "pass the query of the pair"),
    ]
    for arguments, message in cases:
        done = run_cli(*arguments)
        output = done.stdout + done.stderr
        assert done.returncode != 0
        assert message in output and "Traceback" not in output and len(output.strip().splitlines()) == 1, output
