"""The distill: section: validated like the rest, saved only when set."""

from __future__ import annotations

import pytest

from encoderkit.config import config_to_dict, load_config, validate_config
from encoderkit.errors import ConfigError


@pytest.mark.parametrize("overrides, message", [
    (["distill.teacher=t", "distill.temp=3"], "unknown config key 'distill.temp'; valid keys: alpha, augment, kind, "
                                              "teacher, teacher_batch_size, temperature, unlabelled"),
    (["distill.teacher=t", "distill.augment.iters=3"], "valid keys: max_ngram, n_iter, p_mask, p_ng, p_pos"),
    (["distill.alpha=0.5"], "'distill.teacher': Field required"),
    (["distill.teacher=t", "distill.alpha=1.5"], "'distill.alpha'"),
    (["distill.teacher=t", "distill.kind=mse", "distill.temperature=3"], "temperature has no effect with kind: mse"),
    (["distill.teacher=t", "distill.augment.p_mask=0.6", "distill.augment.p_pos=0.5"], "p_mask + p_pos"),
    (["task=retrieve", "distill.teacher=t"], "distill needs task classify"),
])
def test_bad_settings_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("+", r"\+")) as error:
        load_config(None, overrides)
    assert "\n" not in str(error.value)


def test_the_section_round_trips_and_plain_configs_stay_without_it():
    assert "distill" not in config_to_dict(load_config(None, []))
    for overrides, temperature in ((["distill.teacher=t"], 2.0), (["distill.teacher=t", "distill.kind=mse"], None)):
        config = load_config(None, overrides)
        assert config.distill.temperature == temperature
        assert validate_config(config_to_dict(config)) == config  # a saved config loads back as it was


def test_the_shipped_student_has_at_most_a_tenth_of_minilms_parameters():
    """configs/distill_trec_cnn.yaml at its largest (a full vocabulary, fully extended) against 22.7M / 10."""
    from encoderkit.heads.classifier import ClassifierHead, TextClassifier
    from encoderkit.text_encoder import build_text_encoder, count_parameters
    from encoderkit.tokenization import make_tokenizer
    from support import ROOT

    config = load_config(ROOT / "configs" / "distill_trec_cnn.yaml")
    tokenizer = make_tokenizer(config, ["a few words"], ("[MASK]",))
    text_encoder = build_text_encoder(config, tokenizer)
    model = TextClassifier(text_encoder, ClassifierHead(text_encoder.output_dim, 6, (), 0.0))
    full_vocabulary = config.tokenizer.vocab_size + config.embedding.extend_vocab  # training words + vectors' words
    largest = count_parameters(model) + (full_vocabulary - tokenizer.vocab_size) * config.embedding.dim
    assert largest <= 22_700_000 / 10
