"""Keras -> encoderkit conversion: states and final states equal Keras' to 1e-5 on a padded batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras")

from encoderkit.encoders.rnn import PaddingError  # noqa: E402
from encoderkit.interop.keras import (  # noqa: E402
    KerasConversionError,
    convert_keras_file,
    convert_keras_model,
    load_converted,
)

# Keras' own numpy-2 conversion warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
ATOL = 1e-5
VOCAB, EMBEDDING, UNITS = 12, 6, 5
# Right-padded with id 0, one full-length row and a one-token row.
IDS = np.array([[3, 5, 2, 7, 0, 0], [4, 1, 9, 2, 8, 6], [5, 0, 0, 0, 0, 0]], dtype="int64")
RECURRENT = {"SimpleRNN": keras.layers.SimpleRNN, "LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}


def randomize(model, seed: int = 0) -> None:
    """Replace every weight (biases included, which Keras starts at 0 or 1) by random values."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])


def numpy(value) -> np.ndarray:
    return keras.ops.convert_to_numpy(value)


def max_diff(ours: torch.Tensor, theirs) -> float:
    return float(np.abs(ours.detach().numpy() - numpy(theirs)).max())


def recurrent_model(kind: str, bidirectional: bool, mask_zero: bool = True):
    keras.utils.set_random_seed(0)
    ids = keras.Input((None,), dtype="int64")
    x = keras.layers.Embedding(VOCAB, EMBEDDING, mask_zero=mask_zero)(ids)
    layer = RECURRENT[kind](UNITS, return_sequences=True, return_state=True)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    model = keras.Model(ids, layer(x))
    randomize(model)
    return model


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_states_and_final_state_match_keras(kind, bidirectional):
    model = recurrent_model(kind, bidirectional)
    sequence, *keras_final = model(IDS)
    converted = convert_keras_model(model)
    out = converted(torch.from_numpy(IDS))
    mask = out.mask.numpy()
    assert mask.tolist() == (IDS != 0).tolist()
    # Real positions agree; padded ones are zero here (Keras repeats the last output outside Bidirectional).
    assert float(np.abs(out.states.detach().numpy()[mask] - numpy(sequence)[mask]).max()) <= ATOL
    assert torch.all(out.states[~out.mask] == 0)
    assert len(out.final_state) == len(keras_final)
    for ours, theirs in zip(out.final_state, keras_final):
        assert max_diff(ours, theirs) <= ATOL


def test_without_mask_zero_every_position_is_real():
    model = recurrent_model("GRU", bidirectional=True, mask_zero=False)
    sequence, *keras_final = model(IDS)
    out = convert_keras_model(model)(torch.from_numpy(IDS))
    assert out.mask.all()
    assert max_diff(out.states, sequence) <= ATOL
    assert all(max_diff(ours, theirs) <= ATOL for ours, theirs in zip(out.final_state, keras_final))


def test_issue_subclassed_model_live():
    """The model users arrive with (from the issue), converted live."""

    class RNNEncoder(keras.Model):
        def __init__(self, vocab_size, embedding_dim, hidden_dim):
            super().__init__()
            self.embedding = keras.layers.Embedding(vocab_size, embedding_dim)
            self.rnn = keras.layers.SimpleRNN(hidden_dim, return_sequences=True, return_state=True)

        def call(self, x):
            return self.rnn(self.embedding(x))

    keras.utils.set_random_seed(1)
    model = RNNEncoder(VOCAB, EMBEDDING, UNITS)
    with pytest.raises(KerasConversionError, match="call it once"):
        convert_keras_model(model)
    model(IDS)
    randomize(model, seed=3)
    sequence, final = model(IDS)
    out = convert_keras_model(model)(torch.from_numpy(IDS))
    assert max_diff(out.states, sequence) <= ATOL and max_diff(out.final_state[0], final) <= ATOL


