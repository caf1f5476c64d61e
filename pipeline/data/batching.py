"""Batching of variable-length examples: seeded shuffling, bucketing by length or padding, prefetch.

Two implementations of one contract (same batches per bucket, same batch count):

* in memory (`cache=True`, the default of every task): the vectorized split is held as (ragged) tensors and
  each epoch is planned with a handful of ops over example indices: shuffle, group by bucket, cut into
  batches, shuffle the batch order. A batch is then one gather and one pad. The per-example tf.data work of
  `bucket_by_sequence_length` (a shuffle-buffer step, a key function and a window reduction per example)
  disappears, which on a 2-core machine is CPU time the training step gets back.
* streaming (`cache=False`): `shuffle` with a buffer and `bucket_by_sequence_length`, for splits that
  should not be held in memory.

Shuffled orders follow one rule, so that a resumed run sees the batches the uninterrupted one saw: the k-th
pass over a training dataset (the k-th time it is iterated) has an order that depends only on the seed and
k, never on the process, and training reads its epochs through one iterator (`epochs_from`), so epoch k is
always pass k. Every shuffle of a training split goes through `shuffle_each_pass` (or, in memory, draws its
per-pass seed the same way).
"""

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


def bucket_ids(lengths: np.ndarray, boundaries: list[int] | None) -> np.ndarray:
    """The bucket of every example (all 0 without boundaries)."""
    if boundaries is None:
        return np.zeros(len(lengths), np.int64)
    return np.searchsorted(np.asarray(boundaries), np.asarray(lengths), side="right").astype(np.int64)


