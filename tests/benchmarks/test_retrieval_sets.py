"""The benchmark's own builders of the three retrieval sets equal the anchors' definition on the real files."""

import importlib.util

import pytest

from support import ROOT, SHARED_DATA, shared

ANCHORS = ROOT.parent / "shared" / "anchors" / "retrieval_sets.py"
FILES = {"captions": ("multi30k_captions", "test_2016.en.jsonl"), "revdict": ("wordnet_revdict", "test.jsonl"),
         "faq": ("chatterbot_en", "pairs.jsonl")}


def module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.mark.parametrize("name", list(FILES))
def test_builders_equal_the_anchor_definitions(name):
    if not ANCHORS.is_file():
        pytest.skip(f"{ANCHORS} is not available")
    anchors = module("anchor_sets", ANCHORS)
    ours = module("retrieval_sets", ROOT / "benchmarks" / "retrieval_sets.py")
    path = shared(*FILES[name])
    assert ours.ranking_set(name, "test", SHARED_DATA) == anchors.load(name, str(path))


def test_training_pairs_come_from_train_and_validation_pairs_rebuild_the_set(tmp_path):
    shared("multi30k_captions")
    ours = module("retrieval_sets", ROOT / "benchmarks" / "retrieval_sets.py")
    files = ours.write_pair_files("captions", tmp_path, train_limit=10, validation_limit=5)
    assert sum(1 for _ in open(files["train"])) == 50
    from encoderkit.data.pairs import read_ranking_set

    ranking = read_ranking_set(files["validation"])
    queries, corpus, relevant = ours.ranking_set("captions", "validation")
    assert ranking.queries == queries[:5] and len(ranking.documents) == 20
    assert [sorted(ranking.documents[d] for d in r) for r in ranking.relevant] == \
        [sorted(corpus[d] for d in r) for r in relevant[:5]]


def test_one_pair_per_image_rotates_through_each_images_captions():
    ours = module("retrieval_sets", ROOT / "benchmarks" / "retrieval_sets.py")
    records = [{"captions": [f"image {n} caption {i}" for i in range(5)]} for n in range(7)]
    pairs = ours.captions_pairs(records, per_image=1)
    assert len(pairs) == 7
    assert [pair["query"] for pair in pairs] == [f"image {n} caption {n % 5}" for n in range(7)]
    assert all(pair["positive"] == f"image {n} caption {(n + 1) % 5}" for n, pair in enumerate(pairs))
    two = ours.captions_pairs(records, per_image=2)
    assert [pair["query"] for pair in two[:4]] == ["image 0 caption 0", "image 0 caption 1",
                                                   "image 1 caption 2", "image 1 caption 3"]
    assert len(ours.captions_pairs(records)) == 35
