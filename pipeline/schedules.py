"""Learning-rate schedules of `train.learning_rate_schedule` that Keras does not have."""

import math

import keras
from keras import ops


class SlantedTriangular(keras.optimizers.schedules.LearningRateSchedule):
    """ULMFiT's slanted triangular learning rate (Howard & Ruder 2018, equation 3).

    Rises linearly from `peak_learning_rate / ratio` at step 0 to `peak_learning_rate` at step
    `floor(warmup_fraction * total_steps)`, then falls linearly back to `peak_learning_rate / ratio` at step
    `total_steps`, and stays there. A pure function of the optimizer step, so a resumed run continues it
    exactly.

    Args:
        peak_learning_rate: The largest learning rate, reached at the end of the rise.
        total_steps: Training steps of the whole run.
        warmup_fraction: Share of `total_steps` the rise takes (ULMFiT's `cut_frac`), in (0, 1).
        ratio: How many times smaller than the peak the first and last learning rates are, >= 1.
        name: Name scope of the schedule's ops.

    Example:
        >>> schedule = SlantedTriangular(0.01, total_steps=100)
        >>> [round(float(schedule(step)), 6) for step in (0, 10, 100)]
        [0.0003125, 0.01, 0.0003125]
    """

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_fraction: float = 0.1,
                 ratio: float = 32.0, name: str = "slanted_triangular"):
        super().__init__()
        if total_steps < 1:
            raise ValueError(f"total_steps: must be >= 1 (got {total_steps})")
        if not 0 < warmup_fraction < 1:
            raise ValueError(f"warmup_fraction: must be in (0, 1) (got {warmup_fraction})")
        if ratio < 1:
            raise ValueError(f"ratio: must be >= 1 (got {ratio})")
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = total_steps
        self.warmup_fraction = warmup_fraction
        self.ratio = ratio
        self.name = name

    @property
    def rise_steps(self) -> int:
        """Steps of the linear rise (ULMFiT's `cut`); the fall takes the other `total_steps - rise_steps`."""
        return math.floor(self.warmup_fraction * self.total_steps)

    def __call__(self, step):
        with keras.name_scope(self.name):
            step = ops.cast(step, "float32")
            rise_steps = float(self.rise_steps)
            rising = step / max(rise_steps, 1.0)
            falling = 1.0 - (step - rise_steps) / (self.total_steps - rise_steps)
            # 0 at the first and last steps, 1 at the peak.
            fraction = ops.where(step < rise_steps, rising, ops.maximum(falling, 0.0))
            return self.peak_learning_rate * (1.0 + fraction * (self.ratio - 1.0)) / self.ratio

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_fraction": self.warmup_fraction,
            "ratio": self.ratio,
            "name": self.name,
        }
