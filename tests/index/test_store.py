"""Indexes on disk: dense (exact, HNSW, IVF), BM25 and hybrid; add, the model pin, damaged files, bad input."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("faiss")
bm25s = pytest.importorskip("bm25s")

import encoderkit  # noqa: E402
from encoderkit.config import validate_config  # noqa: E402
from encoderkit.errors import DataError, EncoderkitError  # noqa: E402
from encoderkit.index import add_documents, build_index, load_index, reciprocal_rank_fusion  # noqa: E402
from encoderkit.tasks.runner import run  # noqa: E402
from retrieval_data import caption_pairs, caption_records, tiny_retrieval_config, write_jsonl  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny trained bi-encoder, and a corpus of 400 test captions (ids c0..c399)."""
    folder = tmp_path_factory.mktemp("index")
    files = caption_pairs(folder, train_images=200, validation_images=30)
    run(validate_config(tiny_retrieval_config(files, folder / "run")), echo=lambda *_: None)
    captions = [caption for record in caption_records("test_2016", 100) for caption in record["captions"][1:]]
    corpus = write_jsonl([{"id": f"c{i}", "text": text} for i, text in enumerate(captions)], folder / "corpus.jsonl")
    return {"folder": folder, "model": folder / "run" / "model", "corpus": corpus, "captions": captions}


def test_exact_index_equals_the_models_own_search(setup, tmp_path):
    index = build_index(setup["model"], setup["corpus"], tmp_path / "index", progress=False)
    queries = ["a dog runs through the snow", "two men on a boat"]
    ids, scores, texts = load_index(tmp_path / "index").search(queries, k=5)
    model = encoderkit.load(setup["model"])
    expected = model.search(queries, setup["captions"], k=5)
    assert ids == [[f"c{i}" for i in row] for row in expected.ids]
    assert np.allclose(scores, expected.scores, atol=1e-5)
    assert texts[0][0] == setup["captions"][expected.ids[0][0]]
    single = index.search("a dog runs through the snow", k=2)
    assert single.ids == ids[0][:2]


def test_manifest_pins_the_model_and_files(setup, tmp_path):
    build_index(setup["model"], setup["corpus"], tmp_path / "index", progress=False)
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["kind"] == "dense" and manifest["count"] == 400
    dense = manifest["dense"]
    assert len(dense["model"]["sha256"]) == 64 and dense["embedding"]["pooling"] == "mean"
    assert dense["faiss"] == {"type": "exact"} and dense["normalize"] is True
    assert set(manifest["files"]) == {"documents.jsonl", "dense.faiss"}


def test_another_model_is_refused_in_one_line(setup, tmp_path):
    build_index(setup["model"], setup["corpus"], tmp_path / "index", progress=False)
    files = caption_pairs(tmp_path, train_images=50, validation_images=10)
    run(validate_config(tiny_retrieval_config(files, tmp_path / "other", seed=5)), echo=lambda *_: None)
    with pytest.raises(EncoderkitError, match=r"index was built with .*model \(weights [0-9a-f]{12}\); .*other.model "
                                              r"has other weights"):
        load_index(tmp_path / "index", model=tmp_path / "other" / "model")


def test_add_appends_and_refuses_known_ids(setup, tmp_path):
    first = write_jsonl([{"id": f"c{i}", "text": t} for i, t in enumerate(setup["captions"][:300])], tmp_path / "a.jsonl")
    more = write_jsonl([{"id": f"c{i}", "text": t} for i, t in enumerate(setup["captions"]) if i >= 300],
                       tmp_path / "b.jsonl")
    build_index(setup["model"], first, tmp_path / "grown", kind="hybrid", progress=False)
    build_index(setup["model"], setup["corpus"], tmp_path / "whole", kind="hybrid", progress=False)
    added = add_documents(tmp_path / "grown", more, progress=False)
    assert len(added) == 400 == len(load_index(tmp_path / "grown"))
    queries = ["a woman sings into a microphone", "children playing soccer"]
    for mode in ("dense", "bm25", "hybrid"):
        grown = load_index(tmp_path / "grown").search(queries, k=10, mode=mode)
        whole = load_index(tmp_path / "whole").search(queries, k=10, mode=mode)
        assert grown.ids == whole.ids, mode
    with pytest.raises(DataError, match=r"b.jsonl: duplicate document id 'c300' \(line 1; first in the index\)"):
        add_documents(tmp_path / "grown", more, progress=False)


