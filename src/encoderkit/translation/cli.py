"""``encoderkit translate MODEL [TEXTS...]``: translate arguments, a file or stdin, streaming in input order.

The main CLI registers ``translate`` with ``app.command("translate")(translate)``. Output is one
translation per line on stdout (``--json``: one JSON object per line with its input line number);
messages go to stderr as plain text. ``--reference`` scores the translations with sacreBLEU.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

import typer

from encoderkit.errors import DataError, EncoderkitError


#: Suffixes of files read as records with a text field; any other file holds one text per line.
RECORD_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet", ".pq")


def numbered_inputs(texts: list[str] | None, file: Path | None, text_field: str) -> Iterator[tuple[str, str]]:
    """``(where, text)`` in input order, read lazily from a file or stdin (a blank line is an error)."""
    if texts:
        for index, text in enumerate(texts, start=1):
            yield f"argument {index}", text
    elif file is not None:
        from encoderkit.compression import without_compression_suffix
        from encoderkit.data.readers import iter_texts_with_lines, plain_text_lines

        if not file.is_file():
            raise DataError(f"input file not found: {file}")
        # test.de, test.en, notes.txt: one text per line; JSONL, CSV, TSV and Parquet: --text-field.
        records = without_compression_suffix(file).suffix.lower() in RECORD_SUFFIXES
        for line, text in iter_texts_with_lines(file, text_field=text_field) if records else plain_text_lines(file):
            yield f"{file}:{line}", text
    else:
        for line, text in enumerate(sys.stdin, start=1):
            yield f"stdin:{line}", text.rstrip("\r\n")


def chunks(items: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def translate(
    model: Path = typer.Argument(..., help="Translation model directory (RUN/model)."),
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to translate; if none, read --file or stdin."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="One text per line (or JSONL/CSV with "
                                                                   "--text-field), plain or .gz/.bz2/.xz."),
    beam: Optional[int] = typer.Option(None, "--beam", min=1, help="Beam size (1: greedy); default the model's."),
    length_penalty: Optional[float] = typer.Option(None, "--length-penalty", min=0.0,
                                                   help="GNMT length penalty alpha; default the model's."),
    batch_size: int = typer.Option(32, min=1, help="Sentences translated together (output comes per batch)."),
    text_field: str = typer.Option("text", help="Text field when --file is JSONL/CSV."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line: line, source, translation."),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r",
                                             help="Reference translations, one per input line: print BLEU and chrF."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads."),
) -> None:
    """Translate texts with a trained translation model; one output line per input line, in order."""
    import torch

    from encoderkit.cli import say
    from encoderkit.model_dir import load_model
    from encoderkit.texts import as_text_list

    if threads:
        torch.set_num_threads(threads)
    loaded = load_model(model)
    if loaded.task != "translate":
        raise EncoderkitError(f"{model} is a {loaded.task} model; encoderkit translate needs a model trained with "
                              "task: translate")
    references = _read_references(reference) if reference is not None else None
    # A person typing into a terminal gets each line back at once; files and pipes go by batches.
    size = 1 if texts is None and file is None and sys.stdin.isatty() else batch_size
    outputs: list[str] = []
    for chunk in chunks(numbered_inputs(texts, file, text_field), size):
        where = [place for place, _ in chunk]
        items, _ = as_text_list([text for _, text in chunk], where=where)

        def warn(index: int, tokens: int) -> None:
            say(f"warning: {where[index]} has {tokens} tokens but the model reads at most {loaded.max_source_tokens} "
                f"(tokenizer.max_length); only its first {loaded.max_source_tokens} tokens are translated")

        translations = loaded.translate(items, beam, length_penalty=length_penalty, batch_size=batch_size,
                                        on_truncate=warn)
        for place, source, translation in zip(where, items, translations):
            if as_json:
                line = place.rsplit(":", 1)[-1] if ":" in place else place.split()[-1]
                record = {"line": int(line), "source": source, "translation": translation}
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(translation + "\n")
        sys.stdout.flush()
        outputs.extend(translations)
    if not outputs:
        raise EncoderkitError("no texts to translate: pass texts as arguments, --file, or lines on stdin")
    if references is not None:
        _score(outputs, references, reference, say)


def _read_references(path: Path) -> list[str]:
    from encoderkit.data.readers import decoded_lines

    if not path.is_file():
        raise DataError(f"reference file not found: {path}")
    return [line.rstrip("\r\n") for _, line in decoded_lines(path)]


def _score(outputs: list[str], references: list[str], path: Path, say) -> None:
    from encoderkit.metrics.translation import translation_metrics

    if len(references) != len(outputs):
        raise DataError(f"{path} has {len(references)} lines but {len(outputs)} texts were translated; the reference "
                        "file needs one line per input line")
    metrics = translation_metrics(outputs, references)
    say(f"BLEU {metrics['bleu']:.2f} ({metrics['bleu_signature']})")
    say(f"BLEU lowercased {metrics['bleu_lowercase']:.2f} ({metrics['bleu_lowercase_signature']})")
    say(f"chrF {metrics['chrf']:.2f} ({metrics['chrf_signature']})")
