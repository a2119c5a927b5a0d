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

Several processes (``torchrun`` / ``accelerate launch``): the model is wrapped in DDP (or FSDP, as
the Accelerate config says), ``config.batch_size`` is the global batch and each process trains on
its slice of it (``encoderkit.distributed.ShardedBatchSampler``). Each process's mean loss is scaled
by its share of the batch (``N * local weight / global weight``, the weight being the number of
examples, or what the loss function's ``batch_weight(batch)`` says, e.g. target tokens), so DDP's
gradient average is the gradient of the whole batch's mean even when a remainder batch does not
split evenly. Only the main process writes; every checkpoint holds the random state of each process.

Mixed precision (``train.mixed_precision``): ``bf16`` autocasts forward passes to bfloat16 on CPU or
GPU; ``fp16`` autocasts to float16 with a gradient scaler, GPU only; ``auto`` is bf16 where the
hardware computes in bfloat16 natively and no elsewhere (``encoderkit.training.precision``).
"""

from __future__ import annotations

import contextlib
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
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from encoderkit.config import TrainConfig
from encoderkit.distributed import (ShardedBatchSampler, barrier, check_batch_divides, gather_objects,
                                    sharded_evaluation, sum_over_processes)
from encoderkit.errors import ConfigError, EncoderkitError
from encoderkit.training.checkpoint import (
    atomic_save_weights,
    find_checkpoint,
    load_checkpoint,
    load_weights,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from encoderkit.training.logging import MetricLogger
from encoderkit.training.precision import resolve_mixed_precision

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


def uses_cpu(config: TrainConfig) -> bool:
    """Whether ``train.device`` resolves to the CPU on this machine."""
    return config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())


def check_mixed_precision(config: TrainConfig) -> None:
    """fp16 needs a GPU (its loss scaling exists for CUDA kernels); one line otherwise."""
    if config.mixed_precision == "fp16" and uses_cpu(config):
        raise ConfigError("train.mixed_precision=fp16 needs a CUDA GPU (none is in use here: train.device="
                          f"{config.device}); use train.mixed_precision=bf16 on CPU, or no")


def make_accelerator(config: TrainConfig) -> Accelerator:
    """An ``Accelerator`` for this run's device and mixed precision.

    Accelerate keeps one process-wide state; a later run in the same Python process (tests, the
    benchmarks) may ask for another mixed precision, so a single-process state is started afresh.
    """
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration

    check_mixed_precision(config)
    precision = resolve_mixed_precision(config.mixed_precision, on_cpu=uses_cpu(config))
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") != precision and state.get("num_processes", 1) == 1:
        AcceleratorState._reset_state()
    # split_batches: one scheduler step per optimizer step (each step is one global batch here).
    return Accelerator(cpu=uses_cpu(config), mixed_precision=precision,
                       dataloader_config=DataLoaderConfiguration(split_batches=True))


def plain_steps(accelerator: Accelerator) -> bool:
    """True when Accelerate's optimizer, scheduler and backward wrappers would add nothing to the plain calls.

    They matter for fp16 loss scaling and for engines that shard parameters (FSDP, DeepSpeed, XLA).
    Under DDP or one process with bf16 or no mixed precision they only pass the call on, at 0.1-0.3
    ms a step in a micro-benchmark (the optimizer wrapper looks up an optional package on every
    ``step``). Then ``fit`` calls the optimizer, scheduler and ``backward`` itself.
    """
    from accelerate.utils import DistributedType

    plain_types = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
    return accelerator.scaler is None and accelerator.distributed_type in plain_types


def _shard_loader(loader: DataLoader, processes: int, index: int) -> tuple[DataLoader, ShardedBatchSampler | None]:
    """The same loader reading this process's slice of each global batch (all of it in one process).

    A loader without a batch sampler (``batch_size=None`` over ready-made batches) is used as it is
    in one process, and refused with several (there is no global batch to share).
    """
    if loader.batch_sampler is None:
        if processes > 1:
            raise ConfigError("training on several processes needs a DataLoader with a batch sampler (it splits "
                              "each global batch); this one yields ready-made batches (batch_size=None)")
        return loader, None
    sharded = ShardedBatchSampler(loader.batch_sampler, processes, index)
    extra = {"prefetch_factor": loader.prefetch_factor,
             "persistent_workers": loader.persistent_workers} if loader.num_workers else {}
    return DataLoader(loader.dataset, batch_sampler=sharded, collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory, timeout=loader.timeout,
                      worker_init_fn=loader.worker_init_fn, generator=loader.generator, **extra), sharded


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
    accelerator = make_accelerator(config)
    processes, main = accelerator.num_processes, accelerator.is_main_process
    check_batch_divides(config.batch_size, processes)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    groups = parameter_groups or default_parameter_groups(model, config.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    batches_per_epoch = len(train_loader)
    if batches_per_epoch == 0:
        raise EncoderkitError("the training data gave no batches; check the training file and batch size")
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accumulation)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    scheduler = make_scheduler(optimizer, config, total_steps)
    loader, sharded = _shard_loader(train_loader, processes, accelerator.process_index)
    generators = {"loader": loader.generator} if loader.generator is not None else {}
    if plain_steps(accelerator):
        model = accelerator.prepare(model)
        backward, clip_grad_norm = torch.Tensor.backward, torch.nn.utils.clip_grad_norm_
    else:
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        backward, clip_grad_norm = accelerator.backward, accelerator.clip_grad_norm_
    unwrapped = accelerator.unwrap_model(model)
    batch_weight = getattr(compute_loss, "batch_weight", None)

    state: dict[str, Any] = {"epoch": 0, "batches_done": 0, "step": 0, "best_metric": None, "best_step": 0,
                             "bad_evaluations": 0, "history": [], "examples_seen": 0, "train_seconds": 0.0,
                             "smoothed_loss": None, "config": run_config}
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    existing = find_checkpoint(checkpoint_dir) if resume else None
    saved_rng = None
    if existing is not None:
        state.update(load_checkpoint(existing, unwrapped, optimizer, scheduler))
        saved_rng = state.pop("rng")
        by_process = state.pop("rng_by_process", None)
        if by_process and len(by_process) == processes:
            saved_rng = by_process[accelerator.process_index]
        accelerator.print(f"resuming from {existing} at step {state['step']} (epoch {state['epoch'] + 1})")
    elif processes > 1:
        # Dropout draws its own masks in each process (the same seed everywhere would repeat them).
        torch.manual_seed(torch.initial_seed() + accelerator.process_index)
    if state.get("finished"):
        accelerator.print("this run had already finished; loading its best weights")
        load_weights(unwrapped, run_dir / BEST_WEIGHTS)
        return _result(state)

    logger = MetricLogger(run_dir, resume_step=state["step"] if existing is not None else None) if main else None
    # In a log file (not a terminal) a bar line every 30 s is enough.
    progress = tqdm(total=total_steps, initial=state["step"], desc=description, unit="step", dynamic_ncols=True,
                    mininterval=0.2 if sys.stderr.isatty() else 30.0,
                    disable=not (config.progress and main))
    stop = False

    averaging_dir = run_dir / AVERAGING_DIR
    if config.average_last and existing is not None and main:
        keep_recent_weights(averaging_dir, config.average_last, up_to_step=state["step"])

    def run_evaluation(averaged: int = 0) -> bool:
        """Evaluate, log, keep the best weights, checkpoint; return True when patience runs out.

        ``averaged``: the model holds the average of the last N evaluations' weights (no patience counted).
        """
        model.eval()
        with torch.no_grad(), sharded_evaluation():
            metrics = evaluate(unwrapped)
        model.train()
        if config.metric not in metrics:
            raise EncoderkitError(f"train.metric={config.metric} is not among the validation metrics "
                                  f"({', '.join(metrics)})")
        improved = improves(metrics, state, config.metric, greater_is_better)
        if improved and main:
            atomic_save_weights(unwrapped, run_dir / BEST_WEIGHTS)
        if config.average_last and not averaged and main:
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
        # Every process must stop at the same evaluation: the main process's clock decides.
        if processes > 1:
            state["out_of_time"] = bool(gather_objects(state.get("out_of_time"))[0])
        return out_of_patience or bool(state.get("out_of_time"))

    def evaluate_average(at_least: int) -> bool | None:
        """Checkpoint averaging: evaluate the mean of the last ``average_last`` evaluations' weights
        (when at least ``at_least`` are kept); it becomes the kept model when it scores better than every
        other evaluation, and like any improvement it resets the patience. Returns run_evaluation's
        stop flag, or None when nothing was evaluated."""
        barrier()  # the main process wrote the files
        files = sorted(averaging_dir.glob("step-*.safetensors"))
        if len(files) < at_least:  # callers pass 2 or average_last (>= 2): an average of at least two
            return None
        current = {name: tensor.detach().clone() for name, tensor in unwrapped.state_dict().items()}
        unwrapped.load_state_dict(average_weights(files), strict=True)
        stop = run_evaluation(averaged=len(files))
        unwrapped.load_state_dict(current, strict=True)
        return stop

    def run_evaluations() -> bool:
        """The model's evaluation, then (``average_last``: N) that of the mean of the last N
        evaluations' weights once N are kept: a noisy validation curve is judged by its running
        average as well as by its single points. True when training should stop."""
        stop = run_evaluation()
        if config.average_last:
            averaged_stop = evaluate_average(at_least=config.average_last)
            if averaged_stop is not None:
                stop = averaged_stop
        return stop

    def checkpoint() -> None:
        states = gather_objects(rng_state(generators)) if processes > 1 else None
        if main:
            save_checkpoint(checkpoint_dir, unwrapped, optimizer, scheduler, state, generators,
                            rng_by_process=states)

    smoothed = None if state["smoothed_loss"] is None else torch.tensor(state["smoothed_loss"], dtype=torch.float64)
    last_shown = 0.0
    model.train()
    with StopRequest() as stop_request:
        while state["step"] < total_steps and not stop:
            # The global batch order is a function of (seed, epoch): a resumed run replays exactly the
            # order the interrupted one would have used, skipping the batches already done.
            skip = state["batches_done"]
            if sharded is not None:
                sharded.set_epoch(state["epoch"])
                sharded.skip = skip
            elif hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(state["epoch"])
            # A checkpoint at an epoch's end was saved before the next epoch drew its loader seed (a
            # DataLoader draws one from the global random state when its iterator is made), one
            # inside an epoch after it: restore the saved states on the same side of that draw.
            if saved_rng is not None and skip == 0:
                restore_rng_state(saved_rng, generators)
                saved_rng = None
            batches = iter(loader) if sharded is not None else itertools.islice(iter(loader), skip, None)
            first = next(batches, None)
            if saved_rng is not None:
                restore_rng_state(saved_rng, generators)
                saved_rng = None
            started = time.perf_counter()
            for index, batch in enumerate(itertools.chain([first], batches) if first is not None else [], start=skip):
                if sharded is not None:
                    local_count, global_count = sharded.counts[index - skip]
                else:
                    local_count = global_count = _batch_size(batch)
                sync = (index + 1) % config.grad_accumulation == 0 or index + 1 == batches_per_epoch
                batch = _to_device(batch, accelerator.device)
                with accelerator.no_sync(model) if not sync and processes > 1 else contextlib.nullcontext():
                    loss = compute_loss(model, batch)
                    scaled = loss
                    if processes > 1:
                        scaled = loss * _share(batch_weight, batch, local_count, global_count, processes)
                    if config.grad_accumulation > 1:
                        scaled = scaled / config.grad_accumulation
                    backward(scaled)
                if sync:
                    if config.grad_clip:
                        clip_grad_norm(model.parameters(), config.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                state["batches_done"] = index + 1
                state["examples_seen"] += global_count
                # The running loss stays a tensor: no host sync per step (a GPU keeps running ahead).
                value = loss.detach().double()
                smoothed = value if smoothed is None else smoothed * 0.9 + value * 0.1
                if not sync:
                    continue
                state["step"] += 1
                progress.update(1)
                if not progress.disable and time.perf_counter() - last_shown >= progress.mininterval:
                    last_shown = time.perf_counter()
                    elapsed = state["train_seconds"] + last_shown - started
                    speed = state["examples_seen"] / elapsed if elapsed > 0 else 0.0
                    # refresh=False: the bar redraws at its own interval (logs stay short).
                    progress.set_description(f"{description} epoch {state['epoch'] + 1} loss {float(smoothed):.4f} "
                                             f"{speed:.0f} ex/s", refresh=False)
                if logger and state["step"] % config.log_every == 0:
                    elapsed = state["train_seconds"] + time.perf_counter() - started
                    logger.log("train", state["step"], {"loss": float(smoothed), "lr": scheduler.get_last_lr()[0],
                                                        "examples_per_second": state["examples_seen"] / elapsed
                                                        if elapsed > 0 else 0.0})
                evaluating = bool(config.eval_every and state["step"] % config.eval_every == 0)
                interrupted = _any_process(stop_request.requested, processes)
                if evaluating or interrupted:
                    state["smoothed_loss"] = float(smoothed)
                if evaluating:
                    state["train_seconds"] += time.perf_counter() - started
                    stop = run_evaluations()
                    checkpoint()
                    started = time.perf_counter()
                if interrupted and not stop:
                    state["train_seconds"] += time.perf_counter() - started
                    _interrupt(checkpoint, progress, logger)
                if stop or state["step"] >= total_steps:
                    break
            state["train_seconds"] += time.perf_counter() - started
            if smoothed is not None:
                state["smoothed_loss"] = float(smoothed)
            epoch_finished = state["batches_done"] >= batches_per_epoch
            if epoch_finished:
                state["epoch"] += 1
                state["batches_done"] = 0
            if not stop and not config.eval_every and (epoch_finished or state["step"] >= total_steps):
                stop = run_evaluations()
            if stop or state["step"] >= total_steps:
                last_was_averaged = bool(state["history"]) and bool(state["history"][-1].get("averaged"))
                if config.average_last and not last_was_averaged:
                    evaluate_average(at_least=2)  # fewer than N evaluations kept: average what there is
                state["finished"] = True
            checkpoint()
            if _any_process(stop_request.requested, processes) and not state.get("finished"):
                _interrupt(checkpoint, progress, logger, saved=True)
    progress.close()
    if logger:
        logger.close()
    accelerator.wait_for_everyone()
    # The plain module again: no DDP wrapper, no autocast around forward (the kept model is float32).
    unwrapped = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if (run_dir / BEST_WEIGHTS).is_file():
        load_weights(unwrapped, run_dir / BEST_WEIGHTS)
    state["stopped_early"] = stop
    return _result(state)


def _batch_size(batch) -> int:
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    if isinstance(batch, (list, tuple)):
        batch = batch[0]
    return int(batch.shape[0]) if hasattr(batch, "shape") else len(batch)


def _to_device(batch, device: torch.device):
    if device.type == "cpu":
        return batch
    from accelerate.utils import send_to_device

    return send_to_device(batch, device)


def _share(batch_weight, batch, local_count: int, global_count: int, processes: int) -> float:
    """``N * local weight / global weight``: the factor that makes DDP's average of the processes'
    mean losses the mean loss of the whole global batch (zero for a process without an example)."""
    if batch_weight is None:
        return processes * local_count / global_count
    local = float(batch_weight(batch)) if local_count else 0.0
    total = sum_over_processes([local])[0]  # every process takes part, an empty one too
    return processes * local / total if total > 0 else 0.0


def _any_process(flag: bool, processes: int) -> bool:
    """True when any process has it set (Ctrl-C may reach only some of them)."""
    if processes == 1:
        return flag
    return sum_over_processes([float(flag)])[0] > 0


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
