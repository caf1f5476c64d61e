"""Typed, frozen run configuration: YAML files merged left to right, `--set a.b=c` overrides, strict checks.

A run is described by one `RunConfig`. Its `data` and `model` blocks depend on the task, picked by the
top-level `task:` key through `TASK_CONFIG_CLASSES`. Every error names the dotted path of the key, what was
expected and what was found, with a did-you-mean hint for misspelt keys and choices.
"""

import dataclasses
import difflib
import os
import types
import typing
from typing import Literal, Optional, Union

import yaml


class ConfigError(ValueError):
    """A configuration that cannot be run: unknown key, wrong type, bad value or impossible combination."""


def _did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# === Blocks shared by every task ===


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: Passes over the training set.
        batch_size: Examples per training step: the global batch. Under `runtime.distribution` each of
            the N replicas gets `batch_size / N` of them, so results match one device's.
        optimizer: Optimizer name.
        learning_rate: Peak step size.
        learning_rate_schedule: `constant`, or `cosine` decay to zero over all training steps.
        clipnorm: Clip each gradient to this L2 norm; null disables clipping.
        early_stopping_patience: Epochs without improvement of `monitor` before stopping; 0 disables.
        monitor: Validation metric that picks the best checkpoint and drives early stopping.
        steps_per_epoch: Cap on training steps per epoch; null uses the whole training split.
        ema_momentum: Keep an exponential moving average of the weights (Polyak averaging) with this
            momentum, e.g. 0.99; validation, the best checkpoint and the export use the averaged weights.
            null trains without it.
    """

    epochs: int = 5
    batch_size: int = 32
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    learning_rate: float = 1e-3
    learning_rate_schedule: Literal["constant", "cosine"] = "constant"
    clipnorm: Optional[float] = 1.0
    early_stopping_patience: int = 3
    monitor: str = "val_accuracy"
    steps_per_epoch: Optional[int] = None
    ema_momentum: Optional[float] = None

    def __post_init__(self):
        _require(self.ema_momentum is None or 0 < self.ema_momentum < 1,
                 f"train.ema_momentum: must be in (0, 1) or null (got {self.ema_momentum})")
        _require(self.epochs >= 1, f"train.epochs: must be >= 1 (got {self.epochs})")
        _require(self.batch_size >= 1, f"train.batch_size: must be >= 1 (got {self.batch_size})")
        _require(self.learning_rate > 0, f"train.learning_rate: must be > 0 (got {self.learning_rate})")
        _require(self.clipnorm is None or self.clipnorm > 0,
                 f"train.clipnorm: must be > 0 or null (got {self.clipnorm})")
        _require(self.early_stopping_patience >= 0,
                 f"train.early_stopping_patience: must be >= 0 (got {self.early_stopping_patience})")
        _require(self.steps_per_epoch is None or self.steps_per_epoch >= 1,
                 f"train.steps_per_epoch: must be >= 1 or null (got {self.steps_per_epoch})")


@dataclasses.dataclass(frozen=True)
class LanguageModelTrainConfig(TrainConfig):
    """Optimisation settings of a language model: TrainConfig plus how backpropagation is truncated.

    The text is one long stream, so how far gradients reach back is a training choice, not a data one:
    both keys change what the optimizer sees, and neither changes the data, the vocabulary or the model.

    Attributes:
        monitor: `val_loss` (mean cross-entropy per token, the log of the perplexity) or `val_perplexity`.
        tbptt_steps: Tokens per training chunk: gradients flow back through at most this many steps.
        carry_state: Truncated backpropagation through time: the stream is laid out in `batch_size`
            rows read in consecutive chunks, each row's final recurrent state starts the same row of the
            next batch (reset at every epoch), and gradients stop at chunk boundaries. False trains on
            independent, shuffled chunks of `tbptt_steps` tokens, each from a zero state.
    """

    monitor: str = "val_loss"
    tbptt_steps: int = 100
    carry_state: bool = True

    def __post_init__(self):
        super().__post_init__()
        _require(self.tbptt_steps >= 1, f"train.tbptt_steps: must be >= 1 (got {self.tbptt_steps})")


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
            `--xla_cpu_compilation_enabled=true` to run them on a CPU (see README).
    """

    dir: str = "exports"
    model_name: Optional[str] = None
    on_train_end: bool = True
    self_check: bool = True
    jit_compile: bool = False

    def __post_init__(self):
        _require(self.model_name is None or (self.model_name and "/" not in self.model_name),
                 f"export.model_name: must be a non-empty name without '/' (got {self.model_name!r})")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Where the run lives and how TensorFlow executes it.

    Attributes:
        run_dir: Run directory; null uses `runs/<name>`.
        seed: Seeds Python, NumPy, TensorFlow, shuffling and the validation split.
        deterministic: Make TensorFlow ops deterministic (same seed, same weights).
        jit_compile: Compile the training step with XLA (slower on CPU; see README).
        mixed_precision: Keras dtype policy (bfloat16 is slower on most CPUs; see README).
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
        _require(self.distribution == "tpu" or not self.tpu_address,
                 f"runtime.tpu_address: only used with runtime.distribution: tpu "
                 f"(distribution is {self.distribution!r})")
        # Keras turns XLA off, with only a warning, for models compiled while op determinism is enabled.
        _require(not (self.jit_compile and self.deterministic),
                 "runtime.jit_compile: XLA training needs runtime.deterministic: false (Keras does not "
                 "compile with XLA while TensorFlow op determinism is enabled)")


