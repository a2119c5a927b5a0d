"""Pretrained Transformer encoders: a local Hugging Face checkpoint as an encoderkit encoder.

Data flow (the checkpoint embeds its own token ids, so ``takes_token_ids = True``)::

    text --CheckpointTokenizer--> ids (B,T) long, mask (B,T) bool
         --PretrainedEncoder (transformers.AutoModel)--> token states (B,T,H), zero at padding
         --pooler (mean|cls|max|last|attention)--> (B,H) [--L2 normalise-->]

Reading and checking the checkpoint folder is ``encoderkit.checkpoint_folder``'s job; the tokenizer
is ``encoderkit.tokenization.CheckpointTokenizer``.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import torch
from torch import nn

from encoderkit.checkpoint_folder import check_checkpoint_dir, load_hf_model
from encoderkit.encoders.base import Encoder, zero_padding
from encoderkit.errors import ModelDirectoryError


class PretrainedEncoder(Encoder):
    """A Hugging Face base model as an encoderkit encoder.

    ``forward(input_ids (B,T) long, mask (B,T) bool) -> states (B,T,H)`` float32, zero at padding,
    with ``H == output_dim == config.hidden_size``. ``freeze=True`` keeps the weights fixed and the model
    in eval mode (no dropout), so a frozen encoder yields the same features every epoch.
    """

    takes_token_ids = True

    def __init__(self, path: str | Path, freeze: bool = False, load_weights: bool = True) -> None:
        """Args:
        path: a checkpoint folder (checked first), or with ``load_weights=False`` any folder holding
            the model's ``config.json`` (weights then come from an encoderkit model directory).
        freeze: keep the checkpoint weights fixed.
        load_weights: False builds the architecture only.
        """
        super().__init__()
        model_dir = check_checkpoint_dir(path) if load_weights else Path(path)
        if not load_weights and not (model_dir / "config.json").is_file():
            raise ModelDirectoryError(f"{model_dir} is missing config.json (the Hugging Face model config)")
        self.model = load_hf_model(model_dir, load_weights=load_weights)
        self.output_dim = int(self.model.config.hidden_size)
        self.freeze = freeze
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    #: Subfolder of an encoderkit model directory holding the checkpoint's ``config.json``.
    SAVED_CONFIG_DIR = "encoder"

    @classmethod
    def from_config(cls, config, model_dir: str | Path | None = None) -> "PretrainedEncoder":
        """Build from a ``PretrainedConfig``: from the checkpoint at ``config.path``, or, when
        ``model_dir`` is an encoderkit model directory, from the architecture saved there (its
        weights are then loaded from the model directory's state dict, the checkpoint is not needed).
        """
        if model_dir is not None:
            saved = Path(model_dir) / cls.SAVED_CONFIG_DIR
            if (saved / "config.json").is_file():
                return cls(saved, freeze=config.freeze, load_weights=False)
        return cls(config.path, freeze=config.freeze)

    def train(self, mode: bool = True) -> "PretrainedEncoder":
        super().train(mode)
        if self.freeze:
            self.model.eval()  # a frozen feature extractor never drops out
        return self

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args:
            input_ids: (B,T) long token ids from ``CheckpointTokenizer``.
            mask: (B,T) bool, True at real tokens.

        Returns:
            (B,T,H) float32 last-layer token states, zero at padded positions.
        """
        # A batch without padding needs no attention mask, which lets SDPA take its unmasked kernel.
        attention_mask = None if bool(mask.all()) else mask.long()
        with torch.no_grad() if self.freeze else contextlib.nullcontext():
            states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # A bf16 copy (encoderkit.quantize) still hands float32 states to the pooler and head.
        return zero_padding(states.float(), mask)

    def save_config(self, model_dir: str | Path) -> None:
        """Write the checkpoint's ``config.json`` into ``model_dir/encoder`` so ``from_config``
        rebuilds the architecture from the model directory alone."""
        self.model.config.save_pretrained(str(Path(model_dir) / self.SAVED_CONFIG_DIR))

    def layer_parameter_groups(self, lr: float, decay: float, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups with layer-wise learning-rate decay.

        Embeddings count as layer 0, Transformer block ``i`` as layer ``i + 1`` and anything above
        the blocks (a final norm) as layer ``L``; layer ``l`` of ``L`` trains at
        ``lr * decay ** (L - l)``, so the top block trains at ``lr`` and the embeddings slowest.
        Biases and normalisation weights get no weight decay (the usual BERT recipe).

        Args:
            lr: learning rate of the top layer.
            decay: multiplicative decay per layer (1.0: all layers at ``lr``).
            weight_decay: weight decay for matrices.

        Returns:
            A list of ``{"params", "lr", "weight_decay"}`` dicts for ``torch.optim.AdamW``; frozen
            parameters are left out.
        """
        num_layers = int(getattr(self.model.config, "num_hidden_layers", 0))
        groups: dict[tuple[int, bool], list[nn.Parameter]] = {}
        for name, parameter in self.model.named_parameters():
            if not parameter.requires_grad:
                continue
            depth = _layer_depth(name, num_layers)
            no_decay = parameter.ndim < 2 or "norm" in name.lower()
            groups.setdefault((depth, no_decay), []).append(parameter)
        return [
            {
                "params": params,
                "lr": lr * decay ** (num_layers - depth),
                "weight_decay": 0.0 if no_decay else weight_decay,
                "layer": depth,
            }
            for (depth, no_decay), params in sorted(groups.items())
        ]


_LAYER_INDEX = re.compile(r"\.layers?\.(\d+)\.")


def _layer_depth(name: str, num_layers: int) -> int:
    """0 for embeddings, i + 1 for block i, ``num_layers`` for anything above the blocks."""
    match = _LAYER_INDEX.search(f".{name}")
    if match:
        return int(match.group(1)) + 1
    if "embed" in name:
        return 0
    return num_layers

