"""The priority gate: small runs first, chunks of large runs one at a time and in order, bounded starvation.

Fake work only: each run is a thread that enters the gate, records its name and holds its place until the
test sets its Event, so every interleaving is decided by the test, not by timing.
"""

import threading
import time

import pytest

from serving import priority

WAIT_SECONDS = 30.0


class FakeRun:
    """A thread that enters the gate (`small` or `chunk`), appends its name to `entered`, then holds on."""

    def __init__(self, gate: priority.PriorityGate, kind: str, name: str, entered: list, deadline=None):
        self.name = name
        self.release = threading.Event()
        self.inside = threading.Event()
        self.error = None
        self._gate, self._kind, self._entered, self._deadline = gate, kind, entered, deadline
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            context = self._gate.small() if self._kind == "small" else self._gate.chunk(self._deadline)
            with context:
                self._entered.append(self.name)
                self.inside.set()
                assert self.release.wait(WAIT_SECONDS), f"{self.name} was never released"
        except TimeoutError as error:
            self.error = error

    def finish(self) -> None:
        self.release.set()
        self._thread.join(WAIT_SECONDS)
        assert not self._thread.is_alive(), f"{self.name} did not finish"


def _wait_until(condition, what: str) -> None:
    """Synchronization, not a timing assertion: waits (generously) for a state the test has caused."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_a_small_run_passes_ahead_of_a_waiting_chunk():
    gate, entered = priority.PriorityGate(), []
    first_small = FakeRun(gate, "small", "small 1", entered)
    assert first_small.inside.wait(WAIT_SECONDS)
    chunk = FakeRun(gate, "chunk", "chunk", entered)
    _wait_until(lambda: gate.chunks_waiting == 1, "the chunk to wait")

    second_small = FakeRun(gate, "small", "small 2", entered)
    assert second_small.inside.wait(WAIT_SECONDS)  # a small run never waits for a chunk
    first_small.finish()
    assert not chunk.inside.is_set() and gate.chunks_waiting == 1  # small 2 still runs: the chunk waits
    second_small.finish()
    assert chunk.inside.wait(WAIT_SECONDS)
    chunk.finish()

    assert entered == ["small 1", "small 2", "chunk"]


def test_a_small_run_starts_at_once_while_a_chunk_runs():
    gate, entered = priority.PriorityGate(), []
    chunk = FakeRun(gate, "chunk", "chunk", entered)
    assert chunk.inside.wait(WAIT_SECONDS)

    small = FakeRun(gate, "small", "small", entered)
    assert small.inside.wait(WAIT_SECONDS)
    small.finish()
    chunk.finish()

    assert entered == ["chunk", "small"]


def test_chunks_run_one_at_a_time_in_the_order_they_arrived():
    gate, entered = priority.PriorityGate(), []
    chunks = [FakeRun(gate, "chunk", "chunk A", entered)]
    assert chunks[0].inside.wait(WAIT_SECONDS)
    for index, name in enumerate(("chunk B", "chunk C")):
        chunks.append(FakeRun(gate, "chunk", name, entered))
        _wait_until(lambda: gate.chunks_waiting == index + 1, f"{name} to wait")

    for position, chunk in enumerate(chunks):
        assert chunk.inside.wait(WAIT_SECONDS)
        assert [other.inside.is_set() for other in chunks[position + 1:]] == [False] * (len(chunks) - position - 1)
        chunk.finish()

    assert entered == ["chunk A", "chunk B", "chunk C"]


def test_a_chunk_runs_beside_small_runs_once_max_small_passes_have_passed_it():
    gate, entered = priority.PriorityGate(max_small_passes=2), []
    running = FakeRun(gate, "small", "small 0", entered)
    assert running.inside.wait(WAIT_SECONDS)
    chunk = FakeRun(gate, "chunk", "chunk", entered)
    _wait_until(lambda: gate.chunks_waiting == 1, "the chunk to wait")

    passing = [FakeRun(gate, "small", "small 1", entered)]
    assert passing[0].inside.wait(WAIT_SECONDS)
    assert not chunk.inside.is_set()  # one small run passed it: it still waits
    passing.append(FakeRun(gate, "small", "small 2", entered))

    assert chunk.inside.wait(WAIT_SECONDS)  # the second one was the last it lets pass
    assert gate.small_running == 3  # it runs beside all three
    for run in (running, *passing, chunk):
        run.finish()
    assert sorted(entered) == ["chunk", "small 0", "small 1", "small 2"]


def test_a_chunk_waiting_past_its_deadline_gives_up_and_leaves_the_line():
    gate, entered = priority.PriorityGate(), []
    small = FakeRun(gate, "small", "small", entered)
    assert small.inside.wait(WAIT_SECONDS)

    late = FakeRun(gate, "chunk", "late chunk", entered, deadline=time.monotonic())
    late.finish()
    small.finish()
    on_time = FakeRun(gate, "chunk", "chunk", entered)
    assert on_time.inside.wait(WAIT_SECONDS)
    on_time.finish()

    assert isinstance(late.error, TimeoutError)
    assert entered == ["small", "chunk"] and gate.chunks_waiting == 0


def test_max_small_passes_must_be_positive():
    with pytest.raises(ValueError, match="max_small_passes"):
        priority.PriorityGate(max_small_passes=0)
