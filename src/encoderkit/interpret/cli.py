"""``encoderkit explain MODEL "text" ...``: why a model said what it said (registered in ``encoderkit.cli``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from encoderkit.errors import EncoderkitError


def explain(
    model: Path = typer.Argument(..., help="Model directory (RUN/model)."),
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to explain; or --file."),
    method: Optional[str] = typer.Option(None, help="ig, grad-input, occlusion or attention "
                                                    "(default: the most faithful measured, see docs/interpretability.md)."),
    target: Optional[str] = typer.Option(None, help="The label to explain (default: the predicted one)."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Explain every text of a file (one per line, "
                                                                   "or JSONL/CSV with --text-field)."),
    text_field: str = typer.Option("text", help="Text field when --file is JSONL/CSV/Parquet."),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML page here."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the scores as JSON here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --html / --json file."),
    level: str = typer.Option("word", help="word (subword pieces summed into words) or token."),
    steps: int = typer.Option(50, min=1, help="Integration steps of ig."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing in the terminal (with --html/--json)."),
) -> None:
    """Explain predictions: each word shaded by how much it raised (green) or lowered (red) the
    probability of the explained label."""
    from rich.console import Console

    from encoderkit.cli import say
    from encoderkit.files import atomic_write_text
    from encoderkit.interpret.explainers import EXPLAINERS
    from encoderkit.interpret.render import html_page, terminal_text
    from encoderkit.model_dir import load_model

    for path, option in ((html_path, "--html"), (json_path, "--json")):
        check_output(path, option, overwrite)
    inputs, where = read_inputs(texts, file, text_field)
    loaded = load_model(model)
    explainer = EXPLAINERS.get(loaded.task)
    if explainer is None:
        raise EncoderkitError(f"explain does not support {loaded.task} models yet; tasks it explains: "
                              f"{', '.join(EXPLAINERS)}")
    from encoderkit.texts import as_text_list

    as_text_list(inputs, where=where)
    explanations = explainer(loaded, inputs, method, target, level=level, steps=steps)
    if not quiet:
        console = Console(highlight=False, soft_wrap=True)
        for number, explanation in enumerate(explanations, start=1):
            console.print(terminal_text(explanation, number if len(explanations) > 1 else None))
    if html_path is not None:
        atomic_write_text(html_path, html_page(explanations, title=f"Explanations of {model}",
                                               facts={"model": str(model), "texts": str(len(explanations))}))
        say(f"wrote {html_path}")
    if json_path is not None:
        atomic_write_text(json_path, json.dumps([e.to_dict() for e in explanations], indent=2, ensure_ascii=False))
        say(f"wrote {json_path}")


def check_output(path: Optional[Path], option: str, overwrite: bool) -> None:
    """Before any work: the folder must exist, and an existing file is only replaced when asked."""
    if path is None:
        return
    if not path.parent.is_dir():
        raise EncoderkitError(f"{option} {path}: the folder {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise EncoderkitError(f"{option} {path} already exists; pass --overwrite to replace it")


def read_inputs(texts: Optional[list[str]], file: Optional[Path], text_field: str) -> tuple[list[str], list[str]]:
    """The texts and their positions for messages (``argument 2``, ``texts.txt:7``)."""
    if texts and file:
        raise EncoderkitError("give texts as arguments or --file, not both")
    if texts:
        return list(texts), [f"argument {i + 1}" for i in range(len(texts))]
    if file:
        from encoderkit.data.readers import iter_texts_with_lines

        numbered = list(iter_texts_with_lines(file, text_field=text_field))
        if not numbered:
            raise EncoderkitError(f"{file} holds no texts")
        return [text for _, text in numbered], [f"{file}:{line}" for line, _ in numbered]
    raise EncoderkitError('nothing to explain: pass a text (encoderkit explain MODEL "text") or --file')
