"""Warm start: a fresh run's token embedding and recurrent stack start from trained weights instead of random ones.

Two sources, set in the model block (`pipeline.config.warm_start.RecurrentEncoderConfig`):

- `model.initialize_from: RUN_DIR` copies another run's encoder: a language-model run, or any run whose task
  names its embedding and recurrent layers (`Task.text_encoder`). The embedding is copied word by word, so
  the two vocabularies may differ in size and order; recurrent layer i comes from the source's layer i.
- `model.pretrained_embeddings.path` fills the embedding rows of the words a word-vectors file holds.

Both change only the weights a fresh run starts from. A resumed run restores its own checkpoint instead, so
`training` calls `initialize` only before a run's first epoch. What was copied from where is logged and kept
in `<run_dir>/initialization.json`.
"""

import dataclasses
import json
import logging
import os
import typing

import keras

from pipeline import checkpoints
from pipeline import config as config_lib
from pipeline import run_files
from pipeline import run_state
from pipeline import tasks as tasks_lib
from pipeline.data import word_vectors
from pipeline.layers import recurrent
from pipeline.tasks import base

logger = logging.getLogger(__name__)

INITIALIZATION_FILE = "initialization.json"

_OUT_OF_VOCABULARY_ROW = 1  # row 0 is padding, which the mask keeps from ever being read
_LOW_COVERAGE = 0.5


def initialize(model: keras.Model, task: tasks_lib.Task, preprocessing: tasks_lib.Preprocessing,
               run_dir: str) -> typing.Optional[dict]:
    """Starts a freshly built model from the weights its config names, if any, and records what it did.

    Args:
        model: The run's model, built and not yet trained.
        task: The run's task.
        preprocessing: The run's vocabularies.
        run_dir: Where `initialization.json` is written.

    Returns:
        The record written to `initialization.json`, or None when the config names no weights to start from.

    Raises:
        config_lib.ConfigError: The source run cannot be copied into this model (naming both runs).
        ValueError: The word-vectors file is malformed or its dimension is not `model.embedding_dim`.
    """
    model_config = task.config.model
    if not isinstance(model_config, config_lib.RecurrentEncoderConfig):
        return None
    source, vectors = model_config.initialize_from, model_config.pretrained_embeddings
    if source is None and vectors.path is None:
        return None
    key = "model.initialize_from" if source is not None else "model.pretrained_embeddings"
    encoder = _text_encoder(task, model, preprocessing, key)
    if source is not None:
        record = copy_from_run(source, encoder, model, this_run=task.config.run_dir)
    else:
        record = fill_pretrained_embeddings(encoder, vectors)
    _save_record(run_dir, record)
    return record


def _text_encoder(task: tasks_lib.Task, model: keras.Model, preprocessing, key: str) -> base.TextEncoder:
    encoder = task.text_encoder(model, preprocessing)
    if encoder is None:
        raise config_lib.ConfigError(f"{key}: the {task.config.task} task does not name its embedding and "
                                     "recurrent layers (Task.text_encoder), so nothing can start them")
    return encoder


# === Pretrained word vectors ===


def fill_pretrained_embeddings(encoder: base.TextEncoder, settings: config_lib.PretrainedEmbeddingsConfig) -> dict:
    """Fills the embedding rows of the vocabulary words the vectors file holds; the others keep their values.

    The padding and out-of-vocabulary rows are never filled. Exact matches come first; when the run lower-cases
    its text, a word missing from the file takes the first file word that lower-cases to it.
    """
    rows = {word: row for row, word in enumerate(encoder.vocabulary) if row > _OUT_OF_VOCABULARY_ROW}
    found = word_vectors.read_word_vectors(settings.path, rows, dimension=encoder.embedding.output_dim,
                                           dimension_name="model.embedding_dim", lowercase=encoder.lowercase)
    matrix = keras.ops.convert_to_numpy(encoder.embedding.embeddings).copy()  # (vocabulary, embedding_dim)
    for word, vector in found.vectors.items():
        matrix[rows[word]] = vector
    encoder.embedding.embeddings.assign(matrix)
    record = {"pretrained_embeddings": {
        "path": settings.path, "words": len(rows), "found": len(found.vectors), "exact": found.exact,
        "lowercased": found.lowercased, "duplicate_lines": found.duplicates, "trainable": settings.trainable}}
    how = f"{found.exact:,} exact" + (f", {found.lowercased:,} through a lower-cased word" if encoder.lowercase else "")
    duplicates = f"; {found.duplicates:,} repeated word(s) ignored (first line kept)" if found.duplicates else ""
    logger.info("pretrained_embeddings: %s in %s (%s%s); embedding %s", _coverage(len(found.vectors), len(rows)),
                os.path.basename(settings.path), how, duplicates,
                "fine-tuned" if settings.trainable else "frozen")
    _warn_if_low(len(found.vectors), len(rows), settings.path,
                 "are they vectors of this language, cased as the run's text (data.lowercase)?")
    return record


