"""Progress bars for long loops (evaluation, decoding, feature caching, predict), shown only on a terminal.

In CI logs, pipes and notebooks' captured output the loops run silently, so the logs stay readable.
"""

import sys
import typing

import tqdm

Item = typing.TypeVar("Item")


def on_terminal() -> bool:
    """Whether progress bars are drawn: stderr, where they go, is a terminal."""
    return sys.stderr.isatty()


def bar(iterable: typing.Iterable[Item], description: str, total: typing.Optional[int] = None,
        unit: str = "batch") -> typing.Iterable[Item]:
    """`iterable`, with a progress bar on stderr when it is a terminal (the iterable itself otherwise).

    Args:
        iterable: The loop's items.
        description: What the loop does, e.g. "evaluating test".
        total: Number of items when `len(iterable)` does not give it (None: unknown, no percentage).
        unit: What one item is.
    """
    if not on_terminal():
        return iterable
    if total is None:
        total = _length(iterable)
    return tqdm.tqdm(iterable, desc=description, total=total, unit=unit, leave=False, dynamic_ncols=True)


def counter(description: str, total: typing.Optional[int], unit: str = "example"):
    """A bar advanced by hand (`.update(n)`, then `.close()`); a silent stand-in when stderr is no terminal."""
    return tqdm.tqdm(desc=description, total=total, unit=unit, leave=False, dynamic_ncols=True,
                     disable=not on_terminal())


def _length(iterable) -> typing.Optional[int]:
    cardinality = getattr(iterable, "cardinality", None)  # tf.data: -1 infinite, -2 unknown
    if cardinality is not None:
        count = int(cardinality())
        return count if count >= 0 else None
    try:
        return len(iterable)
    except TypeError:
        return None