def stacked_model():
    """Embedding -> Bidirectional(LSTM) -> GRU (last output only) -> Dense(tanh), as a Sequential."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int64"),
            keras.layers.Embedding(VOCAB, EMBEDDING, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=True)),
            keras.layers.GRU(4),
            keras.layers.Dense(3, activation="tanh"),
        ]
    )
    randomize(model, seed=5)
    return model


def test_saved_file_round_trip_without_keras(tmp_path):
    model = stacked_model()
    expected = numpy(model(IDS))  # (B,3)
    model.save(tmp_path / "model.keras")

    out_dir = convert_keras_file(tmp_path / "model.keras", tmp_path / "converted")
    config = json.loads((out_dir / "config.json").read_text())
    assert [stage["type"] for stage in config["stages"]] == ["recurrent", "recurrent", "dense"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["config.json", "model.safetensors"]

    loaded = load_converted(out_dir)
    assert float(np.abs(loaded(torch.from_numpy(IDS)).output.detach().numpy() - expected).max()) <= ATOL

    # load_converted must work where Keras cannot be imported at all.
    script = (
        "import sys; sys.modules['keras'] = None\n"
        "import torch\n"
        "from encoderkit.interop.keras import load_converted\n"
        f"out = load_converted({str(out_dir)!r})(torch.tensor({IDS.tolist()}))\n"
        "print(out.output.shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "torch.Size([3, 3])" in result.stdout


def test_cli_converts_a_file(tmp_path):
    from typer.testing import CliRunner

    from encoderkit.interop.cli import app

    model = stacked_model()
    model.save(tmp_path / "model.keras")
    runner = CliRunner()
    result = runner.invoke(app, ["keras", str(tmp_path / "model.keras"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.safetensors").is_file()
    again = runner.invoke(app, ["keras", str(tmp_path / "model.keras"), str(tmp_path / "out")])
    assert again.exit_code != 0 and "--overwrite" in str(again.exception)


def test_unsupported_layer_is_named_with_the_supported_list():
    model = keras.Sequential(
        [keras.Input((None,), dtype="int64"), keras.layers.Embedding(VOCAB, EMBEDDING), keras.layers.Conv1D(4, 3)]
    )
    with pytest.raises(KerasConversionError, match=r"Conv1D.*supported layers: Embedding, SimpleRNN, LSTM, GRU"):
        convert_keras_model(model)


def test_gru_reset_before_product_is_refused():
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int64"),
            keras.layers.Embedding(VOCAB, EMBEDDING),
            keras.layers.GRU(UNITS, reset_after=False),
        ]
    )
    with pytest.raises(KerasConversionError, match="reset_after=False"):
        convert_keras_model(model)


def sequence_dense_model(kind: str, bidirectional: bool, zero_output_for_mask: bool = False):
    """Embedding(mask_zero) -> recurrent(return_sequences) -> Dense: Keras applies the Dense at padded steps too."""
    keras.utils.set_random_seed(4)
    layer = RECURRENT[kind](UNITS, return_sequences=True, zero_output_for_mask=zero_output_for_mask)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int64"),
            keras.layers.Embedding(VOCAB, EMBEDDING, mask_zero=True),
            keras.layers.Bidirectional(layer) if bidirectional else layer,
            keras.layers.Dense(3),
        ]
    )
    randomize(model, seed=6)
    return model


@pytest.mark.parametrize(
    "kind, bidirectional, zero_output_for_mask",
    [("LSTM", False, False), ("LSTM", True, False), ("GRU", False, True), ("SimpleRNN", False, False)],
)
def test_dense_over_sequences_matches_keras_at_padded_steps_too(kind, bidirectional, zero_output_for_mask):
    model = sequence_dense_model(kind, bidirectional, zero_output_for_mask)
    expected = numpy(model(IDS))  # (B,T,3): at padding, Dense of the repeated last output, or its bias
    out = convert_keras_model(model)(torch.from_numpy(IDS))
    assert float(np.abs(out.output.detach().numpy() - expected).max()) <= ATOL
    assert torch.all(out.states[~out.mask] == 0)  # the recurrent states themselves stay zero at padding


def convert_keras_file_from(model, folder):
    model.save(folder / "model.keras")
    return convert_keras_file(folder / "model.keras", folder / "converted")


def test_directories_converted_before_zero_output_for_mask_was_recorded_follow_keras_defaults(tmp_path):
    model = sequence_dense_model("LSTM", bidirectional=False)
    out_dir = convert_keras_file_from(model, tmp_path)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    for stage in config["stages"]:
        stage.pop("zero_output_for_mask", None)
    config_path.write_text(json.dumps(config))
    output = load_converted(out_dir)(torch.from_numpy(IDS)).output
    assert float(np.abs(output.detach().numpy() - numpy(model(IDS))).max()) <= ATOL


def test_left_padded_ids_are_refused_with_the_keras_fix():
    model = sequence_dense_model("GRU", bidirectional=False)
    left_padded = torch.from_numpy(np.array([[0, 0, 3, 5], [4, 1, 9, 2]], dtype="int64"))  # pad_sequences' default
    with pytest.raises(PaddingError, match=r"right-padded ids .*pad_sequences\(\.\.\., padding='post'\)"):
        convert_keras_model(model)(left_padded)


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty", "zip without config.json"])
def test_a_damaged_keras_file_is_one_line_saying_so(tmp_path, damage):
    import zipfile

    good = tmp_path / "good.keras"
    stacked_model().save(good)
    path = tmp_path / "model.keras"
    if damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif damage == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    with pytest.raises(KerasConversionError) as error:
        convert_keras_file(path, tmp_path / "out")
    assert str(error.value) == (f"{path} is not a readable .keras archive (damaged, truncated, or not a Keras file); "
                                "save the model again with model.save('model.keras')")


def test_cli_prints_bracketed_paths_as_written(tmp_path):
    from typer.testing import CliRunner

    from encoderkit.cli import app as main_app

    model_path = tmp_path / "caps[v2].keras"  # Rich markup would drop "[v2]"
    stacked_model().save(model_path)
    out_dir = tmp_path / "out[bold]"
    result = CliRunner().invoke(main_app, ["convert", "keras", str(model_path), str(out_dir)])
    assert result.exit_code == 0, result.output
    assert f"converted {model_path} -> {out_dir}" in result.output


def test_load_converted_reports_missing_files(tmp_path):
    from encoderkit.errors import ModelDirectoryError

    with pytest.raises(ModelDirectoryError, match="config.json not found"):
        load_converted(tmp_path)
