"""`runtime.distribution`: the `tf.distribute` strategy of a run and the role of this process in it.

- `none`: TensorFlow's default strategy (one device); training runs exactly as without this module.
- `mirrored`: `tf.distribute.MirroredStrategy` over every GPU of this machine (or its CPU).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`; each machine runs the same command with its
  own `TF_CONFIG` environment variable, e.g.
  `{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}`.
- `tpu`: `tf.distribute.TPUStrategy` on the TPU named by `runtime.tpu_address`.

All of them are synchronous data parallelism: every replica holds the whole model, the global batch
(`train.batch_size`) is split across the replicas, gradients are summed across them and every replica
applies the same update. Exactly one process, the chief, writes the run directory and the export.
"""

import contextlib
import json
import logging
import os
import typing

import tensorflow as tf

from pipeline import compat
from pipeline import config as config_lib

logger = logging.getLogger(__name__)

TF_CONFIG = "TF_CONFIG"


# === Roles ===


def read_tf_config(environment: typing.Optional[typing.Mapping[str, str]] = None) -> dict:
    """The parsed `TF_CONFIG` variable ({} when unset or empty), with errors that say what is wrong.

    Raises:
        ValueError: `TF_CONFIG` is not JSON, or its task is not one of its cluster's jobs.
    """
    text = (os.environ if environment is None else environment).get(TF_CONFIG, "")
    if not text.strip():
        return {}
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{TF_CONFIG}: not valid JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(tf_config, dict):
        raise ValueError(f"{TF_CONFIG}: expected a JSON object with 'cluster' and 'task', got {text[:80]!r}")
    cluster = tf_config.get("cluster") or {}
    task = tf_config.get("task") or {}
    task_type, task_index = task.get("type"), task.get("index", 0)
    if cluster and task_type not in cluster:
        raise ValueError(f"{TF_CONFIG}: task type {task_type!r} is not a job of the cluster "
                         f"({sorted(cluster)})")
    if cluster and not (isinstance(task_index, int) and 0 <= task_index < len(cluster[task_type])):
        raise ValueError(f"{TF_CONFIG}: task index {task_index!r} is out of range for the "
                         f"{len(cluster[task_type])} {task_type!r} address(es)")
    return tf_config


def is_chief(environment: typing.Optional[typing.Mapping[str, str]] = None) -> bool:
    """Whether this process is the one that writes checkpoints, logs and exports.

    Without `TF_CONFIG` (one machine) it is. With it: the `chief` task if the cluster has a `chief` job,
    otherwise worker 0 (TensorFlow's own convention); evaluators and parameter servers never are.
    """
    tf_config = read_tf_config(environment)
    if not tf_config:
        return True
    cluster, task = tf_config.get("cluster") or {}, tf_config.get("task") or {}
    task_type, task_index = task.get("type"), task.get("index", 0)
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_index == 0


def writes_files(runtime: config_lib.RuntimeConfig,
                 environment: typing.Optional[typing.Mapping[str, str]] = None) -> bool:
    """Whether this process writes the run directory and the export: always, except on the workers of
    multi-worker training that are not the chief (`TF_CONFIG` is read only for `multi_worker`)."""
    return runtime.distribution != "multi_worker" or is_chief(environment)


def worker_count(environment: typing.Optional[typing.Mapping[str, str]] = None) -> int:
    """Number of processes that train together: the cluster's chief and workers (1 without `TF_CONFIG`)."""
    cluster = read_tf_config(environment).get("cluster") or {}
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


# === Strategies ===


def create_strategy(runtime: config_lib.RuntimeConfig) -> typing.Optional[tf.distribute.Strategy]:
    """The strategy for `runtime.distribution`; None for `none` (TensorFlow's default strategy).

    Call it before any other TensorFlow work of the process: `MultiWorkerMirroredStrategy` has to
    configure the collective ops before the eager context starts.
    """
    if runtime.distribution == "none":
        return None
    if runtime.distribution == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif runtime.distribution == "multi_worker":
        if not read_tf_config():
            logger.warning("runtime.distribution is multi_worker but %s is not set: training on this "
                           "machine alone", TF_CONFIG)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = _tpu_strategy(runtime.tpu_address)
    logger.info("distribution: %s with %d replica(s) in sync%s", type(strategy).__name__,
                strategy.num_replicas_in_sync, "" if writes_files(runtime) else " (this worker writes no files)")
    return strategy