def count_batches(lengths: np.ndarray, batch_size: int, boundaries: list[int] | None) -> int:
    """Number of batches `batch_examples` yields: each bucket ends with its own partial batch."""
    if boundaries is None:
        return -(-len(lengths) // batch_size)
    counts = np.bincount(bucket_ids(lengths, boundaries), minlength=len(boundaries) + 1)
    return int(np.sum(-(-counts // batch_size)))


def batch_examples(dataset: tf.data.Dataset, *, lengths: np.ndarray | None, batch_size: int,
                   boundaries: list[int] | None, length_key: str = "token_ids", shuffle_buffer: int = 0,
                   seed: int | None = None, cache: bool = False) -> tf.data.Dataset:
    """Turns a dataset of (features dict of 1-D tensors, label) into padded batches.

    Args:
        dataset: Unbatched examples; `features[length_key]` is the sequence used for bucketing.
        lengths: Length of `features[length_key]` for every example, so that the number of batches
            is known up front (exact progress bars and schedules) and buckets are assigned without a pass;
            None for a stream read from files, whose batches are then not counted (streaming path).
        batch_size: Examples per batch.
        boundaries: Bucket boundaries from `bucket_boundaries`; None pads each batch to its longest
            example without bucketing.
        length_key: Feature whose length decides the bucket (streaming path).
        shuffle_buffer: 0 keeps the order (evaluation). Otherwise the order changes every epoch: in memory the
            whole split is shuffled; streaming shuffles with a buffer of this many examples.
        seed: Shuffle seed; the order changes on every pass, pass k's order depending only on (seed, k).
        cache: Hold the vectorized split in memory (vectorization then runs once) and batch by gathering.

    Returns:
        A prefetched dataset of (features dict of padded [batch, time] tensors, labels).
    """
    if lengths is None:  # a stream of unknown length: batched as it comes, never counted or cached
        return _streaming_batches(dataset, batch_size=batch_size, boundaries=boundaries, length_key=length_key,
                                  shuffle_buffer=shuffle_buffer, seed=seed).prefetch(tf.data.AUTOTUNE)
    lengths = np.asarray(lengths)
    if cache and len(lengths):
        dataset = _in_memory_batches(dataset, lengths=lengths, batch_size=batch_size, boundaries=boundaries,
                                     shuffle=shuffle_buffer > 0, seed=seed)
    else:
        dataset = _streaming_batches(dataset, batch_size=batch_size, boundaries=boundaries,
                                     length_key=length_key, shuffle_buffer=shuffle_buffer, seed=seed)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(
        count_batches(lengths, batch_size, boundaries)))
    return dataset.prefetch(tf.data.AUTOTUNE)


def shuffle_each_pass(dataset: tf.data.Dataset, *, buffer_size: int, seed: int) -> tf.data.Dataset:
    """Shuffles with a buffer of `buffer_size` elements, in a new order on every pass over the dataset.

    The order of pass k depends only on (`seed`, k): a fresh process iterating the dataset k times sees the
    same k orders. `epochs_from` relies on it to resume a run in the middle of its epochs.
    """
    if seed is None:
        raise ValueError("shuffle_each_pass: a seed is required (runtime.seed)")
    return dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)


def epochs_from(dataset: tf.data.Dataset, *, first_epoch: int, batches_per_epoch: int) -> tf.data.Dataset:
    """Epochs `first_epoch`, `first_epoch + 1`, ... of training, as one endless dataset.

    Epoch e is batches [e * batches_per_epoch, (e + 1) * batches_per_epoch) of the passes over `dataset`
    laid end to end; with `batches_per_epoch` equal to the length of a pass, epoch e is pass e. The
    finished epochs are skipped rather than dropped from the sequence, so that their passes still advance
    the per-pass shuffles (`shuffle_each_pass`): the epochs that follow are those of an uninterrupted run.
    Skipping runs the input pipeline of the finished epochs (gathering batches, no training).

    Args:
        dataset: One pass of the training data, reshuffled on each pass.
        first_epoch: Epochs already trained (0 for a fresh run).
        batches_per_epoch: Training steps per epoch.
    """
    return dataset.repeat().skip(first_epoch * batches_per_epoch)


def _streaming_batches(dataset: tf.data.Dataset, *, batch_size: int, boundaries: list[int] | None,
                       length_key: str, shuffle_buffer: int, seed: int | None) -> tf.data.Dataset:
    if shuffle_buffer:
        dataset = shuffle_each_pass(dataset, buffer_size=shuffle_buffer, seed=seed)
    if boundaries is None:
        return dataset.padded_batch(batch_size)
    return dataset.bucket_by_sequence_length(
        element_length_func=lambda features, label: tf.shape(features[length_key])[0],
        bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1))


def _in_memory_batches(dataset: tf.data.Dataset, *, lengths: np.ndarray, batch_size: int,
                       boundaries: list[int] | None, shuffle: bool, seed: int | None) -> tf.data.Dataset:
    """Batches planned per epoch over example indices, then gathered from the split held in memory."""
    examples = dataset.ragged_batch(len(lengths)).get_single_element()
    plan = _BatchPlan(bucket_ids(lengths, boundaries), batch_size)
    if shuffle:
        # One fresh random seed per pass over the dataset: pass k draws the k-th (see `shuffle_each_pass`).
        epoch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        batches = epoch_seeds.flat_map(lambda epoch_seed: tf.data.Dataset.from_tensor_slices(
            plan.shuffled(epoch_seed)))
    else:
        batches = tf.data.Dataset.from_tensor_slices(plan.in_order())
    return batches.map(lambda indices: tf.nest.map_structure(lambda values: _gather_padded(values, indices),
                                                             examples),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class _BatchPlan:
    """Cuts example indices into batches that never mix buckets; each bucket ends with its own partial batch.

    Args:
        buckets: Bucket id of every example.
        batch_size: Examples per batch.
    """

    def __init__(self, buckets: np.ndarray, batch_size: int):
        counts = np.bincount(buckets)
        batches_per_bucket = -(-counts // batch_size)
        self.num_examples = len(buckets)
        self.num_batches = int(batches_per_bucket.sum())
        self.batch_size = batch_size
        self.buckets = tf.constant(buckets, tf.int64)
        self.bucket_starts = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]), tf.int64)
        self.bucket_first_batch = tf.constant(np.concatenate([[0], np.cumsum(batches_per_bucket)[:-1]]), tf.int64)

    def in_order(self) -> tf.RaggedTensor:
        """Batches of example indices [batches, (examples)], buckets in order, examples in order within."""
        order = tf.argsort(self.buckets, stable=True)
        return self._cut(tf.cast(order, tf.int64))

    def shuffled(self, epoch_seed: tf.Tensor) -> tf.RaggedTensor:
        """A random permutation cut into batches, the batch order shuffled too, all fixed by `epoch_seed`."""
        seed = tf.stack([epoch_seed, tf.constant(0, tf.int64)])
        permutation = tf.argsort(tf.random.stateless_uniform([self.num_examples], seed=seed))
        grouped = tf.gather(permutation, tf.argsort(tf.gather(self.buckets, permutation), stable=True))
        batches = self._cut(tf.cast(grouped, tf.int64))
        batch_seed = tf.stack([epoch_seed, tf.constant(1, tf.int64)])
        return tf.gather(batches, tf.argsort(tf.random.stateless_uniform([self.num_batches], seed=batch_seed)))

    def _cut(self, grouped: tf.Tensor) -> tf.RaggedTensor:
        """Example indices grouped by bucket -> batches [batches, (examples)]."""
        buckets = tf.gather(self.buckets, grouped)
        rank_in_bucket = tf.range(self.num_examples, dtype=tf.int64) - tf.gather(self.bucket_starts, buckets)
        batch_ids = tf.gather(self.bucket_first_batch, buckets) + rank_in_bucket // self.batch_size
        return tf.RaggedTensor.from_value_rowids(grouped, batch_ids, nrows=self.num_batches)


def _gather_padded(values, indices: tf.Tensor) -> tf.Tensor:
    """Rows `indices` of a (ragged) tensor, ragged dimensions padded with zeros / empty strings."""
    rows = tf.gather(values, indices)
    return rows.to_tensor() if isinstance(rows, tf.RaggedTensor) else rows
