"""The record an explanation method returns, and the shape every renderer reads.

Renderers (terminal, HTML) read three things of a record: ``facts()`` (a header of name -> value),
``segments()`` (texts with a score per unit) and ``attention`` maps. A classification explanation
has one segment; a similarity explanation (retrieval) would have two, the query's and the
document's; a translation alignment would have none and one heatmap. Each renders unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from encoderkit.interpret.attention import AttentionMaps
from encoderkit.interpret.tokens import EncodedText


@dataclass
class Segment:
    """A text shown with one score per unit."""

    name: str
    units: list[str]
    scores: np.ndarray
    #: The text before each unit (original spacing); None: one space between units.
    separators: list[str] | None = None

    def spaced(self) -> list[tuple[str, str, float]]:
        """``(separator, unit, score)`` for each unit, to lay the text out as written."""
        separators = self.separators or ["" if i == 0 else " " for i in range(len(self.units))]
        return list(zip(separators, self.units, (float(score) for score in self.scores)))


@dataclass
class Explanation:
    """Why a classifier gave its probability to ``target`` for ``text``.

    Attributes:
        text: the text explained.
        method: ``ig``, ``grad-input``, ``occlusion`` or ``attention``.
        units: the words (or tokens, with ``level="token"``) in order; special tokens are not units.
        scores: one score per unit: its contribution to ``probability`` (ig, grad-input), the drop of
            ``probability`` when the unit is deleted (occlusion), or its share of the pooled sentence
            vector (attention, non-negative, summing to 1 with the special tokens).
        prediction: the model's decision for the text (a label, or a list of labels for multi-label).
        target: the label explained.
        probability: the model's probability of ``target`` for the text.
        encoded: token ids and which of them form each unit.
        delta: integrated gradients only: ``sum(scores) - (probability - baseline_probability)``, the
            convergence error (0 for exact integration).
        baseline_probability: integrated gradients only: the probability for the baseline (every unit padding).
        attention: attention only: the weights of every layer and head, the rollout, the pooling weights.
    """

    text: str
    method: str
    units: list[str]
    scores: np.ndarray
    prediction: object
    target: str
    probability: float
    encoded: EncodedText = field(repr=False)
    delta: float | None = None
    baseline_probability: float | None = None
    attention: AttentionMaps | None = field(default=None, repr=False)

    @property
    def truncated(self) -> bool:
        """The text was longer than the model reads; its first window was explained."""
        return self.encoded.truncated

    def facts(self) -> dict[str, str]:
        prediction = ", ".join(self.prediction) if isinstance(self.prediction, list) else str(self.prediction)
        facts = {"prediction": prediction, "explained": f"P({self.target}) = {self.probability:.3f}",
                 "method": self.method}
        if self.delta is not None:
            facts["integrated gradients"] = (f"scores sum to {float(np.sum(self.scores)):+.4f} = "
                                             f"P - P(baseline) {self.probability - self.baseline_probability:+.4f}"
                                             f" (delta {self.delta:+.1e})")
        if self.truncated:
            facts["note"] = "the text is longer than the model reads; its first window is explained"
        return facts

    def segments(self) -> list[Segment]:
        return [Segment("text", self.units, self.scores, self.encoded.separators())]

    def to_dict(self) -> dict:
        """JSON-ready: text, method, target, probability, units with scores (and IG's delta)."""
        record = {"text": self.text, "method": self.method, "prediction": self.prediction, "target": self.target,
                  "probability": self.probability, "truncated": self.truncated,
                  "units": [{"text": unit, "score": float(score)} for unit, score in zip(self.units, self.scores)]}
        if self.delta is not None:
            record.update(delta=self.delta, baseline_probability=self.baseline_probability)
        return record