def _tpu_strategy(tpu_address: str) -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
    except ValueError as error:
        raise ValueError(f"runtime.tpu_address: no TPU found at {tpu_address or 'this machine'!r} "
                         f"({error})") from None
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def scope(strategy: typing.Optional[tf.distribute.Strategy]) -> typing.ContextManager:
    """`strategy.scope()`, or nothing at all for `distribution: none`."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def is_multi_worker(strategy: typing.Optional[tf.distribute.Strategy]) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and worker_count() > 1


# === Data ===


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Marks a dataset to be split between workers example by example (`AutoShardPolicy.DATA`).

    Our datasets are built in memory (generated, or read from files into tensors), so the default AUTO
    policy finds no files to split and falls back to DATA anyway, with a warning; saying so is clearer.
    DATA needs every worker to produce the same elements in the same order, which the seeded shuffling
    guarantees: each worker builds the whole dataset and keeps its own share of every global batch.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# === Agreement between workers ===


def all_workers_agree(strategy: tf.distribute.Strategy, value: int) -> tuple[int, int]:
    """The smallest and largest `value` over every replica (a collective: every worker must call it)."""
    @tf.function
    def gather():
        per_replica = strategy.run(lambda: tf.constant([value], tf.int64))
        return strategy.gather(per_replica, axis=0)  # (replicas,)

    values = gather().numpy()
    return int(values.min()), int(values.max())


def wait_for_all_workers(strategy: typing.Optional[tf.distribute.Strategy]) -> None:
    """In multi-worker training, returns once every worker got here (e.g. the chief after exporting).

    A worker that exits while the chief still works makes the chief's coordination service report it
    as crashed; waiting here lets every process end together. Nothing to wait for otherwise.
    """
    if is_multi_worker(strategy):
        all_workers_agree(strategy, 0)


# === Keras 3 and tf.distribute ===


@contextlib.contextmanager
def keras_fit_workarounds(model, strategy: typing.Optional[tf.distribute.Strategy]) -> typing.Iterator[None]:
    """Lets Keras 3 `fit` a built model under a strategy with several replicas; nothing for `none`.

    Two Keras 3 (3.15, TensorFlow backend) steps fail with more than one replica
    (keras-team/keras#20585, #20329):
    - Before training, `fit` averages one distributed batch across the replicas to build the model
      symbolically; that `strategy.reduce` fails on dict inputs and on batches whose padded length
      differs between replicas (bucketing). Our models are built when created, so the strategy
      recorded at creation is dropped: Keras then skips that step and builds the compiled metrics while
      tracing the train step, and `fit` still runs under the strategy because it runs in its scope. The
      optimizer is built here, in the strategy's scope: built lazily inside a replica's step, its
      variables fail to initialize with several local replicas.
    - With `MultiWorkerMirroredStrategy` across workers, Keras averages each logged scalar with
      `strategy.reduce(MEAN, value, axis=0)`, which fails on scalars; the replacement averages them over
      the replicas (axis None) and leaves every other case to Keras.
    """
    if strategy is None:
        yield
        return
    compat.forget_creation_strategy(model)
    if not model.optimizer.built:  # created lazily inside a replica's step, its slots fail to initialize
        model.optimizer.build(model.trainable_variables)
    with compat.replaced_reduce_per_replica(_scalars_averaged_over_workers):
        yield


def _scalars_averaged_over_workers(original: typing.Callable) -> typing.Callable:
    """Keras' `reduce_per_replica`, except that it averages scalars over replicas across workers."""

    def reduce_per_replica(values, strategy_in_use, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy_in_use):
            def reduce(value):
                local = strategy_in_use.experimental_local_results(value)[0]
                if tf.is_tensor(local) and local.shape.rank == 0:
                    return strategy_in_use.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                return original(value, strategy_in_use, reduction)
            return tf.nest.map_structure(reduce, values)
        return original(values, strategy_in_use, reduction)

    return reduce_per_replica
