from collections import Counter

from encoderkit.data.batching import LengthBucketSampler, pad_batch
from encoderkit.data.readers import Example
from encoderkit.data.splits import stratified_split


def test_pad_batch_mask_marks_real_tokens():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]


def test_bucket_sampler_covers_every_index_once_and_groups_lengths():
    lengths = [(i * 37) % 50 + 1 for i in range(1000)]
    sampler = LengthBucketSampler(lengths, batch_size=16, seed=3)
    batches = list(sampler)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    assert len(batches) == len(sampler)
    # Padding waste is far below that of random batches.
    waste = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert waste < 0.1 * sum(lengths)


def test_bucket_sampler_is_seeded_per_epoch():
    lengths = list(range(1, 200))
    sampler = LengthBucketSampler(lengths, batch_size=8, seed=1)
    first = list(sampler)
    assert first == list(sampler)  # same epoch, same order (resume relies on it)
    sampler.set_epoch(1)
    assert first != list(sampler)


def test_stratified_split_keeps_proportions():
    examples = [Example(f"t{i}", ("a" if i % 4 else "b",)) for i in range(400)]
    train, validation = stratified_split(examples, 0.25, seed=0)
    assert len(validation) == 100 and len(train) == 300
    assert Counter(e.label for e in validation) == {"a": 75, "b": 25}
    assert stratified_split(examples, 0.25, seed=0)[1] == validation
