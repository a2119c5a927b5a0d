"""Length-bucketed batches with dynamic padding and a boolean mask.

Sorting examples of similar length into the same batch cuts padding (and so compute) several
fold on real text; shuffling the buckets keeps the order random across an epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBucketSampler(Sampler[list[int]]):
    """Yield batches of indices whose lengths are close.

    Indices are shuffled, cut into pools of ``batch_size * bucket_factor``, each pool is sorted by
    length and cut into batches, and the batches are shuffled. Seeded per epoch for reproducibility.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, bucket_factor: int = 50):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_factor = bucket_factor
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        indices = list(range(len(self.lengths)))
        if not self.shuffle:
            indices.sort(key=lambda i: self.lengths[i])
            return [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        rng = random.Random(self.seed + self.epoch)
        rng.shuffle(indices)
        pool = self.batch_size * self.bucket_factor
        batches = []
        for start in range(0, len(indices), pool):
            chunk = sorted(indices[start : start + pool], key=lambda i: self.lengths[i])
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


class TokenBudgetSampler(Sampler[list[int]]):
    """Batches holding at most ``max_tokens`` tokens, padding included (fairseq's ``--max-tokens``).

    Examples are sorted by length (ties in a seeded random order) and cut greedily into batches
    while ``batch size * longest length <= max_tokens``, so each batch holds sentences of nearly one
    length (a length bucket) and short sentences come many to a batch, long ones few. The batches
    are formed once; each epoch shuffles their order (seeded by ``seed + epoch``), so the number of
    batches per epoch never changes (the training loop and exact resume count on it).

    Args:
        lengths: the length of each example: for pairs, the longer side's token count, since the
            budget holds for each side of a batch.
        max_tokens: the budget; an example longer than it gets a batch of its own.
        shuffle: shuffle the batch order each epoch (training); else batches come shortest first.
        seed: seeds the tie order and the epoch shuffles.
        secondary: an optional second sort key per example (e.g. the target length).
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, *, shuffle: bool = True, seed: int = 0,
                 secondary: Sequence[int] | None = None):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.lengths = list(lengths)
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        ties = list(range(len(self.lengths)))
        random.Random(seed).shuffle(ties)
        rank = {index: position for position, index in enumerate(ties)}
        second = list(secondary) if secondary is not None else [0] * len(self.lengths)
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], second[i], rank[i]))
        self.batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for index in order:
            grown = max(longest, self.lengths[index])
            if batch and grown * (len(batch) + 1) > max_tokens:
                self.batches.append(batch)
                batch, grown = [], self.lengths[index]
            batch.append(index)
            longest = grown
        if batch:
            self.batches.append(batch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        batches = list(self.batches)
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return len(self.batches)


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences to the longest one.

    Returns:
        ids (B,T) long and mask (B,T) bool, True at real tokens.
    """
    longest = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.bool)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = True
    return ids, mask


class NoDuplicatesBatchSampler(Sampler[list[int]]):
    """Shuffled batches in which no text occurs twice (retrieval training with in-batch negatives).

    A text repeated in a batch is both a positive and a negative of the same query, so the loss
    pushes a query away from its own answer (sentence-transformers#3189). Each example brings its
    texts (query, positive, negatives). The shuffled examples are dealt round-robin into
    ``ceil(N / batch_size)`` batches; an example whose text is already in its batch goes to the next
    batch with room and no such text (first fit), so repeated texts spread over the epoch. The same (seed, epoch) gives the
    same batches, so resuming inside an epoch replays it exactly. An example that fits no batch (a
    text repeated more often than there are batches) sits out that epoch; ``skipped`` counts them.
    """

    def __init__(self, texts: Sequence[Sequence[str]], batch_size: int, *, seed: int = 0):
        self.keys = [frozenset(example) for example in texts]
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        order = list(range(len(self.keys)))
        random.Random(self.seed + self.epoch).shuffle(order)
        count = len(self)
        room = [self.batch_size] * count
        if count:
            room[-1] = len(order) - self.batch_size * (count - 1)
        batches: list[list[int]] = [[] for _ in range(count)]
        texts: list[set] = [set() for _ in range(count)]
        left_over = []
        for position, index in enumerate(order):
            keys = self.keys[index]
            for attempt in range(count):  # its own batch first, then the next ones with room
                target = (position + attempt) % count
                if room[target] and not keys & texts[target]:
                    batches[target].append(index)
                    texts[target] |= keys
                    room[target] -= 1
                    break
            else:
                left_over.append(index)
        # What fits nowhere may still fit by a swap: move some example y from batch b into a batch
        # with room (and none of y's texts), then put the left-over example into b in its place.
        self.skipped = 0
        for index in left_over:
            if not self._swap_in(index, batches, texts, room):
                self.skipped += 1
        return batches

    def _swap_in(self, index: int, batches: list[list[int]], texts: list[set], room: list[int]) -> bool:
        keys = self.keys[index]
        for hole in (b for b in range(len(batches)) if room[b]):
            for b, batch in enumerate(batches):
                if b == hole:
                    continue
                for slot, other in enumerate(batch):
                    moved = self.keys[other]
                    if moved & texts[hole] or keys & (texts[b] - moved):
                        continue
                    batch[slot] = index
                    texts[b] = (texts[b] - moved) | keys
                    batches[hole].append(other)
                    texts[hole] |= moved
                    room[hole] -= 1
                    return True
        return False

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return (len(self.keys) + self.batch_size - 1) // self.batch_size