# === Recurrent models ===


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

    embedding_dim: int = 64
    cell: Literal["simple_rnn", "lstm", "gru"] = "lstm"
    units: int = 64
    layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0

    def __post_init__(self):
        for key in ("embedding_dim", "units", "layers"):
            value = getattr(self, key)
            _require(value >= 1, f"model.{key}: must be >= 1 (got {value})")
        _require(0.0 <= self.dropout < 1.0, f"model.dropout: must be in [0, 1) (got {self.dropout})")


@dataclasses.dataclass(frozen=True)
class SentimentModelConfig(RecurrentConfig):
    """Many-to-one classifier: embedding, recurrent stack, pooling over time, softmax.

    Attributes:
        pooling: How the sequence becomes one vector: the final state (`last`), a masked `mean` or
            `max` over time, both concatenated (`mean_max`), or learned `attention` weights over time steps.
        word_dropout: Probability of replacing a training word by the out-of-vocabulary token (a
            regularizer; it also trains the out-of-vocabulary embedding).
    """

    pooling: Literal["last", "mean", "max", "mean_max", "attention"] = "last"
    word_dropout: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        _require(0.0 <= self.word_dropout < 1.0,
                 f"model.word_dropout: must be in [0, 1) (got {self.word_dropout})")


@dataclasses.dataclass(frozen=True)
class TaggerModelConfig(RecurrentConfig):
    """Many-to-many tagger: word embedding (+ character encoder) -> recurrent stack -> softmax per token.

    Attributes:
        bidirectional: Tagging sees both sides of each word, so bidirectional is the default.
        char_encoder: Character-level word features, so unseen words still get useful features: `cnn`
            (convolution and max-pooling over characters), `bilstm`, or `none`.
        char_embedding_dim: Size of the character embedding.
        char_units: CNN filters, or BiLSTM units per direction, of the character encoder.
        word_dropout: Probability of replacing a training word by the out-of-vocabulary token, so the
            model learns what to do with words it has never seen.
    """

    bidirectional: bool = True
    char_encoder: Literal["none", "cnn", "bilstm"] = "cnn"
    char_embedding_dim: int = 32
    char_units: int = 32
    word_dropout: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        _require(0.0 <= self.word_dropout < 1.0,
                 f"model.word_dropout: must be in [0, 1) (got {self.word_dropout})")
        for key in ("char_embedding_dim", "char_units"):
            value = getattr(self, key)
            _require(value >= 1, f"model.{key}: must be >= 1 (got {value})")


