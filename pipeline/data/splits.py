"""Split helpers shared by every task's data: a seeded validation split carved from train."""

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
