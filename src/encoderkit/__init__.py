"""encoderkit: text encoders from word vectors to Transformers, trained, evaluated and served."""

__version__ = "0.2.0"

from encoderkit.errors import EncoderkitError  # noqa: E402


def load(path):
    """Load a saved model directory and return its task's predictor.

    Classification: ``predict(texts)``, ``predict_proba(texts)``, ``encode(texts)``; a single ``str``
    gives a single result.
    """
    from encoderkit.model_dir import load_model

    return load_model(path)


__all__ = ["EncoderkitError", "__version__", "load"]
