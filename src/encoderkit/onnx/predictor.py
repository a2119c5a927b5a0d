"""What ``encoderkit.load(EXPORTED)`` returns: the eager predictors' interface, run by onnxruntime.

Nothing here imports torch or training code: a serving machine needs onnxruntime, tokenizers and
numpy. A single ``str`` gives a single result, as with the eager models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import encoderkit
from encoderkit.errors import ConfigError, EncoderkitError, ModelDirectoryError
from encoderkit.onnx import CONFIG_FILE, EMBEDDING, FORMAT, FORMAT_VERSION, GRAPH_FILES, LOGITS
from encoderkit.onnx.runtime import open_session, require_onnxruntime, run_graph
from encoderkit.outputs import LabelDecisions, SearchMethods, softmax_or_sigmoid
from encoderkit.texts import as_text_list


class OnnxModel:
    """Shared parts: the tokenizer, the sessions, and ``embed`` (texts -> one graph output)."""

    #: Marks a predictor whose weights are fixed in a graph (no ``explain``; ``encoderkit evaluate`` refuses it).
    exported = True

    def __init__(self, directory: Path, meta: dict, threads: int | None = None):
        from encoderkit.tokenization import load_tokenizer

        self.directory = directory
        self.meta = meta
        self.tokenizer = load_tokenizer(directory)
        self.sessions = {name: open_session(directory / file, threads) for name, file in meta["graphs"].items()}

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def normalize(self) -> bool:
        return bool(self.meta.get("normalize"))

    def with_precision(self, precision: str) -> "OnnxModel":
        """Itself for ``float32`` (what ``encoderkit embed --precision`` asks); the graph's precision was
        fixed at export."""
        if precision != "float32":
            raise ConfigError(f"{self.directory} is an ONNX export{' (int8)' if self.meta.get('quantize') else ''}: "
                              "its precision was fixed at export; export with --quantize int8 for int8")
        return self

    def _run(self, texts, batch_size: int, graph: str, outputs: tuple[str, ...]):
        items, single = as_text_list(texts)
        values = run_graph(self.sessions[graph], self.tokenizer.encode_batch(items), self.tokenizer.pad_id,
                           batch_size, outputs)
        return [value[0] if single else value for value in values]

    def explain(self, *args, **kwargs):
        raise EncoderkitError(f"{self.directory} is an ONNX export (no gradients or attention maps); explain with "
                              "the model directory it was exported from")


class OnnxClassifierModel(LabelDecisions, OnnxModel):
    """``predict``, ``predict_proba`` and ``encode`` of ``ClassifierModel``, on onnxruntime."""

    task = "classify"

    def __init__(self, directory: Path, meta: dict, threads: int | None = None):
        super().__init__(directory, meta, threads)
        self.labels = list(meta["labels"])
        self.multi_label = bool(meta.get("multi_label"))
        self.threshold = float(meta.get("threshold", 0.5))

    def logits(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N, C) logits; (C,) for one str."""
        return self._run(texts, batch_size, "model", (LOGITS,))[0]

    def predict_proba(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N, C) probabilities (softmax, or independent sigmoids for multi-label); (C,) for one str."""
        items, single = as_text_list(texts)
        result = softmax_or_sigmoid(self.logits(items, batch_size), self.multi_label)
        return result[0] if single else result

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N, H) sentence vectors (the input of the classifier head); (H,) for one str."""
        return self._run(texts, batch_size, "model", (EMBEDDING,))[0]


class OnnxRetrievalModel(SearchMethods, OnnxModel):
    """``encode_queries``, ``encode_documents``, ``encode`` and ``search`` of ``RetrievalModel``, on onnxruntime."""

    task = "retrieve"

    def encode_queries(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N,H) float32 query embeddings; (H,) for one str."""
        return self._run(texts, batch_size, "model", (EMBEDDING,))[0]

    def encode_documents(self, texts, batch_size: int = 64, progress=None) -> np.ndarray:
        """(N,H) float32 document embeddings (the document tower when the towers are separate); (H,) for one str."""
        return self._run(texts, batch_size, "documents" if "documents" in self.sessions else "model", (EMBEDDING,))[0]


PREDICTORS = {"classify": OnnxClassifierModel, "retrieve": OnnxRetrievalModel}


def is_onnx_export(directory: str | Path) -> bool:
    """True when ``directory/config.json`` names the ``encoderkit-onnx`` format."""
    path = Path(directory) / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_onnx_config(directory: str | Path) -> dict:
    """config.json of an exported directory, checked: format, version, task and graph files."""
    directory = Path(directory)
    meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirectoryError(f"{directory} is an ONNX export of format v{version} (encoderkit "
                                  f"{meta.get('encoderkit_version')}); this encoderkit {encoderkit.__version__} "
                                  f"reads v{FORMAT_VERSION}: export the model again")
    if meta.get("task") not in PREDICTORS:
        raise ModelDirectoryError(f"{directory / CONFIG_FILE} names task {meta.get('task')!r}; ONNX exports hold "
                                  f"{', '.join(PREDICTORS)} models")
    graphs = meta.get("graphs")
    if not isinstance(graphs, dict) or "model" not in graphs or not set(graphs) <= set(GRAPH_FILES):
        raise ModelDirectoryError(f"{directory / CONFIG_FILE} is damaged: 'graphs' must name model.onnx")
    return meta


def load_onnx_model(directory: str | Path, threads: int | None = None):
    """The predictor of an exported directory (``OnnxClassifierModel`` or ``OnnxRetrievalModel``).

    Args:
        directory: written by ``encoderkit export MODEL --format onnx``.
        threads: onnxruntime intra-op threads (None: one per core).
    """
    require_onnxruntime()  # before reading anything: the fix for a missing runtime is an install
    directory = Path(directory)
    meta = read_onnx_config(directory)
    return PREDICTORS[meta["task"]](directory, meta, threads)
