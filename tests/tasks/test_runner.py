"""The runner's care of the run directory: no silent overwrite, resume only what is there, no debris."""

import json

import pytest

from encoderkit.config import load_config, validate_config
from encoderkit.errors import ConfigError, DataError
from encoderkit.tasks.runner import describe_model, run
from support import ROOT, read_jsonl, tiny_config

QUIET = {"echo": lambda *_: None}


def tiny(trec_slice, tmp_path, **train):
    return validate_config(tiny_config(trec_slice, tmp_path / "run", encoder={"kind": "bow"}, pooling="mean",
                                       train={"epochs": 1, "batch_size": 64, "progress": False, **train}))


def test_an_existing_run_is_refused_naming_overwrite_and_resume(trec_slice, tmp_path):
    run(tiny(trec_slice, tmp_path), **QUIET)
    before = (tmp_path / "run" / "model" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"already holds a run \(best.safetensors, checkpoint, .*--resume to continue it, --overwrite"):
        run(tiny(trec_slice, tmp_path, lr=0.01), **QUIET)
    assert (tmp_path / "run" / "model" / "model.safetensors").read_bytes() == before


def test_overwrite_starts_clean_logs(trec_slice, tmp_path):
    run(tiny(trec_slice, tmp_path), **QUIET)
    run(tiny(trec_slice, tmp_path, epochs=2, lr=0.01), overwrite=True, **QUIET)
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records if r["split"] == "validation"] == [9, 18]  # the new run's only
    assert len(list((tmp_path / "run" / "tensorboard").iterdir())) == 1
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert saved["config"]["train"]["lr"] == 0.01


def test_resume_needs_a_run_and_excludes_overwrite(trec_slice, tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume in .*run without --resume"):
        run(tiny(trec_slice, tmp_path), resume=True, **QUIET)
    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError, match="nothing to resume"):
        run(tiny(trec_slice, tmp_path), resume=True, **QUIET)
    with pytest.raises(ConfigError, match="--resume and --overwrite contradict"):
        run(tiny(trec_slice, tmp_path), resume=True, overwrite=True, **QUIET)


def test_a_failed_run_leaves_no_folder(trec_slice, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Who ?", "label": "HUM"}\n{"text": "What ?"}\n')
    config = tiny(trec_slice, tmp_path)
    config.data.test = str(bad)
    with pytest.raises(DataError, match="bad.jsonl:2: no field 'label'"):
        run(config, **QUIET)
    assert not (tmp_path / "run").exists()


def test_resume_with_another_architecture_names_the_keys(trec_slice, tmp_path):
    run(tiny(trec_slice, tmp_path), **QUIET)
    other = validate_config(tiny_config(trec_slice, tmp_path / "run", encoder={"kind": "gru", "hidden_size": 8},
                                        pooling="max", train={"epochs": 1, "batch_size": 64, "progress": False}))
    with pytest.raises(ConfigError) as error:
        run(other, resume=True, **QUIET)
    message = str(error.value)
    assert "\n" not in message and "encoder.kind ('bow' -> 'gru')" in message and "pooling ('mean' -> 'max')" in message


def test_resume_before_the_first_checkpoint_starts_again(trec_slice, tmp_path):
    """A run killed before its first checkpoint left config.yaml and a tokenizer: --resume restarts it."""
    config = tiny(trec_slice, tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("seed: 13\n")
    lines = []
    result = run(config, resume=True, echo=lines.append)
    assert any("no checkpoint yet" in line and "starting it again" in line for line in lines)
    assert result.test_metrics is not None


@pytest.mark.parametrize("config, described", [
    ("cnn.yaml", "cnn encoder, max pooling"),
    ("translate_transformer_de_en.yaml", "transformer encoder, transformer decoder"),
    ("translate_gru_de_en.yaml", "gru encoder, gru decoder with luong_general attention"),
])
def test_the_model_line_names_a_decoder_where_a_translation_model_has_no_pooling(config, described):
    assert describe_model(load_config(ROOT / "configs" / config)) == described
