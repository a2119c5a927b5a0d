"""Model directories: complete, pickle-free, reloadable to the same predictions, versioned."""

import json

import numpy as np
import pytest

import encoderkit
from encoderkit.config import validate_config
from encoderkit.errors import ModelDirectoryError
from encoderkit.tasks.classify import train
from support import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from support import make_trec_slice

    folder = tmp_path_factory.mktemp("trec")
    config = validate_config(tiny_config(make_trec_slice(folder), folder / "run",
                                         encoder={"kind": "gru", "hidden_size": 16, "bidirectional": True},
                                         pooling="attention"))
    return train(config, echo=lambda *_: None)


def test_directory_holds_json_safetensors_and_tokenizer_only(trained):
    names = sorted(p.name for p in trained.model_dir.iterdir())
    assert names == ["config.json", "labels.json", "model.safetensors", "tokenizer.json", "tokenizer_meta.json"]
    meta = json.loads((trained.model_dir / "config.json").read_text())
    assert meta["format_version"] == 2 and meta["task"] == "classify"
    assert meta["config"]["encoder"]["kind"] == "gru"
    assert json.loads((trained.model_dir / "labels.json").read_text()) == trained.labels


def test_load_predicts_like_the_trained_model(trained):
    model = encoderkit.load(trained.model_dir)
    texts = ["What is the population of Canada ?", "Who invented the telephone ?", "What does CIA stand for ?"]
    probabilities = model.predict_proba(texts)
    assert probabilities.shape == (3, len(trained.labels))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    assert model.predict(texts) == [trained.labels[i] for i in probabilities.argmax(1)]
    # Order of inputs and batch size never change a text's result (padding is masked).
    again = model.predict_proba(texts[::-1], batch_size=1)[::-1]
    np.testing.assert_allclose(again, probabilities, atol=1e-5)
    vectors = model.encode(texts)
    assert vectors.shape == (3, 32)  # bidirectional GRU, hidden 16


def test_test_metrics_match_a_reload(trained):
    from support import read_jsonl

    model = encoderkit.load(trained.model_dir)
    records = read_jsonl(trained.run_dir.parent / "test.jsonl")
    predicted = model.predict([r["text"] for r in records])
    accuracy = float(np.mean([p == r["label"] for p, r in zip(predicted, records)]))
    assert accuracy == pytest.approx(trained.test_metrics["accuracy"])


def test_incompatible_version_is_refused(trained, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained.model_dir, copy)
    meta = json.loads((copy / "config.json").read_text())
    meta["format_version"] = 99
    (copy / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelDirectoryError, match="model format v99 .* reads v1, v2"):
        encoderkit.load(copy)


def test_missing_file_is_named(trained, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained.model_dir, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ModelDirectoryError, match="missing tokenizer.json"):
        encoderkit.load(copy)
    with pytest.raises(ModelDirectoryError, match="model directory not found"):
        encoderkit.load(tmp_path / "nowhere")
