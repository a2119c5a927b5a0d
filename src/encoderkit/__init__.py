"""encoderkit: text encoders from word vectors to Transformers, trained, evaluated and served."""

__version__ = "0.2.0"

from encoderkit.errors import EncoderkitError  # noqa: E402


def load(path):
    """Load a saved model directory and return its task's predictor.

    Classification: ``predict(texts)``, ``predict_proba(texts)``, ``encode(texts)``; retrieval:
    ``encode_queries``, ``encode_documents``, ``search(queries, documents, k)``. A single ``str``
    gives a single result. A folder written by ``encoderkit export --format onnx`` loads as a
    predictor with the same methods that runs on onnxruntime (and imports no torch).
    """
    from encoderkit.model_dir import load_model

    return load_model(path)


def load_index(path, model=None):
    """Open a search index (``encoderkit index build``): ``search(texts, k) -> Hits(ids, scores, texts)``.

    ``model`` embeds the queries (default: the model the index was built with; another is refused).
    Needs ``pip install 'encoderkit[retrieval]'``.
    """
    from encoderkit.index import load_index as load

    return load(path, model=model)


__all__ = ["EncoderkitError", "__version__", "load", "load_index"]
