"""The bi-encoder's towers and the exact top-k search."""

import numpy as np
import torch

from encoderkit.config import validate_config
from encoderkit.heads.retrieval import BiEncoder, top_k
from encoderkit.text_encoder import build_text_encoder
from encoderkit.tokenization import make_tokenizer

TEXTS = ["a dog runs", "two men play guitar", "a child eats ice cream", "the dog sleeps"]


def text_encoder():
    config = validate_config({"task": "retrieve", "tokenizer": {"kind": "word"}, "embedding": {"dim": 16},
                              "encoder": {"kind": "bow"}, "pooling": "mean"})
    return build_text_encoder(config, make_tokenizer(config, TEXTS))


def encode(model, documents=False):
    from encoderkit.data.batching import pad_batch

    ids, mask = pad_batch(model.text_encoder.tokenizer.encode_batch(TEXTS), model.text_encoder.tokenizer.pad_id)
    model.eval()
    return (model.encode_documents if documents else model.encode_queries)(ids, mask)


def test_shared_towers_are_one_module_and_normalise():
    torch.manual_seed(0)
    model = BiEncoder(text_encoder(), "shared", normalize=True)
    assert model.document_tower is model.text_encoder
    vectors = encode(model)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-6)
    assert torch.equal(vectors, encode(model, documents=True))
    assert not any(name.startswith("document_encoder") for name, _ in model.named_parameters())


def test_separate_towers_start_equal_and_share_the_tokenizer():
    torch.manual_seed(0)
    model = BiEncoder(text_encoder(), "separate", normalize=False)
    assert model.document_tower is not model.text_encoder
    assert model.document_tower.tokenizer is model.text_encoder.tokenizer
    assert torch.allclose(encode(model), encode(model, documents=True))
    with torch.no_grad():
        next(model.document_encoder.parameters()).add_(1.0)
    assert not torch.allclose(encode(model), encode(model, documents=True))


def test_top_k_equals_a_full_sort():
    rng = np.random.default_rng(0)
    queries, documents = rng.normal(size=(37, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    ids, scores = top_k(queries, documents, 5, chunk_size=10)
    full = queries @ documents.T
    assert np.array_equal(ids, np.argsort(-full, axis=1)[:, :5])
    assert np.allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :5])
    everything, _ = top_k(queries[:2], documents[:3], 10)
    assert everything.shape == (2, 3)  # k is capped at the corpus size
