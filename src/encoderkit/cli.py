"""The ``encoderkit`` command line (Typer).

User mistakes (missing files, bad config keys, unknown labels, ...) end with a one-line
``error: ...`` and exit code 2; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from encoderkit.errors import EncoderkitError
from encoderkit.interop.cli import app as convert_app
from encoderkit.wordvec.cli import app as wordvec_app

app = typer.Typer(
    name="encoderkit",
    help="Train, evaluate and use text encoders: word vectors, RNN/LSTM/GRU, CNN, Transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console(stderr=True)
EXIT_USER_ERROR = 2


@app.callback()
def root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors.")) -> None:
    """encoderkit: from zero to working text encoders.

    Start with [bold]encoderkit quickstart[/bold], then [bold]encoderkit train configs/cnn.yaml[/bold].
    """


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "micro_f1", "weighted_f1"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    return table


def _per_class_table(metrics: dict) -> Table:
    table = Table(title="per class")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, values in metrics.get("per_class", {}).items():
        table.add_row(label, f"{values['precision']:.3f}", f"{values['recall']:.3f}", f"{values['f1']:.3f}",
                      str(values["support"]))
    return table


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML run config (see configs/)."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Overrides like train.epochs=5 encoder.hidden_size=256."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in its output_dir."),
) -> None:
    """Train a classifier from a config; writes a report and a model directory into output_dir."""
    from encoderkit.config import load_config
    from encoderkit.tasks.classify import train as train_classifier

    run_config = load_config(config, overrides or [])
    result = train_classifier(run_config, resume=resume, echo=console.print)
    if result.test_metrics:
        console.print(_metrics_table("test", result.test_metrics))
    console.print(f"model saved to [bold]{result.model_dir}[/bold]; report: {result.run_dir / 'report.md'}")


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model directory (RUN/model)."),
    data: Path = typer.Argument(..., help="Labelled data file (JSONL, CSV, TSV, Parquet, fastText; text formats may be .gz/.bz2/.xz)."),
    text_field: Optional[str] = typer.Option(None, help="Text field (default: the one used in training)."),
    label_field: Optional[str] = typer.Option(None, help="Label field (default: the one used in training)."),
    data_format: str = typer.Option("auto", "--format", help="auto, jsonl, csv, tsv, parquet or fasttext."),
    report: Optional[Path] = typer.Option(None, help="Write report.md and plots into this folder."),
    output_json: Optional[Path] = typer.Option(None, "--json", help="Write all metrics as JSON here."),
) -> None:
    """Evaluate a saved model on labelled data: accuracy, P/R/F1, confusion matrix."""
    from encoderkit.data.readers import read_examples
    from encoderkit.metrics.classification import classification_metrics
    from encoderkit.model_dir import load_model
    from encoderkit.report import write_report
    from encoderkit.tasks.classify import check_known_labels

    loaded = load_model(model)
    fields = loaded.config.data
    examples = read_examples(data, fmt=data_format, text_field=text_field or fields.text_field,
                             label_field=label_field or fields.label_field, multi_label=loaded.multi_label,
                             label_separator=fields.label_separator)
    check_known_labels(examples, loaded.labels, str(data))
    probabilities = loaded.predict_proba([example.text for example in examples])
    index = {label: i for i, label in enumerate(loaded.labels)}
    if loaded.multi_label:
        import numpy as np

        gold = np.zeros((len(examples), len(loaded.labels)), dtype=int)
        for row, example in enumerate(examples):
            gold[row, [index[label] for label in example.labels]] = 1
        predicted = (probabilities >= loaded.threshold).astype(int)
    else:
        gold = [index[example.label] for example in examples]
        predicted = probabilities.argmax(axis=1)
    metrics = classification_metrics(gold, predicted, loaded.labels)
    console.print(_metrics_table(f"{data} ({len(examples)} examples)", metrics))
    console.print(_per_class_table(metrics))
    if output_json:
        output_json.write_text(json.dumps(metrics, indent=2))
    if report:
        report.mkdir(parents=True, exist_ok=True)
        path = write_report(report, title=f"Evaluation of {model} on {data}", metrics=metrics,
                            labels=loaded.labels, history=[], metric="macro_f1",
                            facts={"model": str(model), "data": f"{data} ({len(examples)} examples)"})
        console.print(f"report: {path}")


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model directory (RUN/model)."),
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to classify; if none, read --file or stdin."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="A text file (one text per line) or JSONL/CSV, plain or .gz/.bz2/.xz."),
    text_field: str = typer.Option("text", help="Text field when --file is JSONL/CSV/Parquet."),
    batch_size: int = typer.Option(64, min=1, help="Texts per batch."),
) -> None:
    """Classify texts; prints one JSON line per text with its label and probabilities."""
    from encoderkit.data.readers import read_texts
    from encoderkit.model_dir import load_model

    loaded = load_model(model)
    if texts:
        inputs = list(texts)
    elif file:
        inputs = list(read_texts(file, text_field=text_field))
    else:
        inputs = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not inputs:
        raise EncoderkitError("no texts to classify: pass texts as arguments, --file, or lines on stdin")
    if any(not text.strip() for text in inputs):
        raise EncoderkitError("an input text is empty; remove empty texts")
    probabilities = loaded.predict_proba(inputs, batch_size=batch_size)
    for text, row, label in zip(inputs, probabilities, loaded.decide(probabilities)):
        record = {"text": text, "label": label,
                  "probabilities": {name: round(float(p), 6) for name, p in zip(loaded.labels, row)}}
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


@app.command()
def embed(
    model: Path = typer.Argument(..., help="encoderkit model directory, or a local Hugging Face / "
                                           "sentence-transformers checkpoint folder (never downloaded)."),
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Text file (one per line), JSONL, CSV or TSV, plain or .gz/.bz2/.xz."),
    output: Path = typer.Option(..., "--output", "-o", help="OUT.npy (N x H float32) or OUT.parquet (id, embedding)."),
    text_field: str = typer.Option("text", help="Text field of JSONL/CSV/TSV input."),
    id_field: Optional[str] = typer.Option(None, help="Id field for Parquet output (default: 'id' if present, "
                                                      "else the row number)."),
    input_format: str = typer.Option("auto", "--format", help="auto, text, jsonl, csv or tsv."),
    batch_size: int = typer.Option(32, min=1, help="Texts per forward pass."),
    pooling: Optional[str] = typer.Option(None, help="Checkpoints only: mean, cls, max or last "
                                                     "(default: what the folder declares, else mean)."),
    normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize",
                                             help="Checkpoints only: L2-normalise (default: as declared)."),
    max_length: Optional[int] = typer.Option(None, min=2, help="Checkpoints only: truncation in tokens."),
    precision: str = typer.Option("float32", help="float32, int8 (dynamic quantization) or bf16."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads."),
) -> None:
    """Embed every text of a file, streaming, into .npy or Parquet; prints speed (and, for int8/bf16,
    the speed-up and cosine agreement with float32 measured on the first texts)."""
    import itertools

    import torch

    from encoderkit.embed import embed_file, load_embedder, read_records
    from encoderkit.quantize import PRECISIONS, compare_precision

    if precision not in PRECISIONS:
        raise EncoderkitError(f"unknown precision {precision!r}; valid choices: {', '.join(PRECISIONS)}")
    if threads:
        torch.set_num_threads(threads)
    embedder = load_embedder(model, pooling=pooling, normalize=normalize, max_length=max_length)
    if precision != "float32":
        reduced = embedder.with_precision(precision)
        sample = [text for _, text in itertools.islice(
            read_records(input_path, input_format, text_field, id_field), 256)]
        report = compare_precision(lambda t: embedder.encode(t, batch_size), lambda t: reduced.encode(t, batch_size),
                                   sample, precision, repeats=1)
        console.print(f"{report.line()} (on the first {report.texts} texts)")
        embedder = reduced
    result = embed_file(embedder, input_path, output, fmt=input_format, text_field=text_field, id_field=id_field,
                        batch_size=batch_size)
    console.print(f"embedded {result.rows} texts into {result.output} ({result.rows} x {result.dim}), "
                  f"{result.seconds:.1f} s, {result.texts_per_second:.0f} texts/s")


@app.command()
def quickstart(
    data: Optional[Path] = typer.Option(None, help="Use a local folder with train.jsonl/test.jsonl instead of "
                                                   "downloading TREC."),
    output_dir: Path = typer.Option(Path("runs/quickstart"), help="Where the run and model go."),
    epochs: int = typer.Option(10, min=1, help="Training epochs (early stopping may end sooner)."),
) -> None:
    """Download TREC (once, checksummed), train a CNN classifier on CPU, print metrics and predictions."""
    from encoderkit.config import RunConfig, validate_config
    from encoderkit.data.corpora import fetch_corpus
    from encoderkit.model_dir import load_model
    from encoderkit.tasks.classify import train as train_classifier

    folder = data or fetch_corpus("trec", echo=console.print)
    for split in ("train.jsonl", "test.jsonl"):
        if not (folder / split).is_file():
            raise EncoderkitError(f"{folder} has no {split}; --data needs train.jsonl and test.jsonl")
    raw = quickstart_config(folder, output_dir, epochs)
    config: RunConfig = validate_config(raw)
    console.print(f"[bold]quickstart[/bold]: {config.encoder.kind} encoder on {folder}")
    result = train_classifier(config, echo=console.print)
    console.print(_metrics_table("test", result.test_metrics))
    model = load_model(result.model_dir)
    examples = ["What is the capital of Mongolia ?", "Who wrote the Odyssey ?",
                "How many moons does Jupiter have ?", "What does NASA stand for ?"]
    table = Table(title="predictions from the saved model")
    table.add_column("text")
    table.add_column("label")
    table.add_column("p", justify="right")
    for text, row, label in zip(examples, model.predict_proba(examples), model.predict(examples)):
        table.add_row(text, label, f"{row.max():.3f}")
    console.print(table)
    console.print(f"model: [bold]{result.model_dir}[/bold]  report: {result.run_dir / 'report.md'}\n"
                  f"try: encoderkit predict {result.model_dir} \"Where is the Eiffel Tower ?\"")


def quickstart_config(folder: Path, output_dir: Path, epochs: int) -> dict:
    """The quickstart's run: the settings of configs/cnn.yaml (a test keeps them equal) on the corpus."""
    return {
        "output_dir": str(output_dir),
        "data": {"train": str(folder / "train.jsonl"), "test": str(folder / "test.jsonl")},
        "tokenizer": {"kind": "word"},
        "embedding": {"dim": 300, "dropout": 0.2},
        "encoder": {"kind": "cnn", "kernel_sizes": [1, 2, 3, 4], "num_filters": 128},
        "pooling": "max",
        "head": {"dropout": 0.5},
        "loss": {"label_smoothing": 0.2},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 2e-3, "patience": 5, "num_threads": 2},
    }


app.add_typer(wordvec_app, name="wordvec", help="Train, load, evaluate and explore word vectors.")
app.add_typer(convert_app, name="convert", help="Convert models from other toolkits (Keras).")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        app(args=args, prog_name="encoderkit", standalone_mode=True)
    except EncoderkitError as error:
        if debug:
            raise
        console.print(f"[bold red]error:[/bold red] {error}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        console.print("interrupted; a training run continues from its last checkpoint with --resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
