"""Small runs first: a gate that makes the chunks of large runs wait while small runs are in progress.

All of a process's TensorFlow ops share one intra-op thread pool, so a one-row request running beside a
2000-row one waits behind every step of the big one. The server therefore runs large requests as a
sequence of row chunks (`serving/chunking.py`) and passes each chunk through this gate first:

- A small run (`PriorityGate.small`) never waits: it is counted while it runs.
- A chunk (`PriorityGate.chunk`) waits while any small run is in progress, and while a chunk of another
  large run is in progress: large runs take turns, one chunk at a time, in the order their chunks arrived,
  so a small run shares the CPU with at most one chunk.
- Starvation is bounded by count: once `max_small_passes` small runs have started since a chunk began
  waiting, the chunk no longer waits for small runs (only for its turn among chunks). A large run
  therefore gets a chunk at least every `max_small_passes` small runs, however busy the server is.
- A chunk that is still waiting at its deadline raises `TimeoutError` and leaves the queue.
"""

import collections
import contextlib
import threading
import time
import typing

DEFAULT_MAX_SMALL_PASSES = 8


class PriorityGate:
    """Thread-safe: small runs go first; chunks of large runs take turns between them.

    Args:
        max_small_passes: Small runs that may start ahead of a waiting chunk before it stops waiting for
            small runs (>= 1).
    """

    def __init__(self, max_small_passes: int = DEFAULT_MAX_SMALL_PASSES):
        if max_small_passes < 1:
            raise ValueError(f"max_small_passes must be >= 1, got {max_small_passes}")
        self.max_small_passes = max_small_passes
        self._condition = threading.Condition()
        self._small_running = 0
        self._small_started = 0  # small runs ever started: a waiting chunk counts the ones that passed it
        self._waiting_chunks: collections.deque = collections.deque()
        self._chunk_running = False

    @property
    def small_running(self) -> int:
        return self._small_running

    @property
    def chunks_waiting(self) -> int:
        return len(self._waiting_chunks)

    @contextlib.contextmanager
    def small(self) -> typing.Iterator[None]:
        """Runs a small request's work at once; chunks wait until it (and every other small run) ends."""
        with self._condition:
            self._small_running += 1
            self._small_started += 1
            self._condition.notify_all()  # a chunk may have now let enough small runs pass
        try:
            yield
        finally:
            with self._condition:
                self._small_running -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def chunk(self, deadline: typing.Optional[float] = None) -> typing.Iterator[None]:
        """Waits for a chunk's turn, then runs it.

        Args:
            deadline: `time.monotonic()` value after which the chunk stops waiting (None: no deadline).

        Raises:
            TimeoutError: The deadline passed before the chunk's turn came.
        """
        ticket = object()
        with self._condition:
            self._waiting_chunks.append(ticket)
            started_before = self._small_started
            try:
                while not self._may_run(ticket, started_before):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError("deadline passed while waiting for a chunk's turn")
                    self._condition.wait(remaining)
            finally:
                self._waiting_chunks.remove(ticket)
                self._condition.notify_all()  # the next chunk in line may now be first
            self._chunk_running = True
        try:
            yield
        finally:
            with self._condition:
                self._chunk_running = False
                self._condition.notify_all()

    def _may_run(self, ticket: object, started_before: int) -> bool:
        if self._chunk_running or self._waiting_chunks[0] is not ticket:
            return False
        passed = self._small_started - started_before
        return self._small_running == 0 or passed >= self.max_small_passes
