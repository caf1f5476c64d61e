"""Matplotlib figures for notebooks and reports: training curves, confusion matrix, tagging table, attention,
generated text.

Every function takes plain values (a CSV path, lists, arrays), writes a PNG to `path` (creating its folder)
and returns the path, so a notebook can show it and a test can check it. The Agg backend draws without a
display; no model or task code is imported here.
"""

import csv
import os
import textwrap
import typing

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

_ERROR_COLOUR = "#f4a3a3"
_CORRECT_COLOUR = "#ffffff"
_HEADER_COLOUR = "#e6e6e6"


def _save(figure, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=80, bbox_inches="tight")
    pyplot.close(figure)
    return path


def read_history(history_path: str) -> dict[str, list[float]]:
    """Reads a Keras CSVLogger file (`logs/history.csv`) into {column: values per epoch}.

    Raises:
        FileNotFoundError: No such file (the run has not trained an epoch yet).
        ValueError: The file has no epoch rows.
    """
    with open(history_path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        raise ValueError(f"{history_path}: no epochs logged yet")
    return {key: [float(row[key]) if row[key] not in ("", None) else np.nan for row in rows] for key in rows[0]}


def training_curves(history_path: str, path: str) -> str:
    """One panel per metric (loss first), training and validation values by epoch."""
    history = read_history(history_path)
    epochs = [int(epoch) + 1 for epoch in history.pop("epoch")]
    names = sorted((key for key in history if not key.startswith("val_") and key != "learning_rate"),
                   key=lambda key: (key != "loss", key))
    figure, axes = pyplot.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for axis, name in zip(axes[0], names):
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.legend()
    figure.tight_layout()
    return _save(figure, path)


def confusion_matrix(matrix: typing.Sequence[typing.Sequence[int]], class_names: typing.Sequence[str],
                     path: str, title: str = "confusion matrix") -> str:
    """A heatmap of `matrix[true][predicted]` with the counts written in the cells."""
    matrix = np.asarray(matrix)
    if matrix.shape != (len(class_names), len(class_names)):
        raise ValueError(f"confusion matrix of shape {matrix.shape} does not match {len(class_names)} classes")
    size = 1.0 + 0.6 * len(class_names)
    figure, axis = pyplot.subplots(figsize=(size + 1.0, size))
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > threshold else "black")
    return _save(figure, path)


def held_out_confusion_matrix(metrics: typing.Mapping[str, dict], class_names: typing.Sequence[str],
                              path: str) -> typing.Optional[str]:
    """The confusion matrix of the held-out split (test, else validation) of a run's metrics, or None.

    Args:
        metrics: Split name -> that split's metrics (metrics.json), with a `confusion_matrix`.
        class_names: Names in class-index order.
        path: PNG to write.
    """
    for split_name in ("test", "validation"):
        matrix = metrics.get(split_name, {}).get("confusion_matrix")
        if matrix is not None:
            return confusion_matrix(matrix, class_names, path, title=f"confusion matrix ({split_name})")
    return None


