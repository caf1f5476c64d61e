"""Training: seeded setup, `model.fit` with checkpoints, resume, early stopping and logs, then evaluation.

Run directory layout (DESIGN.md section 3):
    config.yaml                 the resolved config
    vocab/                      vocabulary and class names, fitted on the training split
    checkpoints/best.weights.h5 best epoch by `train.monitor`
    checkpoints/last/           training_state.json and the weights of the last and best epochs (see
                                `checkpoints` and `run_state`); resumes after a crash or kill -9
    logs/history.csv            metrics per epoch; logs/tensorboard/ event files (pipeline.reports adds
                                hyperparameters, test metrics, figures and sample predictions)
    figures/                    learning curves and the task's figures (pipeline.reports)
    profile/                    profiler trace of a few training steps (`train --profile`)
    model.keras                 the best model, written when training ends
    initialization.json         what a warm start copied from where (`warm_start`), for a run that had one
    metrics.json                evaluation of every split
"""

import contextlib
import csv
import json
import logging
import os
import shutil
import tempfile
import typing

import keras
import tensorflow as tf

from pipeline import checkpoints
from pipeline import compat
from pipeline import config as config_lib
from pipeline import cudnn
from pipeline import distribution
from pipeline import fine_tuning
from pipeline import layerwise_optimizers
from pipeline import reports
from pipeline import run_files
from pipeline import run_state
from pipeline import schedules
from pipeline import tasks as tasks_lib
from pipeline.data import batching
from pipeline import validation_scoring
from pipeline import warm_start

logger = logging.getLogger(__name__)

# Keys that may change when an interrupted or finished run is continued.
_RESUMABLE_CHANGES = ("train.epochs", "train.early_stopping_patience")


def configure_runtime(runtime: config_lib.RuntimeConfig) -> None:
    """Seeds every random generator and sets the precision policy for the coming run."""
    keras.utils.set_random_seed(runtime.seed)
    if runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        # An earlier run in this process may have enabled it, which would also keep Keras from using XLA.
        compat.disable_op_determinism()
    keras.mixed_precision.set_global_policy(runtime.mixed_precision)


def warn_if_cudnn_ineligible(task: tasks_lib.Task, model: keras.Model) -> list[str]:
    """Logs a warning when a GPU is visible and some recurrent layer will not use cuDNN kernels.

    Returns:
        The reasons warned about (empty without a GPU or when every layer is eligible).
    """
    if not tf.config.list_physical_devices("GPU"):
        return []
    reasons = list(dict.fromkeys(cudnn_config_reasons(task) + cudnn.model_reasons(model)))
    if reasons:
        logger.warning("a GPU is visible but these recurrent layers will not use cuDNN kernels (slower):\n  %s",
                       "\n  ".join(reasons))
    return reasons


def cudnn_config_reasons(task: tasks_lib.Task) -> list[str]:
    """Config settings that keep a run's recurrent layers off cuDNN kernels on a GPU, one reason per key."""
    return cudnn.config_reasons(task.config.model) + task.cudnn_reasons()


def check_config(config: config_lib.RunConfig, task: tasks_lib.Task) -> None:
    """Cross-checks the config against the task before any work starts."""
    if config.train.monitor not in task.monitor_choices:
        raise config_lib.ConfigError(
            f"train.monitor: {config.train.monitor!r} is not one of {list(task.monitor_choices)}")
    if config.export.jit_compile and not task.compiles_serving:
        raise config_lib.ConfigError(
            f"export.jit_compile: the {config.task} task has no XLA-compiled signatures; set it to false")


