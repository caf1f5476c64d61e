"""The blocks every task shares (train, export, runtime, the recurrent stack, data sources), the whole run, and
the schema that names one task's blocks.

Task modules subclass `DataConfig`, `RecurrentConfig` and, when they have train keys of their own,
`TrainConfig`. Rules between two blocks are methods of the block that owns them (`check_with_data`,
`check_with_runtime`), which `RunConfig` calls, so a task's rules stay in the task's module.
"""

import dataclasses
import os
from typing import Literal, Optional

from pipeline.config import bounds, errors


def _check_name(value: str, path: str) -> None:
    """Raises ConfigError unless `value` is a non-empty name without '/', usable as a folder name."""
    if not value or "/" in value:
        raise errors.ConfigError(f"{path}: must be a non-empty name without '/' (got {value!r})")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where the run lives and how TensorFlow executes it.

    Attributes:
        run_dir: Run directory; null uses `runs/<name>`.
        seed: Seeds Python, NumPy, TensorFlow, shuffling and the validation split.
        deterministic: Make TensorFlow ops deterministic (same seed, same weights).
        jit_compile: Compile the training step with XLA (slower on CPU; see docs/performance.md).
        mixed_precision: Keras dtype policy (bfloat16 is slower on most CPUs; see docs/performance.md).
        distribution: `tf.distribute` strategy: `none` (one device), `mirrored` (every GPU of this
            machine), `multi_worker` (several machines, each described by its `TF_CONFIG` environment
            variable) or `tpu`. `train.batch_size` stays the global batch, split across the replicas.
        tpu_address: With `distribution: tpu`, the TPU's name or `grpc://host:port` address; "" finds
            the TPU of this machine, Colab or Cloud TPU VM.
    """

    run_dir: Optional[str] = None
    seed: int = 42
    deterministic: bool = True
    jit_compile: bool = False
    mixed_precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    distribution: Literal["none", "mirrored", "multi_worker", "tpu"] = "none"
    tpu_address: str = ""

    def __post_init__(self):
        if self.distribution != "tpu" and self.tpu_address:
            raise errors.ConfigError(f"runtime.tpu_address: only used with runtime.distribution: tpu "
                                     f"(distribution is {self.distribution!r})")
        # Keras turns XLA off, with only a warning, for models compiled while op determinism is enabled.
        if self.jit_compile and self.deterministic:
            raise errors.ConfigError("runtime.jit_compile: XLA training needs runtime.deterministic: false "
                                     "(Keras does not compile with XLA while TensorFlow op determinism is "
                                     "enabled)")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: Passes over the training set.
        batch_size: Examples per training step: the global batch. Under `runtime.distribution` each of
            the N replicas gets `batch_size / N` of them, so results match one device's.
        optimizer: Optimizer name.
        learning_rate: Peak step size.
        learning_rate_schedule: `constant`; `cosine` decay to zero over all training steps; or
            `slanted_triangular` (ULMFiT): a linear rise from `learning_rate / slanted_triangular_ratio` to
            `learning_rate` over the first `warmup_fraction` of all training steps, then a linear decay back
            to `learning_rate / slanted_triangular_ratio` at the end of training.
        warmup_fraction: Share of all training steps the `slanted_triangular` schedule rises over; null uses
            ULMFiT's 0.1. Only with that schedule.
        slanted_triangular_ratio: How many times smaller than `learning_rate` the `slanted_triangular`
            schedule starts and ends; null uses ULMFiT's 32. Only with that schedule.
        discriminative_lr: Discriminative fine-tuning (ULMFiT): the model's layer groups (the task's
            `layer_groups`: embedding, each recurrent layer, the layers above), counted from the top, train
            with `learning_rate / discriminative_lr**k` (k = 0 for the top group); ULMFiT uses 2.6. null
            trains every group with `learning_rate`. Sentiment and tagging only.
        gradual_unfreezing: Gradual unfreezing (ULMFiT): epoch 1 trains only the top layer group, epoch 2 the
            top two, and so on until every group trains; frozen groups are left exactly as they are
            (weight decay and weight averaging included). Sentiment and tagging only.
        clipnorm: Clip each gradient to this L2 norm; null disables clipping.
        early_stopping_patience: Epochs without improvement of `monitor` before stopping; 0 disables.
        monitor: Validation metric that picks the best checkpoint and drives early stopping; one of the
            task's monitor choices (checked when the config loads).
        steps_per_epoch: Cap on training steps per epoch; null uses the whole training split.
        ema_momentum: Keep an exponential moving average of the weights (Polyak averaging) with this
            momentum, e.g. 0.99; validation, the best checkpoint and the export use the averaged weights.
            null trains without it.
        validation_every: Run the task's validation scorer (BLEU and chrF of greedy translations, CIDEr-D
            of greedy captions, span F1 of tags) every this many epochs and after the last; its scores
            join the epoch's metrics as `val_bleu` etc. 0 never runs it (a scorer monitor then refuses).
        validation_examples: Most validation examples the scorer reads: whole batches, picked evenly
            across the validation split's length buckets.
    """

    epochs: int = bounds.bounded(5, minimum=1)
    batch_size: int = bounds.bounded(32, minimum=1)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    learning_rate: float = bounds.bounded(1e-3, exclusive_minimum=0)
    learning_rate_schedule: Literal["constant", "cosine", "slanted_triangular"] = "constant"
    warmup_fraction: Optional[float] = bounds.bounded(None, exclusive_minimum=0, exclusive_maximum=1)
    slanted_triangular_ratio: Optional[float] = bounds.bounded(None, minimum=1)
    discriminative_lr: Optional[float] = bounds.bounded(None, minimum=1)
    gradual_unfreezing: bool = False
    clipnorm: Optional[float] = bounds.bounded(1.0, exclusive_minimum=0)
    early_stopping_patience: int = bounds.bounded(3, minimum=0)
    monitor: str = "val_accuracy"
    steps_per_epoch: Optional[int] = bounds.bounded(None, minimum=1)
    ema_momentum: Optional[float] = bounds.bounded(None, exclusive_minimum=0, exclusive_maximum=1)
    validation_every: int = bounds.bounded(1, minimum=0)
    validation_examples: int = bounds.bounded(1000, minimum=1)

    def __post_init__(self):
        bounds.check(self, "train")
        for name in ("warmup_fraction", "slanted_triangular_ratio"):
            if getattr(self, name) is not None and self.learning_rate_schedule != "slanted_triangular":
                raise errors.ConfigError(f"train.{name}: only used with train.learning_rate_schedule: "
                                         f"slanted_triangular (the schedule is {self.learning_rate_schedule!r})")

    def layer_group_keys(self) -> list[str]:
        """The keys set here that need the task's layer groups (`discriminative_lr`, `gradual_unfreezing`)."""
        settings = {"train.discriminative_lr": self.discriminative_lr is not None,
                    "train.gradual_unfreezing": self.gradual_unfreezing}
        return [key for key, is_set in settings.items() if is_set]

    def check_with_runtime(self, runtime: RuntimeConfig) -> None:
        """Raises ConfigError when these settings cannot run under `runtime`; every runtime suits them here."""

    def check_with_data(self, data: "DataConfig") -> None:
        """Raises ConfigError when these settings cannot train on `data`; any data block suits them here."""


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Where and how the SavedModel is written.

    Attributes:
        dir: Root of the TF Serving tree; exports go to `<dir>/<model_name>/<version>/`.
        model_name: TF Serving model name; null uses the run's `name`.
        on_train_end: Export automatically when `train` finishes.
        self_check: Load the export in a fresh process and compare it with the in-memory model.
        jit_compile: Also write XLA-compiled signatures (`serving_default_xla`, and for generative tasks
            `greedy_xla` and `beam_xla`): the numeric core between tokenization and detokenization is
            compiled with XLA; string processing stays outside. TF Serving needs
            `--xla_cpu_compilation_enabled=true` to run them on a CPU (see docs/serving.md).
    """

    dir: str = "exports"
    model_name: Optional[str] = None
    on_train_end: bool = True
    self_check: bool = True
    jit_compile: bool = False

    def __post_init__(self):
        if self.model_name is not None:
            _check_name(self.model_name, "export.model_name")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where examples come from and how they are batched.

    Attributes:
        source: `files`, `tfds:<name>` or `synthetic:<task>`.
        train: Training file (source `files`).
        validation: Validation file; null carves `validation_fraction` of train (seeded).
        test: Test file; null skips the test split.
        tfds_data_dir: TFDS data directory; null uses TFDS's default.
        validation_fraction: Share of train carved out when no validation split is given.
        synthetic_examples: Number of generated examples (source `synthetic:<task>`).
        on_bad_rows: `error` stops at the first malformed row naming file and line; `skip` skips and
            counts malformed rows (in the log and in metrics.json).
        bucketing: Batch examples of similar length together instead of padding to the longest.
        num_buckets: Number of length buckets (boundaries from quantiles of the training lengths).
        shuffle_buffer: Shuffle buffer size in examples when streaming (`cache: false`); a cached split is
            shuffled whole every epoch.
        cache: Hold the vectorized split in memory and batch it by gathering (vectorization runs once).
    """

    source: str = "files"
    train: Optional[str] = None
    validation: Optional[str] = None
    test: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    validation_fraction: float = bounds.bounded(0.1, exclusive_minimum=0, exclusive_maximum=1)
    synthetic_examples: int = bounds.bounded(4000, minimum=10)
    on_bad_rows: Literal["error", "skip"] = "error"
    bucketing: bool = True
    num_buckets: int = bounds.bounded(8, minimum=1)
    shuffle_buffer: int = bounds.bounded(10000, minimum=1)
    cache: bool = True

    def __post_init__(self):
        kind, separator, detail = self.source.partition(":")
        well_formed = (kind in ("files", "tfds", "synthetic") and bool(detail) == (kind != "files")
                       and bool(separator) == (kind != "files"))
        if not well_formed:
            raise errors.ConfigError(f"data.source: expected 'files', 'tfds:<name>' or 'synthetic:<task>', "
                                     f"got {self.source!r}."
                                     + errors.did_you_mean(kind, ("files", "tfds", "synthetic")))
        if kind == "files" and self.train is None:
            raise errors.ConfigError("data.train: required when data.source is 'files'")
        bounds.check(self, "data")

    def input_paths(self) -> dict[str, list[str]]:
        """Files, folders or glob patterns the run reads, by dotted key (none unless `source` is files)."""
        if self.source != "files":
            return {}
        return {f"data.{name}": as_path_list(getattr(self, name)) for name in ("train", "validation", "test")
                if getattr(self, name) is not None}


