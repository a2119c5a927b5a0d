"""``encoderkit compare --data DIR [CONFIG ...]`` (registered in ``encoderkit.cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from encoderkit.errors import EncoderkitError


def compare(
    configs: Optional[list[Path]] = typer.Argument(None, help="Run configs to compare (default: the shipped "
                                                               "bow, cnn, lstm, transformer and, when installed, "
                                                               "trec_minilm)."),
    data: Path = typer.Option(..., "--data", help="A folder with train.jsonl and test.jsonl."),
    seeds: int = typer.Option(3, min=1, max=10, help="Seeds per candidate."),
    budget_minutes: Optional[float] = typer.Option(None, min=0.0, help="Stop adding seeds and data sizes once "
                                                                       "this time is spent (every candidate runs once)."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="The comparison's folder (default: "
                                                                     "runs/compare-DATA); run again to continue."),
    fractions: str = typer.Option("0.1,0.3,1", help="Shares of the training data for the learning curve."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", help="key=value for every candidate, repeatable "
                                                                      "(e.g. --set train.epochs=3)."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Add the TF-IDF + linear SVM baseline."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch CPU threads."),
    text_field: str = typer.Option("text", help="Text field of the data."),
    label_field: str = typer.Option("label", help="Label field of the data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again instead of continuing a comparison in -o."),
) -> None:
    """Which encoder for my data? Trains candidates over seeds and data sizes and writes a report with
    intervals, significance tests, speed, a learning curve and a recommendation."""
    from encoderkit.cli import say
    from encoderkit.compare.candidates import named_candidates
    from encoderkit.compare.runner import compare as run_compare

    try:
        shares = [float(part) for part in fractions.split(",") if part.strip()]
    except ValueError:
        raise EncoderkitError(f"--fractions {fractions!r}: give shares like 0.1,0.3,1") from None
    out = out or Path("runs") / f"compare-{data.resolve().name}"
    try:
        result = run_compare(data, named_candidates(configs) if configs else None, out=out, seeds=seeds,
                             fractions=shares, budget_minutes=budget_minutes, overrides=overrides or [],
                             baseline=baseline, threads=threads, overwrite=overwrite, text_field=text_field,
                             label_field=label_field, echo=say)
    except KeyboardInterrupt:
        import encoderkit.cli

        say(f"interrupted; finished runs are kept in {out}: run the same command again to continue")
        encoderkit.cli._interrupt_reported = True
        raise
    for line in result.summary["recommendation"]:
        say(line)
    say(f"report: {result.report}")