@dataclasses.dataclass(frozen=True)
class Seq2SeqModelConfig(RecurrentConfig):
    """Encoder-decoder translator: recurrent encoder, recurrent decoder with attention, in-graph decoding.

    `cell`, `units`, `layers` and `dropout` apply to both encoder and decoder; `bidirectional` to the
    encoder only (the decoder generates left to right).

    Attributes:
        attention: How each decoder step reads the encoder outputs: `bahdanau` (additive scores),
            `luong` (multiplicative "general" scores), or `none` (the encoder's final state only).
        label_smoothing: Share of the target probability spread evenly over the vocabulary in the loss.
        decoding: Decoding of the `serving_default` signature and of BLEU/chrF in evaluation:
            `beam`, `greedy`, or `sample` (evaluation then uses greedy).
        beam_size: Hypotheses kept per input by beam search.
        length_penalty: GNMT length-normalization exponent of beam search; 0 ranks by log-probability.
        temperature: Softmax temperature of `serving_default` when `decoding` is `sample`.
        max_decode_length: Most generated tokens (end token included); null uses
            `data.max_target_length + 1`.
    """

    attention: Literal["bahdanau", "luong", "none"] = "bahdanau"
    label_smoothing: float = 0.0
    decoding: Literal["beam", "greedy", "sample"] = "beam"
    beam_size: int = 4
    length_penalty: float = 0.6
    temperature: float = 1.0
    max_decode_length: Optional[int] = None

    def __post_init__(self):
        super().__post_init__()
        _require(0.0 <= self.label_smoothing < 1.0,
                 f"model.label_smoothing: must be in [0, 1) (got {self.label_smoothing})")
        _require(self.beam_size >= 1, f"model.beam_size: must be >= 1 (got {self.beam_size})")
        _require(self.length_penalty >= 0, f"model.length_penalty: must be >= 0 (got {self.length_penalty})")
        _require(self.temperature > 0, f"model.temperature: must be > 0 (got {self.temperature})")
        _require(self.max_decode_length is None or self.max_decode_length >= 1,
                 f"model.max_decode_length: must be >= 1 or null (got {self.max_decode_length})")


@dataclasses.dataclass(frozen=True)
class LanguageModelConfig(RecurrentConfig):
    """Next-token predictor: embedding -> unidirectional recurrent layers -> softmax over the vocabulary.

    Attributes:
        decoding: Decoding of the export's `serving_default` signature: `sample`, `greedy` or `beam`.
        temperature: Softmax temperature of `serving_default` when `decoding` is `sample`.
        top_k: Sample only among the `top_k` most probable tokens; 0 keeps all.
        beam_size: Hypotheses kept by beam search.
        max_generate_length: Most tokens generated after the prompt.
        stop_at_newline: End a generation at the first line break (for one-sentence-per-line corpora);
            false always generates `max_generate_length` tokens.
    """

    decoding: Literal["sample", "greedy", "beam"] = "sample"
    temperature: float = 0.8
    top_k: int = 0
    beam_size: int = 4
    max_generate_length: int = 200
    stop_at_newline: bool = False

    def __post_init__(self):
        super().__post_init__()
        _require(not self.bidirectional,
                 "model.bidirectional: must be false; a language model reads left to right")
        _require(self.temperature > 0, f"model.temperature: must be > 0 (got {self.temperature})")
        _require(self.top_k >= 0, f"model.top_k: must be >= 0 (got {self.top_k})")
        _require(self.beam_size >= 1, f"model.beam_size: must be >= 1 (got {self.beam_size})")
        _require(self.max_generate_length >= 1,
                 f"model.max_generate_length: must be >= 1 (got {self.max_generate_length})")


