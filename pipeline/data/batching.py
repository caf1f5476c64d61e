"""Batching of variable-length examples: seeded shuffling, bucketing by length or padding, prefetch."""

import numpy as np
import tensorflow as tf


def bucket_boundaries(lengths: np.ndarray, num_buckets: int) -> list[int]:
    """Length boundaries at evenly spaced quantiles of the training lengths.

    Args:
        lengths: Token counts of the training examples.
        num_buckets: Wanted number of buckets; fewer come back when lengths repeat.

    Returns:
        Strictly increasing exclusive upper bounds for all buckets but the last (may be empty).
    """
    if num_buckets <= 1 or len(lengths) == 0:
        return []
    quantiles = np.quantile(lengths, np.linspace(0, 1, num_buckets + 1)[1:-1])
    return sorted({int(value) + 1 for value in quantiles})


def count_batches(lengths: np.ndarray, batch_size: int, boundaries: list[int] | None) -> int:
    """Number of batches `batch_examples` yields: each bucket ends with its own partial batch."""
    if boundaries is None:
        return -(-len(lengths) // batch_size)
    buckets = np.searchsorted(np.asarray(boundaries), np.asarray(lengths), side="right")
    counts = np.bincount(buckets, minlength=len(boundaries) + 1)
    return int(np.sum(-(-counts // batch_size)))


def batch_examples(dataset: tf.data.Dataset, *, lengths: np.ndarray, batch_size: int,
                   boundaries: list[int] | None, length_key: str = "token_ids", shuffle_buffer: int = 0,
                   seed: int | None = None, cache: bool = False) -> tf.data.Dataset:
    """Turns a dataset of (features dict of 1-D tensors, label) into padded batches.

    Args:
        dataset: Unbatched examples; `features[length_key]` is the sequence used for bucketing.
        lengths: Length of `features[length_key]` for every example, so that the number of batches
            is known up front (exact progress bars and schedules).
        batch_size: Examples per batch.
        boundaries: Bucket boundaries from `bucket_boundaries`; None pads each batch to its longest
            example without bucketing.
        length_key: Feature whose length decides the bucket.
        shuffle_buffer: Shuffle with this buffer (0 keeps the order, for evaluation).
        seed: Shuffle seed; the order changes every epoch but repeats across runs.
        cache: Cache examples in memory before shuffling (vectorization then runs once).

    Returns:
        A prefetched dataset of (features dict of padded [batch, time] tensors, labels).
    """
    if cache:
        dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if boundaries is None:
        dataset = dataset.padded_batch(batch_size)
    else:
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda features, label: tf.shape(features[length_key])[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(
        count_batches(lengths, batch_size, boundaries)))
    return dataset.prefetch(tf.data.AUTOTUNE)