def as_path_list(value) -> list[str]:
    """A path, or a list of paths, as a list."""
    return [value] if isinstance(value, str) else list(value)


@dataclasses.dataclass(frozen=True)
class RecurrentConfig:
    """Embedding and recurrent stack settings shared by every recurrent model.

    Attributes:
        embedding_dim: Size of the token embedding.
        cell: Recurrent cell type.
        units: Units per recurrent layer and direction.
        layers: Number of stacked recurrent layers.
        bidirectional: Run each layer forwards and backwards and concatenate.
        dropout: Dropout rate after the embedding and between recurrent layers.
    """

    embedding_dim: int = bounds.bounded(64, minimum=1)
    cell: Literal["simple_rnn", "lstm", "gru"] = "lstm"
    units: int = bounds.bounded(64, minimum=1)
    layers: int = bounds.bounded(1, minimum=1)
    bidirectional: bool = False
    dropout: float = bounds.bounded(0.0, minimum=0, exclusive_maximum=1)

    def __post_init__(self):
        bounds.check(self, "model")

    def check_with_data(self, data: DataConfig) -> None:
        """Raises ConfigError when this model cannot be trained on `data`; any data block suits it here."""

    def input_paths(self) -> dict[str, list[str]]:
        """Files the model reads (pretrained weights), by dotted key; none here."""
        return {}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One run: what to learn from, what to build, how to train it and where to export it.

    Attributes:
        name: Run name; the default run directory and TF Serving model name.
        task: Which task's data and model blocks apply.
        data: Data block of the task.
        model: Model block of the task.
        train: Optimisation settings.
        export: SavedModel export settings.
        runtime: Run directory, seed and execution settings.
    """

    name: str
    task: str
    data: DataConfig
    model: RecurrentConfig
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    def __post_init__(self):
        _check_name(self.name, "name")
        kind, _, detail = self.data.source.partition(":")
        if kind == "synthetic" and detail != self.task:
            raise errors.ConfigError(f"data.source: {self.data.source!r} does not match task {self.task!r}; "
                                     f"use 'synthetic:{self.task}'")
        self.model.check_with_data(self.data)
        self.train.check_with_data(self.data)
        self.train.check_with_runtime(self.runtime)

    @property
    def run_dir(self) -> str:
        return self.runtime.run_dir or os.path.join("runs", self.name)

    def input_paths(self) -> dict[str, list[str]]:
        """Every file, folder or glob pattern the run reads, by dotted config key (data, then model)."""
        return {**self.data.input_paths(), **self.model.input_paths()}

    @property
    def model_name(self) -> str:
        return self.export.model_name or self.name


@dataclasses.dataclass(frozen=True)
class TaskSchema:
    """The config blocks of one task, picked by the run's `task:` key when a config loads.

    Attributes:
        data: The task's data block, a `DataConfig` subclass.
        model: The task's model block, a `RecurrentConfig` subclass.
        monitor_choices: Validation metrics `train.monitor` may name.
        train: The task's train block: `TrainConfig`, or a subclass for a task with train keys of its own.
        scored_monitors: Those of `monitor_choices` that the task's validation scorer computes (not Keras
            metrics); monitoring one needs `train.validation_every >= 1`.
        has_layer_groups: Whether the task's `layer_groups` names its model's layer groups, which
            `train.discriminative_lr` and `train.gradual_unfreezing` need.
    """

    data: type[DataConfig]
    model: type[RecurrentConfig]
    monitor_choices: tuple[str, ...]
    train: type[TrainConfig] = TrainConfig
    scored_monitors: tuple[str, ...] = ()
    has_layer_groups: bool = False