IMAGE_ENCODERS = ("small_cnn", "squeezenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                  "efficientnet_b0", "resnet50")


@dataclasses.dataclass(frozen=True)
class ImageEncoderConfig:
    """The CNN that turns an image into a grid of feature vectors.

    Attributes:
        name: `small_cnn` (trained from scratch), `squeezenet` (SqueezeNet v1.1) or a
            `keras.applications` backbone: `mobilenet_v2`, `mobilenet_v3_small`, `mobilenet_v3_large`,
            `efficientnet_b0`, `resnet50`.
        weights: Pretrained weights: null (random initialization), `imagenet` (downloaded on first use:
            needs internet) or the path of a local weights file (`.h5` or `.weights.h5`).
        trainable: Fine-tune the encoder with the decoder; false freezes it (its features are then
            computed once per image and cached when `data.cache_features` is true).
        image_size: Images are resized to this square size; null uses the backbone's own (227 for
            SqueezeNet, 224 for the others, 64 for `small_cnn`).
        filters: Convolution filters per block of `small_cnn` (each block halves the resolution).
    """

    name: Literal["small_cnn", "squeezenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                  "efficientnet_b0", "resnet50"] = "small_cnn"
    weights: Optional[str] = None
    trainable: bool = True
    image_size: Optional[int] = None
    filters: tuple[int, ...] = (32, 64, 128)

    def __post_init__(self):
        _require(self.image_size is None or self.image_size >= 32,
                 f"model.encoder.image_size: must be >= 32 or null (got {self.image_size})")
        _require(len(self.filters) >= 1 and all(value >= 1 for value in self.filters),
                 f"model.encoder.filters: must be a non-empty list of positive sizes (got {list(self.filters)})")
        _require(self.weights is None or bool(self.weights.strip()),
                 "model.encoder.weights: must be null, 'imagenet' or a weights file path (got an empty string)")
        _require(self.trainable or self.weights is not None,
                 f"model.encoder.trainable: a frozen encoder needs pretrained weights; set model.encoder.weights "
                 f"('imagenet' or a weights file) or model.encoder.trainable: true (encoder {self.name!r})")


@dataclasses.dataclass(frozen=True)
class CaptionerModelConfig(Seq2SeqModelConfig):
    """Image captioner: CNN encoder -> recurrent decoder (Show-and-Tell or Show-Attend-and-Tell).

    `cell`, `units`, `layers`, `embedding_dim` and `dropout` apply to the decoder; the decoding keys
    (`decoding`, `beam_size`, `length_penalty`, `temperature`, `max_decode_length`) and
    `label_smoothing` work as for translation.

    Attributes:
        encoder: The image encoder block.
        decoder: `show_and_tell`: the pooled image feature initializes the recurrent state (Vinyals et
            al. 2015); `show_attend_and_tell`: the initial state comes from the mean feature and every
            step attends over the spatial feature grid (Xu et al. 2015).
        attention: Scores of `show_attend_and_tell`: `bahdanau` (additive) or `luong` (multiplicative).
        beam_size: Hypotheses kept per image by beam search.
    """

    encoder: ImageEncoderConfig = ImageEncoderConfig()
    decoder: Literal["show_and_tell", "show_attend_and_tell"] = "show_attend_and_tell"
    beam_size: int = 3

    def __post_init__(self):
        super().__post_init__()
        _require(not self.bidirectional,
                 "model.bidirectional: the caption decoder generates left to right; it cannot be bidirectional")
        _require(self.decoder != "show_attend_and_tell" or self.attention != "none",
                 "model.attention: show_attend_and_tell needs 'bahdanau' or 'luong' "
                 "(for no attention use model.decoder: show_and_tell)")


# === Data ===


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
    validation_fraction: float = 0.1
    synthetic_examples: int = 4000
    on_bad_rows: Literal["error", "skip"] = "error"
    bucketing: bool = True
    num_buckets: int = 8
    shuffle_buffer: int = 10000
    cache: bool = True

    def __post_init__(self):
        kind, separator, detail = self.source.partition(":")
        _require(kind in ("files", "tfds", "synthetic") and bool(detail) == (kind != "files")
                 and bool(separator) == (kind != "files"),
                 f"data.source: expected 'files', 'tfds:<name>' or 'synthetic:<task>', got {self.source!r}."
                 + _did_you_mean(kind, ("files", "tfds", "synthetic")))
        _require(kind != "files" or self.train is not None,
                 "data.train: required when data.source is 'files'")
        _require(0.0 < self.validation_fraction < 1.0,
                 f"data.validation_fraction: must be in (0, 1) (got {self.validation_fraction})")
        _require(self.synthetic_examples >= 10,
                 f"data.synthetic_examples: must be >= 10 (got {self.synthetic_examples})")
        _require(self.num_buckets >= 1, f"data.num_buckets: must be >= 1 (got {self.num_buckets})")
        _require(self.shuffle_buffer >= 1, f"data.shuffle_buffer: must be >= 1 (got {self.shuffle_buffer})")


@dataclasses.dataclass(frozen=True)
class TextClassificationDataConfig(DataConfig):
    """Labelled texts (CSV, TSV, JSONL, `label text` lines, TFDS or synthetic) and their vectorization.

    Attributes:
        file_format: File layout; `auto` picks it from the extension (a trailing .gz is ignored).
        header: CSV/TSV files start with a header row naming the columns.
        text_column: Column name (or 0-based index) of the text.
        label_column: Column name (or 0-based index) of the label.
        labels: Class names in class-index order; integer labels in files index this list. Null
            collects them from the training split (sorted; numerically when all are integers).
        vocabulary_size: Largest vocabulary, including the padding and out-of-vocabulary tokens.
        max_sequence_length: Tokens kept per text (the first ones).
        lowercase: Lower-case text before splitting.
        strip_punctuation: Remove ASCII punctuation (and `<br />` tags) before splitting.
    """

    file_format: Literal["auto", "csv", "tsv", "jsonl", "label_text"] = "auto"
    header: bool = True
    text_column: Union[str, int] = "text"
    label_column: Union[str, int] = "label"
    labels: Optional[tuple[str, ...]] = None
    vocabulary_size: int = 20000
    max_sequence_length: int = 256
    lowercase: bool = True
    strip_punctuation: bool = True

    def __post_init__(self):
        super().__post_init__()
        _require(self.vocabulary_size >= 3, f"data.vocabulary_size: must be >= 3 (got {self.vocabulary_size})")
        _require(self.max_sequence_length >= 1,
                 f"data.max_sequence_length: must be >= 1 (got {self.max_sequence_length})")
        if self.labels is not None:
            _require(len(self.labels) >= 2, f"data.labels: needs at least 2 classes (got {list(self.labels)})")
            _require(len(set(self.labels)) == len(self.labels),
                     f"data.labels: class names must be unique (got {list(self.labels)})")


@dataclasses.dataclass(frozen=True)
class TaggingDataConfig(DataConfig):
    """Tagged sentences (CoNLL-U, whitespace column files, TFDS or synthetic) and their vectorization.

    Attributes:
        file_format: `conllu` (Universal Dependencies) or `columns` (token and tag per line, sentences
            separated by blank lines, CoNLL-2003 style); `auto` picks `conllu` for `.conllu` files.
        tags: Which CoNLL-U (or TFDS Universal Dependencies) column holds the tags: `upos` or `xpos`.
        token_column: 0-based column of the token in `columns` files.
        tag_column: 0-based column of the tag in `columns` files; -1 is the last column.
        vocabulary_size: Largest word vocabulary, including the padding and out-of-vocabulary tokens.
        char_vocabulary_size: Largest character vocabulary, same convention.
        max_sequence_length: Tokens kept per sentence (the first ones).
        max_word_length: Characters kept per word for the character encoder.
        lowercase: Look words up lower-cased (characters keep their case).
    """

    file_format: Literal["auto", "conllu", "columns"] = "auto"
    tags: Literal["upos", "xpos"] = "upos"
    token_column: int = 0
    tag_column: int = -1
    vocabulary_size: int = 30000
    char_vocabulary_size: int = 300
    max_sequence_length: int = 256
    max_word_length: int = 20
    lowercase: bool = True

    def __post_init__(self):
        super().__post_init__()
        for key in ("vocabulary_size", "char_vocabulary_size"):
            value = getattr(self, key)
            _require(value >= 3, f"data.{key}: must be >= 3 (got {value})")
        for key in ("max_sequence_length", "max_word_length"):
            value = getattr(self, key)
            _require(value >= 1, f"data.{key}: must be >= 1 (got {value})")


@dataclasses.dataclass(frozen=True)
class CaptioningDataConfig(DataConfig):
    """Images with reference captions (captions CSV or COCO JSON + image folder, TFDS or synthetic).

    Files come in two layouts: one captions file for every image (`captions`) with `train`,
    `validation` and `test` as split lists (one image name per line, the Flickr8k layout), or
    `train`, `validation` and `test` as captions files of their own (the COCO layout).

    Attributes:
        file_format: `csv` (`image,caption` rows with RFC 4180 quoting, the Flickr8k/Kaggle layout) or
            `coco_json` (`{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}`);
            `auto` picks by extension (`.json` -> `coco_json`).
        captions: One captions file for all splits; null when `train` etc. are captions files.
        image_directory: Folder that image names in the captions files are relative to.
        header: CSV captions files start with a header row naming the columns.
        image_column: CSV column (name or 0-based index) of the image file name.
        caption_column: CSV column (name or 0-based index) of the caption.
        on_bad_images: `error` stops at the first missing or undecodable image, naming its path;
            `skip` drops such images (and their captions) and counts them (log and metrics.json).
        cache_features: With a frozen encoder, compute each image's features once and keep them in
            memory, so training epochs never rerun the CNN.
        vocabulary_size: Largest caption vocabulary, including padding, out-of-vocabulary, start and end.
        max_caption_length: Tokens kept per caption (before the start/end token is added).
        lowercase: Lower-case captions.
        strip_punctuation: Remove punctuation from captions (the COCO evaluation ignores it too).
    """

    file_format: Literal["auto", "csv", "coco_json"] = "auto"
    captions: Optional[str] = None
    image_directory: Optional[str] = None
    header: bool = True
    image_column: Union[str, int] = "image"
    caption_column: Union[str, int] = "caption"
    on_bad_images: Literal["error", "skip"] = "error"
    cache_features: bool = True
    vocabulary_size: int = 5000
    max_caption_length: int = 30
    lowercase: bool = True
    strip_punctuation: bool = True

    def __post_init__(self):
        super().__post_init__()
        _require(self.vocabulary_size >= 5, f"data.vocabulary_size: must be >= 5 (got {self.vocabulary_size})")
        _require(self.max_caption_length >= 1,
                 f"data.max_caption_length: must be >= 1 (got {self.max_caption_length})")
        if self.source == "files":
            _require(self.image_directory is not None,
                     "data.image_directory: required when data.source is 'files' (the folder the image "
                     "names in the captions are relative to)")
        elif self.captions is not None:
            _require(False, f"data.captions: only for data.source 'files' (got source {self.source!r})")


LANGUAGE_PLACEHOLDER = "{language}"


@dataclasses.dataclass(frozen=True)
class TranslationDataConfig(DataConfig):
    """Sentence pairs (TSV pairs, line-aligned files, TFDS or synthetic) and their vectorization.

    Attributes:
        file_format: `tsv`: `source<TAB>target[<TAB>anything]` per line (Tatoeba/ManyThings);
            `aligned`: one file per language and split, line i of one translating line i of the other,
            each split given as one path containing `{language}` (e.g. `train.{language}.gz`);
            `auto`: `aligned` when the train path contains `{language}`, else `tsv`.
        source_language: Language code of the source side: fills `{language}` in aligned paths and
            names the TFDS feature; null takes it from a TFDS name such as `pt_to_en` or `de-en`.
        target_language: Language code of the target side, same rules.
        source_vocabulary_size: Largest source vocabulary, including padding and out-of-vocabulary.
        target_vocabulary_size: Largest target vocabulary, including padding, out-of-vocabulary,
            start and end tokens.
        max_source_length: Source tokens kept per sentence (the first ones).
        max_target_length: Target tokens kept per sentence (before the start/end token is added).
        lowercase: Lower-case both sides (BLEU and chrF are then computed case-insensitively).
        strip_punctuation: Remove punctuation; by default it is kept, split off as separate tokens
            (`dog.` -> `dog .`) and glued back on output, which scores better in BLEU.
    """

    file_format: Literal["auto", "tsv", "aligned"] = "auto"
    source_language: Optional[str] = None
    target_language: Optional[str] = None
    source_vocabulary_size: int = 10000
    target_vocabulary_size: int = 10000
    max_source_length: int = 50
    max_target_length: int = 50
    lowercase: bool = True
    strip_punctuation: bool = False

    def __post_init__(self):
        super().__post_init__()
        _require(self.source_vocabulary_size >= 3,
                 f"data.source_vocabulary_size: must be >= 3 (got {self.source_vocabulary_size})")
        _require(self.target_vocabulary_size >= 5,
                 f"data.target_vocabulary_size: must be >= 5 (got {self.target_vocabulary_size})")
        for key in ("max_source_length", "max_target_length"):
            value = getattr(self, key)
            _require(value >= 1, f"data.{key}: must be >= 1 (got {value})")
        for key in ("source_language", "target_language"):
            value = getattr(self, key)
            _require(value is None or (value.strip() and "/" not in value and "{" not in value),
                     f"data.{key}: must be a language code such as 'de' (got {value!r})")
        _require(self.source_language is None or self.source_language != self.target_language,
                 f"data.target_language: must differ from data.source_language (both {self.source_language!r})")
        kind, _, name = self.source.partition(":")
        if kind == "files":
            self._check_file_layout()
        elif kind == "tfds" and None in (self.source_language, self.target_language):
            _require(tfds_language_pair(name) is not None,
                     f"data.source_language: required for {self.source!r}, whose name does not tell the "
                     "languages (set data.source_language and data.target_language to its feature names)")

    def _check_file_layout(self) -> None:
        aligned = self.file_format == "aligned" or (
            self.file_format == "auto" and LANGUAGE_PLACEHOLDER in (self.train or ""))
        for split_name in ("train", "validation", "test"):
            path = getattr(self, split_name)
            if path is None:
                continue
            has_placeholder = LANGUAGE_PLACEHOLDER in path
            _require(has_placeholder == aligned,
                     f"data.{split_name}: aligned files are given as one path containing "
                     f"'{LANGUAGE_PLACEHOLDER}' (e.g. train.{LANGUAGE_PLACEHOLDER}.gz) and TSV files without "
                     f"it; got {path!r} with data.file_format {self.file_format!r}")
        if aligned:
            for key in ("source_language", "target_language"):
                _require(getattr(self, key) is not None,
                         f"data.{key}: required for aligned files (it replaces '{LANGUAGE_PLACEHOLDER}' "
                         "in the paths), e.g. 'de'")


def tfds_language_pair(name: str) -> Optional[tuple[str, str]]:
    """Source and target language codes from a TFDS translation config name, e.g. `pt_to_en`, `de-en`."""
    config_name = name.rpartition("/")[2]
    for separator in ("_to_", "-"):
        source, found, target = config_name.partition(separator)
        if found and source.isalpha() and target.isalpha():
            return source, target
    return None


TextFiles = Union[str, tuple[str, ...], None]


@dataclasses.dataclass(frozen=True)
class LanguageModelDataConfig(DataConfig):
    """Plain text (files, TFDS or synthetic) read as one stream of characters or words.

    Attributes:
        train: Training text: a file, a glob pattern (`books/*.txt.gz`) or a list of them, plain or gzip,
            read in order as one stream.
        validation: Held-out text, same forms; null holds out the last `validation_fraction` of train.
        test: Test text, same forms; null skips the test split.
        level: `char` predicts the next character; `word` the next word (punctuation and line breaks are
            tokens of their own).
        vocabulary_size: Largest vocabulary, including padding, out-of-vocabulary and line-break tokens;
            the most frequent training tokens are kept.
        lowercase: Lower-case the text first.
    """

    train: TextFiles = None
    validation: TextFiles = None
    test: TextFiles = None
    level: Literal["char", "word"] = "char"
    vocabulary_size: int = 10000
    lowercase: bool = False

    def __post_init__(self):
        super().__post_init__()
        _require(self.vocabulary_size >= 4, f"data.vocabulary_size: must be >= 4 (got {self.vocabulary_size})")
        for split_name in ("train", "validation", "test"):
            paths = getattr(self, split_name)
            items = paths if isinstance(paths, tuple) else (paths,)
            _require(paths is None or (len(items) > 0 and all(items)),
                     f"data.{split_name}: expected a path, a glob pattern or a non-empty list of them "
                     f"(got {paths!r})")


# === The whole run ===

TASK_CONFIG_CLASSES = {
    "sentiment": (TextClassificationDataConfig, SentimentModelConfig),
    "tagging": (TaggingDataConfig, TaggerModelConfig),
    "translation": (TranslationDataConfig, Seq2SeqModelConfig),
    "language_model": (LanguageModelDataConfig, LanguageModelConfig),
    "captioning": (CaptioningDataConfig, CaptionerModelConfig),
}

# Tasks whose `train` block has keys of its own; the others use `TrainConfig`.
TASK_TRAIN_CONFIG_CLASSES = {
    "language_model": LanguageModelTrainConfig,
}


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
        _require(bool(self.name) and "/" not in self.name,
                 f"name: must be a non-empty name without '/' (got {self.name!r})")
        kind, _, detail = self.data.source.partition(":")
        if kind == "synthetic":
            _require(detail == self.task,
                     f"data.source: {self.data.source!r} does not match task {self.task!r}; "
                     f"use 'synthetic:{self.task}'")
        if isinstance(self.model, Seq2SeqModelConfig) and isinstance(self.data, TranslationDataConfig):
            limit = 2 * self.data.max_target_length
            _require(self.model.max_decode_length is None or self.model.max_decode_length <= limit,
                     f"model.max_decode_length: must be <= 2 x data.max_target_length = {limit} "
                     f"(got {self.model.max_decode_length}); training never sees longer targets")
        if isinstance(self.model, CaptionerModelConfig) and isinstance(self.data, CaptioningDataConfig):
            limit = 2 * self.data.max_caption_length
            _require(self.model.max_decode_length is None or self.model.max_decode_length <= limit,
                     f"model.max_decode_length: must be <= 2 x data.max_caption_length = {limit} "
                     f"(got {self.model.max_decode_length}); training never sees longer captions")
        if self.runtime.distribution != "none" and getattr(self.train, "carry_state", False):
            raise ConfigError(
                f"train.carry_state: not supported with runtime.distribution: {self.runtime.distribution} "
                "(each replica would see a different share of the rows whose state is carried); "
                "set train.carry_state: false")

    @property
    def run_dir(self) -> str:
        return self.runtime.run_dir or os.path.join("runs", self.name)

    @property
    def model_name(self) -> str:
        return self.export.model_name or self.name


# === Loading ===


def merge(base: dict, update: dict) -> dict:
    """Merges `update` into a copy of `base`; nested dicts merge, everything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_override(tree: dict, override: str) -> dict:
    """Applies one `a.b.c=value` override; the value is parsed as YAML (`3`, `0.1`, `true`, `[1, 2]`, `null`)."""
    key, separator, text = override.partition("=")
    if not separator or not key.strip():
        raise ConfigError(f"--set {override!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {override!r}: value is not valid YAML ({_yaml_problem(error)})") from None
    parts = key.strip().split(".")
    update = value
    for part in reversed(parts):
        update = {part: update}
    return merge(tree, update)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where (1-based line and column)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def read_yaml(path: str) -> dict:
    """Reads one YAML config file as a dict, with errors that name the file."""
    try:
        with open(path, encoding="utf-8") as stream:
            tree = yaml.safe_load(stream)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_problem(error)}") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of config blocks, found {type(tree).__name__}")
    return tree


def load_config(paths: typing.Sequence[str], overrides: typing.Sequence[str] = ()) -> RunConfig:
    """Loads YAML files (later ones win), applies `--set` overrides and builds a checked `RunConfig`."""
    tree: dict = {}
    for path in paths:
        tree = merge(tree, read_yaml(path))
    for override in overrides:
        tree = apply_override(tree, override)
    return from_tree(tree)


def from_tree(tree: dict) -> RunConfig:
    """Builds a `RunConfig` from a plain dict, picking the task's data and model blocks."""
    if not isinstance(tree, dict):
        raise ConfigError(f"config: expected a mapping, found {type(tree).__name__}")
    task = tree.get("task")
    if task is None:
        raise ConfigError(f"task: required field is missing; one of {sorted(TASK_CONFIG_CLASSES)}")
    if not isinstance(task, str):
        raise ConfigError(f"task: expected str, got {task!r} ({type(task).__name__})")
    if task not in TASK_CONFIG_CLASSES:
        raise ConfigError(f"task: {task!r} is not one of {sorted(TASK_CONFIG_CLASSES)}."
                          + _did_you_mean(task, TASK_CONFIG_CLASSES))
    data_class, model_class = TASK_CONFIG_CLASSES[task]
    hints = {"data": data_class, "model": model_class}
    if task in TASK_TRAIN_CONFIG_CLASSES:
        hints["train"] = TASK_TRAIN_CONFIG_CLASSES[task]
        tree = {**tree, "train": tree.get("train", {})}  # built even when absent, for its own defaults
    return _build_dataclass(RunConfig, tree, "", hints)


def _build_dataclass(cls, values, path: str, overrides: Optional[dict] = None):
    if not isinstance(values, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping of keys, found {values!r} "
                          f"({type(values).__name__})")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key.{_did_you_mean(key, fields)} "
                              f"Valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    hints.update(overrides or {})
    arguments = {}
    for name, field in fields.items():
        where = f"{path}.{name}" if path else name
        if name in values:
            arguments[name] = _convert(values[name], hints[name], where)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            if dataclasses.is_dataclass(hints[name]):
                arguments[name] = _convert({}, hints[name], where)
            else:
                raise ConfigError(f"{where}: required field is missing")
    return cls(**arguments)


def _type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(member) for member in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def _convert(value, hint, path: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, path)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{path}: {value!r} is not one of {list(choices)}."
                              + _did_you_mean(value, [str(choice) for choice in choices]))
        return value
    if origin in (Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(value, member, path)
            except ConfigError:
                continue
        raise _type_error(value, hint, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _type_error(value, hint, path)
        item_hint = typing.get_args(hint)[0]
        return tuple(_convert(item, item_hint, f"{path}[{index}]") for index, item in enumerate(value))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise _type_error(value, hint, path)


def _type_error(value, hint, path: str) -> ConfigError:
    return ConfigError(f"{path}: expected {_type_name(hint)}, got {value!r} ({type(value).__name__})")


# === Writing ===


def to_tree(config) -> dict:
    """Returns the config as plain YAML-ready data (tuples become lists)."""
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value
    return plain(dataclasses.asdict(config))


def save_config(config: RunConfig, path: str) -> None:
    """Writes the resolved config; loading it back gives an equal `RunConfig`."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        yaml.safe_dump(to_tree(config), stream, sort_keys=False)
    os.replace(temporary, path)
