"""The one training loop: AdamW, warmup + decay, clipping, accumulation, early stopping, resume.

Built on Hugging Face Accelerate, so the same loop runs on a CPU, one GPU, or several GPUs and
machines (``accelerate launch``) without changes. Tasks supply two functions:

- ``compute_loss(model, batch) -> scalar tensor``
- ``evaluate(model) -> dict[str, float]`` on the validation data (must contain ``config.metric``)

and get back the model with its best weights loaded, plus a ``LoopResult``.

Resume is exact, also from a checkpoint inside an epoch: the batch order is a function of
(seed, epoch), the sampler skips the batches already done, and the random states (Python, NumPy,
torch's dropout generator, the loader's generator) are restored at the point where they were saved.
Ctrl-C stops at the next step boundary, writes a checkpoint there and re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import itertools
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from encoderkit.config import TrainConfig
from encoderkit.errors import EncoderkitError
from encoderkit.training.checkpoint import (
    atomic_save_weights,
    find_checkpoint,
    load_checkpoint,
    load_weights,
    restore_rng_state,
    save_checkpoint,
)
from encoderkit.training.logging import MetricLogger

BEST_WEIGHTS = "best.safetensors"
CHECKPOINT_DIR = "checkpoint"
#: With ``average_last``: the weights of the last N evaluations, ``step-00001234.safetensors``.
AVERAGING_DIR = "averaging"


@dataclass
class LoopResult:
    best_metric: float | None
    best_step: int
    steps: int
    train_seconds: float
    examples_seen: int
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    #: N when the kept weights are the average of the last N evaluations' (``average_last``), else 0.
    best_averaged: int = 0
    #: Training stopped at the first evaluation past ``max_minutes``.
    out_of_time: bool = False

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def best_record(self) -> dict[str, Any]:
        """The validation record of the kept weights (an averaged one carries ``averaged: N``)."""
        return next((record for record in self.history if record["step"] == self.best_step
                     and record.get("averaged", 0) == self.best_averaged), {})


def default_parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only; biases, norms and 1-d parameters are not decayed (as BERT)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_scheduler(optimizer, config: TrainConfig, total_steps: int):
    """Linear warmup to ``lr`` over ``warmup_steps`` (or ``warmup_ratio`` of the steps), then linear or
    cosine decay to 0, flat, or ``inverse_sqrt``: ``lr_t = lr * sqrt(warmup / t)`` for t >= warmup."""
    from transformers import get_scheduler

    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup",
            "inverse_sqrt": "inverse_sqrt"}[config.schedule]
    warmup = config.warmup_steps if config.warmup_steps is not None else int(round(config.warmup_ratio * total_steps))
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


def _batch_size(batch) -> int:
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    if isinstance(batch, (list, tuple)):
        batch = batch[0]
    return int(batch.shape[0]) if hasattr(batch, "shape") else len(batch)


def improves(metrics: dict[str, float], state: dict[str, Any], metric: str, greater_is_better: bool = True) -> bool:
    """Better on ``metric`` (higher, or lower where ``greater_is_better`` is False); on a tie (e.g.
    validation macro-F1 1.0 twice), the lower validation loss wins."""
    value, best = metrics[metric], state["best_metric"]
    if best is None:
        return True
    if value == best and metric != "loss" and "loss" in metrics and state.get("best_loss") is not None:
        return metrics["loss"] < state["best_loss"]
    return value > best if greater_is_better else value < best


class StopRequest:
    """Turns the first Ctrl-C (SIGINT) into a flag the loop reads at the next step boundary; a second
    Ctrl-C interrupts at once. Only installed in the main thread (signals cannot be set elsewhere)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def fit(
    model: nn.Module,
    train_loader,
    *,
    compute_loss: Callable[[nn.Module, Any], torch.Tensor],
    evaluate: Callable[[nn.Module], dict[str, float]],
    config: TrainConfig,
    run_dir: str | Path,
    parameter_groups: list[dict[str, Any]] | None = None,
    resume: bool = False,
    description: str = "train",
    greater_is_better: bool = True,
    run_config: dict[str, Any] | None = None,
) -> LoopResult:
    """Train ``model`` and leave its best weights (by ``config.metric`` on validation) loaded.

    Args:
        model: the module to train.
        train_loader: a DataLoader; if its batch sampler has ``set_epoch``, it is called each epoch.
        compute_loss: ``(model, batch) -> loss``.
        evaluate: ``model -> metrics`` on validation data.
        config: the ``train`` section of the run config.
        run_dir: where ``metrics.jsonl``, TensorBoard logs, checkpoints and best weights go.
        parameter_groups: optimizer groups (e.g. layer-wise learning rates); default decays matrices only.
        resume: continue from ``run_dir/checkpoint`` if one exists.
        description: label of the progress bar.
        greater_is_better: direction of ``config.metric`` (False for a loss or an error rate).
        run_config: the resolved run config, stored in every checkpoint so a resume with another
            config can be refused (the caller compares; see ``checkpoint.config_differences``).

    Returns:
        LoopResult with the best metric, steps, timing and the evaluation history.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    use_cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    accelerator = Accelerator(cpu=use_cpu, mixed_precision=config.mixed_precision,
                              gradient_accumulation_steps=config.grad_accumulation)
    groups = parameter_groups or default_parameter_groups(model, config.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    batches_per_epoch = len(train_loader)
    if batches_per_epoch == 0:
        raise EncoderkitError("the training data gave no batches; check the training file and batch size")
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accumulation)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    scheduler = make_scheduler(optimizer, config, total_steps)
    sampler = getattr(train_loader, "batch_sampler", None)
    generators = {"loader": train_loader.generator} if getattr(train_loader, "generator", None) is not None else {}
    model, optimizer, prepared_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    unwrapped = accelerator.unwrap_model(model)

    state: dict[str, Any] = {"epoch": 0, "batches_done": 0, "step": 0, "best_metric": None, "best_step": 0,
                             "bad_evaluations": 0, "history": [], "examples_seen": 0, "train_seconds": 0.0,
                             "smoothed_loss": None, "config": run_config}
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    existing = find_checkpoint(checkpoint_dir) if resume else None
    saved_rng = None
    if existing is not None:
        state.update(load_checkpoint(existing, unwrapped, optimizer, scheduler))
        saved_rng = state.pop("rng")
        accelerator.print(f"resuming from {existing} at step {state['step']} (epoch {state['epoch'] + 1})")
    if state.get("finished"):
        accelerator.print("this run had already finished; loading its best weights")
        load_weights(unwrapped, run_dir / BEST_WEIGHTS)
        return _result(state)

    logger = MetricLogger(run_dir, resume_step=state["step"] if existing is not None else None) \
        if accelerator.is_main_process else None
    # In a log file (not a terminal) a bar line every 30 s is enough.
    progress = tqdm(total=total_steps, initial=state["step"], desc=description, unit="step", dynamic_ncols=True,
                    mininterval=0.2 if sys.stderr.isatty() else 30.0,
                    disable=not (config.progress and accelerator.is_main_process))
    stop = False

    averaging_dir = run_dir / AVERAGING_DIR
    if config.average_last and existing is not None:
        keep_recent_weights(averaging_dir, config.average_last, up_to_step=state["step"])

    def run_evaluation(averaged: int = 0) -> bool:
        """Evaluate, log, keep the best weights, checkpoint; return True when patience runs out.

        ``averaged``: the model holds the average of the last N evaluations' weights (no patience counted).
        """
        model.eval()
        with torch.no_grad():
            metrics = evaluate(unwrapped)
        model.train()
        if config.metric not in metrics:
            raise EncoderkitError(f"train.metric={config.metric} is not among the validation metrics "
                                  f"({', '.join(metrics)})")
        improved = improves(metrics, state, config.metric, greater_is_better)
        if improved and accelerator.is_main_process:
            atomic_save_weights(unwrapped, run_dir / BEST_WEIGHTS)
        if config.average_last and not averaged and accelerator.is_main_process:
            averaging_dir.mkdir(exist_ok=True)
            atomic_save_weights(unwrapped, averaging_dir / f"step-{state['step']:08d}.safetensors")
            keep_recent_weights(averaging_dir, config.average_last)
        value = metrics[config.metric]
        epochs_done = round(state["epoch"] + state["batches_done"] / batches_per_epoch, 3)
        record = {"step": state["step"], "epoch": epochs_done, "train_loss": state["smoothed_loss"], **metrics}
        if averaged:
            record["averaged"] = averaged
        state["history"].append(record)
        if improved:
            state.update(best_metric=value, best_loss=metrics.get("loss"), best_step=state["step"],
                         best_averaged=averaged, bad_evaluations=0)
        elif not averaged:
            state["bad_evaluations"] += 1
        if logger:
            logger.log("validation_averaged" if averaged else "validation", state["step"], metrics,
                       epoch=epochs_done, **({"averaged": averaged} if averaged else {}))
        progress.set_postfix_str(f"{config.metric}={value:.4f} best={state['best_metric']:.4f}", refresh=False)
        out_of_patience = config.patience is not None and state["bad_evaluations"] >= config.patience
        if config.max_minutes is not None and state["train_seconds"] >= 60 * config.max_minutes:
            state["out_of_time"] = True
        return out_of_patience or bool(state.get("out_of_time"))

    def evaluate_average() -> None:
        """Checkpoint averaging: evaluate the mean of the last ``average_last`` evaluations' weights;
        it becomes the kept model when it scores better than every single evaluation."""
        files = sorted(averaging_dir.glob("step-*.safetensors"))
        if len(files) < 2:
            return
        current = {name: tensor.detach().clone() for name, tensor in unwrapped.state_dict().items()}
        unwrapped.load_state_dict(average_weights(files), strict=True)
        run_evaluation(averaged=len(files))
        unwrapped.load_state_dict(current, strict=True)

    def checkpoint() -> None:
        if accelerator.is_main_process:
            save_checkpoint(checkpoint_dir, unwrapped, optimizer, scheduler, state, generators)

    model.train()
    with StopRequest() as stop_request:
        while state["step"] < total_steps and not stop:
            # Accelerate's loader counts epochs itself and passes its count to the sampler; set both so
            # a resumed run replays exactly the order the interrupted one would have used.
            for seeded in (prepared_loader, sampler):
                if hasattr(seeded, "set_epoch"):
                    seeded.set_epoch(state["epoch"])
            skip = state["batches_done"]
            # A checkpoint at an epoch's end was saved before the next epoch drew its loader seed (a
            # DataLoader draws one from the global random state when it fetches its first batch), one
            # inside an epoch after it: restore the saved states on the same side of that draw.
            if saved_rng is not None and skip == 0:
                restore_rng_state(saved_rng, generators)
                saved_rng = None
            epoch_loader = accelerator.skip_first_batches(prepared_loader, skip) if skip else prepared_loader
            batches = iter(epoch_loader)
            first = next(batches, None)
            if saved_rng is not None:
                restore_rng_state(saved_rng, generators)
                saved_rng = None
            started = time.perf_counter()
            for index, batch in enumerate(itertools.chain([first], batches) if first is not None else [], start=skip):
                with accelerator.accumulate(model):
                    loss = compute_loss(model, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.grad_clip:
                        accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                state["batches_done"] = index + 1
                state["examples_seen"] += _batch_size(batch)
                value = float(loss.detach())
                previous = state["smoothed_loss"]
                state["smoothed_loss"] = value if previous is None else 0.9 * previous + 0.1 * value
                if not accelerator.sync_gradients:
                    continue
                state["step"] += 1
                progress.update(1)
                elapsed = state["train_seconds"] + time.perf_counter() - started
                speed = state["examples_seen"] / elapsed if elapsed > 0 else 0.0
                # refresh=False: the bar redraws at its own interval, not on every step (logs stay short).
                progress.set_description(f"{description} epoch {state['epoch'] + 1} loss "
                                         f"{state['smoothed_loss']:.4f} {speed:.0f} ex/s", refresh=False)
                if logger and state["step"] % config.log_every == 0:
                    logger.log("train", state["step"], {"loss": state["smoothed_loss"],
                                                        "lr": scheduler.get_last_lr()[0],
                                                        "examples_per_second": speed})
                if config.eval_every and state["step"] % config.eval_every == 0:
                    state["train_seconds"] += time.perf_counter() - started
                    stop = run_evaluation()
                    checkpoint()
                    started = time.perf_counter()
                if stop_request.requested and not stop:
                    state["train_seconds"] += time.perf_counter() - started
                    _interrupt(checkpoint, progress, logger)
                if stop or state["step"] >= total_steps:
                    break
            state["train_seconds"] += time.perf_counter() - started
            epoch_finished = state["batches_done"] >= batches_per_epoch
            if epoch_finished:
                state["epoch"] += 1
                state["batches_done"] = 0
            if not stop and not config.eval_every and (epoch_finished or state["step"] >= total_steps):
                stop = run_evaluation()
            if stop or state["step"] >= total_steps:
                if config.average_last:
                    evaluate_average()
                state["finished"] = True
            checkpoint()
            if stop_request.requested and not state.get("finished"):
                _interrupt(checkpoint, progress, logger, saved=True)
    progress.close()
    if logger:
        logger.close()
    accelerator.wait_for_everyone()
    if (run_dir / BEST_WEIGHTS).is_file():
        load_weights(unwrapped, run_dir / BEST_WEIGHTS)
    state["stopped_early"] = stop
    return _result(state)


def _interrupt(checkpoint, progress, logger, saved: bool = False) -> None:
    """Ctrl-C: write a checkpoint at this step boundary (unless just written) and stop.

    After an epoch's last batch the checkpoint still says "inside the epoch", so a resumed run runs
    that epoch's evaluation exactly as the uninterrupted one would.
    """
    if not saved:
        checkpoint()
    progress.close()
    if logger:
        logger.close()
    raise KeyboardInterrupt


def _result(state: dict[str, Any]) -> LoopResult:
    return LoopResult(best_metric=state["best_metric"], best_step=state["best_step"], steps=state["step"],
                      train_seconds=state["train_seconds"], examples_seen=state["examples_seen"],
                      stopped_early=bool(state.get("stopped_early")), history=state["history"],
                      best_averaged=int(state.get("best_averaged") or 0), out_of_time=bool(state.get("out_of_time")))


def keep_recent_weights(directory: Path, count: int, up_to_step: int | None = None) -> None:
    """Delete all but the ``count`` latest ``step-*.safetensors`` in ``directory`` (and, on resume,
    any written after ``up_to_step``: the resumed run writes them again)."""
    files = sorted(Path(directory).glob("step-*.safetensors"))
    stale = [f for f in files if up_to_step is not None and int(f.stem.split("-")[1]) > up_to_step]
    kept = [f for f in files if f not in stale]
    for path in stale + kept[: max(len(kept) - count, 0)]:
        path.unlink(missing_ok=True)


def average_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of several weight files of one model: ``theta = (1/N) sum_i theta_i``
    (integer tensors, such as counters, are taken from the last file)."""
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for path in paths:
        for name, tensor in load_file(str(path)).items():
            dtypes[name] = tensor.dtype
            if not tensor.is_floating_point():
                total[name] = tensor
            else:
                total[name] = total[name] + tensor.double() if name in total else tensor.double()
    return {name: (tensor / len(paths)).to(dtypes[name]) if dtypes[name].is_floating_point else tensor
            for name, tensor in total.items()}
