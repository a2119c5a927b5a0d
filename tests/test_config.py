from pathlib import Path

import pytest

from encoderkit.config import RunConfig, apply_overrides, load_config, validate_config
from encoderkit.errors import ConfigError

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


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_builds_and_runs(path):
    """Each shipped config validates, builds its model and classifies a padded batch."""
    import torch

    from encoderkit.data.batching import pad_batch
    from encoderkit.tasks import get_task
    from encoderkit.tasks.classify import ClassifySpec
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import make_tokenizer

    config = load_config(path)
    texts = ["What is the capital of France ?", "Who wrote Hamlet ?", "How many legs does a spider have ?"]
    tokenizer = make_tokenizer(config, texts * 3)
    spec = ClassifySpec(("a", "b", "c", "d"), multi_label=False, threshold=0.5)
    model = get_task(config.task).build_model(config, build_text_encoder(config, tokenizer), spec).eval()
    ids, mask = pad_batch(tokenizer.encode_batch(texts), tokenizer.pad_id)
    with torch.no_grad():
        logits = model(ids, mask)
    assert logits.shape == (3, 4)
    assert torch.isfinite(logits).all()
