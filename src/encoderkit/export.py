"""``encoderkit export MODEL --format FORMAT -o DIR``: a trained model in another toolkit's format.

One entry per format in ``EXPORTERS`` (a plain dict: add a format by adding a function); each
takes the loaded model, an empty folder and the options its format accepts (``OPTIONS``). The folder is written under a temporary name and
renamed into place, so a failed export leaves nothing, and an existing folder is only replaced
with ``overwrite``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from encoderkit.errors import ConfigError, EncoderkitError, ExportError
from encoderkit.files import replace_directory, temporary_sibling


def _sentence_transformers(loaded, directory: Path, echo=print) -> None:
    from encoderkit.interop.sentence_transformers import write_sentence_transformers

    write_sentence_transformers(loaded.model.text_encoder, directory, getattr(loaded.model, "towers", "shared"))


def _onnx(loaded, directory: Path, echo=print, quantize: str | None = None, check_texts: Path | None = None) -> None:
    from encoderkit.onnx.export import export_onnx

    export_onnx(loaded, directory, quantize=quantize, check_texts_file=check_texts, echo=echo)


#: format name -> ``(loaded model, empty folder, echo, **options) -> None``
EXPORTERS: dict[str, Callable] = {
    "sentence-transformers": _sentence_transformers,
    "onnx": _onnx,
}
#: format name -> the options (CLI: ``--quantize``, ``--check-texts``) it accepts.
OPTIONS: dict[str, tuple[str, ...]] = {
    "sentence-transformers": (),
    "onnx": ("quantize", "check_texts"),
}


def export_model(model_dir: str | Path, fmt: str, output: str | Path, overwrite: bool = False, echo=print,
                 **options) -> Path:
    """Write the model directory ``model_dir`` in format ``fmt`` into the folder ``output``.

    Args:
        options: the format's own (``OPTIONS``), e.g. ``quantize="int8"`` for onnx; None means unset.
    """
    from encoderkit.model_dir import load_model

    if fmt not in EXPORTERS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(EXPORTERS)}")
    given = {name: value for name, value in options.items() if value is not None}
    for name in given:
        if name not in OPTIONS[fmt]:
            takers = [other for other, names in OPTIONS.items() if name in names]
            raise ConfigError(f"--{name.replace('_', '-')} does not apply to --format {fmt}; it works with "
                              f"--format {' or '.join(takers)}")
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise EncoderkitError(f"{output} already exists; pass --overwrite to replace it")
    loaded = load_model(model_dir)
    if getattr(loaded, "exported", False):
        raise ExportError(f"{model_dir} is already an export; export the model directory it came from")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(output)
    tmp.mkdir()
    try:
        EXPORTERS[fmt](loaded, tmp, echo, **given)
        replace_directory(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output