def tagging_table(sentences: typing.Sequence[dict], path: str, max_tokens: int = 14) -> str:
    """Tokens with gold and predicted tags, one block of three rows per sentence; wrong tags in red.

    Args:
        sentences: Dicts with `tokens`, `gold` and `predicted` (lists of equal length).
        path: PNG to write.
        max_tokens: Tokens shown per sentence (the rest are cut).
    """
    text, colours = [], []
    max_tokens = min(max_tokens, max((len(sentence["tokens"]) for sentence in sentences), default=1))
    for sentence in sentences:
        tokens, gold, predicted = (list(sentence[key])[:max_tokens] for key in ("tokens", "gold", "predicted"))
        if not len(tokens) == len(gold) == len(predicted):
            raise ValueError(f"tokens, gold and predicted differ in length in {sentence!r}")
        padding = [""] * (max_tokens - len(tokens))
        wrong = [gold_tag != predicted_tag for gold_tag, predicted_tag in zip(gold, predicted)]
        text += [["token"] + tokens + padding, ["gold"] + gold + padding, ["predicted"] + predicted + padding]
        colours += [[_HEADER_COLOUR] + [_HEADER_COLOUR] * max_tokens,
                    [_HEADER_COLOUR] + [_CORRECT_COLOUR] * max_tokens,
                    [_HEADER_COLOUR] + [_ERROR_COLOUR if error else _CORRECT_COLOUR for error in wrong]
                    + [_CORRECT_COLOUR] * len(padding)]
    figure, axis = pyplot.subplots(figsize=(0.9 * (max_tokens + 1), 0.3 * max(len(text), 1) + 0.3))
    axis.axis("off")
    if text:
        table = axis.table(cellText=text, cellColours=colours, loc="center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
    return _save(figure, path)


def attention_heatmaps(alignments: typing.Sequence[dict], path: str, columns: int = 2) -> str:
    """Attention weights as heatmaps, one panel per sentence: target tokens down, source tokens across.

    Args:
        alignments: Dicts with `source_tokens`, `target_tokens` and `weights`
            [len(target_tokens), len(source_tokens)], as `TranslationTask.translate_with_attention` returns.
        path: PNG to write.
        columns: Panels per row.
    """
    if not alignments:
        raise ValueError("no alignments to draw")
    columns = min(columns, len(alignments))
    rows = -(-len(alignments) // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(4.5 * columns, 4 * rows), squeeze=False)
    for axis in axes.flat[len(alignments):]:
        axis.axis("off")
    for axis, alignment in zip(axes.flat, alignments):
        weights = np.asarray(alignment["weights"])
        source, target = list(alignment["source_tokens"]), list(alignment["target_tokens"])
        if weights.shape != (len(target), len(source)):
            raise ValueError(f"weights of shape {weights.shape} do not match {len(target)} target and "
                             f"{len(source)} source tokens")
        axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max(initial=0.0)), 1e-6))
        axis.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
        axis.set_yticks(range(len(target)), target, fontsize=8)
        axis.set_xlabel("source")
        axis.set_ylabel("output")
    figure.tight_layout()
    return _save(figure, path)


def generated_text_table(prompts: typing.Sequence[str], continuations: typing.Mapping[str, typing.Sequence[str]],
                         path: str, width: int = 90) -> str:
    """Generated text side by side: for each prompt a header row, then one row per decoding setting.

    Args:
        prompts: The prompts ("" is shown as the start of the text).
        continuations: Setting name (e.g. "greedy", "T = 0.5") -> one continuation per prompt, shown after
            an ellipsis that stands for the prompt.
        path: PNG to write.
        width: Characters per line before the text wraps.
    """
    if not prompts or not continuations:
        raise ValueError("no prompts or no decoding settings to draw")
    for name, texts in continuations.items():
        if len(texts) != len(prompts):
            raise ValueError(f"{name!r} has {len(texts)} continuations for {len(prompts)} prompts")
    text, colours = [], []
    for index, prompt in enumerate(prompts):
        text.append(["prompt", repr(prompt) if prompt else "(start of text)"])
        colours.append([_HEADER_COLOUR, _HEADER_COLOUR])
        for name, texts in continuations.items():
            text.append([name, textwrap.fill("\u2026" + texts[index].replace("\n", "\u21b5"), width) or " "])
            colours.append([_HEADER_COLOUR, _CORRECT_COLOUR])
    lines = [max(cell.count("\n") + 1 for cell in row) for row in text]
    figure, axis = pyplot.subplots(figsize=(0.1 * width + 1.0, 0.22 * sum(lines) + 0.2))
    axis.axis("off")
    table = axis.table(cellText=text, cellColours=colours, colWidths=[0.1, 0.9], cellLoc="left", bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (row, column), cell in table.get_celld().items():
        cell.set_height(lines[row] / sum(lines))
        cell.PAD = 0.02 if column == 0 else 0.005  # matplotlib pads text by a fraction of the cell's width
    return _save(figure, path)
