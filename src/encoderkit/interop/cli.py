"""``encoderkit convert ...``: a Typer app the main CLI mounts with ``app.add_typer(app, name="convert")``."""

from __future__ import annotations

from pathlib import Path

import typer

from encoderkit.errors import EncoderkitError

app = typer.Typer(help="Convert models from other frameworks into encoderkit model directories.", no_args_is_help=True)


@app.callback()
def convert() -> None:
    """Convert models from other frameworks into encoderkit model directories."""
    # A callback keeps ``keras`` a named subcommand even while it is the only one.


@app.command("keras")
def keras_command(
    model_path: Path = typer.Argument(..., help="A Keras 3 model saved with model.save('model.keras')."),
    out_dir: Path = typer.Argument(..., help="Directory to write config.json and model.safetensors to."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a converted model already in OUT_DIR."),
) -> None:
    """Convert a Keras Embedding -> SimpleRNN/LSTM/GRU/Bidirectional -> Dense model (runs Keras on PyTorch)."""
    from encoderkit.interop.keras import CONFIG_FILE, convert_keras_file

    # EncoderkitError propagates: encoderkit.cli.main prints it as one line (exit 2, --debug for the trace).
    if (out_dir / CONFIG_FILE).exists() and not overwrite:
        raise EncoderkitError(f"{out_dir} already holds a model; pass --overwrite to replace it")
    written = convert_keras_file(model_path, out_dir)
    typer.echo(f"converted {model_path} -> {written} (load it with encoderkit.interop.keras.load_converted)")
