from pathlib import Path

import pytest

from encoderkit.config import RunConfig, apply_overrides, load_config, validate_config
from encoderkit.errors import ConfigError
from support import shipped_configs

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_yaml_and_overrides_are_layered(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("encoder:\n  kind: gru\n  hidden_size: 64\ntrain:\n  epochs: 3\n")
    config = load_config(path, ["encoder.hidden_size=256", "train.lr=0.01", "pooling=attention"])
    assert config.encoder.kind == "gru"
    assert config.encoder.hidden_size == 256  # override beats YAML
    assert config.train.epochs == 3  # YAML beats default
    assert config.train.lr == 0.01 and config.pooling == "attention"
    assert config.train.batch_size == RunConfig().train.batch_size  # default kept


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as error:
        validate_config({"train": {"epochz": 3}})
    message = str(error.value)
    assert "unknown config key 'train.epochz'" in message
    assert "epochs" in message and "batch_size" in message


def test_unknown_top_level_key_lists_sections():
    with pytest.raises(ConfigError, match="valid keys: .*encoder.*pooling"):
        validate_config({"encoders": {}})


def test_encoder_options_belong_to_their_family():
    with pytest.raises(ConfigError, match="unknown config key 'encoder.kernel_sizes'.*hidden_size"):
        validate_config({"encoder": {"kind": "lstm", "kernel_sizes": [3]}})


def test_unknown_encoder_kind_lists_kinds():
    with pytest.raises(ConfigError, match="unknown encoder kind 'lstmm'.*valid kinds: bow, cnn, gru, lstm"):
        validate_config({"encoder": {"kind": "lstmm"}})


def test_unknown_pooling_is_rejected_with_choices():
    with pytest.raises(ConfigError, match="pooling.*'last', 'mean', 'max', 'cls' or 'attention'"):
        validate_config({"pooling": "avg"})


def test_override_syntax_errors_are_explained():
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["train.epochs"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"pooling": "max"}, ["pooling.kind=3"])


def test_missing_config_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", shipped_configs("classify") + shipped_configs("retrieve"), ids=lambda p: p.name)
def test_every_shipped_config_builds_and_runs(path):
    """Each shipped classification or retrieval config validates, builds its model and runs it on a
    padded batch (a classifier's logits, a retrieval model's unit-length query embeddings;
    translation configs: tests/tasks/test_translate.py)."""
    import torch

    from encoderkit.data.batching import pad_batch
    from encoderkit.tasks import get_task
    from encoderkit.tasks.classify import ClassifySpec
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import make_tokenizer

    config = load_config(path)
    texts = ["What is the capital of France ?", "Who wrote Hamlet ?", "How many legs does a spider have ?"]
    tokenizer = make_tokenizer(config, texts * 3)
    task = get_task(config.task)
    spec = ClassifySpec(("a", "b", "c", "d"), multi_label=False, threshold=0.5) if config.task == "classify" \
        else task.spec(config, None)
    model = task.build_model(config, build_text_encoder(config, tokenizer), spec).eval()
    ids, mask = pad_batch(tokenizer.encode_batch(texts), tokenizer.pad_id)
    with torch.no_grad():
        logits = model(ids, mask)
    assert logits.shape == ((3, 4) if config.task == "classify" else (3, model.output_dim))
    assert torch.isfinite(logits).all()
    if config.task == "retrieve":
        assert torch.allclose(logits.norm(dim=1), torch.ones(3), atol=1e-5)


def test_task_sections_and_moved_keys():
    config = validate_config({"classify": {"label_field": "stars", "loss": {"label_smoothing": 0.1}}})
    assert config.task == "classify" and config.task_section.label_field == "stars"
    with pytest.raises(ConfigError, match="config key 'head' moved to 'classify.head' in encoderkit 0.2"):
        validate_config({"head": {"dropout": 0.5}})
    with pytest.raises(ConfigError, match="config key 'data.label_field' moved to 'classify.label_field'"):
        validate_config({"data": {"label_field": "stars"}})
    with pytest.raises(ConfigError, match="unknown task"):
        validate_config({"task": "summarize"})


def test_train_metric_is_checked_against_the_task():
    assert validate_config({}).train.metric == "macro_f1"  # the task's first metric
    assert validate_config({"train": {"metric": "loss"}}).train.metric == "loss"
    with pytest.raises(ConfigError) as error:
        validate_config({"train": {"metric": "bleu"}})
    message = str(error.value)
    assert "train.metric 'bleu' is not a metric of task classify; valid metrics: macro_f1, micro_f1" in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["bow", "cnn"])
@pytest.mark.parametrize("pooling", ["cls", "last"])
def test_poolings_that_cannot_work_are_refused(kind, pooling):
    with pytest.raises(ConfigError, match=rf"pooling '{pooling}' gives every text the same vector with a {kind} "
                                          r"encoder; poolings that fit: mean, max, attention"):
        validate_config({"encoder": {"kind": kind}, "pooling": pooling})
    assert validate_config({"encoder": {"kind": "gru"}, "pooling": pooling}).pooling == pooling


def test_yaml_errors_keep_their_position(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: 3\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML: .* at line 4, column 1"):
        load_config(path)
    path.write_bytes("\ufefftrain:\n  epochs: 3\n".encode())  # a BOM (Notepad) is fine
    assert load_config(path).train.epochs == 3


def test_mixed_precision_no_survives_yaml_reading_it_as_false(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  mixed_precision: no\n")
    assert load_config(path).train.mixed_precision == "no"
    assert load_config(path, ["train.mixed_precision=bf16"]).train.mixed_precision == "bf16"
    assert load_config(path, ["train.mixed_precision=no"]).train.mixed_precision == "no"
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_config(path, ["train.mixed_precision=yes"])
