"""Bounds stated next to the fields they bound, the one check that enforces them, and the error it raises.

A numeric field declares its range where it is defined:

    epochs: int = validation.bounded(5, minimum=1)
    dropout: float = validation.bounded(0.0, minimum=0, exclusive_maximum=1)

and the block's `__post_init__` calls `validation.check_fields(self, "train")`, which reports the first
value out of range as `train.epochs: must be >= 1 (got 0)`. Fields typed `Optional[...]` also accept
null, and their message says so (`must be > 0 or null`).
"""

import dataclasses
import difflib
import typing
from typing import Optional

_BOUNDS_KEY = "bounds"


class ConfigError(ValueError):
    """A configuration that cannot be run: unknown key, wrong type, bad value or impossible combination."""


def did_you_mean(word, choices: typing.Iterable[str]) -> str:
    """` Did you mean 'x'?` for the choice closest to `word`, or "" when none is close."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def choice_error(path: str, value, choices: typing.Sequence) -> ConfigError:
    """The error for a value outside a fixed set: `path: 'x' is not one of [...]. Did you mean ...?`."""
    return ConfigError(f"{path}: {value!r} is not one of {list(choices)}."
                       + did_you_mean(value, [str(choice) for choice in choices]))


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
    """A dataclass field with this default whose values `check_fields` keeps within the given bounds."""
    bounds = Bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    return dataclasses.field(default=default, metadata={_BOUNDS_KEY: bounds})


def check_fields(block, path: str) -> None:
    """Raises ConfigError for the first field of the dataclass `block` whose value is out of its bounds.

    Args:
        block: A dataclass instance whose fields may carry bounds from `bounded`.
        path: Dotted path of the block in the run config, e.g. `model.encoder`; messages start with it.
    """
    for field in dataclasses.fields(block):
        bounds = field.metadata.get(_BOUNDS_KEY)
        value = getattr(block, field.name)
        if bounds is None or value is None or bounds.admits(value):
            continue
        nullable = type(None) in typing.get_args(field.type)
        raise ConfigError(f"{path}.{field.name}: must be {bounds.describe()}{' or null' if nullable else ''} "
                          f"(got {value})")


def check_name(value: str, path: str) -> None:
    """Raises ConfigError unless `value` is a non-empty name without '/', usable as a folder name."""
    if not value or "/" in value:
        raise ConfigError(f"{path}: must be a non-empty name without '/' (got {value!r})")
