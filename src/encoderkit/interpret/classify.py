"""Explanations of a classifier's decision: which words push the probability of a label up or down.

    model = encoderkit.load("runs/cnn/model")
    model.explain("Who wrote Hamlet ?")                    # default method, the predicted label
    model.explain(texts, method="occlusion", target="HUM")

The explained score is the probability of the target label (softmax; the label's sigmoid for
multi-label models), so a word's score reads as "this word adds 0.31 to P(HUM)". The target is the
predicted label unless one is named.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from encoderkit.errors import ConfigError, DataError
from encoderkit.interpret.attention import attention_maps, gives_attention
from encoderkit.interpret.attribution import (Probe, check_options, gradient_x_input, input_embeddings,
                                              integrated_gradients, occlusion, score_id_lists, unit_scores)
from encoderkit.interpret.explanation import Explanation
from encoderkit.interpret.tokens import EncodedText, encode_units
from encoderkit.texts import as_text_list

#: Every method, in the order they are listed to users.
METHODS = ("ig", "grad-input", "occlusion", "attention")
#: The method ``explain`` uses when none is named: the most faithful one in benchmarks/interpret.py
#: (comprehensiveness minus sufficiency, averaged over the models and data sets measured there; the
#: test ``test_default_is_the_most_faithful_measured`` keeps this equal to the results file).
DEFAULT_METHOD = "occlusion"


def available_methods(predictor) -> list[str]:
    """The methods ``predictor`` can give (attention needs attention layers or the attention pooler)."""
    text_encoder = predictor.model.text_encoder
    return [method for method in METHODS if method != "attention" or gives_attention(text_encoder)]


def check_method(predictor, method: str) -> None:
    """A method the model cannot give is one line naming the ones it can."""
    methods = available_methods(predictor)
    if method in methods:
        return
    text_encoder = predictor.model.text_encoder
    if method == "attention":
        kind = predictor.config.encoder.kind
        raise ConfigError(f"a {kind} encoder with {text_encoder.pooler.kind} pooling has no attention weights; "
                          f"methods it can give: {', '.join(methods)}")
    raise ConfigError(f"unknown method {method!r}; methods this model can give: {', '.join(methods)}")


def classifier_probe(predictor) -> Probe:
    """The probability of a label as a function of token ids, and the classifier's input embeddings."""
    model = predictor.model

    def probability(ids: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = model(ids, mask)
        squashed = torch.sigmoid(logits) if predictor.multi_label else torch.softmax(logits, dim=-1)
        return squashed.gather(1, target.unsqueeze(1)).squeeze(1)

    return Probe(score=probability, embedding=input_embeddings(model.text_encoder), model=model,
                 pad_id=predictor.tokenizer.pad_id)


def target_indices(predictor, target: str | None, probabilities: np.ndarray) -> list[int]:
    """The label index explained for each text: ``target``'s, or the most probable label's."""
    if target is None:
        return [int(row.argmax()) for row in probabilities]
    if target not in predictor.labels:
        raise DataError(f"unknown target label {target!r}; the model's labels: {', '.join(predictor.labels)}")
    return [predictor.labels.index(target)] * len(probabilities)


def explain_classification(predictor, texts, method: str | None = None, target: str | None = None, *,
                           level: str = "word", steps: int = 50, batch_size: int = 32):
    """Token attributions of a classifier's decision (see ``ClassifierModel.explain``)."""
    items, single = as_text_list(texts)
    method = method or DEFAULT_METHOD
    check_method(predictor, method)
    check_options(level, steps)
    encoded = [encode_units(predictor.tokenizer, text, level) for text in items]
    probe = classifier_probe(predictor)
    probabilities = label_probabilities(predictor, [list(text.ids) for text in encoded], batch_size)
    targets = target_indices(predictor, target, probabilities)
    scores, deltas, baselines, maps = attribute(probe, predictor, encoded, targets, method, steps, batch_size)
    decisions = predictor.decide(probabilities)
    explanations = [
        Explanation(text=text.text, method=method, units=list(text.units), scores=scores[i],
                    prediction=decisions[i], target=predictor.labels[targets[i]],
                    probability=float(probabilities[i, targets[i]]), encoded=text,
                    delta=None if deltas is None else float(deltas[i]),
                    baseline_probability=None if baselines is None else float(baselines[i]),
                    attention=maps[i] if maps else None)
        for i, text in enumerate(encoded)
    ]
    return explanations[0] if single else explanations


def attribute(probe: Probe, predictor, encoded: Sequence[EncodedText], targets: list[int], method: str,
              steps: int, batch_size: int):
    """Unit scores for every text, plus what the method adds: IG's deltas and baseline scores, attention maps."""
    deltas = baselines = maps = None
    if method == "ig":
        position_scores, deltas = integrated_gradients(probe, encoded, targets, steps)
        scores = [unit_scores(text, values) for text, values in zip(encoded, position_scores)]
        baselines = score_id_lists(probe, [text.baseline(probe.pad_id) for text in encoded], targets, batch_size)
    elif method == "grad-input":
        position_scores = gradient_x_input(probe, encoded, targets, batch_size)
        scores = [unit_scores(text, values) for text, values in zip(encoded, position_scores)]
    elif method == "occlusion":
        scores = occlusion(probe, encoded, targets, batch_size)
    else:
        text_encoder = predictor.model.text_encoder
        maps = [attention_maps(text_encoder, list(text.ids), list(text.tokens)) for text in encoded]
        scores = [unit_scores(text, attention.relevance) for text, attention in zip(encoded, maps)]
    return scores, deltas, baselines, maps


def label_probabilities(predictor, id_lists: list[list[int]], batch_size: int) -> np.ndarray:
    """(N, C) probabilities of the ids explained (a long text's first window)."""
    from encoderkit.tasks.classify import probabilities
    from encoderkit.text_encoder import run_in_length_order

    logits = run_in_length_order(predictor.model, id_lists, predictor.tokenizer.pad_id, batch_size,
                                 len(predictor.labels))
    return probabilities(torch.from_numpy(logits), predictor.multi_label)
