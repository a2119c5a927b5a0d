"""Seeded, stratified train/validation splits carved from the training file."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.model_selection import train_test_split

from encoderkit.data.readers import Example


def stratified_split(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split off ``fraction`` of ``examples`` as validation, keeping label proportions.

    Multi-label examples are stratified on their first label; classes too rare to stratify
    (fewer than two examples) fall back to a plain seeded shuffle split.
    """
    strata = [example.labels[0] if example.labels else "" for example in examples]
    counts: dict[str, int] = {}
    for label in strata:
        counts[label] = counts.get(label, 0) + 1
    stratify = strata if min(counts.values()) >= 2 else None
    train, validation = train_test_split(
        list(examples), test_size=fraction, random_state=seed, stratify=stratify
    )
    return list(train), list(validation)