def prepare_run_dir(config: config_lib.RunConfig, schema: typing.Optional[config_lib.TaskSchema] = None) -> str:
    """Creates the run directory and writes the resolved config, refusing to mix two different runs.

    Args:
        config: The run's resolved config.
        schema: The task's config schema when the task is not one of the package's.
    """
    run_dir = config.run_dir
    path = os.path.join(run_dir, run_files.CONFIG_FILE)
    if os.path.exists(path) and os.path.exists(os.path.join(run_dir, run_files.LAST_CHECKPOINT)):
        schemas = {config.task: schema} if schema else None
        previous = _flatten(config_lib.to_tree(config_lib.load_config([path], schemas=schemas)))
        current = _flatten(config_lib.to_tree(config))
        changed = sorted(key for key in set(previous) | set(current)
                         if previous.get(key) != current.get(key) and key not in _RESUMABLE_CHANGES
                         and not key.startswith("export."))
        if changed:
            raise config_lib.ConfigError(
                f"{run_dir} holds a run with a different config ({', '.join(changed)} differ); "
                "set runtime.run_dir to a new directory, or delete the old one to start over")
    config_lib.save_config(config, path)
    return run_dir


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# By `train.optimizer`.
_PLAIN_OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def make_optimizer(train: config_lib.TrainConfig, total_steps: int,
                   layerwise: typing.Optional[dict] = None) -> keras.optimizers.Optimizer:
    """Builds the optimizer with gradient clipping and the learning-rate schedule.

    Args:
        train: The run's train block.
        total_steps: Training steps of the whole run (the schedule spans them).
        layerwise: Per-variable settings of a `layerwise_optimizers` optimizer
            (`fine_tuning.optimizer_settings`); None builds the plain Keras optimizer.
    """
    learning_rate: typing.Any = train.learning_rate
    if train.learning_rate_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(train.learning_rate, max(total_steps, 1))
    elif train.learning_rate_schedule == "slanted_triangular":
        shape = {"warmup_fraction": train.warmup_fraction, "ratio": train.slanted_triangular_ratio}
        learning_rate = schedules.SlantedTriangular(train.learning_rate, max(total_steps, 1),
                                                    **{key: value for key, value in shape.items() if value is not None})
    optimizers = _PLAIN_OPTIMIZERS if layerwise is None else layerwise_optimizers.OPTIMIZERS
    averaging = {"use_ema": True, "ema_momentum": train.ema_momentum} if train.ema_momentum else {}
    return optimizers[train.optimizer](learning_rate=learning_rate, clipnorm=train.clipnorm, **averaging,
                                       **(layerwise or {}))


def compile_model(model: keras.Model, task: tasks_lib.Task, config: config_lib.RunConfig,
                  steps_per_epoch: int) -> None:
    layerwise = fine_tuning.optimizer_settings(config.train, task, model, steps_per_epoch=steps_per_epoch)
    total_steps = steps_per_epoch * config.train.epochs
    model.compile(optimizer=make_optimizer(config.train, total_steps, layerwise), loss=task.loss(),
                  metrics=task.metrics(), jit_compile=config.runtime.jit_compile)


def resumed_epoch(run_dir: str) -> int:
    """Number of finished epochs saved in the last checkpoint (0 when starting fresh)."""
    return run_state.load(run_dir).epochs_done


def trim_history(run_dir: str, finished_epochs: int) -> None:
    """Keeps only the history rows of checkpointed epochs: the others will be trained again.

    A row cut short by a kill (missing fields) goes too. The file is replaced atomically, and removed when
    no row is left, so that the CSV logger starts it again with its header.
    """
    path = os.path.join(run_dir, run_files.HISTORY)
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        rows = list(reader)
        fieldnames = reader.fieldnames
    kept = [row for row in rows if None not in row.values() and None not in row
            and row["epoch"].isdigit() and int(row["epoch"]) < finished_epochs]
    if not kept:
        os.remove(path)
        return
    temporary = f"{path}.tmp"
    with open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(temporary, path)


def make_callbacks(config: config_lib.RunConfig, run_dir: str,
                   scorer: typing.Optional[keras.callbacks.Callback] = None) -> list:
    """The callbacks of `fit`, in the order in which they see the end of each epoch.

    1. NaN guard, and weight averaging when `train.ema_momentum` is set: from the end of validation to the
       next epoch's start the model then holds the averaged weights, so that everything below sees, scores
       and saves the averaged model.
    2. Callbacks that add validation scores to the epoch's logs belong here, before anything reads them.
    3. History (CSV) and TensorBoard logs.
    4. The checkpoints and early stopping (`checkpoints.RunCheckpoint`), last: an epoch is committed only
       once every other callback has seen it.
    """
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    callbacks = [keras.callbacks.TerminateOnNaN()]
    averaging = keras.callbacks.SwapEMAWeights(swap_on_epoch=True) if config.train.ema_momentum else None
    if averaging:
        callbacks.append(averaging)
    callbacks += [scorer] if scorer else []  # the validation scorer (`validation_scoring`)
    callbacks += [
        keras.callbacks.CSVLogger(os.path.join(run_dir, run_files.HISTORY), append=True),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs", "tensorboard"), write_graph=False),
        checkpoints.RunCheckpoint(run_dir, config.train.monitor, config.train.early_stopping_patience,
                                  averaged_weights_swap=averaging),
    ]
    return callbacks


