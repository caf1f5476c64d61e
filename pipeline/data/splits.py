"""Split helpers shared by every task's data: the split container, training-split check, seeded validation carve."""

import dataclasses
import typing

import numpy as np

from pipeline.data import files


def carve_validation(count: int, fraction: float, seed: int, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Picks validation rows from `count` training rows, seeded; both index arrays come back sorted.

    Raises:
        files.DataError: Too few training rows to leave some for each split.
    """
    order = np.random.default_rng(seed).permutation(count)
    validation_count = max(1, int(round(fraction * count)))
    if validation_count >= count:
        raise files.DataError(f"{origin}: too few training examples ({count}) to carve a validation split; "
                              "give data.validation")
    return np.sort(order[validation_count:]), np.sort(order[:validation_count])


def require_training_examples(splits: dict, source: str, contents: str) -> None:
    """Checks that the splits read from `source` include a training split with at least one example.

    Args:
        splits: Split name -> split; every split supports `len()`.
        source: The configured `data.source`, which the message starts with.
        contents: What a training example is, for the message ("sentences", "sentence pairs").

    Raises:
        files.DataError: `<source>: the training split has no <contents>`.
    """
    if "train" not in splits or not len(splits["train"]):
        raise files.DataError(f"{source}: the training split has no {contents}")


@dataclasses.dataclass(frozen=True)
class SplitSet:
    """Named splits ("train", "validation", optionally "test"), each with a `skipped_rows` count."""

    splits: dict[str, typing.Any]

    @property
    def skipped_rows(self) -> dict[str, int]:
        """Malformed rows skipped per split (explicit `data.on_bad_rows: skip`), for metrics.json."""
        return {name: split.skipped_rows for name, split in self.splits.items()}


def with_validation(splits: dict, fraction: float, seed: int,
                    take: typing.Callable[[typing.Any, np.ndarray, str, int], typing.Any]) -> dict:
    """Returns the splits with a validation split carved from train (seeded) when none was given.

    Args:
        splits: Split name -> split; every split supports `len()` and has `origin` and `skipped_rows`.
        fraction: Share of the training rows that becomes validation.
        seed: Seed of the carve.
        take: `take(split, rows, origin, skipped_rows)` returns a split of the same kind with those rows.
    """
    if "validation" in splits:
        return splits
    train = splits["train"]
    train_rows, validation_rows = carve_validation(len(train), fraction, seed, train.origin)
    return {**splits,
            "train": take(train, train_rows, train.origin, train.skipped_rows),
            "validation": take(train, validation_rows, f"{train.origin} (validation carved from train)", 0)}
