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
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from encoderkit.compare.cli import compare
from encoderkit.errors import EncoderkitError
from encoderkit.index.cli import app as index_app
from encoderkit.index.cli import ask as ask_command
from encoderkit.interop.cli import app as convert_app
from encoderkit.interpret.cli import explain
from encoderkit.translation.cli import translate as translate_command
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
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "micro_f1", "weighted_f1",
                "ndcg@10", "mrr@10", "map@10", "recall@1", "recall@10", "recall@100",
                "bleu", "bleu_lowercase", "chrf"):
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


def say(message: str, style: str | None = None) -> None:
    """Print a line to stderr as plain text: paths and user text may hold [brackets] Rich would eat."""
    console.print(Text(str(message), style=style or ""), highlight=False, soft_wrap=True)


#: Set once a command has printed its own message for Ctrl-C, so ``main`` does not add another.
_interrupt_reported = False


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML run config (see configs/)."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Overrides like train.epochs=5 encoder.hidden_size=256."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in its output_dir."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in output_dir."),
) -> None:
    """Train a model from a config (the task is the config's `task:`); writes a report and a model
    directory into output_dir."""
    from encoderkit.config import load_config

    _run_and_show(load_config(config, overrides or []), ["encoderkit train", str(config), *(overrides or [])],
                  resume=resume, overwrite=overwrite)


def _run_and_show(run_config, command: list[str], *, resume: bool, overwrite: bool) -> None:
    """Run the training, print the test metrics and where the model went; on Ctrl-C, how to resume."""
    global _interrupt_reported
    from encoderkit.distributed import is_main_process
    from encoderkit.tasks.runner import run

    try:
        result = run(run_config, resume=resume, overwrite=overwrite, echo=say)
    except KeyboardInterrupt:
        line = " ".join([*command, "--resume"])
        say(f"interrupted; the run in {run_config.output_dir} continues from its last checkpoint with: {line}")
        _interrupt_reported = True
        raise
    if not is_main_process():  # several processes (torchrun): one of them reports
        return
    if result.test_metrics:
        console.print(_metrics_table("test", result.test_metrics))
    say(f"model saved to {result.model_dir}; report: {result.run_dir / 'report.md'}")


@app.command()
def distill(
    teacher: Path = typer.Argument(..., help="The teacher: a classification model directory (RUN/model)."),
    config: Path = typer.Argument(..., help="The student's run config: any classification config (see configs/)."),
    overrides: Optional[list[str]] = typer.Argument(None, help="Overrides like distill.alpha=0.5 "
                                                               "distill.augment.n_iter=20 train.epochs=5."),
    unlabelled: Optional[Path] = typer.Option(None, "--unlabelled", help="Texts without labels for the transfer set: "
                                              "one per line, or JSONL/CSV/TSV/Parquet (data.text_field)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in its output_dir."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in output_dir."),
) -> None:
    """Train the config's classifier (the student) on the teacher's soft predictions over the training
    texts, --unlabelled texts and augmented texts (distill.augment); see docs/distillation.md."""
    from encoderkit.config import apply_overrides, read_yaml, validate_config

    raw = apply_overrides(read_yaml(config), list(overrides or []))
    if raw.get("distill") is not None and not isinstance(raw["distill"], dict):
        raise EncoderkitError(f"{config}: distill must be a section (a mapping of its settings)")
    section = raw["distill"] = dict(raw.get("distill") or {})
    section["teacher"] = str(teacher)
    if unlabelled is not None:
        section["unlabelled"] = str(unlabelled)
    command = ["encoderkit distill", str(teacher), str(config), *(overrides or [])]
    if unlabelled is not None:
        command += ["--unlabelled", str(unlabelled)]
    _run_and_show(validate_config(raw), command, resume=resume, overwrite=overwrite)


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model directory (RUN/model)."),
    data: Path = typer.Argument(..., help="Labelled data file (JSONL, CSV, TSV, Parquet, fastText; text formats may be "
                                          ".gz/.bz2/.xz); retrieval: a pair file or a BEIR folder."),
    text_field: Optional[str] = typer.Option(None, help="Text field (default: the one used in training; "
                                                        "retrieval: the query field)."),
    label_field: Optional[str] = typer.Option(None, help="Label field (default: the one used in training; "
                                                         "retrieval: the positive field)."),
    data_format: str = typer.Option("auto", "--format", help="auto, jsonl, csv, tsv, parquet or fasttext."),
    report: Optional[Path] = typer.Option(None, help="Write report.md and plots into this folder."),
    output_json: Optional[Path] = typer.Option(None, "--json", help="Write all metrics as JSON here."),
) -> None:
    """Evaluate a saved model on labelled data: accuracy, P/R/F1, confusion matrix; for a retrieval
    model, pairs or a BEIR folder: nDCG/MRR/recall@k, the worst queries."""
    from encoderkit.data.readers import read_examples
    from encoderkit.model_dir import load_model
    from encoderkit.report import write_report

    loaded = load_model(model)
    if getattr(loaded, "exported", False):
        raise EncoderkitError(f"{model} is an ONNX export, which predicts and embeds; evaluate the model directory "
                              "it was exported from")
    _check_output_folder(output_json, "--json")
    if loaded.task == "retrieve":  # --text-field / --label-field name the query and positive fields
        from encoderkit.index.cli import evaluate_retrieval

        evaluate_retrieval(model, data, loaded, query_field=text_field, positive_field=label_field,
                           data_format=data_format, report=report, output_json=output_json)
        return
    _classifier(loaded, model, "evaluate")
    section = loaded.config.classify
    examples = read_examples(data, fmt=data_format, text_field=text_field or loaded.config.data.text_field,
                             label_field=label_field or section.label_field, multi_label=loaded.multi_label,
                             label_separator=section.label_separator)
    metrics = loaded.evaluate(examples, source=str(data))
    console.print(_metrics_table(f"{escape(str(data))} ({len(examples)} examples)", metrics))
    console.print(_per_class_table(metrics))
    if output_json:
        from encoderkit.files import atomic_write_text

        atomic_write_text(output_json, json.dumps(metrics, indent=2))
    if report:
        report.mkdir(parents=True, exist_ok=True)
        path = write_report(report, title=f"Evaluation of {model} on {data}", metrics=metrics,
                            labels=loaded.labels, history=[], metric="macro_f1",
                            facts={"model": str(model), "data": f"{data} ({len(examples)} examples)"})
        say(f"report: {path}")


