"""Token embeddings, and starting them from pretrained vectors.

``embedding.pretrained`` may name word vectors (GloVe / word2vec / fastText files, read by
``encoderkit.wordvec``) or a Hugging Face checkpoint directory whose input embeddings share the
model's tokenizer. Either way the rows are aligned to our vocabulary and a coverage report says how
much of the vocabulary (and of the training tokens) the vectors cover.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from encoderkit.config import EmbeddingConfig
from encoderkit.errors import ConfigError


class TokenEmbedding(nn.Module):
    """ids (B,T) long -> (B,T,E) vectors, with dropout. Row ``pad_id`` is zero and never trained.

    ``scale``: multiply by sqrt(E) (Vaswani et al. 2017), so the N(0, 1/E) rows come out with unit
    variance, the size of the sinusoidal positions a Transformer adds to them.
    """

    def __init__(self, vocab_size: int, dim: int, pad_id: int, dropout: float = 0.0, scale: bool = False):
        super().__init__()
        self.scale = math.sqrt(dim) if scale else 1.0
        self.weight_table = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        # N(0, 1/sqrt(dim))-scaled start keeps dot products of random vectors near unit scale.
        nn.init.normal_(self.weight_table.weight, std=1.0 / math.sqrt(dim))
        with torch.no_grad():
            self.weight_table.weight[pad_id].zero_()
        self.dropout = nn.Dropout(dropout)
        self.dim = dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        vectors = self.weight_table(ids)
        return self.dropout(vectors * self.scale if self.scale != 1.0 else vectors)

    def load_matrix(self, matrix: np.ndarray, freeze: bool) -> None:
        with torch.no_grad():
            self.weight_table.weight.copy_(torch.as_tensor(matrix, dtype=torch.float32))
        self.weight_table.weight.requires_grad_(not freeze)


def load_pretrained(config: EmbeddingConfig, tokenizer_kind: str) -> tuple[list[str], np.ndarray]:
    """The words (or checkpoint tokens) and vectors named by ``embedding.pretrained``.

    Word vectors need whole words, so a subword tokenizer is refused with the reason; a checkpoint's
    input embeddings only fit that checkpoint's own tokenizer.
    """
    from encoderkit.checkpoint_folder import resolve_checkpoint_path

    path = resolve_checkpoint_path(config.pretrained)  # also "package:NAME/SUBDIR"
    if path.is_dir():
        if tokenizer_kind != "pretrained":
            raise ConfigError(
                f"embedding.pretrained={path} is a checkpoint: its input embeddings only fit its own "
                f"tokenizer; set tokenizer.kind=pretrained and tokenizer.path={path}"
            )
        return checkpoint_input_embeddings(path)
    from encoderkit.wordvec.init import SUBWORD_REFUSAL
    from encoderkit.wordvec.io import load_vectors

    if tokenizer_kind != "word":
        raise ConfigError(f"embedding.pretrained with tokenizer.kind={tokenizer_kind}: {SUBWORD_REFUSAL}")
    return load_vectors(path)


def pretrained_matrix(
    config: EmbeddingConfig, vocab: dict[str, int], pretrained: tuple[list[str], np.ndarray],
    token_counts: dict[str, int] | None, seed: int,
) -> tuple[np.ndarray, dict]:
    """Rows for every vocabulary token from loaded pretrained vectors, and a coverage report.

    Returns:
        ((V, D) float32 matrix, coverage dict with vocab_coverage, token_coverage, found, vocab_size, dim).
    """
    from encoderkit.wordvec.init import align_vectors

    words, vectors = pretrained
    return align_vectors(vocab, words, vectors, oov=config.oov, token_counts=token_counts, seed=seed)


def checkpoint_input_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """The token strings and input-embedding matrix of a checkpoint, read from safetensors only.

    Used to start a from-scratch encoder's token embeddings from a pretrained checkpoint when the
    tokenizer is shared (``tokenizer.kind: pretrained`` with the same ``path``).

    Args:
        path: a checkpoint folder.

    Returns:
        ``(tokens, matrix)``: ``tokens[i]`` is the string of token id ``i``; ``matrix`` is (V,E) float32.
    """
    # Only the embedding tensor is read (safe_open maps the file lazily): no model is built.
    from safetensors import safe_open

    from encoderkit.checkpoint_folder import check_checkpoint_dir
    from encoderkit.errors import ModelDirectoryError
    from encoderkit.tokenization import CheckpointTokenizer

    model_dir = check_checkpoint_dir(path)
    tokenizer = CheckpointTokenizer.from_checkpoint(path)
    files = sorted(model_dir.glob("model*.safetensors"))
    matrix = None
    for file in files:
        with safe_open(str(file), framework="np") as handle:
            names = [name for name in handle.keys() if name.endswith("word_embeddings.weight")]
            names = names or [n for n in handle.keys() if n.endswith(("embed_tokens.weight", "shared.weight"))]
            if names:
                matrix = handle.get_tensor(sorted(names, key=len)[0]).astype(np.float32)
                break
    if matrix is None:
        raise ModelDirectoryError(f"{model_dir}: no input-embedding tensor (*.word_embeddings.weight) in the safetensors")
    vocab = tokenizer.backend.get_vocab(with_added_tokens=True)
    tokens = [""] * matrix.shape[0]
    for token, index in vocab.items():
        if index < len(tokens):
            tokens[index] = token
    return tokens, matrix
