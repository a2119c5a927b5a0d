"""Write a text encoder built on a pretrained checkpoint as a sentence-transformers folder.

    DIR/
      modules.json                  Transformer -> Pooling (-> Normalize)
      config.json, model.safetensors    the Hugging Face model, fine-tuned weights
      tokenizer.json, tokenizer_config.json, special_tokens_map.json
      sentence_bert_config.json     max_seq_length
      1_Pooling/config.json         the pooling mode
      2_Normalize/                  when the encoder L2-normalises

``SentenceTransformer(DIR)`` then gives the embeddings encoderkit gives (a test checks cosine >= 0.9999).
"""

from __future__ import annotations

import json
from pathlib import Path

from encoderkit.errors import ConfigError

#: encoderkit pooling -> the sentence-transformers Pooling config key that selects it.
ST_POOLING_KEYS = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token",
                   "max": "pooling_mode_max_tokens", "last": "pooling_mode_lasttoken"}


def check_exportable(text_encoder, towers: str = "shared") -> None:
    """Refuse, in one line, what a sentence-transformers folder cannot hold."""
    from encoderkit.encoders.pretrained import PretrainedEncoder

    if not isinstance(text_encoder.encoder, PretrainedEncoder):
        raise ConfigError("only encoders fine-tuned from a pretrained checkpoint (encoder.kind: pretrained) can be "
                          "written as a sentence-transformers folder; this model has a "
                          f"{type(text_encoder.encoder).__name__}")
    if towers != "shared":
        raise ConfigError("this retrieval model has separate query and document towers; a sentence-transformers "
                          "folder holds one encoder (train with retrieve.towers: shared to export)")
    if text_encoder.pooler.kind not in ST_POOLING_KEYS:
        raise ConfigError(f"pooling {text_encoder.pooler.kind!r} has no sentence-transformers equivalent "
                          f"(exportable: {', '.join(ST_POOLING_KEYS)})")
    if getattr(text_encoder.tokenizer, "max_chunks", 1) > 1:
        raise ConfigError("this model pools several windows per text (encoder.max_chunks > 1), which "
                          "sentence-transformers does not do; export a model trained with max_chunks: 1")


def write_sentence_transformers(text_encoder, directory: Path, towers: str = "shared") -> None:
    """Write ``text_encoder`` (a ``TextEncoder`` on a ``PretrainedEncoder``) into the empty ``directory``."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    check_exportable(text_encoder, towers)
    directory = Path(directory)
    hf_model = text_encoder.encoder.model
    hf_model.save_pretrained(str(directory), safe_serialization=True)
    backend = Tokenizer.from_str(text_encoder.tokenizer.backend.to_str())
    backend.no_truncation()  # sentence-transformers truncates to max_seq_length itself
    backend.no_padding()
    vocabulary = backend.get_vocab()
    special = {name: token for name, token in (("pad_token", backend.id_to_token(text_encoder.tokenizer.pad_id)),
                                               ("unk_token", "[UNK]"), ("cls_token", "[CLS]"),
                                               ("sep_token", "[SEP]"), ("mask_token", "[MASK]"),
                                               ("unk_token", "<unk>"), ("cls_token", "<s>"), ("sep_token", "</s>"),
                                               ("mask_token", "<mask>"))
               if token in vocabulary}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=text_encoder.tokenizer.max_length,
                                        **special)
    tokenizer.save_pretrained(str(directory))
    dim = int(text_encoder.output_dim)
    pooling = {key: key == ST_POOLING_KEYS[text_encoder.pooler.kind] for key in ST_POOLING_KEYS.values()}
    (directory / "1_Pooling").mkdir()
    _write_json(directory / "1_Pooling" / "config.json", {"word_embedding_dimension": dim, **pooling,
                                                           "pooling_mode_mean_sqrt_len_tokens": False})
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if text_encoder.normalize:
        (directory / "2_Normalize").mkdir()
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    _write_json(directory / "modules.json", modules)
    _write_json(directory / "sentence_bert_config.json",
                {"max_seq_length": int(text_encoder.tokenizer.max_length), "do_lower_case": False})
    _write_json(directory / "config_sentence_transformers.json",
                {"similarity_fn_name": "cosine" if text_encoder.normalize else "dot", "prompts": {},
                 "default_prompt_name": None, "exported_by": "encoderkit"})


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
