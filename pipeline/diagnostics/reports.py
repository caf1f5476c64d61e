"""Writing diagnostic results: JSON files and line plots (matplotlib's Agg canvas, no display needed)."""

import json
import math
import os
import typing

from matplotlib.backends import backend_agg
from matplotlib import figure as figure_lib

# Lines that coincide (e.g. two cells both at accuracy 1.0) stay distinguishable.
_LINE_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D")


def finite_or_none(value: float) -> typing.Optional[float]:
    """A float for JSON: NaN and infinities become None (JSON has no such numbers)."""
    value = float(value)
    return value if math.isfinite(value) else None


def write_json(path: str, data: dict) -> str:
    """Writes `data` as indented JSON, atomically; returns the path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2)
    os.replace(temporary, path)
    return path


def line_plot(path: str, series: dict[str, tuple[typing.Sequence, typing.Sequence]], *, title: str,
              xlabel: str, ylabel: str, log_y: bool = False, reference: typing.Optional[tuple[float, str]] = None,
              subplots: typing.Optional[list[dict]] = None) -> str:
    """Draws one line per series (name -> (x, y); None values leave gaps) and saves a PNG.

    Args:
        path: Where the PNG goes.
        series: Legend name -> (x values, y values).
        title, xlabel, ylabel: Labels.
        log_y: Logarithmic y axis.
        reference: Optional (y, label) drawn as a dashed horizontal line (e.g. chance level).
        subplots: Further panels beside the first, each a dict of this function's keyword arguments
            (`series`, `title`, `xlabel`, `ylabel`, `log_y`, `reference`).

    Returns:
        The path.
    """
    panels = [{"series": series, "title": title, "xlabel": xlabel, "ylabel": ylabel, "log_y": log_y,
               "reference": reference}] + list(subplots or [])
    figure = figure_lib.Figure(figsize=(6.4 * len(panels), 4.4), layout="constrained")
    backend_agg.FigureCanvasAgg(figure)
    for index, panel in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for line, (name, (x_values, y_values)) in enumerate(panel["series"].items()):
            y_values = [math.nan if value is None else value for value in y_values]
            axes.plot(list(x_values), y_values, label=name, linestyle=_LINE_STYLES[line % len(_LINE_STYLES)],
                      marker=_MARKERS[line % len(_MARKERS)] if len(y_values) <= 12 else None)
        if panel.get("reference"):
            level, label = panel["reference"]
            axes.axhline(level, linestyle="--", color="grey", label=label)
        if panel.get("log_y"):
            axes.set_yscale("log")
        axes.set_title(panel["title"])
        axes.set_xlabel(panel["xlabel"])
        axes.set_ylabel(panel["ylabel"])
        axes.grid(True, alpha=0.3)
        axes.legend()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
