"""Translation metrics, computed by sacreBLEU on detokenised text so the numbers compare across papers.

- ``bleu``: corpus BLEU with sacreBLEU's defaults (13a tokenisation, cased, exponential smoothing);
  its signature (``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:...``) names the setting.
- ``bleu_lowercase``: the same on lowercased text (``case:lc``), the figure community tutorials quote.
- ``chrf``: chrF2 (character 6-grams, beta 2), kinder to morphology than BLEU.
- ``sentence_chrf``: one chrF per sentence, for finding the worst translations.

Scores are on sacreBLEU's 0-100 scale.
"""

from __future__ import annotations

from collections.abc import Sequence

PRIMARY_METRIC = "bleu"


def translation_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """BLEU (cased and lowercased), chrF, their signatures and the length ratio.

    Args:
        hypotheses: system outputs, detokenised, one per sentence.
        references: the reference translations, same order.

    Returns:
        ``{"bleu", "bleu_lowercase", "chrf", "length_ratio", "bleu_signature", "bleu_lowercase_signature",
        "chrf_signature"}``.
    """
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hypotheses, references = list(hypotheses), [list(references)]
    cased, lowercased, chrf = BLEU(), BLEU(lowercase=True), CHRF()
    bleu = cased.corpus_score(hypotheses, references)
    bleu_lc = lowercased.corpus_score(hypotheses, references)
    chrf_score = chrf.corpus_score(hypotheses, references)
    return {
        "bleu": float(bleu.score),
        "bleu_lowercase": float(bleu_lc.score),
        "chrf": float(chrf_score.score),
        "length_ratio": float(bleu.sys_len / bleu.ref_len) if bleu.ref_len else 0.0,
        "bleu_signature": str(cased.get_signature()),
        "bleu_lowercase_signature": str(lowercased.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def sentence_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """chrF of each hypothesis against its reference."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    return [float(chrf.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references)]