# === Another run's encoder ===


@dataclasses.dataclass
class SourceRun:
    """A trained run's encoder, loaded to be copied.

    Attributes:
        run_dir: The run directory.
        task: Its task name.
        checkpoint: The weights file loaded, relative to `run_dir`.
        epoch: The epoch those weights are from.
        selection: Why that epoch: the best by the source's `train.monitor`, or its last when none was scored.
        encoder: Its embedding and recurrent layers.
        model: Its model (keeps the layers alive).
    """

    run_dir: str
    task: str
    checkpoint: str
    epoch: int
    selection: str
    encoder: base.TextEncoder
    model: keras.Model


def load_source_run(run_dir: str) -> SourceRun:
    """Builds a trained run's model from its config and vocabularies and loads its best weights.

    The best epoch by the source's `train.monitor` is what its own evaluation and export use; a run with no
    scored epoch gives its last one. Nothing of a training setup (data, optimizer) is built.

    Raises:
        config_lib.ConfigError: `run_dir` is not a trained run, or its task has no encoder to copy.
    """
    key = "model.initialize_from"
    try:
        config = run_files.load_run_config(run_dir)
    except FileNotFoundError:
        raise config_lib.ConfigError(f"{key}: {run_dir} is not a run directory (no {run_files.CONFIG_FILE})") from None
    task = tasks_lib.create_task(config)
    if type(task).text_encoder is base.Task.text_encoder:
        raise config_lib.ConfigError(f"{key}: {run_dir} is a {config.task} run, whose model has no token embedding "
                                     "and recurrent encoder to copy")
    state = run_state.load(run_dir)
    if state.best_weights:
        weights, epoch, selection = state.best_weights, state.best_epoch, f"best epoch by {state.monitor}"
    else:
        weights, epoch, selection = state.weights, state.epochs_done, "last epoch (none was scored)"
    if not weights:
        raise config_lib.ConfigError(f"{key}: {run_dir} has no checkpoint yet (no finished epoch)")
    preprocessing = task.load_preprocessing(run_dir)
    model = task.build_model(preprocessing)
    checkpoints.load_best(model, run_dir, state)
    checkpoint = os.path.join(run_files.LAST_CHECKPOINT, weights)
    encoder = _text_encoder(task, model, preprocessing, key)
    return SourceRun(run_dir, config.task, checkpoint, epoch, selection, encoder, model)


def copy_from_run(source_dir: str, target: base.TextEncoder, model: keras.Model, this_run: str) -> dict:
    """Copies a trained run's embedding (word by word) and recurrent layers (layer by layer) into `target`.

    A bidirectional layer takes its forward direction from a unidirectional source layer and keeps its
    backward direction; kernel rows reading inputs the source layer did not have (a backward direction's
    output, a tagger's character features) keep their values too, as do layers beyond the source's.

    Raises:
        config_lib.ConfigError: The cell, units or embedding size differ (naming both runs and both sizes).
    """
    source = load_source_run(source_dir)
    _check_compatible(source, target, this_run)
    embedding = _copy_embedding(source.encoder, target)
    copied, fresh, unused = _copy_recurrent_layers(source.encoder, target)
    encoder_weights = {id(weight) for weight in target.embedding.weights}
    encoder_weights |= {id(weight) for layer in target.recurrent_layers for weight in layer.weights}
    fresh += [layer.name for layer in model.layers
              if any(id(weight) not in encoder_weights for weight in layer.weights)]
    record = {"initialize_from": {
        "run": source_dir, "task": source.task, "checkpoint": source.checkpoint, "epoch": source.epoch,
        "selection": source.selection,
        "embedding": embedding, "copied": copied, "fresh": fresh, "unused": unused}}
    copied_text = ", ".join([target.embedding.name] + [_describe(entry) for entry in copied])
    logger.info("initialized from %s (epoch %d, its %s): %s; copied %s; fresh: %s%s", source_dir, source.epoch,
                source.selection, _coverage(embedding["found"], embedding["words"]), copied_text, ", ".join(fresh) or "nothing",
                f"; unused from the source: {', '.join(unused)}" if unused else "")
    _warn_if_low(embedding["found"], embedding["words"], f"the vocabulary of {source_dir}",
                 "are both runs' texts tokenized the same way (data.lowercase, data.strip_punctuation, words "
                 "rather than characters)?")
    return record