class ProfileSteps(keras.callbacks.Callback):
    """Records a TensorFlow profiler trace of training steps `first`..`last` (1-based, counted across epochs).

    The trace (`plugins/profile/<time>/<host>.xplane.pb` under `log_dir`) is written by TensorFlow itself;
    viewing it needs the XProf plugin (`pip install xprof`, then TensorBoard's Profile tab). A failure to
    profile is logged and never stops training.

    Args:
        log_dir: Folder the trace is written under (`<run_dir>/profile`).
        first: First profiled step.
        last: Last profiled step (>= first).
    """

    def __init__(self, log_dir: str, first: int, last: int):
        super().__init__()
        if not 1 <= first <= last:
            raise ValueError(f"profile steps: expected 1 <= first <= last, got {first},{last}")
        self.log_dir = log_dir
        self.first = first
        self.last = last
        self.step = 0
        self.active = False

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        if self.step == self.first:
            try:
                tf.profiler.experimental.start(self.log_dir)
                self.active = True
            except (tf.errors.OpError, RuntimeError) as error:
                logger.warning("profiler not started: %s", error)

    def on_train_batch_end(self, batch, logs=None):
        if self.step == self.last:
            self._stop()

    def on_train_end(self, logs=None):
        if self.active:
            logger.warning("training ended at step %d, before profile step %d", self.step, self.last)
        elif self.step < self.first:
            logger.warning("training ended at step %d, before profile step %d: no trace written",
                           self.step, self.first)
        self._stop()

    def _stop(self):
        if not self.active:
            return
        self.active = False
        try:
            tf.profiler.experimental.stop()
            logger.info("profiler trace of steps %d-%d written to %s", self.first, min(self.step, self.last),
                        self.log_dir)
        except (tf.errors.OpError, RuntimeError) as error:
            logger.warning("profiler trace not saved: %s", error)


def train(config: config_lib.RunConfig, strategy: typing.Optional[tf.distribute.Strategy] = None,
          profile_steps: typing.Optional[tuple[int, int]] = None,
          task: typing.Optional[tasks_lib.Task] = None,
          callbacks: typing.Sequence[keras.callbacks.Callback] = ()) -> str:
    """Trains (resuming from the run directory's last checkpoint) and evaluates what is not yet evaluated.

    A run whose training is finished (`train.epochs` reached, or stopped early) and evaluated is left as
    it is: nothing is trained, evaluated or written. Raising `train.epochs` (or the patience of a run that
    stopped early) continues it.

    With `runtime.distribution` set, the model is built, compiled and trained under the strategy's
    scope. In multi-worker training every worker runs this same function; only the chief writes the run
    directory and evaluates, the others write into a temporary directory deleted at the end (see
    `worker_run_dir`).

    Args:
        config: The run's resolved config.
        strategy: The strategy of `runtime.distribution` if already created; created here otherwise.
        profile_steps: (first, last) training steps, 1-based, to record a profiler trace of into
            `<run_dir>/profile/`; None profiles nothing.
        task: The task object for `config`; by default the package's task named by `config.task`.
        callbacks: Extra Keras callbacks for `model.fit`, called before the run's own (checkpoints, logs,
            early stopping), e.g. `keras.callbacks.LearningRateScheduler` or one that reports to an
            experiment tracker.

    Returns:
        The run directory.
    """
    if strategy is None:
        strategy = distribution.create_strategy(config.runtime)  # first: before other TensorFlow work
    task = task or tasks_lib.create_task(config)
    check_config(config, task)
    chief = distribution.writes_files(config.runtime)
    with worker_run_dir(config, chief, task.schema) as run_dir:
        configure_runtime(config.runtime)
        state = run_state.load(run_dir)
        finished_epochs = state.epochs_done
        if distribution.is_multi_worker(strategy):
            check_workers_agree(strategy, finished_epochs, config.run_dir)
        if state.training_finished(config.train.epochs, config.train.early_stopping_patience) and state.evaluated():
            return config.run_dir
        if finished_epochs:
            logger.info("resuming %s after %d finished epoch(s)", config.run_dir, finished_epochs)
        elif os.path.exists(os.path.join(run_dir, run_files.LAST_CHECKPOINT, "training_metadata.json")):
            logger.warning("%s holds a checkpoint of an earlier format (no training_state.json): training "
                           "starts again from epoch 1", config.run_dir)
        splits = task.load_splits()
        if finished_epochs and task.has_preprocessing(run_dir):
            preprocessing = task.load_preprocessing(run_dir)  # the vocabulary the checkpoint was trained with
        else:
            preprocessing = task.fit_preprocessing(splits)
            task.save_preprocessing(preprocessing, run_dir)
        run_files.save_sample_inputs(run_dir, task.sample_inputs(splits))
        datasets = task.datasets(splits, preprocessing)

        with distribution.scope(strategy):
            model = fit(config, task, preprocessing, strategy, datasets, run_dir, state, profile_steps, callbacks)
        if chief:  # the other workers only train
            results = evaluate_splits(task, model, preprocessing, datasets, run_dir, skipped_rows=splits.skipped_rows)
            reports.write_reports(task, model, preprocessing, splits, results, run_dir)
            run_state.update(run_dir, evaluated_epochs=run_state.load(run_dir).epochs_done)
    return config.run_dir


