"""The reusable unit: ``TextEncoder = tokenizer + embedding + encoder + pooler``.

    text --tokenizer--> ids (B,T), mask (B,T) --embedding--> (B,T,E)
         --encoder--> token states (B,T,H) --pooler--> sentence vector (B,H)

Tasks put their head on top (``heads/``). It is a plain ``nn.Module``; the tokenizer rides along
as an attribute so a loaded model can go from raw text to vectors by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoderkit.config import RunConfig
from encoderkit.data.batching import pad_batch
from encoderkit.distributed import map_shards, sharding_active
from encoderkit.embeddings import TokenEmbedding
from encoderkit.encoders import build_encoder
from encoderkit.encoders.base import Encoder
from encoderkit.errors import ConfigError
from encoderkit.pooling import Pooler


class TextEncoder(nn.Module):
    """ids (B,T) + mask (B,T) -> sentence vectors (B,H); ``token_states`` gives (B,T,H).

    Long documents: when the tokenizer emits several windows per text (``max_chunks > 1``, laid end
    to end, each ``max_length`` ids but the last), each window is encoded and pooled on its own and
    the window vectors are pooled into one by ``chunk_pooling`` (``mean`` or ``max``).
    """

    def __init__(self, tokenizer, embedding: TokenEmbedding | None, encoder: Encoder, pooler: Pooler,
                 normalize: bool = False, chunk_pooling: str = "mean"):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding = embedding
        self.encoder = encoder
        self.pooler = pooler
        self.normalize = normalize
        self.chunk_pooling = chunk_pooling
        self.chunk_length = tokenizer.max_length if getattr(tokenizer, "max_chunks", 1) > 1 else None

    @property
    def output_dim(self) -> int:
        return self.pooler.output_dim

    def token_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        inputs = ids if self.embedding is None else self.embedding(ids)
        return self.encoder(inputs, mask)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.chunk_length is not None and ids.size(1) > self.chunk_length:
            vectors = self._pool_windows(ids, mask, self.chunk_length)
        else:
            vectors = self.pooler(self.token_states(ids, mask), mask)
        return F.normalize(vectors, dim=-1) if self.normalize else vectors

    def _pool_windows(self, ids: torch.Tensor, mask: torch.Tensor, window: int) -> torch.Tensor:
        """(B, C*W) ids holding up to C windows of W tokens per row -> (B,H) pooled over windows."""
        batch, length = ids.shape
        chunks = -(-length // window)
        fill = chunks * window - length
        ids = F.pad(ids, (0, fill), value=self.tokenizer.pad_id).view(batch * chunks, window)
        mask = F.pad(mask, (0, fill), value=False).view(batch * chunks, window)
        present = mask.any(dim=1)  # (B*C,) windows holding text; short documents have fewer
        width = int(mask.sum(dim=1).max())  # the longest window, so padding-only columns are skipped
        kept_ids, kept_mask = ids[present, :width], mask[present, :width]
        kept = self.pooler(self.token_states(kept_ids, kept_mask), kept_mask)  # (n,H)
        vectors = kept.new_zeros(batch * chunks, kept.size(-1))
        vectors[present] = kept
        vectors, present = vectors.view(batch, chunks, -1), present.view(batch, chunks, 1)
        if self.chunk_pooling == "max":
            return vectors.masked_fill(~present, torch.finfo(vectors.dtype).min).amax(dim=1)
        return (vectors * present).sum(dim=1) / present.sum(dim=1).clamp(min=1)

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        """Sentence vectors for raw texts, batched by length: (N,H) float32 in input order, or (H,)
        for a single ``str`` (the rules of ``encoderkit.texts.as_text_list``)."""
        from encoderkit.texts import as_text_list

        items, single = as_text_list(texts)
        vectors = run_in_length_order(self, self.tokenizer.encode_batch(items), self.tokenizer.pad_id,
                                      batch_size, self.output_dim)
        return vectors[0] if single else vectors


@torch.inference_mode()
def run_in_length_order(module: nn.Module, id_lists: Sequence[Sequence[int]], pad_id: int, batch_size: int,
                        output_dim: int, progress=None) -> np.ndarray:
    """Apply ``module(ids, mask) -> (B, output_dim)`` to tokenized texts in batches of similar length.

    Sorting by token count means each batch pads to nearly its own length, which on real text cuts
    the work several fold; longest first, so peak memory shows at once. Runs in eval and inference
    mode (no autograd graph) and restores the module's mode; results come back in input order.

    Args:
        progress: optional callable taking the number of texts just finished.
    """
    was_training = module.training
    module.eval()
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    order = np.argsort(-lengths, kind="stable")
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    out = np.empty((len(id_lists), output_dim), dtype=np.float32)
    try:
        # The short batch (len % batch_size texts) goes first, so it is the one padded to the longest
        # text: real lengths have long tails (SMS: mean 21 tokens, max 256) and this runs 1.6x faster.
        starts = [0, *range(len(order) % batch_size or batch_size, len(order), batch_size)] if len(order) else []
        spans = list(zip(starts, [*starts[1:], len(order)]))

        sharded = sharding_active()

        def run_batch(number: int) -> np.ndarray:
            rows = order[spans[number][0]:spans[number][1]]
            ids, mask = pad_batch([id_lists[i] for i in rows], pad_id)
            vectors = module(ids.to(device), mask.to(device)).float().cpu().numpy()  # (B, output_dim)
            if progress is not None and not sharded:
                progress(len(rows))
            return vectors

        # Inside ``sharded_evaluation`` with several processes, each runs every N-th batch.
        for (start, end), vectors in zip(spans, map_shards(len(spans), run_batch)):
            out[order[start:end]] = vectors
        if progress is not None and sharded:  # counted once the shards are merged
            progress(len(order))
    finally:
        module.train(was_training)
    return out


def build_text_encoder(config: RunConfig, tokenizer, model_dir=None) -> TextEncoder:
    """Build the embedding, encoder and pooler named in ``config`` around a ready tokenizer.

    ``model_dir`` is set when rebuilding a saved model (encoders that need files read them there).
    """
    encoder_config = config.encoder
    chunk_pooling = "mean"
    if encoder_config.kind == "pretrained":
        from encoderkit.encoders.pretrained import PretrainedEncoder

        # A saved model rebuilds the architecture from its own copy of the checkpoint config.
        encoder = PretrainedEncoder.from_config(encoder_config, model_dir=model_dir)
        embedding = None
        normalize = encoder_config.normalize
        chunk_pooling = encoder_config.chunk_pooling
    else:
        embedding = TokenEmbedding(tokenizer.vocab_size, config.embedding.dim, tokenizer.pad_id,
                                   config.embedding.dropout, scale=config.embedding.scale)
        encoder = build_encoder(encoder_config, input_size=config.embedding.dim)
        normalize = False
    pooler = Pooler(config.pooling, encoder.output_dim, getattr(encoder, "num_directions", 1))
    return TextEncoder(tokenizer, embedding, encoder, pooler, normalize=normalize, chunk_pooling=chunk_pooling)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def checkpoint_text_encoder(
    path: str | Path,
    pooling: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
):
    """A ``TextEncoder`` (tokenizer + encoder + pooler) straight from a local checkpoint folder.

    A sentence-transformers folder supplies its own pooling, normalisation and maximum length
    unless they are given here; a plain Hugging Face checkpoint defaults to ``mean`` pooling.

    Args:
        path: a Hugging Face or sentence-transformers folder.
        pooling: ``mean``, ``cls``, ``max`` or ``last`` (``attention`` needs fine-tuning first).
        normalize: L2-normalise the sentence vectors.
        max_length: truncation in tokens.

    Returns:
        A ``TextEncoder`` in eval mode.
    """
    from encoderkit.checkpoint_folder import read_sentence_transformer_settings
    from encoderkit.encoders.pretrained import PretrainedEncoder
    from encoderkit.tokenization import CheckpointTokenizer

    settings = read_sentence_transformer_settings(path)
    if pooling is None:
        if settings and settings.pooling_error:
            raise ConfigError(settings.pooling_error)
        pooling = (settings.pooling if settings else None) or "mean"
    if pooling == "attention":
        raise ConfigError(
            "pooling 'attention' has learned weights that a raw checkpoint does not have; fine-tune it "
            "(encoderkit train) or choose mean, cls, max or last"
        )
    if normalize is None:
        normalize = bool(settings and settings.normalize)
    tokenizer = CheckpointTokenizer.from_checkpoint(path, max_length=max_length)
    encoder = PretrainedEncoder(path)
    return TextEncoder(tokenizer, None, encoder, Pooler(pooling, encoder.output_dim), normalize=normalize).eval()
