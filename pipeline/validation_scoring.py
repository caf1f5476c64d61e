"""The validation scorer: the task's own scores (BLEU, CIDEr-D, span F1) computed while training.

Keras computes `val_loss` and the compiled metrics; users choose models by what the task is for. Every
`train.validation_every` epochs (and after the last) `ValidationScorer` asks the task's
`validation_scores` hook for scores on a subset of the validation split and adds them to the epoch's
logs as `val_<name>`, before the callbacks that read the logs: the best checkpoint, early stopping,
`history.csv` and TensorBoard's scalars all see them. On the other epochs they are NaN, so the history
keeps the same columns. A few sample outputs go to TensorBoard as text.
"""

import logging
import math
import os
import typing

import keras
import tensorflow as tf

from pipeline.tasks import base

logger = logging.getLogger(__name__)

_LOWER_IS_BETTER = ("loss", "perplexity")


def monitor_mode(monitor: str) -> str:
    """`min` for losses and perplexities, `max` for every other monitor (accuracy, BLEU, CIDEr-D, F1)."""
    return "min" if monitor.endswith(_LOWER_IS_BETTER) else "max"


def best_value(values: typing.Iterable[float], monitor: str) -> typing.Optional[float]:
    """The best of `values` for `monitor`, NaN (an epoch not scored) ignored; None when there is none."""
    numbers = [value for value in values if not math.isnan(value)]
    if not numbers:
        return None
    return min(numbers) if monitor_mode(monitor) == "min" else max(numbers)


def spread_batches(dataset: tf.data.Dataset, examples: int, batch_size: int) -> tf.data.Dataset:
    """At most `examples // batch_size` batches (at least one), picked evenly along the dataset: batches
    come bucket after bucket, so every length bucket is represented."""
    batches = int(dataset.cardinality())
    wanted = max(1, examples // batch_size)
    if batches < 0 or batches <= wanted:
        return dataset
    kept = tf.constant(sorted({index * batches // wanted for index in range(wanted)}), tf.int64)
    return dataset.enumerate().filter(lambda index, batch: tf.reduce_any(tf.equal(index, kept))).map(
        lambda index, batch: batch)


class ValidationScorer(keras.callbacks.Callback):
    """Adds the task's validation scores to the logs of every `every`-th epoch and of the last.

    Args:
        score: () -> the task's `ValidationScores` for the current weights (or None: no scorer).
        names: The `val_<name>` keys it fills (NaN on epochs not scored), known before the first pass so
            that `history.csv` has its columns from the first epoch on.
        every: Epochs between passes.
        log_dir: TensorBoard directory for the sample outputs (text), or None.
    """

    def __init__(self, score: typing.Callable[[], typing.Optional[base.ValidationScores]],
                 names: typing.Sequence[str], every: int, log_dir: typing.Optional[str] = None):
        super().__init__()
        self.score = score
        self.names = tuple(names)
        self.every = every
        self.log_dir = log_dir
        self._writer = None

    def due(self, epoch: int) -> bool:
        """Whether epoch `epoch` (0-based) is scored: every `every`-th, and the last of the run."""
        return (epoch + 1) % self.every == 0 or epoch + 1 == self.params.get("epochs")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs.update({name: math.nan for name in self.names})
        if not self.due(epoch):
            return
        result = self.score()
        if result is None:
            return
        scores = {f"val_{name}": float(value) for name, value in result.scores.items()}
        unknown = sorted(set(scores) - set(self.names))
        if unknown:
            raise ValueError(f"validation scorer: {unknown} not among the task's scored monitors {list(self.names)}")
        logs.update(scores)
        logger.info("epoch %d validation scores: %s", epoch + 1,
                    ", ".join(f"{name}={value:.2f}" for name, value in scores.items()))
        self._write_samples(result.samples, epoch)

    def _write_samples(self, samples: list[dict[str, str]], epoch: int) -> None:
        if not self.log_dir or not samples:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        columns = list(samples[0])
        lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(str(sample.get(column, "")).replace("|", "\\|") for column in columns) + " |"
                  for sample in samples]
        with self._writer.as_default():
            tf.summary.text("validation_samples", "\n".join(lines), step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def make_scorer(task: base.Task, model: keras.Model, dataset: tf.data.Dataset, preprocessing: base.Preprocessing,
                run_dir: str) -> typing.Optional[ValidationScorer]:
    """The scorer callback for a run, or None when `train.validation_every` is 0 or the task scores nothing."""
    train = task.train_config
    names = tuple(task.schema.scored_monitors)
    if not train.validation_every or not names:
        return None
    subset = spread_batches(dataset, train.validation_examples, train.batch_size)
    return ValidationScorer(lambda: task.validation_scores(model, subset, preprocessing), names,
                            every=train.validation_every,
                            log_dir=os.path.join(run_dir, "logs", "tensorboard", "validation_samples"))