def _classifier(loaded, model: Path, command: str):
    """``loaded`` if it is a classifier; another task's model is one line naming what to use instead."""
    hints = {
        "translate": f"; use encoderkit translate {model} (--reference REF scores it)",
        "retrieve": f"; for retrieval use 'encoderkit index build {model} CORPUS -o INDEX' then "
                    "'encoderkit ask INDEX \"question\"'",
    }
    if loaded.task != "classify":
        raise EncoderkitError(f"{model} is a {loaded.task} model; encoderkit {command} takes classifiers"
                              f"{hints.get(loaded.task, '')}")
    return loaded


def _check_output_folder(path: Optional[Path], option: str) -> None:
    """Fail before the work, not after it, when an output file cannot be written where asked."""
    if path is not None and not path.parent.is_dir():
        raise EncoderkitError(f"{option} {path}: the folder {path.parent} does not exist; create it first")


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model directory (RUN/model)."),
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to classify; if none, read --file or stdin."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="A text file (one text per line) or JSONL/CSV, plain or .gz/.bz2/.xz."),
    text_field: str = typer.Option("text", help="Text field when --file is JSONL/CSV/Parquet."),
    batch_size: int = typer.Option(64, min=1, help="Texts per batch."),
) -> None:
    """Classify texts; prints one JSON line per text with its label and probabilities (and, for
    --file and stdin, the input line number)."""
    from encoderkit.model_dir import load_model
    from encoderkit.texts import as_text_list

    loaded = _classifier(load_model(model), model, "predict")
    if texts:
        inputs, lines = list(texts), None
        as_text_list(inputs, where=[f"argument {i + 1}" for i in range(len(inputs))])
    elif file:
        from encoderkit.data.readers import iter_texts_with_lines

        numbered = list(iter_texts_with_lines(file, text_field=text_field))
        inputs, lines = [text for _, text in numbered], [line for line, _ in numbered]
    else:
        numbered = [(number, line.rstrip("\r\n")) for number, line in enumerate(sys.stdin, start=1)]
        inputs, lines = [text for _, text in numbered], [number for number, _ in numbered]
        as_text_list(inputs, where=[f"stdin:{number}" for number in lines])
    if not inputs:
        raise EncoderkitError("no texts to classify: pass texts as arguments, --file, or lines on stdin")
    probabilities = loaded.predict_proba(inputs, batch_size=batch_size)
    for index, (text, row, label) in enumerate(zip(inputs, probabilities, loaded.decide(probabilities))):
        record = {"line": lines[index]} if lines is not None else {}
        record.update(text=text, label=label,
                      probabilities={name: round(float(p), 6) for name, p in zip(loaded.labels, row)})
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

    from encoderkit.distributed import init_from_environment, share_work
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
        if _is_main_process():
            say(f"{report.line()} (on the first {report.texts} texts)")
        embedder = reduced
    # Under torchrun every process embeds every N-th batch; the first one reads and writes the files.
    init_from_environment(cpu=True)
    result = share_work(embedder, lambda shared: embed_file(shared, input_path, output, fmt=input_format,
                                                            text_field=text_field, id_field=id_field,
                                                            batch_size=batch_size))
    if result is None:
        return
    say(f"embedded {result.rows} texts into {result.output} ({result.rows} x {result.dim}), "
        f"{result.seconds:.1f} s, {result.texts_per_second:.0f} texts/s")


