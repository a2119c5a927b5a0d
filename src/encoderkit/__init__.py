"""encoderkit: text encoders from word vectors to Transformers, trained, evaluated and served."""

__version__ = "0.1.0"

from encoderkit.errors import EncoderkitError  # noqa: E402


def load(path):
    """Load a saved model directory; returns an object with ``predict(texts)`` and ``encode(texts)``."""
    from encoderkit.model_dir import load_model

    return load_model(path)


__all__ = ["EncoderkitError", "__version__", "load"]