def fit(config: config_lib.RunConfig, task: tasks_lib.Task, preprocessing: tasks_lib.Preprocessing,
        strategy: typing.Optional[tf.distribute.Strategy], datasets: dict, run_dir: str,
        state: run_state.TrainingState, profile_steps: typing.Optional[tuple[int, int]] = None,
        callbacks: typing.Sequence[keras.callbacks.Callback] = ()) -> keras.Model:
    """Builds and compiles the model, trains the epochs left after `state` (under the strategy's scope if
    any), and returns the best model, also saved as `model.keras`.

    `callbacks` (the caller's own) run after the task's and before the run's checkpoints and logs.
    """
    model = task.build_model(preprocessing)
    if not state.epochs_done:  # a resumed run restores its own checkpoint instead
        warm_start.initialize(model, task, preprocessing, run_dir)
    warn_if_cudnn_ineligible(task, model)
    batches_per_epoch = config.train.steps_per_epoch or len(datasets["train"])
    compile_model(model, task, config, batches_per_epoch)
    if not state.training_finished(config.train.epochs, config.train.early_stopping_patience):
        trim_history(run_dir, state.epochs_done)
        # One iterator over all epochs: epoch k reads pass k of the (reshuffled) training data, also after a resume.
        train_dataset = batching.epochs_from(datasets["train"], first_epoch=state.epochs_done,
                                             batches_per_epoch=batches_per_epoch)
        validation_dataset = datasets["validation"]
        if distribution.is_multi_worker(strategy):
            train_dataset = distribution.shard_by_data(train_dataset)
            validation_dataset = distribution.shard_by_data(validation_dataset)
        profiling = ([ProfileSteps(os.path.join(run_dir, run_files.PROFILE_DIR), *profile_steps)]
                     if profile_steps else [])
        scorer = validation_scoring.make_scorer(task, model, datasets["validation"], preprocessing, run_dir)
        with distribution.keras_fit_workarounds(model, strategy):
            model.fit(train_dataset, validation_data=validation_dataset, epochs=config.train.epochs,
                      initial_epoch=state.epochs_done, steps_per_epoch=batches_per_epoch,
                      callbacks=(fine_tuning.callbacks(config.train, task, model)
                                 + task.training_callbacks(model) + list(callbacks)
                                 + make_callbacks(config, run_dir, scorer) + profiling),
                      shuffle=False, verbose=_fit_verbosity())  # the dataset shuffles itself (seeded)
        if model.stop_training:  # early stopping (or the NaN guard) ended fit before train.epochs
            logger.info("%s", run_files.early_stop_summary(run_dir, config.train.monitor, config.train.epochs))

    checkpoints.load_best(model, run_dir, run_state.load(run_dir))
    _save_model(model, os.path.join(run_dir, run_files.MODEL_FILE))
    return model


def _save_model(model: keras.Model, path: str) -> None:
    """`model.save`, atomically: a kill leaves the previous file or the new one, never a part of one."""
    temporary = f"{path[:-len('.keras')]}.tmp.keras"
    model.save(temporary)
    os.replace(temporary, path)