@app.command()
def quickstart(
    data: Optional[Path] = typer.Option(None, help="Use a local folder with train.jsonl/test.jsonl instead of "
                                                   "downloading TREC."),
    output_dir: Path = typer.Option(Path("runs/quickstart"), help="Where the run and model go."),
    epochs: int = typer.Option(10, min=1, help="Training epochs (early stopping may end sooner)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier quickstart run in --output-dir."),
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
    say(f"quickstart: {config.encoder.kind} encoder on {folder}", style="bold")
    result = train_classifier(config, overwrite=overwrite, echo=say)
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
    say(f"model: {result.model_dir}  report: {result.run_dir / 'report.md'}\n"
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
        "classify": {"head": {"dropout": 0.5}, "loss": {"label_smoothing": 0.2}},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 2e-3, "patience": 5, "num_threads": 2},
    }


@app.command()
def export(
    model: Path = typer.Argument(..., help="Model directory (RUN/model)."),
    fmt: str = typer.Option(..., "--format", help="onnx (classification and retrieval models of every encoder "
                                                  "family, checked against PyTorch on real texts) or "
                                                  "sentence-transformers (a bi-encoder or text encoder fine-tuned "
                                                  "from a pretrained checkpoint)."),
    output: Path = typer.Option(..., "--output", "-o", help="The folder to write."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="onnx only: int8 (weights int8, activations "
                                                                    "quantized per batch; see docs/export.md)."),
    check_texts: Optional[Path] = typer.Option(None, "--check-texts", help="onnx only: texts for the parity check "
                                                                           "(one per line, or JSONL/CSV with a "
                                                                           "text field); default: a sample of the "
                                                                           "model's own data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder at --output."),
) -> None:
    """Write a trained model in another toolkit's format."""
    from encoderkit.export import export_model

    written = export_model(model, fmt, output, overwrite=overwrite, echo=say, quantize=quantize,
                           check_texts=check_texts)
    say(f"exported {model} as {fmt}{f' ({quantize})' if quantize else ''} to {written}")


app.command()(explain)
app.command()(compare)
app.command("translate")(translate_command)
app.add_typer(wordvec_app, name="wordvec", help="Train, load, evaluate and explore word vectors.")
app.add_typer(convert_app, name="convert", help="Convert models from other toolkits (Keras).")
app.add_typer(index_app, name="index", help="Build and extend search indexes (dense FAISS, BM25, hybrid).")
app.command("ask")(ask_command)


EXIT_INTERRUPTED = 130


def click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """The usage-error and abort classes of the click that Typer runs on: recent Typer releases carry
    their own copy (``typer._click``), older ones use ``click``; both are caught."""
    import importlib

    modules = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    aborts = {getattr(m, "Abort", None) for m in modules} | {getattr(typer, "Abort", None)}
    return tuple(m.ClickException for m in modules), tuple(a for a in aborts if isinstance(a, type))


def _is_main_process() -> bool:
    """False in the processes other than the first of a ``torchrun`` / ``accelerate launch`` group
    (read from the launcher's environment: the process group may not have started)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2.

    ``--debug`` may stand anywhere on the line (before or after the command) and shows tracebacks.
    """
    usage_errors, aborts = click_exceptions()
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [arg for arg in args if arg != "--debug"]
    try:
        code = app(args=args, prog_name="encoderkit", standalone_mode=False)
        if "encoderkit.distributed" in sys.modules:  # a command that ran on several processes
            sys.modules["encoderkit.distributed"].close_process_group()
    except EncoderkitError as error:
        if debug:
            raise
        if _is_main_process():  # several processes (torchrun) all stop on it; one says why
            console.print(Text.assemble(("error:", "bold red"), " ", str(error)), highlight=False, soft_wrap=True)
        sys.exit(EXIT_USER_ERROR)
    except usage_errors as error:  # usage: a missing argument, an unknown option
        error.show()
        sys.exit(error.exit_code)
    except aborts:
        sys.exit(1)
    # ``python -m encoderkit.cli`` runs this file as __main__ while commands of other modules (compare)
    # import it as encoderkit.cli: either copy may hold the flag.
    reported = any(getattr(sys.modules.get(name), "_interrupt_reported", False) for name in ("__main__", __name__,
                                                                                             "encoderkit.cli"))
    if code == EXIT_INTERRUPTED and not reported:  # Typer turns Ctrl-C into exit code 130
        say("interrupted")
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
