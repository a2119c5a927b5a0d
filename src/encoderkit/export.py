"""``encoderkit export MODEL --format FORMAT -o DIR``: a trained model in another toolkit's format.

One entry per format in ``EXPORTERS`` (a plain dict: add a format by adding a function); each
takes the loaded model and an empty folder. The folder is written under a temporary name and
renamed into place, so a failed export leaves nothing, and an existing folder is only replaced
with ``overwrite``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from encoderkit.errors import ConfigError, EncoderkitError
from encoderkit.files import replace_directory, temporary_sibling


def _sentence_transformers(loaded, directory: Path) -> None:
    from encoderkit.interop.sentence_transformers import write_sentence_transformers

    write_sentence_transformers(loaded.model.text_encoder, directory, getattr(loaded.model, "towers", "shared"))


#: format name -> ``(loaded model, empty folder) -> None``
EXPORTERS: dict[str, Callable] = {
    "sentence-transformers": _sentence_transformers,
}


def export_model(model_dir: str | Path, fmt: str, output: str | Path, overwrite: bool = False) -> Path:
    """Write the model directory ``model_dir`` in format ``fmt`` into the folder ``output``."""
    from encoderkit.model_dir import load_model

    if fmt not in EXPORTERS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(EXPORTERS)}")
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise EncoderkitError(f"{output} already exists; pass --overwrite to replace it")
    loaded = load_model(model_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(output)
    tmp.mkdir()
    try:
        EXPORTERS[fmt](loaded, tmp)
        replace_directory(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output
