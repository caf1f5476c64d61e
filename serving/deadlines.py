"""The deadline of the request the current thread is working on, for work that can stop part way.

The front ends set it around a request's work (REST: `--rest_api_timeout_in_ms` from the request's arrival;
gRPC: the client's deadline); a large request run in row chunks checks it between chunks. Work with no
request behind it (warm-up, the batch threads' merged calls) has none.
"""

import contextlib
import contextvars
import time
import typing

_DEADLINE: contextvars.ContextVar[typing.Optional[float]] = contextvars.ContextVar("request_deadline", default=None)


@contextlib.contextmanager
def scope(deadline: typing.Optional[float]) -> typing.Iterator[None]:
    """Sets the deadline (a `time.monotonic()` value, or None for none) for the work inside the block."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current() -> typing.Optional[float]:
    """The current request's deadline as a `time.monotonic()` value, or None."""
    return _DEADLINE.get()


def passed(deadline: typing.Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline
