"""Model directories: complete, pickle-free, reloadable to the same predictions, versioned."""

import json
from pathlib import Path

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


# -- format 1, damaged files, atomic saves, inputs ------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_model_saved_by_encoderkit_0_1_still_loads():
    """tests/fixtures/model_v1 was written by encoderkit 0.1 (format 1, head and loss at the top)."""
    expected = json.loads((FIXTURES / "model_v1_expected.json").read_text())
    model = encoderkit.load(FIXTURES / "model_v1")
    np.testing.assert_allclose(model.predict_proba(expected["texts"]), expected["probabilities"], atol=1e-6)
    assert model.predict(expected["texts"]) == expected["labels"]
    assert model.config.classify.head.dropout == 0.1 and model.config.train.metric == "macro_f1"


def copy_model(trained, tmp_path) -> Path:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained.model_dir, copy)
    return copy


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json"])
def test_a_damaged_file_is_one_line_naming_it(trained, tmp_path, name, damage):
    copy = copy_model(trained, tmp_path)
    data = (copy / name).read_bytes()
    (copy / name).write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"\x00\x17nonsense" * 9}[damage])
    with pytest.raises(ModelDirectoryError) as error:
        encoderkit.load(copy)
    message = str(error.value)
    assert "\n" not in message and f"{copy / name} is damaged" in message


def test_an_edited_labels_file_is_blamed_not_the_weights(trained, tmp_path):
    copy = copy_model(trained, tmp_path)
    (copy / "labels.json").write_text(json.dumps(trained.labels + ["YESNO"]))
    with pytest.raises(ModelDirectoryError, match=r"labels.json lists 7 labels but the model's head has 6 outputs"):
        encoderkit.load(copy)
    (copy / "labels.json").write_text('["HUM", "HUM"')
    with pytest.raises(ModelDirectoryError, match=r"labels.json is damaged"):
        encoderkit.load(copy)


def test_invalid_config_json_keeps_the_position(trained, tmp_path):
    copy = copy_model(trained, tmp_path)
    text = (copy / "config.json").read_text()
    (copy / "config.json").write_text(text.replace('"task": "classify",', '"task": "classify"', 1))
    with pytest.raises(ModelDirectoryError, match=r"config.json is not valid JSON \(Expecting ',' delimiter at line 6, "
                                                  r"column 3\)"):
        encoderkit.load(copy)


def test_every_file_is_readable_by_others(trained):
    import stat

    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in trained.model_dir.iterdir()}
    assert len(set(modes.values())) == 1, modes  # model.safetensors was once 0600 among 0644 files


def test_a_save_cut_short_at_any_file_leaves_the_previous_model(trained, tmp_path, monkeypatch):
    """Fail the save at each of its file writes in turn: the directory keeps loading the old model."""
    import torch

    from encoderkit.model_dir import load_model, save_model
    from encoderkit.tasks import get_task

    target = copy_model(trained, tmp_path)
    texts = ["Who wrote Hamlet ?", "How far is the Moon ?"]
    old = load_model(target)
    before = old.predict_proba(texts)
    changed = load_model(trained.model_dir)
    with torch.no_grad():
        changed.model.head.layers[-1].bias[0] += 3.0  # a different model to save over the old one
    task = get_task("classify")
    spec = task.load_spec(changed.config, trained.model_dir, json.loads((trained.model_dir / "config.json").read_text()))

    class Cut(Exception):
        pass

    writes = {"n": 0, "limit": None}

    def counting(write):
        def counted(*args, **kwargs):
            writes["n"] += 1
            if writes["limit"] is not None and writes["n"] > writes["limit"]:
                raise Cut()
            return write(*args, **kwargs)
        return counted

    # Every file of a model directory is written by one of these two.
    import pathlib

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", counting(safetensors.torch.save_file))
    monkeypatch.setattr(pathlib.Path, "write_text", counting(pathlib.Path.write_text))

    save_model(tmp_path / "probe", changed.model, changed.config, task, spec)  # count the writes of one save
    total = writes["n"]
    assert total >= 5
    for limit in range(total):
        writes.update(n=0, limit=limit)
        with pytest.raises(Cut):
            save_model(target, changed.model, changed.config, task, spec)
        np.testing.assert_allclose(load_model(target).predict_proba(texts), before, atol=1e-6)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "probe"]  # no temporary left behind
    writes.update(n=0, limit=None)
    save_model(target, changed.model, changed.config, task, spec)
    assert not np.allclose(load_model(target).predict_proba(texts), before, atol=1e-3)


def test_a_string_is_one_text_and_wrong_types_name_their_position(trained):
    from encoderkit.errors import DataError

    model = encoderkit.load(trained.model_dir)
    label = model.predict("Who wrote Hamlet ?")
    assert isinstance(label, str) and label == model.predict(["Who wrote Hamlet ?"])[0]
    assert model.predict_proba("Who wrote Hamlet ?").shape == (len(trained.labels),)
    assert model.encode("Who wrote Hamlet ?").shape == (32,)
    for bad, kind in ((None, "NoneType"), (3, "int"), (b"Who ?", "bytes")):
        with pytest.raises(TypeError, match=rf"texts\[1\] is {kind}, not str"):
            model.predict(["Who wrote Hamlet ?", bad])
    with pytest.raises(DataError, match=r"texts\[0\] is empty"):
        model.predict(["  "])
    with pytest.raises(DataError, match=r"texts\[0\] is empty"):
        model.encode("")
