"""The task contract: every member the framework (training, evaluation, export) calls on a task.

A task wires one kind of config to its data, preprocessing, model, losses, evaluation and serving
signatures. The framework never names a task: it asks the task object. The order of calls is

    task = SomeTask(config)
    splits = task.load_splits()
    preprocessing = task.fit_preprocessing(splits)           # or task.load_preprocessing(run_dir)
    task.save_preprocessing(preprocessing, run_dir)
    datasets = task.datasets(splits, preprocessing)
    model = task.build_model(preprocessing)
    model.compile(loss=task.loss(), metrics=task.metrics())  # then fit with task.training_callbacks(model)
    task.evaluate(model, datasets["test"], preprocessing)
    task.serving_functions(model, preprocessing)             # the export's signatures

Optional members serve error analysis and reports: `read_labelled_file` (`evaluate --data FILE`),
`predictions` (`evaluate --predictions FILE`, sample predictions in TensorBoard) and `figures` (the task's
own pictures in `<run_dir>/figures/`, beside the learning curves the framework draws for every task).
`text_encoder` names the token embedding and recurrent layers of the task's model, so that another run can
start from them and they from another run or from pretrained word vectors (`pipeline.warm_start`).

Preprocessing state (vocabularies, label names) is one explicit value, a `Preprocessing`, returned by
`fit_preprocessing` or `load_preprocessing` and handed to every later step; a task object holds no state
that has to be filled in a particular order.
"""

import abc
import dataclasses
import functools
import inspect
import os
import typing

import keras
import tensorflow as tf

from pipeline import config as config_lib
from pipeline.data import text as text_lib

PREPROCESSING_DIR = "vocab"


