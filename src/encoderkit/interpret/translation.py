"""Translation: which source words each output word was read from, the decoder's cross-attention.

For output token ``y_i`` the decoder's attention over the source positions is a row ``a_i`` summing
to 1: the recurrent decoder's own attention (additive or multiplicative), a Transformer decoder's
last-layer cross-attention averaged over its heads. Stacked, the rows are the alignment heatmap
(output tokens down, source tokens across; ``</s>`` is the last row).

Given a source only, the model's own translation is aligned (its beam, as ``translate`` gives it).
Given a target too, the decoder reads that target token by token (teacher forcing) and the attention
of each step is kept: the alignment of a sentence pair, e.g. a source and its reference, with the
log-probability the model gives the reference.

    model = encoderkit.load("runs/translate_transformer_de_en/model")
    pair = model.explain("Ein Hund läuft.", target="A dog runs.")
    pair.source_tokens, pair.target_tokens, pair.weights      # (target tokens + 1, source tokens)
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch

from encoderkit.errors import ConfigError, DataError
from encoderkit.texts import as_text_list

#: The one method: the decoder's cross-attention.
TRANSLATION_METHODS = ("attention",)


@dataclass
class Alignment:
    """The cross-attention of one translation: ``weights[i, j]`` = attention of output token ``i`` to source token ``j``."""

    source: str
    translation: str
    #: The translation was given (teacher forcing), not searched.
    forced: bool
    #: Given target: its log-probability under the model; searched: the search's score (length-penalised).
    score: float
    source_tokens: list[str]
    target_tokens: list[str]
    weights: np.ndarray = field(repr=False)
    method: str = "attention"

    @property
    def text(self) -> str:
        return self.source

    def links(self, count: int = 12) -> str:
        """'A<-Ein 0.91, dog<-Hund 0.83, ...': each output token with the source token it attends to most."""
        pairs = [f"{target}<-{self.source_tokens[int(row.argmax())]} {float(row.max()):.2f}"
                 for target, row in zip(self.target_tokens, self.weights)]
        more = f", ... ({len(pairs) - count} more)" if len(pairs) > count else ""
        return ", ".join(pairs[:count]) + more

    def facts(self) -> dict[str, str]:
        return {"source": self.source, ("given target" if self.forced else "translation"): self.translation,
                ("log P(target)" if self.forced else "search score"): f"{self.score:.3f}",
                "method": "cross-attention", "aligned": self.links()}

    def segments(self) -> list:
        return []

    heatmap_title = "cross-attention: output tokens (rows) over source tokens (columns)"

    def heatmap_png(self) -> bytes:
        from encoderkit.translation.report import plot_alignment

        buffer = io.BytesIO()
        plot_alignment(self.source_tokens, self.target_tokens, self.weights, buffer,
                       title="Cross-attention" + (" (given target)" if self.forced else ""))
        return buffer.getvalue()

    def to_dict(self) -> dict:
        return {"source": self.source, "translation": self.translation, "forced": self.forced, "score": self.score,
                "method": self.method, "source_tokens": self.source_tokens, "target_tokens": self.target_tokens,
                "attention": np.round(self.weights, 5).tolist()}


@torch.no_grad()
def forced_alignment(predictor, source: str, target: str) -> Alignment:
    """The decoder fed ``target`` token by token after ``<s>``: its attention and log-probability at each step."""
    from encoderkit.tasks.translate import EOS, token_texts

    model = predictor.model
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        source_ids = predictor.encode_sources([source])[0]
        target_ids = predictor.target.encode([target])[0]
        ids = torch.tensor([source_ids], device=device)
        mask = torch.ones_like(ids, dtype=torch.bool)
        state = model.decoder.start(model.encode(ids, mask), mask)
        inputs = [predictor.target.bos_id, *target_ids]
        outputs = [*target_ids, predictor.target.eos_id]
        rows, total = [], 0.0
        for given, expected in zip(inputs, outputs):
            logits, attention, state = model.decoder.step(torch.tensor([given], device=device), state, True)
            total += float(torch.log_softmax(logits.float(), dim=-1)[0, expected])
            rows.append(attention[0].float().cpu())
    finally:
        model.train(was_training)
    return Alignment(source, target, True, total, token_texts(predictor.tokenizer, source_ids),
                     [*token_texts(predictor.target.tokenizer, target_ids), EOS], torch.stack(rows).numpy())


def explain_translation(predictor, texts, method: str | None = None, target: str | None = None, *,
                        beam: int | None = None, batch_size: int = 32, **_options):
    """Alignments of the model's translations of ``texts``, or of one source with a given ``target``.

    Args:
        texts: a str (one ``Alignment`` back) or a list of str.
        method: ``attention`` (the only one; the default).
        target: a translation of the one text to align instead of the model's own (teacher forcing).
        beam: beam size of the model's translations (default: the model's).
    """
    if method not in (None, *TRANSLATION_METHODS):
        raise ConfigError(f"a translation model is explained by its decoder's cross-attention; method {method!r} "
                          f"does not apply (methods: {', '.join(TRANSLATION_METHODS)})")
    items, single = as_text_list(texts)
    if target is not None:
        if len(items) != 1:
            raise DataError(f"a target aligns one sentence pair; got {len(items)} source texts with it")
        as_text_list([target], where=["the target"])
        alignment = forced_alignment(predictor, items[0], target)
        return alignment if single else [alignment]
    found = predictor.translate(items, beam, attention=True, batch_size=batch_size)
    alignments = [Alignment(item.source, item.text, False, float(item.score), item.source_tokens, item.target_tokens,
                            item.attention) for item in found]
    return alignments[0] if single else alignments