@contextlib.contextmanager
def worker_run_dir(config: config_lib.RunConfig, chief: bool,
                   schema: typing.Optional[config_lib.TaskSchema] = None) -> typing.Iterator[str]:
    """The directory this process writes: the run directory on the chief, a temporary one elsewhere.

    Non-chief workers take part in everything the chief does, saving included (a save may read
    variables through collective ops every worker has to join), but into a directory deleted at the
    end. Every save decision (best checkpoint, early stopping) has to be the same on every worker, so to
    resume they start from a copy of the chief's checkpoints and history: the run directory has to be on
    storage every worker can read (NFS, a shared volume) when training spans several machines.
    """
    if chief:
        yield prepare_run_dir(config, schema)
        return
    directory = tempfile.mkdtemp(prefix=f"{config.name}-worker-")
    try:
        # The checkpoints and the history too: the best-checkpoint threshold comes from the history, and
        # a save the chief makes and a worker skips (or the reverse) would desynchronize their collectives.
        for part in ("vocab", run_files.CHECKPOINTS):
            if os.path.isdir(os.path.join(config.run_dir, part)):
                shutil.copytree(os.path.join(config.run_dir, part), os.path.join(directory, part))
        if os.path.exists(os.path.join(config.run_dir, run_files.HISTORY)):
            os.makedirs(os.path.join(directory, "logs"))
            shutil.copy(os.path.join(config.run_dir, run_files.HISTORY), os.path.join(directory, run_files.HISTORY))
        config_lib.save_config(config, os.path.join(directory, run_files.CONFIG_FILE))
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def check_workers_agree(strategy: tf.distribute.Strategy, finished_epochs: int, run_dir: str) -> None:
    """Fails on every worker, instead of hanging, when the workers would resume from different epochs."""
    smallest, largest = distribution.all_workers_agree(strategy, finished_epochs)
    if smallest != largest:
        raise RuntimeError(
            f"the workers would resume {run_dir} from different epochs ({smallest} and {largest}): every "
            "worker must read the chief's checkpoints, so put runtime.run_dir on storage all of them share")


def _fit_verbosity() -> typing.Union[str, int]:
    # A progress bar on a terminal; one line per epoch in CI logs and pipes.
    return "auto" if os.isatty(1) else 2


def evaluate_splits(task: tasks_lib.Task, model: keras.Model, preprocessing: tasks_lib.Preprocessing,
                    datasets: dict, run_dir: str,
                    skipped_rows: typing.Optional[dict] = None,
                    split_names: typing.Optional[typing.Sequence[str]] = None) -> dict:
    """Evaluates the named splits (all held-out splits by default) and merges them into metrics.json."""
    path = os.path.join(run_dir, run_files.METRICS_FILE)
    results = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as stream:
            results = json.load(stream)
    for split_name in split_names or [name for name in datasets if name != "train"]:
        results[split_name] = task.evaluate(model, datasets[split_name], preprocessing)
        logger.info("%s: %s", split_name, _headline(results[split_name]))
    if skipped_rows is not None:
        results["skipped_rows"] = skipped_rows
    run_files.write_json(path, results, indent=2)
    return results


def _headline(split_metrics: dict) -> str:
    return ", ".join(f"{key}={value:.4f}" for key, value in split_metrics.items()
                     if isinstance(value, float))


def evaluate(run_dir: str, split_names: typing.Optional[typing.Sequence[str]] = None,
             task: typing.Optional[tasks_lib.Task] = None) -> dict:
    """Re-evaluates a trained run on the named splits (held-out ones by default), updating metrics.json.

    Args:
        run_dir: A trained run directory.
        split_names: Splits to evaluate; the held-out ones by default.
        task: The run's task object; by default the package's task named in the run's config.
    """
    task = task or tasks_lib.create_task(run_files.load_run_config(run_dir))
    configure_runtime(task.config.runtime)
    preprocessing = task.load_preprocessing(run_dir)
    splits = task.load_splits()
    unknown = [name for name in split_names or () if name not in splits.splits]
    if unknown:
        raise ValueError(f"split {unknown[0]!r} is not available; this run has {sorted(splits.splits)}")
    model = run_files.load_trained_model(run_dir)
    return evaluate_splits(task, model, preprocessing, task.datasets(splits, preprocessing), run_dir,
                           skipped_rows=splits.skipped_rows,
                           split_names=split_names)