@dataclasses.dataclass
class Preprocessing:
    """State fitted on the training split: named lists of strings (vocabularies, label names) and binary
    models (a SentencePiece model).

    Subclasses are dataclasses whose fields are lists (or tuples) of strings or `bytes`. A list is saved as
    a JSON list, a `bytes` field as a file holding exactly those bytes, each under `<run_dir>/vocab/`,
    named by `FILES` (field name -> file name; `<field>.json` or `<field>.bin` for fields it does not
    name). Lookup tables and tokenizers built from the fields belong in cached properties: they are built
    once, when the value is made, and the export tracks the very objects the serving functions use.
    """

    FILES: typing.ClassVar[dict[str, str]] = {}

    def __post_init__(self):
        # Lookup tables are built here, eagerly: first built inside a traced function (a tf.data map, a
        # signature) they would belong to that graph.
        for name, member in inspect.getmembers(type(self)):
            if isinstance(member, functools.cached_property):
                getattr(self, name)

    @classmethod
    def file_name(cls, field_name: str) -> str:
        binary = _is_binary(next(field for field in dataclasses.fields(cls) if field.name == field_name))
        return cls.FILES.get(field_name, f"{field_name}.bin" if binary else f"{field_name}.json")

    def save(self, directory: str) -> None:
        """Writes every field (each file atomically)."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if _is_binary(field):
                _write_bytes(bytes(value), directory, self.file_name(field.name))
            else:
                text_lib.save_vocabulary(list(value), directory, self.file_name(field.name))

    @classmethod
    def load(cls, directory: str) -> "Preprocessing":
        """Reads what `save` wrote; a missing file is a FileNotFoundError naming it."""
        return cls(**{field.name: _read_field(field, directory, cls.file_name(field.name))
                      for field in dataclasses.fields(cls)})

    @classmethod
    def exists(cls, directory: str) -> bool:
        return all(os.path.exists(os.path.join(directory, cls.file_name(field.name)))
                   for field in dataclasses.fields(cls))

    def trackables(self) -> list:
        """TensorFlow objects the export has to carry besides the model: the cached lookup tables."""
        return [getattr(self, name) for name, member in inspect.getmembers(type(self))
                if isinstance(member, functools.cached_property)]


class LookupTable(functools.cached_property):
    """A `Preprocessing` member: the string-to-id table of one of its vocabularies, built once.

    Example: `word_lookup = base.LookupTable("words")` maps the strings of the `words` field to their ids
    (padding "" -> 0, unknown -> 1); the export carries the table.
    """

    def __init__(self, vocabulary_field: str):
        super().__init__(lambda preprocessing: text_lib.string_lookup(getattr(preprocessing, vocabulary_field)))
        self.__doc__ = f"String -> id over `{vocabulary_field}`."


def _is_binary(field: dataclasses.Field) -> bool:
    return field.type is bytes or field.type == "bytes"


def _read_field(field: dataclasses.Field, directory: str, file_name: str):
    if not _is_binary(field):
        values = text_lib.load_vocabulary(directory, file_name)
        return tuple(values) if typing.get_origin(field.type) is tuple or field.type is tuple else list(values)
    path = os.path.join(directory, file_name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: preprocessing file not found; was this run directory trained?")
    with open(path, "rb") as stream:
        return stream.read()


def _write_bytes(value: bytes, directory: str, file_name: str) -> None:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name)
    with open(f"{path}.tmp", "wb") as stream:
        stream.write(value)
    os.replace(f"{path}.tmp", path)


@dataclasses.dataclass(frozen=True)
class TextEncoder:
    """The token embedding and the recurrent stack of a model, as `Task.text_encoder` names them.

    The first recurrent layer reads the embedding's features first (then any others, e.g. a tagger's
    character features); every later layer reads the previous layer's output, a bidirectional layer's as
    [forward, backward].

    Attributes:
        embedding: The `keras.layers.Embedding` of the tokens.
        vocabulary: The token of each embedding row, in row order; row 0 is padding (""), row 1 the
            out-of-vocabulary token.
        recurrent_layers: The recurrent layers from the bottom up: each a Keras `SimpleRNN`, `LSTM` or `GRU`,
            or a `keras.layers.Bidirectional` of one.
        lowercase: Whether the vocabulary's words are lower-cased text.
    """

    embedding: keras.layers.Embedding
    vocabulary: typing.Sequence[str]
    recurrent_layers: typing.Sequence[keras.layers.Layer]
    lowercase: bool = False


@dataclasses.dataclass
class ValidationScores:
    """One pass of a task's validation scorer.

    Attributes:
        scores: Score name without the `val_` prefix -> value, e.g. {"bleu": 31.2, "chrf": 55.0}.
        samples: A few examples as readable strings (e.g. source, reference, hypothesis), for TensorBoard.
    """

    scores: dict[str, float]
    samples: list[dict[str, str]] = dataclasses.field(default_factory=list)


class Splits(typing.Protocol):
    """What `load_splits` returns: named splits (`train`, `validation`, maybe `test`) and skipped rows."""

    splits: dict[str, typing.Any]

    @property
    def skipped_rows(self) -> dict: ...


class Task(abc.ABC):
    """Base of every task. Subclasses fill in the abstract members; the others have working defaults.

    Class attributes:
        schema: The task's config blocks and monitor choices (`config_lib.TaskSchema`); a task defined
            outside the package passes `{name: schema}` to `config_lib.load_config(..., schemas=...)`.
        preprocessing_class: The task's `Preprocessing` subclass (what `load_preprocessing` reads).
        serving_input: Name of the raw string input of the `serving_default` signature (`text`,
            `image_bytes`, `prompt`); the export self-check and `predict` feed it.
        compiles_serving: Whether `compiled_serving_functions` offers XLA-compiled signatures
            (`export.jit_compile`).
    """

    schema: typing.ClassVar[config_lib.TaskSchema]
    preprocessing_class: typing.ClassVar[type[Preprocessing]] = Preprocessing
    serving_input: typing.ClassVar[str] = "text"
    compiles_serving: typing.ClassVar[bool] = False

    def __init__(self, config: config_lib.RunConfig):
        self.config = config

    @property
    def data_config(self):
        """The task's `data` block."""
        return self.config.data

    @property
    def model_config(self):
        """The task's `model` block."""
        return self.config.model

    @property
    def train_config(self):
        """The task's `train` block."""
        return self.config.train

    @property
    def monitor_choices(self) -> tuple[str, ...]:
        """Values `train.monitor` may take (checked when the config loads)."""
        return self.schema.monitor_choices

    # === Data ===

    @abc.abstractmethod
    def load_splits(self) -> Splits:
        """Reads or generates the splits named by the data config."""

    @abc.abstractmethod
    def fit_preprocessing(self, splits: Splits) -> Preprocessing:
        """Fits the preprocessing state on the training split only."""

    def save_preprocessing(self, preprocessing: Preprocessing, run_dir: str) -> None:
        preprocessing.save(os.path.join(run_dir, PREPROCESSING_DIR))

    def load_preprocessing(self, run_dir: str) -> Preprocessing:
        return self.preprocessing_class.load(os.path.join(run_dir, PREPROCESSING_DIR))

    def has_preprocessing(self, run_dir: str) -> bool:
        return self.preprocessing_class.exists(os.path.join(run_dir, PREPROCESSING_DIR))

    @abc.abstractmethod
    def datasets(self, splits: Splits, preprocessing: Preprocessing) -> dict[str, tf.data.Dataset]:
        """Batched `(features, labels)` datasets per split, one pass each, of known length.

        The train split is reshuffled on every pass, the order of pass k depending only on the run's seed
        and k (`data.batching.shuffle_each_pass`, or `batching.batch_examples`): training reads all epochs
        through one iterator and skips the finished ones on resume, so a resumed run sees the same batches.
        """

    @abc.abstractmethod
    def sample_inputs(self, splits: Splits) -> list:
        """A few raw inputs (strings, or `{"b64": ...}` for bytes) for the export self-check and the demo."""

    # === Model ===

    @abc.abstractmethod
    def build_model(self, preprocessing: Preprocessing) -> keras.Model:
        """The Keras model for this config and these vocabularies."""

    def loss(self) -> keras.losses.Loss:
        """The training loss; by default cross-entropy of integer labels against predicted probabilities."""
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self) -> list:
        """Keras metrics reported during training (`val_<name>` may be monitored); by default `accuracy`."""
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def training_callbacks(self, model: keras.Model) -> list:
        """Callbacks this task adds to `fit` (e.g. resetting a carried recurrent state); none by default."""
        del model
        return []

    def layer_groups(self, model: keras.Model) -> typing.Optional[dict[str, list[keras.layers.Layer]]]:
        """The model's layer groups for fine-tuning, bottom to top: group name -> its Keras layers.

        `train.discriminative_lr` gives each group its own learning rate and `train.gradual_unfreezing`
        unfreezes one group per epoch from the top; every trainable weight of the model has to be in
        exactly one group. A task that has groups also sets `schema.has_layer_groups`, so that a config
        asking for them is checked when it loads. None by default: no groups.
        """
        del model
        return None

    def cudnn_reasons(self) -> list[str]:
        """Config settings of this task that keep recurrent layers off cuDNN kernels on a GPU; none by default."""
        return []

    def text_encoder(self, model: keras.Model, preprocessing: Preprocessing) -> typing.Optional[TextEncoder]:
        """The token embedding and recurrent layers of `model`, which a warm start copies from and into.

        None by default: this task has no encoder to share (it can neither start another run's model nor
        be started from one).
        """
        del model, preprocessing
        return None

    # === Evaluation ===

    @abc.abstractmethod
    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset, preprocessing: Preprocessing) -> dict:
        """Scores one split: a JSON-ready dict of metrics (floats are logged as the split's headline)."""

    def validation_scores(self, model: keras.Model, dataset: tf.data.Dataset,
                          preprocessing: Preprocessing) -> typing.Optional[ValidationScores]:
        """Scores of the task's own kind (BLEU, CIDEr-D, span F1) on validation batches, during training.

        Called every `train.validation_every` epochs with a subset of the validation split; its scores join
        the epoch's metrics as `val_<name>`, so that `train.monitor` may pick the best checkpoint by them.
        Each name must be in `schema.scored_monitors` (as `val_<name>`). None by default: no scorer.
        """
        del model, dataset, preprocessing
        return None

    # === Serving ===

    @abc.abstractmethod
    def serving_functions(self, model: keras.Model, preprocessing: Preprocessing) -> dict[str, typing.Callable]:
        """Signature name -> `tf.function` with an input signature; `serving_default` takes `serving_input`."""

    def compiled_serving_functions(self, model: keras.Model,
                                   preprocessing: Preprocessing) -> dict[str, typing.Callable]:
        """XLA-compiled twins of the signatures, named `<name>_xla` (when `compiles_serving`)."""
        del model, preprocessing
        return {}

    # === Error analysis and reports ===

    def read_labelled_file(self, path: str, splits: Splits):
        """Reads one labelled file, in a format this task reads for `data.test`, as one more split.

        Labels are indexed as in `splits` (the run's class or tag names), so the split can be batched by
        `datasets` and scored by `evaluate` beside the run's own splits (`evaluate RUN --data FILE`).

        Returns:
            A split of the kind `splits.splits` holds.
        """
        del path, splits
        raise NotImplementedError(f"the {type(self).__name__} task cannot read a labelled file for "
                                  "`evaluate --data`; it has no read_labelled_file")

    def predictions(self, model: keras.Model, preprocessing: Preprocessing, split) -> typing.Iterator[dict]:
        """Every example of a split (as `load_splits` gives it), in order: its prediction beside its reference.

        Yields:
            One JSON-ready dict per example (`evaluate --predictions FILE` writes them as JSON Lines).
        """
        del model, preprocessing, split
        raise NotImplementedError(f"the {type(self).__name__} task does not write predictions; it has no "
                                  "predictions member")

    def figures(self, model: keras.Model, preprocessing: Preprocessing, splits: Splits, metrics: dict,
                directory: str) -> list[str]:
        """Draws this task's own figures (PNG) into `directory` after training; none by default.

        The framework draws the learning curves of every run itself.

        Args:
            model: The trained (best) model.
            preprocessing: The run's preprocessing.
            splits: The run's splits.
            metrics: The evaluation of each split, as in metrics.json.
            directory: `<run_dir>/figures`.

        Returns:
            The paths written.
        """
        del model, preprocessing, splits, metrics, directory
        return []
