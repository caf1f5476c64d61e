"""What a finished training run leaves for people: figures in `<run_dir>/figures/` and TensorBoard extras.

Figures: the learning curves of every run (from `logs/history.csv`) and the task's own (`Task.figures`:
a confusion matrix, attention maps, a caption grid). TensorBoard (`logs/tensorboard/`), beside the epoch
scalars Keras writes: the run's hyperparameters (the HParams dashboard) and, in the `evaluation` run, the
metrics of every evaluated split, the figures as images and a few sample predictions as text.

Reports never stop a run: a failure is logged as a warning, and the trained model, its metrics and its
export are kept.
"""

import itertools
import json
import logging
import os
import typing

from pipeline import config as config_lib
from pipeline import plots
from pipeline import run_files
from pipeline import tasks as tasks_lib

logger = logging.getLogger(__name__)

FIGURES_DIR = "figures"
LEARNING_CURVES = "learning_curves.png"
TENSORBOARD_DIR = os.path.join("logs", "tensorboard")
EVALUATION_RUN = "evaluation"
SAMPLE_PREDICTIONS = 5


def write_reports(task: tasks_lib.Task, model, preprocessing: tasks_lib.Preprocessing, splits,
                  metrics: dict, run_dir: str) -> list[str]:
    """Draws the figures and writes the TensorBoard extras of a trained, evaluated run.

    Returns:
        The figures written (empty when reporting failed).
    """
    try:
        figures = draw_figures(task, model, preprocessing, splits, metrics, run_dir)
        samples = sample_predictions(task, model, preprocessing, splits)
        write_tensorboard(run_dir, task.config, metrics, figures, samples, step=_epochs(run_dir))
    except Exception as error:  # noqa: BLE001 -- a drawing problem must not cost a trained run its export
        logger.warning("figures and TensorBoard reports not written: %s: %s", type(error).__name__, error,
                       exc_info=logger.isEnabledFor(logging.DEBUG))
        return []
    logger.info("figures: %s", ", ".join(figures))
    return figures


def draw_figures(task: tasks_lib.Task, model, preprocessing: tasks_lib.Preprocessing, splits, metrics: dict,
                 run_dir: str) -> list[str]:
    """The learning curves and the task's own figures, as PNG files in `<run_dir>/figures/`."""
    directory = os.path.join(run_dir, FIGURES_DIR)
    os.makedirs(directory, exist_ok=True)
    written = []
    if os.path.exists(os.path.join(run_dir, run_files.HISTORY)):
        written.append(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                             os.path.join(directory, LEARNING_CURVES)))
    return written + list(task.figures(model, preprocessing, splits, metrics, directory))


def sample_predictions(task: tasks_lib.Task, model, preprocessing: tasks_lib.Preprocessing, splits,
                       count: int = SAMPLE_PREDICTIONS) -> dict[str, list[dict]]:
    """The first `count` predictions of the held-out split (test, else validation); {} if the task has none."""
    for split_name in ("test", "validation"):
        if split_name in splits.splits:
            try:
                rows = task.predictions(model, preprocessing, splits.splits[split_name])
                return {split_name: list(itertools.islice(rows, count))}
            except NotImplementedError:
                return {}
    return {}


def hyperparameters(config: config_lib.RunConfig) -> dict[str, typing.Union[bool, int, float, str]]:
    """The resolved config as flat `block.key` -> value, in the types the HParams plugin takes."""
    flat = {}

    def visit(tree: dict, prefix: str) -> None:
        for key, value in tree.items():
            if isinstance(value, dict):
                visit(value, f"{prefix}{key}.")
            elif isinstance(value, (bool, int, float, str)):
                flat[f"{prefix}{key}"] = value
            else:  # null and lists
                flat[f"{prefix}{key}"] = json.dumps(value)
    visit(config_lib.to_tree(config), "")
    return flat


def write_tensorboard(run_dir: str, config: config_lib.RunConfig, metrics: dict, figures: list[str],
                      samples: dict[str, list[dict]], step: int) -> str:
    """Hyperparameters at the TensorBoard root; metrics, figures and sample predictions in `evaluation`.

    Returns:
        The folder of the `evaluation` run.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    root = os.path.join(run_dir, TENSORBOARD_DIR)
    with tf.summary.create_file_writer(root).as_default():
        hparams_api.hparams(hyperparameters(config), trial_id=config.name)
    evaluation = os.path.join(root, EVALUATION_RUN)
    writer = tf.summary.create_file_writer(evaluation)
    with writer.as_default():
        for split_name, values in metrics.items():
            for key, value in (values.items() if isinstance(values, dict) else ()):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    tf.summary.scalar(f"{split_name}/{key}", value, step=step)
        for path in figures:
            image = tf.io.decode_png(tf.io.read_file(path), channels=3)
            tf.summary.image(f"figures/{os.path.splitext(os.path.basename(path))[0]}", image[None], step=step)
        for split_name, rows in samples.items():
            text = "\n\n".join("    " + json.dumps(row, ensure_ascii=False) for row in rows)
            tf.summary.text(f"predictions/{split_name}", text, step=step)
    writer.close()
    return evaluation


def _epochs(run_dir: str) -> int:
    """Epochs logged in the run's history (the step the evaluation summaries are written at)."""
    path = os.path.join(run_dir, run_files.HISTORY)
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as stream:
        return max(sum(1 for _ in stream) - 1, 0)
