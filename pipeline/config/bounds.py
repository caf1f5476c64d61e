"""Bounds stated next to the fields they bound, and the one check that enforces them.

A numeric field declares its range where it is defined:

    epochs: int = bounds.bounded(5, minimum=1)
    dropout: float = bounds.bounded(0.0, minimum=0, exclusive_maximum=1)

and the block's `__post_init__` calls `bounds.check(self, "train")`, which reports the first
value out of range as `train.epochs: must be >= 1 (got 0)`. Fields typed `Optional[...]` also accept
null, and their message says so (`must be > 0 or null`).
"""

import dataclasses
import typing
from typing import Optional

from pipeline.config import errors

_BOUNDS_KEY = "bounds"


@dataclasses.dataclass(frozen=True)
class Bounds:
    """An interval of admitted numbers; each end is inclusive, exclusive or open.

    Attributes:
        minimum: Smallest admitted value.
        maximum: Largest admitted value.
        exclusive_minimum: Values must be greater than this.
        exclusive_maximum: Values must be less than this.
    """

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: Optional[float] = None
    exclusive_maximum: Optional[float] = None

    def admits(self, value) -> bool:
        return ((self.minimum is None or value >= self.minimum)
                and (self.maximum is None or value <= self.maximum)
                and (self.exclusive_minimum is None or value > self.exclusive_minimum)
                and (self.exclusive_maximum is None or value < self.exclusive_maximum))

    def describe(self) -> str:
        """The interval in words: `>= 1`, `> 0`, `in [0, 1)`, `in (0, 1)`."""
        low = self.minimum if self.exclusive_minimum is None else self.exclusive_minimum
        high = self.maximum if self.exclusive_maximum is None else self.exclusive_maximum
        if low is not None and high is not None:
            opening = "(" if self.exclusive_minimum is not None else "["
            closing = ")" if self.exclusive_maximum is not None else "]"
            return f"in {opening}{low}, {high}{closing}"
        if low is not None:
            return f"> {low}" if self.exclusive_minimum is not None else f">= {low}"
        return f"< {high}" if self.exclusive_maximum is not None else f"<= {high}"


def bounded(default, *, minimum=None, maximum=None, exclusive_minimum=None, exclusive_maximum=None):
    """A dataclass field with this default whose values `check` keeps within the given bounds."""
    interval = Bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    return dataclasses.field(default=default, metadata={_BOUNDS_KEY: interval})


def of(field: dataclasses.Field) -> Optional[Bounds]:
    """The bounds a dataclass field declared with `bounded`, or None."""
    return field.metadata.get(_BOUNDS_KEY)


def check(block, path: str) -> None:
    """Raises ConfigError for the first field of the dataclass `block` whose value is out of its bounds.

    Args:
        block: A dataclass instance whose fields may carry bounds from `bounded`.
        path: Dotted path of the block in the run config, e.g. `model.encoder`; messages start with it.
    """
    for field in dataclasses.fields(block):
        interval = field.metadata.get(_BOUNDS_KEY)
        value = getattr(block, field.name)
        if interval is None or value is None or interval.admits(value):
            continue
        or_null = " or null" if type(None) in typing.get_args(field.type) else ""
        raise errors.ConfigError(f"{path}.{field.name}: must be {interval.describe()}{or_null} (got {value})")
