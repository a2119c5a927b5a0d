"""One runner for every task: everything a run does that does not depend on the task.

    result = run(load_config("configs/cnn.yaml"))

seeds -> run directory (refuse / overwrite / resume) -> the task's data -> tokenizer (+ pretrained
vectors) -> text encoder -> the task's model -> the training loop -> test metrics -> model directory
-> report and results.json. The task-specific steps are the ``Task`` methods (``tasks/base.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from accelerate.utils import set_seed

from encoderkit.config import RunConfig, config_to_dict, save_config
from encoderkit.distributed import (barrier, check_batch_divides, init_from_environment, is_main_process, on_main_process,
                                    sharded_evaluation)
from encoderkit.embeddings import load_pretrained, pretrained_matrix
from encoderkit.errors import ConfigError
from encoderkit.files import atomic_write_text, recover_directory, remove_temporaries
from encoderkit.model_dir import MODEL_SUBDIR, save_model
from encoderkit.tasks import get_task
from encoderkit.tasks.base import RunResult, Task, scalar_metrics
from encoderkit.text_encoder import build_text_encoder, count_parameters
from encoderkit.tokenization import Tokenizer, load_tokenizer, make_tokenizer
from encoderkit.training import fit
from encoderkit.training.blending import BlendChoice, choose_blend, snapshot
from encoderkit.training.checkpoint import config_differences, find_checkpoint, read_checkpoint_state
from encoderkit.training.loop import CHECKPOINT_DIR, uses_cpu

#: Settings that may change between an interrupted run and its resumption (they change no number).
RESUMABLE_CHANGES = {"train.progress", "train.num_threads", "train.device"}
#: Files a restarted run keeps when it clears its directory (``--overwrite``, or ``--resume`` before the
#: first checkpoint): caches keyed by their inputs and checked when read back, so reusing one is safe
#: and saves its cost (``encoderkit distill``'s teacher logits: minutes of the teacher's time).
KEPT_CACHES = ("teacher_logits.safetensors",)


def run(config: RunConfig, *, resume: bool = False, overwrite: bool = False, echo=print) -> RunResult:
    """Train, select the best evaluation on validation, test, save a model directory and a report.

    Args:
        config: the resolved run config (``config.task`` picks the task).
        resume: continue the interrupted run in ``config.output_dir`` from its checkpoint.
        overwrite: replace whatever ``config.output_dir`` holds (without it an existing run is refused).
        echo: where progress lines go (``print`` or a rich console's ``print``).

    Under ``torchrun`` / ``accelerate launch`` every process calls ``run``: the main process alone
    checks, writes and prints; the others read what it wrote (``encoderkit.distributed``).
    """
    task = training_task(config)
    init_from_environment(cpu=uses_cpu(config.train))
    check_batch_divides(config.train.batch_size)
    if not is_main_process():
        echo = _silent
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    set_seed(config.seed)
    run_dir = Path(config.output_dir)
    restart = on_main_process(lambda: check_run_directory(run_dir, resume=resume, overwrite=overwrite))
    if restart:
        echo(f"{run_dir} has no checkpoint yet (the run stopped before its first one); starting it again")
        resume = False
    data = task.read_data(config)
    echo(task.describe_data(data))
    if resume:
        on_main_process(lambda: check_resume_config(config, run_dir))
    created = not run_dir.exists()
    on_main_process(lambda: run_dir.mkdir(parents=True, exist_ok=True))
    try:
        return _run(task, config, data, run_dir, resume, echo)
    except Exception:
        # A run that failed before its first checkpoint has nothing worth keeping: leave no debris
        # (the next attempt then needs no --overwrite).
        if created and is_main_process() and find_checkpoint(run_dir / CHECKPOINT_DIR) is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _silent(*args, **kwargs) -> None:
    """``echo`` of the processes other than the main one."""


def training_task(config: RunConfig) -> Task:
    """The task that trains ``config``: its own, or distillation into it when ``distill`` is set (the
    student is still saved as a model of the config's task)."""
    task = get_task(config.task)
    if config.distill is not None:
        from encoderkit.distill.task import DistillTask

        return DistillTask(task)
    return task


def describe_model(config: RunConfig) -> str:
    """'cnn encoder, max pooling'; a translation model has a decoder where the others pool."""
    if config.task == "translate":
        decoder = config.translate.decoder
        if decoder.kind == "rnn":
            return f"{config.encoder.kind} encoder, {decoder.cell} decoder with {decoder.attention} attention"
        return f"{config.encoder.kind} encoder, {decoder.kind} decoder"
    return f"{config.encoder.kind} encoder, {config.pooling} pooling"


def _run(task: Task, config: RunConfig, data, run_dir: Path, resume: bool, echo) -> RunResult:
    pretrained = read_pretrained(config)
    if not (resume and (run_dir / "tokenizer.json").is_file()):
        # On the main process; the others read the file it saves.
        on_main_process(lambda: train_tokenizer(task, config, data, pretrained).save(run_dir))
    tokenizer = load_tokenizer(run_dir)
    spec = task.spec(config, data)
    text_encoder, coverage = build_encoder_with_vectors(task, config, data, tokenizer, pretrained)
    if is_main_process():
        save_config(config, run_dir / "config.yaml")
    model = task.build_model(config, text_encoder, spec)
    if coverage:
        echo(describe_coverage(coverage))

    loaders = task.loaders(config, data, spec, tokenizer)
    if loaders.note:
        echo(loaders.note)
    loss = task.loss_function(config, data, spec)
    parameters = count_parameters(model)
    model_line = f"{describe_model(config)}, {parameters:,} parameters"
    echo(f"model: {model_line}")
    start_weights = snapshot(model) if config.train.blend_with_start else None
    validate = lambda module: scalar_metrics(task.evaluate(module, loaders.validation, spec, loss))  # noqa: E731
    greater_is_better = task.section.METRICS[config.train.metric]
    loop = fit(model, loaders.train, compute_loss=loss,
               evaluate=validate,
               config=config.train, run_dir=run_dir, resume=resume,
               parameter_groups=parameter_groups(config, model), description=config.encoder.kind,
               greater_is_better=greater_is_better, run_config=config_to_dict(config))

    best = {k: v for k, v in loop.best_record.items() if isinstance(v, float)}
    blended = None
    if start_weights is not None and config.train.metric in best:
        with sharded_evaluation():
            blended = choose_blend(model, start_weights, config.train.blend_with_start, validate,
                                   config.train.metric, best, greater_is_better)
        echo(describe_blend(blended, config.train.metric))
        best = blended.metrics
    with torch.no_grad(), sharded_evaluation():
        test_metrics = task.evaluate(model, loaders.test, spec) if loaders.test is not None else None
    model_dir = run_dir / MODEL_SUBDIR
    if is_main_process():
        save_model(model_dir, model, config, task, spec, extra={"coverage": coverage} if coverage else None)
    facts = {
        "model": model_line,
        "tokenizer": f"{config.tokenizer.kind if config.encoder.kind != 'pretrained' else 'checkpoint'}, "
                     f"{tokenizer.vocab_size:,} tokens",
        "data": task.describe_data(data).removeprefix("data: "),
        "best validation": f"{config.train.metric} {loop.best_metric:.4f} at step {loop.best_step}"
                           + (f" (the average of the last {loop.best_averaged} evaluations' weights)"
                              if loop.best_averaged else "")
                           + (f"; blended with the starting weights at alpha {blended.alpha:g}: "
                              f"{config.train.metric} {blended.metrics[config.train.metric]:.4f}"
                              if blended and blended.alpha < 1.0 else ""),
        "training": f"{loop.steps} steps, {loop.train_seconds:.1f} s, {loop.examples_per_second:.0f} examples/s",
        "model directory": str(model_dir),
    }
    if coverage:
        facts["pretrained vectors"] = describe_coverage(coverage).removeprefix("pretrained vectors cover ")
    result = RunResult(task=task.name, run_dir=run_dir, model_dir=model_dir, spec=spec,
                       validation_metrics=best,
                       test_metrics=test_metrics, parameters=parameters, train_seconds=loop.train_seconds,
                       examples_per_second=loop.examples_per_second, best_step=loop.best_step,
                       coverage=coverage, history=loop.history, facts=facts)
    if is_main_process():
        task.write_report(run_dir, config, spec, result)
        atomic_write_text(run_dir / "results.json", json.dumps({
            "task": task.name, "validation": result.validation_metrics, "test": test_metrics,
            "parameters": parameters, "train_seconds": loop.train_seconds,
            "examples_per_second": loop.examples_per_second, "coverage": coverage,
            **({"blend": blend_record(blended, config.train.metric)} if blended else {})}, indent=2))
    barrier()  # every process returns once the model directory and the report are complete
    return result


# -- the run directory -----------------------------------------------------------------------


def check_run_directory(run_dir: Path, *, resume: bool, overwrite: bool) -> bool:
    """Refuse to train into a directory that holds a run, unless told to resume or overwrite it.

    Returns:
        True when ``resume`` was asked but the run stopped before its first checkpoint, so it
        starts again from the beginning (which gives the same result as an uninterrupted run).
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: resume continues the run in "
                          "output_dir, overwrite replaces it; pass one")
    recover_directory(run_dir / MODEL_SUBDIR)
    remove_temporaries(run_dir)
    contents = sorted(path.name for path in run_dir.iterdir()) if run_dir.is_dir() else []
    if resume:
        if find_checkpoint(run_dir / CHECKPOINT_DIR) is not None:
            return False
        if not contents:
            raise ConfigError(f"nothing to resume in {run_dir}: it holds no run; run without --resume to start one")
        clear_run_directory(run_dir)  # what a run killed before its first checkpoint left: its caches at most
        return True
    if contents and not overwrite:
        shown = ", ".join(contents[:6]) + (", ..." if len(contents) > 6 else "")
        raise ConfigError(f"{run_dir} already holds a run ({shown}); pass --resume to continue it, "
                          f"--overwrite to replace it, or set output_dir to a new folder")
    if contents:
        clear_run_directory(run_dir)
    return False


def clear_run_directory(run_dir: Path) -> None:
    """Remove everything in ``run_dir`` but the ``KEPT_CACHES`` (the folder goes when nothing is kept)."""
    kept = [run_dir / name for name in KEPT_CACHES if (run_dir / name).is_file()]
    if not kept:
        shutil.rmtree(run_dir)
        return
    for path in run_dir.iterdir():
        if path not in kept:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def check_resume_config(config: RunConfig, run_dir: Path) -> None:
    """Refuse to resume with a config that computes something else than the checkpoint's run."""
    checkpoint = find_checkpoint(run_dir / CHECKPOINT_DIR)
    saved = read_checkpoint_state(checkpoint).get("config") if checkpoint else None
    if saved is None:  # a checkpoint written before checkpoints carried their config
        import yaml

        saved_path = run_dir / "config.yaml"
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) if saved_path.is_file() else None
    if saved is None:
        return
    ignored = RESUMABLE_CHANGES | ({"embedding.dim"} if config.embedding.pretrained else set())
    changed = config_differences(saved, config_to_dict(config), ignored)
    if changed:
        shown = "; ".join(changed[:8]) + ("; ..." if len(changed) > 8 else "")
        raise ConfigError(f"cannot resume {run_dir}: the config differs from its checkpoint's in {shown}; "
                          "resume with the same config, or pass --overwrite to start a new run there")


# -- tokenizer and pretrained vectors ---------------------------------------------------------


def read_pretrained(config: RunConfig):
    """The ``embedding.pretrained`` vectors, loaded; None when none are named or the encoder is a
    pretrained checkpoint (it brings its own embeddings)."""
    if config.embedding.pretrained and config.encoder.kind != "pretrained":
        return load_pretrained(config.embedding, config.tokenizer.kind)
    return None


def train_tokenizer(task: Task, config: RunConfig, data, pretrained) -> Tokenizer:
    """The run's tokenizer: trained on the task's training texts, then given up to
    ``embedding.extend_vocab`` pretrained words it lacks."""
    tokenizer = make_tokenizer(config, task.training_texts(data), task.special_tokens(config))
    if pretrained is not None and config.embedding.extend_vocab:
        extend_with_pretrained_words(tokenizer, pretrained[0], config.embedding.extend_vocab)
    return tokenizer


def build_encoder_with_vectors(task: Task, config: RunConfig, data, tokenizer, pretrained) -> tuple:
    """``(text encoder, coverage)``: the encoder with its embedding table filled from the pretrained
    vectors (coverage None without them). Sets ``embedding.dim`` to the vectors' dimension first."""
    matrix, coverage = pretrained_embeddings(config, tokenizer, task.training_texts(data), pretrained)
    text_encoder = build_text_encoder(config, tokenizer)
    if matrix is not None:
        text_encoder.embedding.load_matrix(matrix, freeze=config.embedding.freeze)
    return text_encoder, coverage


def extend_with_pretrained_words(tokenizer: Tokenizer, words: list[str], max_words: int) -> None:
    """Give a word tokenizer the most frequent pretrained words it lacks (ids of known words stay)."""
    from tokenizers import models

    from encoderkit.tokenization import UNK
    from encoderkit.wordvec.init import extend_vocabulary

    tokenizer.backend.model = models.WordLevel(extend_vocabulary(tokenizer.get_vocab(), words, max_words),
                                               unk_token=UNK)


def pretrained_embeddings(config: RunConfig, tokenizer, training_texts, pretrained) -> tuple:
    """Rows for the embedding table from loaded ``embedding.pretrained`` vectors, and their coverage.

    Also sets ``embedding.dim`` to the vectors' dimension, so the resolved config is the truth.
    """
    if pretrained is None:
        return None, None
    counts = tokenizer.token_counts(tokenizer.encode_batch(list(training_texts)))
    matrix, coverage = pretrained_matrix(config.embedding, tokenizer.get_vocab(), pretrained, counts, config.seed)
    if matrix.shape[1] != config.embedding.dim:
        config.embedding.dim = int(matrix.shape[1])
    return matrix, coverage


def describe_coverage(coverage: dict) -> str:
    """How much of the vocabulary and of the training tokens the pretrained vectors cover."""
    line = (f"pretrained vectors cover {coverage['vocab_coverage']:.1%} of the vocabulary and "
            f"{coverage['token_coverage']:.1%} of training tokens")
    train_vocab = coverage.get("train_vocab_coverage")
    if train_vocab is not None and abs(train_vocab - coverage["vocab_coverage"]) > 5e-4:
        line += f" ({train_vocab:.1%} of the words seen in training)"
    return line


def parameter_groups(config: RunConfig, model):
    """Layer-wise learning rates for pretrained encoders (every one in ``model``: a retrieval model may
    hold two towers); None keeps the loop's default groups."""
    from encoderkit.encoders.pretrained import PretrainedEncoder

    if config.encoder.kind != "pretrained" or config.encoder.layer_lr_decay == 1.0:
        return None
    encoders = [module for module in model.modules() if isinstance(module, PretrainedEncoder)]
    groups = [group for encoder in encoders for group in encoder.layer_parameter_groups(
        config.train.lr, config.encoder.layer_lr_decay, config.train.weight_decay)]
    encoder_ids = {id(p) for encoder in encoders for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in encoder_ids and p.requires_grad]
    return groups + [{"params": rest, "lr": config.train.lr, "weight_decay": config.train.weight_decay}]


# -- blending with the starting weights ---------------------------------------------------------


def describe_blend(choice: BlendChoice, metric: str) -> str:
    """One line: each alpha's validation score and which one is kept."""
    scores = ", ".join([f"{alpha:g} -> {metrics[metric]:.4f}" for alpha, metrics in sorted(choice.tried.items())]
                       + [f"1 (trained) -> {choice.trained[metric]:.4f}"])
    kept = "the trained weights" if choice.alpha == 1.0 else f"alpha {choice.alpha:g}"
    return f"blended with the starting weights (validation {metric}: {scores}); kept {kept}"


def blend_record(choice: BlendChoice, metric: str) -> dict:
    """What results.json says of the blending: the kept alpha, the trained weights' validation ``metric``
    and each tried alpha's validation metrics."""
    return {"alpha": choice.alpha, f"trained_{metric}": choice.trained[metric],
            "tried": {f"{alpha:g}": metrics for alpha, metrics in sorted(choice.tried.items())}}
