"""Split helpers shared by every task's data: the split container and a seeded validation carve."""

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


@dataclasses.dataclass(frozen=True)
class SplitSet:
    """Named splits ("train", "validation", optionally "test"), each with a `skipped_rows` count."""

    splits: dict[str, typing.Any]

    @property
    def skipped_rows(self) -> dict[str, int]:
        """Malformed rows skipped per split (explicit `data.on_bad_rows: skip`), for metrics.json."""
        return {name: split.skipped_rows for name, split in self.splits.items()}
