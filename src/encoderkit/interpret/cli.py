"""``encoderkit explain MODEL "text" ...``: why a model said what it said (registered in ``encoderkit.cli``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from encoderkit.errors import EncoderkitError


def explain(
    model: Path = typer.Argument(..., help="Model directory (RUN/model), or an index (with --query)."),
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to explain; or --file."),
    method: Optional[str] = typer.Option(None, help="ig, grad-input, occlusion or attention (default: the most "
                                                    "faithful measured, see docs/interpretability.md); retrieval: ig "
                                                    "(default), grad-input, occlusion, decomposition; translation: "
                                                    "attention."),
    target: Optional[str] = typer.Option(None, help="The label to explain (default: the predicted one); for a "
                                                    "translation model, a translation of the one text to align."),
    query: Optional[str] = typer.Option(None, "--query", help="Retrieval: the query of the pair to explain."),
    document: Optional[str] = typer.Option(None, "--document", help="Retrieval: the document of the pair "
                                                                    "(default with an index: its best match)."),
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
    probability of the explained label; for a retrieval model or index (--query, --document), each
    word's share of the pair's score on both sides; for a translation model, its cross-attention."""
    from rich.console import Console

    from encoderkit.cli import say
    from encoderkit.files import atomic_write_text
    from encoderkit.interpret.explainers import EXPLAINERS
    from encoderkit.interpret.render import html_page, terminal_text
    from encoderkit.model_dir import load_model

    for path, option in ((html_path, "--html"), (json_path, "--json")):
        check_output(path, option, overwrite)
    if query is not None or document is not None or is_index(model):
        explanations = [explain_pair(model, query, document, texts, file, method, level, steps)]
    else:
        inputs, where = read_inputs(texts, file, text_field)
        loaded = load_model(model)
        if loaded.task == "retrieve":
            raise EncoderkitError(f"{model} is a retrieval model: it explains a pair, "
                                  f'encoderkit explain {model} --query "..." --document "..."')
        explainer = EXPLAINERS.get(loaded.task)
        if explainer is None:
            raise EncoderkitError(f"explain does not support {loaded.task} models yet; tasks it explains: "
                                  f"{', '.join([*EXPLAINERS, 'retrieve'])}")
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


def is_index(path: Path) -> bool:
    from encoderkit.index.store import MANIFEST

    return (path / MANIFEST).is_file()


def explain_pair(path: Path, query: Optional[str], document: Optional[str], texts, file, method, level, steps):
    """A query-document pair of a retrieval model or an index (whose best match is the default document)."""
    from encoderkit.cli import say
    from encoderkit.interpret.retrieval import explain_similarity, towers_of
    from encoderkit.model_dir import load_model

    if texts or file:
        raise EncoderkitError("a retrieval pair is given by --query and --document, not by texts or --file")
    if query is None:
        raise EncoderkitError(f'pass the query of the pair: encoderkit explain {path} --query "..." --document "..."')
    if is_index(path):
        from encoderkit.index import load_index

        source = load_index(path)
        towers_of(source)  # a BM25-only index has nothing to explain: one line before any search
        if document is None:
            hits = source.search(query, k=1, mode="dense")
            document = hits.texts[0]
            say(f"explaining the best match of the query: document {hits.ids[0]} (score {float(hits.scores[0]):.4f})")
    else:
        source = load_model(path)
        if source.task != "retrieve":
            raise EncoderkitError(f"--query and --document explain a retrieval model or an index; {path} is a "
                                  f"{source.task} model")
        if document is None:
            raise EncoderkitError('pass the document of the pair: --document "..." (or give an index, whose best '
                                  "match is explained)")
    return explain_similarity(source, query, document, method, level=level, steps=steps)


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