def _check_compatible(source: SourceRun, target: base.TextEncoder, this_run: str) -> None:
    def mismatch(what: str, theirs, ours) -> config_lib.ConfigError:
        return config_lib.ConfigError(f"model.initialize_from: {source.run_dir} has {what} {theirs}, "
                                      f"{this_run} (this run) has {ours}")

    source_first = _directions(source.encoder.recurrent_layers[0])["forward"]
    target_first = _directions(target.recurrent_layers[0])["forward"]
    if _cell(source_first) != _cell(target_first):
        raise mismatch("recurrent cell", _cell(source_first), _cell(target_first))
    if source_first.units != target_first.units:
        raise mismatch(f"{_cell(source_first)} units", source_first.units, target_first.units)
    if source.encoder.embedding.output_dim != target.embedding.output_dim:
        raise mismatch("embedding_dim", source.encoder.embedding.output_dim, target.embedding.output_dim)
    for name in ("recurrent_kernel", "bias"):  # equal for equal cells and units, unless a layer is set up otherwise
        theirs, ours = (getattr(layer.cell, name, None) for layer in (source_first, target_first))
        shapes = [tuple(weight.shape) if weight is not None else None for weight in (theirs, ours)]
        if shapes[0] != shapes[1]:
            raise mismatch(f"{_cell(source_first)} {name} shape", *shapes)


def _copy_embedding(source: base.TextEncoder, target: base.TextEncoder) -> dict:
    """Copies the row of every target word the source vocabulary holds, and the out-of-vocabulary row (both
    stand for the words outside a vocabulary); the padding row is left as it is."""
    source_rows = {}
    for row, word in enumerate(source.vocabulary):
        if row > _OUT_OF_VOCABULARY_ROW:
            source_rows.setdefault(word, row)
    source_matrix = keras.ops.convert_to_numpy(source.embedding.embeddings)
    matrix = keras.ops.convert_to_numpy(target.embedding.embeddings).copy()  # (vocabulary, embedding_dim)
    matrix[_OUT_OF_VOCABULARY_ROW] = source_matrix[_OUT_OF_VOCABULARY_ROW]
    found = 0
    for row, word in enumerate(target.vocabulary):
        if row > _OUT_OF_VOCABULARY_ROW and word in source_rows:
            matrix[row] = source_matrix[source_rows[word]]
            found += 1
    target.embedding.embeddings.assign(matrix)
    return {"layer": target.embedding.name, "words": max(len(target.vocabulary) - 2, 0), "found": found,
            "out_of_vocabulary_row": "copied", "padding_row": "kept (masked)"}


def _copy_recurrent_layers(source: base.TextEncoder, target: base.TextEncoder) -> tuple[list, list, list]:
    """Copies direction by direction; returns (copied entries, fresh layer names, unused source layer names)."""
    source_stack = [_directions(layer) for layer in source.recurrent_layers]
    target_stack = [_directions(layer) for layer in target.recurrent_layers]
    copied, fresh = [], []
    for index, directions in enumerate(target_stack):
        for role, layer in directions.items():
            if index >= len(source_stack) or role not in source_stack[index]:
                fresh.append(layer.name)
                continue
            source_layer = source_stack[index][role]
            fresh_rows = _copy_direction(
                source_layer, _input_segments(source_stack, index, source.embedding, source_layer),
                layer, _input_segments(target_stack, index, target.embedding, layer))
            copied.append({"layer": layer.name, "from": source_layer.name, "fresh_rows_reading": fresh_rows})
    unused = [layer.name for index, directions in enumerate(source_stack) for role, layer in directions.items()
              if index >= len(target_stack) or role not in target_stack[index]]
    return copied, fresh, unused