def test_bm25_equals_bm25s_run_as_the_anchors_run_it(setup, tmp_path):
    index = build_index(None, setup["corpus"], tmp_path / "bm25", kind="bm25", progress=False)
    queries = ["a dog runs through the snow", "two men on a boat", "a little girl in a pink dress"]
    ours = load_index(tmp_path / "bm25").search_positions(queries, 10)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(setup["captions"], stopwords="en", show_progress=False), show_progress=False)
    theirs = retriever.retrieve(bm25s.tokenize(queries, stopwords="en", show_progress=False), k=10, show_progress=False)
    assert np.array_equal(ours[0], theirs[0]) and np.allclose(ours[1], theirs[1])
    assert index.kind == "bm25" and index.dense is None
    with pytest.raises(EncoderkitError, match="is a bm25 index; it cannot search in dense mode"):
        index.search("a dog", k=3, mode="dense")


@pytest.mark.parametrize("faiss_type", ["hnsw", "ivf"])
def test_approximate_indexes_find_the_exact_neighbours(setup, tmp_path, faiss_type):
    exact = build_index(setup["model"], setup["corpus"], tmp_path / "exact", progress=False)
    approximate = build_index(setup["model"], setup["corpus"], tmp_path / faiss_type, faiss_type=faiss_type,
                              progress=False)
    queries = [record["captions"][0] for record in caption_records("test_2016", 40)]
    found = approximate.search(queries, k=10).ids
    truth = exact.search(queries, k=10).ids
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
    assert overlap >= 0.9
    assert load_index(tmp_path / faiss_type).manifest["dense"]["faiss"]["type"] == faiss_type


def test_reciprocal_rank_fusion():
    positions, scores = reciprocal_rank_fusion([np.array([[1, 2, 3]]), np.array([[3, 1, -1]])], k=3)
    # 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62
    assert positions.tolist() == [[1, 3, 2]]
    assert scores[0, 0] == pytest.approx(1 / 61 + 1 / 62)


def test_bad_input_is_one_line(setup, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="the corpus is empty; there is nothing to index"):
        build_index(setup["model"], empty, tmp_path / "x", progress=False)
    twice = write_jsonl([{"id": 1, "text": "a dog"}, {"id": 1, "text": "a cat"}], tmp_path / "twice.jsonl")
    with pytest.raises(DataError, match=r"twice.jsonl: duplicate document id 1 \(line 2; first line 1\)"):
        build_index(setup["model"], twice, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()  # nothing is left behind by a failed build
    index = build_index(setup["model"], setup["corpus"], tmp_path / "index", progress=False)
    with pytest.raises(DataError, match="k must be a positive whole number, got 0"):
        index.search("a dog", k=0)
    with pytest.raises(DataError, match=r"k=401 is larger than the corpus \(400 documents\)"):
        index.search("a dog", k=401)
    with pytest.raises(EncoderkitError, match="already holds an index; pass --overwrite"):
        build_index(setup["model"], setup["corpus"], tmp_path / "index", progress=False)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("keep me")
    with pytest.raises(EncoderkitError, match="exists and is not an encoderkit index"):
        build_index(setup["model"], setup["corpus"], tmp_path / "folder", overwrite=True, progress=False)


@pytest.mark.parametrize("name", ["dense.faiss", "documents.jsonl", "manifest.json"])
def test_damaged_index_files_are_named(setup, tmp_path, name):
    build_index(setup["model"], setup["corpus"], tmp_path / "index", progress=False)
    path = tmp_path / "index" / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"{name}.*(truncated|damaged)"):
        load_index(tmp_path / "index")


def test_overwrite_replaces_an_index_whole(setup, tmp_path):
    build_index(None, setup["corpus"], tmp_path / "index", kind="bm25", progress=False)
    small = write_jsonl([{"id": "a", "text": "a dog"}, {"id": "b", "text": "a cat"}], tmp_path / "small.jsonl")
    build_index(setup["model"], small, tmp_path / "index", overwrite=True, progress=False)
    index = load_index(tmp_path / "index")
    assert len(index) == 2 and index.kind == "dense"
    assert not (tmp_path / "index" / "bm25").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folders left


def test_a_checkpoint_folder_and_a_classifier_can_build_indexes(setup, tmp_path, trec_slice):
    from support import tiny_config

    run(validate_config(tiny_config(trec_slice, tmp_path / "classifier")), echo=lambda *_: None)
    index = build_index(tmp_path / "classifier" / "model", setup["corpus"], tmp_path / "from-classifier",
                        progress=False)
    assert index.manifest["dense"]["model"]["kind"] == "encoderkit classify model"
    assert len(index.search("a dog", k=3).ids) == 3
    moved = tmp_path / "moved-model"
    shutil.copytree(tmp_path / "classifier" / "model", moved)
    assert len(load_index(tmp_path / "from-classifier", model=moved).search("a dog", k=2).ids) == 2
