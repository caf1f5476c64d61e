"""Progress bars appear only on a terminal; elsewhere loops run unchanged."""

import io

from pipeline import progress


def test_without_a_terminal_the_iterable_comes_back_unchanged(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    items = [1, 2, 3]

    assert progress.bar(items, "counting") is items
    counter = progress.counter("counting", total=3)
    counter.update(3)
    counter.close()


def test_on_a_terminal_the_bar_yields_every_item(monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)

    assert list(progress.bar(range(4), "counting")) == [0, 1, 2, 3]