@dataclasses.dataclass(frozen=True)
class _Segment:
    """Consecutive kernel rows of a recurrent layer that read one input: the embedding, the features after it,
    or one direction of the layer below.

    Attributes:
        role: What the rows read, matched between source and target: `embedding`, `other`, `forward`, `backward`.
        start: First row.
        size: Number of rows.
        label: The input in words, for the log.
    """

    role: str
    start: int
    size: int
    label: str


def _input_segments(stack: list[dict], index: int, embedding: keras.layers.Embedding,
                    layer: keras.layers.Layer) -> list[_Segment]:
    """The kernel rows of one direction of layer `index`, by the input they read (`base.TextEncoder`'s layout)."""
    if index == 0:
        rows = int(layer.cell.kernel.shape[0])
        segments = [_Segment("embedding", 0, embedding.output_dim, embedding.name)]
        if rows > embedding.output_dim:
            segments.append(_Segment("other", embedding.output_dim, rows - embedding.output_dim,
                                     "the features after the embedding"))
        return segments
    segments, start = [], 0
    for role, below in stack[index - 1].items():
        segments.append(_Segment(role, start, below.units, below.name))
        start += below.units
    return segments


def _copy_direction(source: keras.layers.Layer, source_segments: list[_Segment], target: keras.layers.Layer,
                    target_segments: list[_Segment]) -> list[str]:
    """Copies one recurrent layer's weights; returns the labels of the inputs whose kernel rows were kept.

    Rows reading the features after the embedding are never copied: what computes those features (a tagger's
    character encoder) is not copied either.
    """
    source_kernel = keras.ops.convert_to_numpy(source.cell.kernel)  # (inputs, gates * units)
    kernel = keras.ops.convert_to_numpy(target.cell.kernel).copy()
    by_role = {segment.role: segment for segment in source_segments}
    kept = []
    for segment in target_segments:
        match = by_role.get(segment.role)
        if segment.role != "other" and match is not None and match.size == segment.size:
            kernel[segment.start:segment.start + segment.size] = source_kernel[match.start:match.start + match.size]
        else:
            kept.append(segment.label)
    target.cell.kernel.assign(kernel)
    target.cell.recurrent_kernel.assign(keras.ops.convert_to_numpy(source.cell.recurrent_kernel))
    if target.cell.use_bias:
        target.cell.bias.assign(keras.ops.convert_to_numpy(source.cell.bias))
    return kept


def _directions(layer: keras.layers.Layer) -> dict[str, keras.layers.Layer]:
    if isinstance(layer, keras.layers.Bidirectional):
        return {"forward": layer.forward_layer, "backward": layer.backward_layer}
    return {"forward": layer}


def _cell(layer: keras.layers.Layer) -> str:
    return next((name for name, kind in recurrent.CELLS.items() if isinstance(layer, kind)), type(layer).__name__)


def _describe(entry: dict) -> str:
    """`forward_gru_1 (from gru_1; rows reading backward_gru_0 fresh)`; the bare name for a plain copy."""
    notes = [f"from {entry['from']}"] if entry["from"] != entry["layer"] else []
    if entry["fresh_rows_reading"]:
        notes.append(f"rows reading {', '.join(entry['fresh_rows_reading'])} fresh")
    return f"{entry['layer']} ({'; '.join(notes)})" if notes else entry["layer"]


# === Reporting ===


def _coverage(found: int, total: int) -> str:
    share = f" ({100 * found / total:.1f}%)" if total else ""
    return f"{found:,} of {total:,} words found{share}"


def _warn_if_low(found: int, total: int, where: str, question: str) -> None:
    if total and found / total < _LOW_COVERAGE:
        logger.warning("only %s in %s: %s", _coverage(found, total), where, question)


def _save_record(run_dir: str, record: dict) -> None:
    run_files.write_json(os.path.join(run_dir, INITIALIZATION_FILE), record)


def load_record(run_dir: str) -> typing.Optional[dict]:
    """What `initialize` recorded for a run (None when it started from random weights)."""
    path = os.path.join(run_dir, INITIALIZATION_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)
