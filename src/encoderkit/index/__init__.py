"""Search indexes for retrieval question answering: dense (FAISS), BM25 (bm25s) and hybrid.

    index = build_index("runs/captions/model", "corpus.jsonl", "my-index")        # or a folder of .txt/.md/.html
    ids, scores, texts = load_index("my-index").search("a dog on a beach", k=5)

faiss-cpu and bm25s come with ``pip install 'encoderkit[retrieval]'``; they are imported only when
an index is built or loaded. The names below are imported on first use, so that the command line
(which mounts ``index.cli``) starts without loading torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Document": "encoderkit.index.documents",
    "iter_documents": "encoderkit.index.documents",
    "IndexEncoder": "encoderkit.index.encoders",
    "open_encoder": "encoderkit.index.encoders",
    "Index": "encoderkit.index.store",
    "add_documents": "encoderkit.index.store",
    "build_index": "encoderkit.index.store",
    "load_index": "encoderkit.index.store",
    "reciprocal_rank_fusion": "encoderkit.index.store",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'encoderkit.index' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
