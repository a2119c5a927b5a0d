"""The reusable unit: ``TextEncoder = tokenizer + embedding + encoder + pooler``.

    text --tokenizer--> ids (B,T), mask (B,T) --embedding--> (B,T,E)
         --encoder--> token states (B,T,H) --pooler--> sentence vector (B,H)

``TextClassifier`` puts a classifier head on top. Both are plain ``nn.Module``s; the tokenizer
rides along as an attribute so a loaded model can go from raw text to vectors by itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoderkit.config import RunConfig
from encoderkit.data.batching import pad_batch
from encoderkit.embeddings import TokenEmbedding
from encoderkit.encoders import build_encoder
from encoderkit.encoders.base import Encoder
from encoderkit.heads.classifier import ClassifierHead
from encoderkit.pooling import Pooler


class TextEncoder(nn.Module):
    """ids (B,T) + mask (B,T) -> sentence vectors (B,H); ``token_states`` gives (B,T,H)."""

    def __init__(self, tokenizer, embedding: TokenEmbedding | None, encoder: Encoder, pooler: Pooler,
                 normalize: bool = False):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding = embedding
        self.encoder = encoder
        self.pooler = pooler
        self.normalize = normalize

    @property
    def output_dim(self) -> int:
        return self.pooler.output_dim

    def token_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        inputs = ids if self.embedding is None else self.embedding(ids)
        return self.encoder(inputs, mask)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        vectors = self.pooler(self.token_states(ids, mask), mask)
        return F.normalize(vectors, dim=-1) if self.normalize else vectors

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Sentence vectors for raw texts, batched by length; (N,H) float32 in input order."""
        return run_in_length_order(self, self.tokenizer, texts, batch_size, self.output_dim)


@torch.inference_mode()
def run_in_length_order(module: nn.Module, tokenizer, texts: Sequence[str], batch_size: int,
                        output_dim: int) -> np.ndarray:
    """Apply ``module(ids, mask) -> (B, output_dim)`` to texts in batches of similar length.

    Sorting by length means each batch pads to nearly its own length, which on real text cuts
    the work several fold; results come back in input order.
    """
    was_training = module.training
    module.eval()
    id_lists = tokenizer.encode_batch(list(texts))
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]))
    device = next(module.parameters()).device
    out = np.zeros((len(id_lists), output_dim), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids, mask = pad_batch([id_lists[i] for i in chunk], tokenizer.pad_id)
        out[chunk] = module(ids.to(device), mask.to(device)).float().cpu().numpy()
    module.train(was_training)
    return out


class TextClassifier(nn.Module):
    """TextEncoder + ClassifierHead: ids, mask -> logits (B,C)."""

    def __init__(self, text_encoder: TextEncoder, head: ClassifierHead):
        super().__init__()
        self.text_encoder = text_encoder
        self.head = head

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.text_encoder(ids, mask))


def build_text_encoder(config: RunConfig, tokenizer, model_dir=None) -> TextEncoder:
    """Build the embedding, encoder and pooler named in ``config`` around a ready tokenizer.

    ``model_dir`` is set when rebuilding a saved model (encoders that need files read them there).
    """
    encoder_config = config.encoder
    if encoder_config.kind == "pretrained":
        encoder = build_encoder(encoder_config, input_size=0)
        embedding = None
        normalize = encoder_config.normalize
    else:
        embedding = TokenEmbedding(tokenizer.vocab_size, config.embedding.dim, tokenizer.pad_id,
                                   config.embedding.dropout)
        encoder = build_encoder(encoder_config, input_size=config.embedding.dim)
        normalize = False
    pooler = Pooler(config.pooling, encoder.output_dim, getattr(encoder, "num_directions", 1))
    return TextEncoder(tokenizer, embedding, encoder, pooler, normalize=normalize)


def build_classifier(config: RunConfig, tokenizer, num_labels: int, model_dir=None) -> TextClassifier:
    text_encoder = build_text_encoder(config, tokenizer, model_dir=model_dir)
    head = ClassifierHead(text_encoder.output_dim, num_labels, config.head.hidden_sizes, config.head.dropout)
    return TextClassifier(text_encoder, head)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
