"""Convert Keras text encoders (Embedding -> SimpleRNN/LSTM/GRU/Bidirectional -> Dense) to encoderkit.

Keras 3 runs on the PyTorch backend, so TensorFlow is never needed: install ``encoderkit[keras]``.
Keras is imported only while converting; ``load_converted`` reads a converted directory
(``config.json`` + ``model.safetensors``, no pickle) without Keras installed.

Layers are composed in the order Keras lists them (``model.layers``): the order of a
``Sequential``, of a linear functional graph, or the attribute order of a subclassed model whose
``call`` chains them one after the other, like::

    class RNNEncoder(keras.Model):
        def __init__(self, vocab_size, embedding_dim, hidden_dim):
            super().__init__()
            self.embedding = keras.layers.Embedding(vocab_size, embedding_dim)
            self.rnn = keras.layers.SimpleRNN(hidden_dim, return_sequences=True, return_state=True)

Weight mapping (Keras multiplies ``x @ kernel``; torch stores ``W`` with output rows, ``x @ W.T``):

- ``SimpleRNN``: ``h_t = tanh(x_t K + h_{t-1} R + b)`` -> ``weight_ih = K^T``, ``weight_hh = R^T``,
  ``bias_ih = b``, ``bias_hh = 0``.
- ``LSTM``: Keras stacks the gates i, f, c, o, torch i, f, g, o: the same order, transposed.
- ``GRU``: Keras stacks z, r, h (update, reset, candidate), torch r, z, n: the blocks are
  reordered. Only ``reset_after=True`` (the Keras 3 default) is convertible: its two biases are
  torch's ``bias_ih`` and ``bias_hh``, and the reset gate multiplies ``h_{t-1} R_h + b_hh`` after
  the product as torch does. ``reset_after=False`` resets ``h_{t-1}`` before the product, a
  different function that torch's kernel cannot compute, so it is refused with an error.
- ``Bidirectional(merge_mode="concat")``: forward and backward layers become one bidirectional
  ``RecurrentEncoder`` whose states are ``[forward ; backward]``, as Keras concatenates them.
- ``Embedding(mask_zero=True)``: id 0 is padding (the mask is ``ids != 0``); without it every
  position is real, as Keras sees it.

Padding: ids must be right-padded (real tokens, then 0s): Keras' ``pad_sequences`` pads at the
front by default, so pass ``padding="post"``; left padding raises ``PaddingError``. ``states``
are zero at padded positions. What flows on through the chain (``output``) is what Keras computes
there: a recurrent layer outside ``Bidirectional`` repeats its last real output at padded steps
(``zero_output_for_mask=False``), inside it gives zeros, and a ``Dense`` layer is applied at every
step, padded ones included (so it outputs its bias, or its function of the repeated output, there).
Real positions, padded positions of ``output``, and final states all agree with Keras.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from encoderkit.config import RecurrentConfig
from encoderkit.encoders.rnn import PaddingError, RecurrentEncoder
from encoderkit.errors import EncoderkitError, ModelDirectoryError

FORMAT = "encoderkit.keras-converted"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SUPPORTED_LAYERS = ("Embedding", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Dense")
#: Keras activation name -> torch function, for Dense layers.
DENSE_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,  # Keras 3's gelu defaults to the exact (erf) form, as torch's
    "softmax": lambda x: torch.softmax(x, dim=-1),
}


class KerasConversionError(EncoderkitError):
    """A Keras model or layer that has no exact encoderkit equivalent."""


class KerasNotInstalledError(EncoderkitError):
    """Keras (or its PyTorch backend) is missing."""


# ---------------------------------------------------------------------------------------------
# The converted module (no Keras needed)


class ConvertedOutput(NamedTuple):
    """What a converted model returns.

    Attributes:
        states: (B,T,D) per-token outputs of the last recurrent layer, zero at padding.
        final_state: the last recurrent layer's final states in Keras' ``return_state`` order:
            ``[h]`` (SimpleRNN, GRU), ``[h, c]`` (LSTM), and for ``Bidirectional`` the forward
            ones then the backward ones (``[h_f, c_f, h_b, c_b]``); each (B,H).
        output: the result of the whole layer chain, Dense layers included: (B,T,D') while a
            sequence flows (padded steps hold what Keras computes there), (B,D') after a
            recurrent layer with ``return_sequences=False``.
        mask: (B,T) bool, True at real tokens.
    """

    states: Tensor
    final_state: list[Tensor]
    output: Tensor
    mask: Tensor


class KerasConvertedEncoder(nn.Module):
    """Embedding followed by recurrent (``RecurrentEncoder``) and Dense stages, as converted from Keras.

    Args:
        config: the ``config.json`` dictionary written by ``save_converted``.
    """

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = config
        self.padding_id: int | None = config["padding_id"]
        self.embedding = nn.Embedding(config["vocab_size"], config["embedding_dim"])
        self.stages = nn.ModuleList()
        self.stage_settings: list[dict[str, Any]] = []
        size = config["embedding_dim"]
        for stage in config["stages"]:
            if stage["type"] == "recurrent":
                encoder_config = RecurrentConfig(
                    kind=stage["kind"], hidden_size=stage["units"], num_layers=1, bidirectional=stage["bidirectional"]
                )
                module: nn.Module = RecurrentEncoder(size, encoder_config)
                size = module.output_dim
            elif stage["type"] == "dense":
                if stage["activation"] not in DENSE_ACTIVATIONS:
                    raise ModelDirectoryError(f"unknown Dense activation {stage['activation']!r} in converted config")
                module = nn.Linear(size, stage["units"])
                size = stage["units"]
            else:
                raise ModelDirectoryError(f"unknown stage type {stage['type']!r} in converted config")
            self.stages.append(module)
            self.stage_settings.append(stage)
        self.output_dim = size

    def mask_for(self, ids: Tensor) -> Tensor:
        """(B,T) ids -> (B,T) bool mask: ``ids != 0`` when Keras masked zeros, else all real."""
        if self.padding_id is None:
            return torch.ones_like(ids, dtype=torch.bool)
        return ids != self.padding_id

    def forward(self, ids: Tensor, mask: Tensor | None = None) -> ConvertedOutput:
        """Run the chain on token ids.

        Args:
            ids: (B,T) int64 token ids, right-padded.
            mask: (B,T) bool, True at real tokens; defaults to ``mask_for(ids)``.

        Returns:
            ``ConvertedOutput(states, final_state, output, mask)``.
        """
        mask = self.mask_for(ids) if mask is None else mask.bool()
        x = self.embedding(ids)  # (B,T,E)
        states, final_state = None, []
        is_sequence = True
        for module, settings in zip(self.stages, self.stage_settings):
            if settings["type"] == "recurrent":
                if not is_sequence:
                    raise ModelDirectoryError("a recurrent layer follows one that returned no sequence")
                try:
                    states, final = module.forward_with_final_state(x, mask)
                except PaddingError:
                    raise PaddingError(
                        "converted Keras models need right-padded ids (real tokens first, then 0): pad with "
                        "keras.utils.pad_sequences(..., padding='post'); its default padding='pre' puts the 0s first"
                    ) from None
                final_state = _keras_final_state(final, settings["bidirectional"])
                if settings["return_sequences"]:
                    # Keras' default for a layer of its own, forced to True inside Bidirectional.
                    zeroed = settings.get("zero_output_for_mask", settings["bidirectional"])
                    x = states if zeroed else _repeat_last_output(states, mask)
                else:
                    # Keras' last output: h of the forward direction's last step, concatenated with
                    # the backward direction's h after it has read the whole sentence.
                    per_direction = 2 if settings["kind"] == "lstm" else 1  # [h, c] or [h]
                    x = torch.cat(final_state[::per_direction], dim=-1)
                    is_sequence = False
            else:
                x = DENSE_ACTIVATIONS[settings["activation"]](module(x))  # every step, as Keras
        if states is None:
            raise ModelDirectoryError("converted model has no recurrent layer")
        return ConvertedOutput(states=states, final_state=final_state, output=x, mask=mask)


def _repeat_last_output(states: Tensor, mask: Tensor) -> Tensor:
    """(B,T,H) states zero at padding -> each padded step holds the last real step's state (zeros before any)."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last_real = torch.where(mask, positions, -1).cummax(dim=1).values  # (B,T)
    index = last_real.clamp(min=0).unsqueeze(-1).expand_as(states)
    return torch.where((last_real >= 0).unsqueeze(-1), states.gather(1, index), 0.0)


def _keras_final_state(final: Tensor | tuple[Tensor, Tensor], bidirectional: bool) -> list[Tensor]:
    """torch's (D,B,H) ``h_n`` (and ``c_n``) -> Keras' list: per direction, h then c."""
    h_n, c_n = final if isinstance(final, tuple) else (final, None)
    directions = 2 if bidirectional else 1
    out = []
    for direction in range(directions):
        out.append(h_n[direction])
        if c_n is not None:
            out.append(c_n[direction])
    return out


def save_converted(model: KerasConvertedEncoder, out_dir: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` to ``out_dir`` (created if needed)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(model.config, indent=2) + "\n", encoding="utf-8")
    tensors = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": FORMAT})
    return out


def load_converted(directory: str | Path) -> KerasConvertedEncoder:
    """Load a directory written by ``save_converted`` (no Keras needed), in eval mode.

    Raises:
        ModelDirectoryError: missing files, another format, or weights that do not fit the config.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ModelDirectoryError(
                f"{path} not found; convert a model with `encoderkit convert keras MODEL.keras {directory}`"
            )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise ModelDirectoryError(
            f"{config_path} is not a converted Keras model of format {FORMAT} v{FORMAT_VERSION} "
            f"(found {config.get('format')!r} v{config.get('format_version')!r})"
        )
    model = KerasConvertedEncoder(config)
    try:
        model.load_state_dict(load_file(str(weights_path)))
    except RuntimeError as error:
        raise ModelDirectoryError(f"{weights_path} does not match {config_path}: {error}") from None
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Conversion (needs Keras)


def import_keras():
    """Import Keras on the PyTorch backend (unless the user chose another), with a helpful error."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as error:
        raise KerasNotInstalledError(
            f"Keras could not be imported ({error}); install it with `pip install 'encoderkit[keras]'` "
            "and set KERAS_BACKEND=torch (TensorFlow is not needed)"
        ) from None
    return keras


def _array(variable) -> np.ndarray:
    return np.asarray(variable.numpy(), dtype=np.float32)


def _unsupported(layer, reason: str) -> KerasConversionError:
    return KerasConversionError(f"Keras layer '{layer.name}' ({type(layer).__name__}) {reason}")


def _activation_name(layer, key: str = "activation") -> str:
    value = layer.get_config()[key]
    return value if isinstance(value, str) else repr(value)


def _recurrent_torch_weights(layer, kind: str) -> dict[str, np.ndarray]:
    """One Keras recurrent layer -> torch's ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""
    cell = layer.cell
    kernel, recurrent = _array(cell.kernel), _array(cell.recurrent_kernel)  # (E,G*H), (H,G*H)
    units = recurrent.shape[0]
    gates = kernel.shape[1] // units
    if cell.use_bias:
        bias = _array(cell.bias)
        bias_ih, bias_hh = (bias[0], bias[1]) if kind == "gru" else (bias, np.zeros_like(bias))
    else:
        bias_ih = bias_hh = np.zeros(gates * units, dtype=np.float32)
    weights = {"weight_ih": kernel.T, "weight_hh": recurrent.T, "bias_ih": bias_ih, "bias_hh": bias_hh}
    if kind == "gru":
        # Keras blocks z, r, h -> torch blocks r, z, n (first axis after the transpose).
        order = [1, 0, 2]
        for name, value in weights.items():
            blocks = np.split(value, 3, axis=0)
            weights[name] = np.concatenate([blocks[i] for i in order], axis=0)
    return {name: np.ascontiguousarray(value) for name, value in weights.items()}


def _check_recurrent(layer, keras, inside_bidirectional: bool) -> str:
    """Refuse settings torch's kernels cannot reproduce; return the encoderkit kind."""
    kinds = {keras.layers.SimpleRNN: "rnn", keras.layers.LSTM: "lstm", keras.layers.GRU: "gru"}
    kind = next((k for cls, k in kinds.items() if type(layer) is cls), None)
    if kind is None:
        raise _unsupported(layer, f"cannot be converted; supported layers: {', '.join(SUPPORTED_LAYERS)}")
    if _activation_name(layer) != "tanh":
        raise _unsupported(layer, f"has activation {_activation_name(layer)!r}; only 'tanh' is convertible")
    if kind != "rnn" and _activation_name(layer, "recurrent_activation") != "sigmoid":
        raise _unsupported(
            layer, "has a recurrent_activation other than 'sigmoid', which torch's kernels do not support"
        )
    if kind == "gru" and not layer.cell.reset_after:
        raise _unsupported(
            layer,
            "uses reset_after=False (reset before the recurrent product), which torch.nn.GRU cannot compute; "
            "retrain with reset_after=True (the Keras 3 default)",
        )
    if layer.stateful:
        raise _unsupported(layer, "is stateful; only stateless layers are convertible")
    if layer.go_backwards and not inside_bidirectional:
        raise _unsupported(layer, "runs go_backwards outside Bidirectional; wrap it in Bidirectional instead")
    return kind


def _recurrent_stage(layer, keras, size: int) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    """A recurrent or Bidirectional layer -> (stage config, torch-named weights, output size)."""
    if isinstance(layer, keras.layers.Bidirectional):
        if layer.merge_mode != "concat":
            raise _unsupported(layer, f"has merge_mode={layer.merge_mode!r}; only 'concat' is convertible")
        forward, backward = layer.forward_layer, layer.backward_layer
        kind = _check_recurrent(forward, keras, inside_bidirectional=True)
        if _check_recurrent(backward, keras, inside_bidirectional=True) != kind or backward.units != forward.units:
            raise _unsupported(layer, "has forward and backward layers of different kinds or sizes")
        directions = [(forward, ""), (backward, "_reverse")]
        return_sequences = forward.return_sequences
    else:
        kind = _check_recurrent(layer, keras, inside_bidirectional=False)
        forward = layer
        directions = [(layer, "")]
        return_sequences = layer.return_sequences
    weights = {}
    for direction_layer, suffix in directions:
        for name, value in _recurrent_torch_weights(direction_layer, kind).items():
            weights[f"rnn.{name}_l0{suffix}"] = value
    if weights["rnn.weight_ih_l0"].shape[1] != size:
        expected = weights["rnn.weight_ih_l0"].shape[1]
        raise _unsupported(layer, f"expects inputs of size {expected}, the previous layer gives {size}")
    stage = {
        "type": "recurrent",
        "kind": kind,
        "units": forward.units,
        "bidirectional": len(directions) == 2,
        "return_sequences": bool(return_sequences),
        "zero_output_for_mask": bool(forward.zero_output_for_mask),
        "keras_name": layer.name,
    }
    return stage, weights, forward.units * len(directions)


def _recurrent_layer_classes(keras) -> tuple[type, ...]:
    """The Keras classes handled as recurrent stages."""
    return (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU, keras.layers.Bidirectional)


def convert_keras_model(model) -> KerasConvertedEncoder:
    """Convert a built Keras model (Embedding, SimpleRNN/LSTM/GRU, Bidirectional, Dense) to encoderkit.

    Args:
        model: a ``keras.Model`` (Sequential, functional or subclassed) whose weights exist, i.e.
            it has been built or called once.

    Returns:
        A ``KerasConvertedEncoder`` in eval mode computing the same function.

    Raises:
        KerasConversionError: an unsupported layer or setting, named in one line.
    """
    keras = import_keras()
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers or not isinstance(layers[0], keras.layers.Embedding):
        raise KerasConversionError(
            "the Keras model must start with an Embedding layer (token ids in); "
            f"found {[type(layer).__name__ for layer in layers[:1]]}; supported layers: {', '.join(SUPPORTED_LAYERS)}"
        )
    if not all(layer.built for layer in layers):
        raise KerasConversionError(
            "the Keras model has no weights yet; call it once on a batch of ids (or build it) first"
        )
    embedding = layers[0]
    table = _array(embedding.embeddings)
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": {"keras_version": keras.__version__, "model_name": model.name},
        "vocab_size": int(table.shape[0]),
        "embedding_dim": int(table.shape[1]),
        "padding_id": 0 if embedding.mask_zero else None,
        "stages": [],
    }
    weights: dict[str, np.ndarray] = {"embedding.weight": table}
    size = table.shape[1]
    for index, layer in enumerate(layers[1:]):
        prefix = f"stages.{index}."
        if isinstance(layer, keras.layers.Dense):
            activation = _activation_name(layer)
            if activation not in DENSE_ACTIVATIONS:
                raise _unsupported(layer, f"has activation {activation!r}; convertible: {', '.join(DENSE_ACTIVATIONS)}")
            kernel = _array(layer.kernel)  # (in,out)
            if kernel.shape[0] != size:
                raise _unsupported(layer, f"expects inputs of size {kernel.shape[0]}, the previous layer gives {size}")
            bias = _array(layer.bias) if layer.use_bias else np.zeros(kernel.shape[1], dtype=np.float32)
            weights[prefix + "weight"] = np.ascontiguousarray(kernel.T)
            weights[prefix + "bias"] = bias
            config["stages"].append(
                {"type": "dense", "units": int(kernel.shape[1]), "activation": activation, "keras_name": layer.name}
            )
            size = kernel.shape[1]
        elif isinstance(layer, _recurrent_layer_classes(keras)):
            stage, stage_weights, size = _recurrent_stage(layer, keras, size)
            config["stages"].append(stage)
            weights.update({prefix + name: value for name, value in stage_weights.items()})
        else:
            raise _unsupported(layer, f"cannot be converted; supported layers: {', '.join(SUPPORTED_LAYERS)}")
    if not any(stage["type"] == "recurrent" for stage in config["stages"]):
        raise KerasConversionError("the Keras model has no SimpleRNN, LSTM, GRU or Bidirectional layer to convert")

    converted = KerasConvertedEncoder(config)
    converted.load_state_dict({name: torch.from_numpy(value) for name, value in weights.items()})
    return converted.eval()


def _is_keras_archive(path: Path) -> bool:
    """A ``.keras`` file is a zip archive holding ``config.json``, every member intact."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist() and archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
        return False


def load_keras_file(path: str | Path):
    """Load a ``.keras`` file with Keras (compile=False), explaining the usual failures in one line."""
    path = Path(path)
    if not path.is_file():
        raise KerasConversionError(f"Keras model file not found: {path}")
    if path.suffix != ".keras":
        raise KerasConversionError(f"{path} is not a .keras file; save the model with model.save('model.keras')")
    if not _is_keras_archive(path):
        # Keras itself says "File not found" here, and the advice below is about subclassed models.
        raise KerasConversionError(f"{path} is not a readable .keras archive (damaged, truncated, or not a Keras file); "
                                   "save the model again with model.save('model.keras')")
    keras = import_keras()
    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as error:  # Keras raises many types here; the user needs one line, not a trace.
        raise KerasConversionError(
            f"Keras could not load {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}. "
            "A subclassed model must be registered with @keras.saving.register_keras_serializable() "
            "and importable, or convert the live model with convert_keras_model(model)"
        ) from error


def convert_keras_file(path: str | Path, out_dir: str | Path) -> Path:
    """Convert ``MODEL.keras`` into ``out_dir`` (config.json + model.safetensors); returns ``out_dir``."""
    return save_converted(convert_keras_model(load_keras_file(path)), out_dir)
