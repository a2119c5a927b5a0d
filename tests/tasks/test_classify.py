"""The classification recipe beyond the single-label path: multi-label data, class weights, bad splits."""

import json

import numpy as np
import pytest

import encoderkit
from encoderkit.config import validate_config
from encoderkit.errors import ConfigError, DataError
from encoderkit.tasks.classify import train
from support import shared, tiny_config


def multi_label_trec(folder, count):
    """TREC questions with two labels each: the coarse type and the fine type ('NUM' + 'dist')."""
    lines = shared("trec", "train.jsonl").read_text().splitlines()[: count * 7 : 7]
    records = []
    for line in lines:
        record = json.loads(line)
        coarse, fine = record["fine_label"].split(":")
        records.append({"text": record["text"], "labels": [coarse, fine]})
    path = folder / "multi.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_multi_label_training_and_prediction(tmp_path):
    data = multi_label_trec(tmp_path, 700)
    config = validate_config(tiny_config({"train": data, "test": data}, tmp_path / "run",
                                         data={"train": str(data), "validation_fraction": 0.15},
                                         classify={"label_field": "labels", "multi_label": True},
                                         train={"epochs": 4, "lr": 0.02, "progress": False}))
    result = train(config, echo=lambda *_: None)
    assert "DESC" in result.labels and "def" in result.labels
    assert "confusion_matrix" not in result.validation_metrics
    assert result.validation_metrics["micro_f1"] > 0.3
    model = encoderkit.load(result.model_dir)
    predicted = model.predict(["What is the definition of an atom ?"])
    assert isinstance(predicted[0], list)
    probabilities = model.predict_proba(["What is an atom ?"])
    assert not np.allclose(probabilities.sum(1), 1.0)  # independent sigmoids, not a softmax


def test_balanced_class_weights_train(trec_slice, tmp_path):
    config = validate_config(tiny_config(trec_slice, tmp_path / "run", classify={"loss": {"class_weights": "balanced"}},
                                         train={"epochs": 1, "progress": False}))
    assert train(config, echo=lambda *_: None).test_metrics is not None


def test_class_weights_for_unknown_labels_are_refused(trec_slice, tmp_path):
    config = validate_config(tiny_config(trec_slice, tmp_path / "run", classify={"loss": {"class_weights": {"SPAM": 2.0}}}))
    with pytest.raises(ConfigError, match=r"unknown labels \['SPAM'\]"):
        train(config, echo=lambda *_: None)


def test_test_labels_unseen_in_training_are_refused(trec_slice, tmp_path):
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "Is it raining ?", "label": "YESNO"}) + "\n")
    config = validate_config(tiny_config({"train": trec_slice["train"], "test": odd}, tmp_path / "run"))
    with pytest.raises(DataError, match="labels the model never saw in training: 'YESNO'"):
        train(config, echo=lambda *_: None)


def test_extend_vocab_keeps_pretrained_vectors_for_words_unseen_in_training(trec_slice, tmp_path):
    import bz2

    import torch

    lines = []
    with bz2.open(shared("glove.6B.50d.txt.bz2"), "rt", encoding="utf-8") as handle:
        for line in handle:
            lines.append(line)
            if len(lines) == 3000:
                break
    vectors_path = tmp_path / "glove3k.txt"
    vectors_path.write_text("".join(lines), encoding="utf-8")
    glove = {parts[0]: [float(x) for x in parts[1:]] for parts in (line.split(" ") for line in lines)}
    config = validate_config(tiny_config(trec_slice, tmp_path / "run",
                                         embedding={"dim": 50, "pretrained": str(vectors_path), "freeze": True,
                                                    "extend_vocab": 3000},
                                         train={"epochs": 1, "progress": False}))
    said = []
    result = train(config, echo=said.append)
    # The added words fill the vocabulary; the line also says how much of the training words is covered.
    assert result.coverage["train_vocab_coverage"] < result.coverage["vocab_coverage"]
    assert any(f"({result.coverage['train_vocab_coverage']:.1%} of the words seen in training)" in line
               for line in said), said
    model = encoderkit.load(result.model_dir)
    vocab = model.tokenizer.get_vocab()
    training_words = {w for r in (trec_slice["train"]).read_text().splitlines() for w in json.loads(r)["text"].lower().split()}
    unseen = [w for w in list(glove)[:3000] if w not in training_words and w.isalpha()][:20]
    assert unseen and all(w in vocab for w in unseen)
    table = model.model.text_encoder.embedding.weight_table.weight
    for word in unseen:
        torch.testing.assert_close(table[vocab[word]], torch.tensor(glove[word]))


def test_duplicates_and_test_texts_seen_in_training_are_reported(trec_slice, tmp_path):
    lines = trec_slice["train"].read_text().splitlines()
    train_file = tmp_path / "dup.jsonl"
    train_file.write_text("\n".join(lines + lines[:7]) + "\n")  # 7 repeated training questions
    test_lines = trec_slice["test"].read_text().splitlines()
    test_file = tmp_path / "leaky.jsonl"
    test_file.write_text("\n".join(test_lines[:50] + lines[100:103]) + "\n")  # 3 training questions in test
    config = validate_config(tiny_config({"train": train_file, "test": test_file}, tmp_path / "run",
                                         train={"epochs": 1, "progress": False}))
    texts = [json.loads(line)["text"] for line in lines]
    repeats = 7 + len(texts) - len(set(texts))  # the slice itself holds a repeated question
    said = []
    train(config, echo=said.append)
    assert any(f"{repeats} training texts repeat an earlier one" in line and "3 test texts also occur in train (leakage)"
               in line for line in said), said
