"""Encoder families and the registry that builds them from config (a plain dict, no reflection)."""

from __future__ import annotations

from torch import nn

from encoderkit.encoders.base import Encoder
from encoderkit.encoders.bow import BagOfEmbeddingsEncoder
from encoderkit.encoders.cnn import CNNEncoder
from encoderkit.encoders.rnn import RecurrentEncoder
from encoderkit.encoders.transformer import TransformerEncoder
from encoderkit.errors import ConfigError

#: kind -> class built as ``cls(input_size, config)``; ``pretrained`` is built from its checkpoint.
ENCODERS: dict[str, type[nn.Module]] = {
    "bow": BagOfEmbeddingsEncoder,
    "cnn": CNNEncoder,
    "rnn": RecurrentEncoder,
    "lstm": RecurrentEncoder,
    "gru": RecurrentEncoder,
    "transformer": TransformerEncoder,
}


def build_encoder(config, input_size: int) -> Encoder:
    """Build the encoder named by ``config.kind`` on inputs of ``input_size`` features."""
    if config.kind == "pretrained":
        from encoderkit.encoders.pretrained import PretrainedEncoder

        return PretrainedEncoder.from_config(config)
    if config.kind not in ENCODERS:
        valid = ", ".join(sorted([*ENCODERS, "pretrained"]))
        raise ConfigError(f"unknown encoder kind {config.kind!r}; valid kinds: {valid}")
    return ENCODERS[config.kind](input_size, config)


__all__ = ["ENCODERS", "Encoder", "build_encoder"]
