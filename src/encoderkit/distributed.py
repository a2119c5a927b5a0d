"""Several processes, one result: global batches, sharded evaluation, main-process-only writing.

Launched by ``torchrun --nproc-per-node N -m encoderkit train CONFIG`` or ``accelerate launch -m
encoderkit train CONFIG``, every process runs the same program; ``torch.distributed`` (initialised
by Accelerate) connects them. The rules every task follows, with the helpers that enforce them:

- ``train.batch_size`` is the **global** batch. ``ShardedBatchSampler`` gives process r the r-th
  contiguous slice of each global batch (the slices differ by at most one example), so the same
  examples meet in one optimizer step whatever N is. A batch size that N does not divide is refused.
- Only the main process touches the run directory (``is_main_process``); the others wait at a
  ``barrier`` and read what it wrote.
- Evaluation inside ``sharded_evaluation()`` spreads its batches over the processes
  (``map_shards``: batch i goes to process i mod N) and gathers the results back into batch order on
  every process, so each example is scored exactly once and every process sees the whole split.
  Outside that block (a user calling ``predict`` in one process) nothing is sharded.

Everything here degrades to plain single-process behaviour when no process group is initialised.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from encoderkit.errors import ConfigError

T = TypeVar("T")

_SHARDING = contextvars.ContextVar("encoderkit_sharded_evaluation", default=False)


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if is_distributed():
        dist.barrier()


def init_from_environment(cpu: bool) -> None:
    """Join the process group a launcher (torchrun, accelerate launch) describes in the environment.

    Accelerate's ``PartialState`` reads the launcher's variables and picks the backend (gloo on CPU,
    nccl on GPUs); in a plain ``python`` run it sets up nothing.
    """
    from accelerate import PartialState

    PartialState(cpu=cpu)


def on_main_process(compute: Callable[[], T]) -> T:
    """Run ``compute`` on the main process only and give every process its result.

    An exception raised there is raised on every process too (the others would otherwise wait
    forever for a main process that has stopped), so a refused run directory or a bad tokenizer
    setting ends every process with the same one-line error.
    """
    if not is_distributed():
        return compute()
    outcome: tuple[bool, object] = (True, None)
    if is_main_process():
        try:
            outcome = (True, compute())
        except Exception as error:  # noqa: BLE001 - re-raised below, on every process
            outcome = (False, error)
    ok, value = broadcast_object(outcome)
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


def check_batch_divides(batch_size: int, processes: int | None = None, what: str = "train.batch_size") -> None:
    """The global batch must split evenly over the processes (one line naming both numbers)."""
    processes = world_size() if processes is None else processes
    if processes > 1 and batch_size % processes:
        raise ConfigError(f"{what}={batch_size} is the global batch and must divide by the {processes} processes; "
                          f"use a multiple of {processes} (e.g. {batch_size - batch_size % processes or processes})")


def shard_bounds(size: int, shards: int, index: int) -> tuple[int, int]:
    """``[start, end)`` of slice ``index`` when ``size`` items are cut into ``shards`` contiguous slices
    whose sizes differ by at most one (the first ``size % shards`` slices hold the extra item)."""
    base, extra = divmod(size, shards)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


class ShardedBatchSampler(Sampler[list[int]]):
    """This process's slice of each global batch of ``sampler``; ``skip`` global batches are passed over.

    Every process yields exactly ``len(sampler)`` batches (DDP needs each one in every step). A global
    batch smaller than the number of processes leaves some processes no example: they get the batch's
    first example with ``weights[i] == 0`` recorded, and the loop scales their loss to zero.
    ``set_epoch`` is passed on, so the global order is a function of (seed, epoch) as before.
    """

    def __init__(self, sampler, shards: int, index: int):
        self.sampler = sampler
        self.shards = shards
        self.index = index
        self.skip = 0
        #: Per yielded batch: the number of real examples of this process, and of the global batch.
        self.counts: list[tuple[int, int]] = []

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        self.counts = []
        for position, batch in enumerate(self.sampler):
            if position < self.skip:
                continue
            start, end = shard_bounds(len(batch), self.shards, self.index)
            local = list(batch[start:end])
            self.counts.append((len(local), len(batch)))
            yield local or list(batch[:1])


# -- sharded evaluation --------------------------------------------------------------------------


@contextlib.contextmanager
def sharded_evaluation(enabled: bool = True):
    """Inside this block ``map_shards`` spreads work over the processes (when there are several)."""
    token = _SHARDING.set(enabled)
    try:
        yield
    finally:
        _SHARDING.reset(token)


def sharding_active() -> bool:
    return _SHARDING.get() and is_distributed()


def map_shards(count: int, compute: Callable[[int], T]) -> list[T]:
    """``[compute(i) for i in range(count)]``, in order, on every process.

    Inside ``sharded_evaluation()`` with several processes, process r computes the items i with
    ``i % N == r`` and the results are gathered (``all_gather_object``) back into order, so every
    item is computed exactly once however uneven the split. Results must be picklable (CPU tensors,
    arrays, numbers); keep them small, they travel to every process.
    """
    if not sharding_active():
        return [compute(i) for i in range(count)]
    processes, me = world_size(), rank()
    mine = [compute(i) for i in range(me, count, processes)]
    gathered: list[list[T] | None] = [None] * processes
    dist.all_gather_object(gathered, mine)
    results: list[T] = [None] * count  # type: ignore[list-item]
    for source, values in enumerate(gathered):
        results[source::processes] = values  # type: ignore[index]
    return results


def sum_over_processes(values: Sequence[float]) -> list[float]:
    """Element-wise sums of ``values`` over all processes (a single process gets them back)."""
    if not is_distributed():
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_objects(value: T) -> list[T]:
    """One picklable value from every process, in process order (``[value]`` in a single process)."""
    if not is_distributed():
        return [value]
    gathered: list[T | None] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered  # type: ignore[return-value]


def broadcast_object(value: T) -> T:
    """The main process's ``value`` on every process."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# -- one process reads and writes, all of them compute ------------------------------------------


class _SharedCalls:
    """``target`` on the main process, whose method calls every process joins (see ``share_work``)."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name: str):
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            # Callables (a progress bar's callback) stay here; the helpers run without them.
            plain = {key: (None if callable(value) else value) for key, value in kwargs.items()}
            broadcast_object((name, args, plain))
            with sharded_evaluation():
                return attribute(*args, **kwargs)

        return call


def share_work(target, work: Callable[[object], T]) -> T | None:
    """Run ``work(target)`` on the main process while every process shares its computation.

    The main process alone reads the input and writes the output (``encoderkit embed``, ``index
    build``); each call it makes on ``target`` (e.g. ``encode(texts)``) is sent to the other
    processes, which run it too, so that inside it ``map_shards`` gives each process every N-th
    batch and the results come back merged in input order. The other processes return None.
    In a single process this is just ``work(target)``.
    """
    if not is_distributed():
        return work(target)
    if is_main_process():
        try:
            return work(_SharedCalls(target))
        finally:
            broadcast_object(None)  # the helpers stop, also when work failed
    while (request := broadcast_object(None)) is not None:
        name, args, kwargs = request
        with sharded_evaluation():
            getattr(target, name)(*args, **kwargs)
    return None


def close_process_group() -> None:
    """Leave the process group together: wait for every process, then tear it down. Processes that
    simply exit while gloo's threads still run can abort ("terminate called without an active
    exception"); the command line calls this when a command has finished."""
    if dist.is_available() and dist.is_initialized():
        barrier()
        dist.destroy_process_group()
