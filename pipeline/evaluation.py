"""`evaluate`: scores a trained run on its splits or on any labelled file, and writes every prediction.

    evaluation.evaluate("runs/quickstart", data="reviews.tsv", predictions="predictions.jsonl")

The file is read by the task (`Task.read_labelled_file`) in a format it reads for `data.test`, so it is
batched and scored exactly as the run's own splits; its metrics join metrics.json under `file:<path>`.
The predictions file holds one JSON object per example (`Task.predictions`): the split, the example's
position, its reference and the model's prediction, for error analysis.
"""

import json
import logging
import os
import typing

from pipeline import run_files
from pipeline import tasks as tasks_lib
from pipeline import training

logger = logging.getLogger(__name__)

FILE_SPLIT_PREFIX = "file:"


def file_split_name(path: str) -> str:
    """The split name (and metrics.json key) of a labelled file given with `--data`."""
    return f"{FILE_SPLIT_PREFIX}{path}"


def evaluate(run_dir: str, split_names: typing.Optional[typing.Sequence[str]] = None,
             data: typing.Optional[str] = None, predictions: typing.Optional[str] = None,
             task: typing.Optional[tasks_lib.Task] = None) -> dict:
    """Evaluates a trained run's best model, updating metrics.json, and optionally writes its predictions.

    Args:
        run_dir: A trained run directory.
        split_names: The run's splits to evaluate; by default the held-out ones, or none when `data` is given.
        data: A labelled file to evaluate, in a format the task reads.
        predictions: JSON Lines file to write every evaluated example's prediction to.
        task: The run's task object; by default the package's task named in the run's config.

    Returns:
        metrics.json's content after the update.
    """
    task = task or tasks_lib.create_task(run_files.load_run_config(run_dir))
    training.configure_runtime(task.config.runtime)
    preprocessing = task.load_preprocessing(run_dir)
    splits = task.load_splits()
    unknown = [name for name in split_names or () if name not in splits.splits]
    if unknown:
        raise ValueError(f"split {unknown[0]!r} is not available; this run has {sorted(splits.splits)}")
    names = list(split_names or ([] if data else [name for name in splits.splits if name != "train"]))
    if data is not None:
        splits.splits[file_split_name(data)] = task.read_labelled_file(data, splits)
        names.append(file_split_name(data))
    model = run_files.load_trained_model(run_dir)
    results = training.evaluate_splits(task, model, preprocessing, task.datasets(splits, preprocessing), run_dir,
                                       skipped_rows=splits.skipped_rows, split_names=names)
    if predictions is not None:
        count = write_predictions(task, model, preprocessing, {name: splits.splits[name] for name in names},
                                  predictions)
        logger.info("wrote %d predictions to %s", count, predictions)
    return results


def write_predictions(task: tasks_lib.Task, model, preprocessing: tasks_lib.Preprocessing, splits: dict,
                      path: str) -> int:
    """Writes `task.predictions` of every split as JSON Lines (`split`, `example`, then the task's fields).

    The file appears complete or not at all (written to a temporary name, then renamed).

    Returns:
        The number of rows written.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary, count = f"{path}.tmp", 0
    with open(temporary, "w", encoding="utf-8") as stream:
        for split_name, split in splits.items():
            for index, row in enumerate(task.predictions(model, preprocessing, split)):
                stream.write(json.dumps({"split": split_name, "example": index, **row}, ensure_ascii=False) + "\n")
                count += 1
    os.replace(temporary, path)
    return count
