"""The retrieval commands: index build / add, ask, evaluate and predict on a retrieval model, export."""

import json

import pytest

pytest.importorskip("faiss")
pytest.importorskip("bm25s")

from encoderkit.config import validate_config  # noqa: E402
from encoderkit.tasks.runner import run  # noqa: E402
from retrieval_data import caption_pairs, caption_records, tiny_retrieval_config, write_jsonl  # noqa: E402
from support import run_cli as cli  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("retrieval-cli")
    files = caption_pairs(folder, train_images=200, validation_images=40)
    run(validate_config(tiny_retrieval_config(files, folder / "run")), echo=lambda *_: None)
    captions = [c for record in caption_records("test_2016", 60) for c in record["captions"][1:]]
    write_jsonl([{"id": f"c{i}", "text": text} for i, text in enumerate(captions[:200])], folder / "corpus.jsonl")
    write_jsonl([{"id": f"c{i}", "text": text} for i, text in enumerate(captions) if i >= 200], folder / "more.jsonl")
    notes = folder / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "router.md").write_text("# Router\n\nTo reset the router, hold the reset button for ten seconds.\n")
    (notes / "sub" / "returns.html").write_text("<p>Returns are free within thirty days of delivery.</p>")
    return {"folder": folder, "model": folder / "run" / "model", "validation": files["validation"], "notes": notes}


def test_build_ask_add_and_refusals(setup):
    folder, index = setup["folder"], setup["folder"] / "index"
    result = cli("index", "build", setup["model"], folder / "corpus.jsonl", "-o", index, "--kind", "hybrid")
    assert result.returncode == 0, result.stderr
    assert "indexed 200 documents" in result.stderr and "hybrid" in result.stderr
    result = cli("ask", index, "a dog runs in the snow", "-k", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "a dog runs in the snow" and lines[1].startswith("  1. [") and len(lines) == 5
    result = cli("ask", index, "a dog", "two men", "-k", "3", "--json", "--mode", "bm25")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6 and records[0]["rank"] == 1 and records[3]["question"] == "two men"
    again = cli("index", "build", setup["model"], folder / "corpus.jsonl", "-o", index)
    assert again.returncode == 2 and "already holds an index; pass --overwrite" in again.stderr
    added = cli("index", "add", index, folder / "more.jsonl")
    assert added.returncode == 0, added.stderr
    assert "added 40 documents" in added.stderr and "now holds 240" in added.stderr
    for args, message in [(("ask", index, "a dog", "-k", "0"), "k must be a positive whole number"),
                          (("ask", index, "a dog", "-k", "241"), "larger than the corpus (240 documents)"),
                          (("ask", index, "  "), "question 1 is empty"),
                          (("ask", folder / "corpus.jsonl", "a dog"), "index not found")]:
        result = cli(*args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_folder_of_documents_answers_with_file_and_line(setup):
    index = setup["folder"] / "notes-index"
    result = cli("index", "build", "bm25", setup["notes"], "-o", index)
    assert result.returncode == 0, result.stderr
    result = cli("ask", index, "how do I reset the router", "-k", "1")
    assert "router.md#0  (router.md, line 1)" in result.stdout
    assert "hold the reset button" in result.stdout


def test_evaluate_a_retrieval_model(setup, tmp_path):
    result = cli("evaluate", setup["model"], setup["validation"], "--report", tmp_path / "report",
                 "--json", tmp_path / "metrics.json")
    assert result.returncode == 0, result.stderr
    assert "ndcg@10" in result.stderr and "worst queries" in result.stderr
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert 0 < saved["metrics"]["ndcg@10"] <= 1 and saved["queries"] == 40
    assert list(saved["recall_at_k"]) == ["1", "2", "5", "10", "20", "50", "100"]
    assert saved["recall_at_k"]["100"] >= saved["recall_at_k"]["10"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Worst queries" in report and (tmp_path / "report" / "recall_at_k.png").is_file()
    wrong = cli("evaluate", setup["model"], setup["validation"], "--text-field", "question")
    assert wrong.returncode == 2 and "no field 'question'" in wrong.stderr


def test_predict_and_export_refuse_with_one_line(setup, tmp_path):
    result = cli("predict", setup["model"], "a dog")
    assert result.returncode == 2 and "is a retrieve model; encoderkit predict takes classifiers; for retrieval use" in result.stderr
    result = cli("export", setup["model"], "--format", "sentence-transformers", "-o", tmp_path / "st")
    assert result.returncode == 2 and "only encoders fine-tuned from a pretrained checkpoint" in result.stderr


def test_train_a_retriever_from_the_command_line(tmp_path):
    import yaml

    files = caption_pairs(tmp_path, train_images=60, validation_images=20)
    config = tiny_retrieval_config(files, tmp_path / "run", train={"epochs": 1, "progress": False, "num_threads": 2})
    config["data"]["test"] = str(files["validation"])
    path = tmp_path / "retrieve.yaml"
    path.write_text(yaml.safe_dump(config))
    result = cli("train", path)
    assert result.returncode == 0, result.stderr
    assert "ndcg@10" in result.stderr and "recall@100" in result.stderr  # the test table
    assert "validation 20 queries over 80 documents" in result.stderr
