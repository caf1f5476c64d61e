"""Greedy search, sampling and beam search driven by a step function; knows no model.

Every decoder here is driven by one callable,

    step_function(token_ids, state, step) -> (logits, new_state)

where `token_ids` is int32 [batch] (the token fed at this position), `state` is any nest (tuple, list,
dict) of tensors whose first dimension is the batch, `step` is the int32 scalar decoding position
(0 .. max_length - 1, free to ignore) and `logits` is float [batch, vocabulary]. Models wrap their
`decode_step(tokens, state)` into this signature.

The loops are `tf.while_loop`s built from core TensorFlow ops only, so every function works eagerly,
inside a `tf.function` with a dynamic batch size, and inside an exported SavedModel signature. The
loops stop as soon as every sequence has ended, and after `max_length` steps otherwise; until then,
greedy search and sampling keep feeding `end_token` to rows that have ended and ignore their logits.

Example:

    result = decoding.beam_search(step_function, encoder_state, start_tokens,
                                  end_token=2, max_length=40, beam_size=4, length_penalty=0.6)
    result.token_ids  # (batch, time), without start and end tokens, 0 after the end
"""

import numbers
import typing

import tensorflow as tf

from pipeline import compat

StepFunction = typing.Callable[[tf.Tensor, typing.Any, tf.Tensor], tuple[tf.Tensor, typing.Any]]

_NEGATIVE_INFINITY = float("-inf")


class DecodeResult(typing.NamedTuple):
    """The decoded sequence of each batch row.

    Attributes:
        token_ids: int32 [batch, time]: the generated tokens, without the start token and without the
            end token, padded with 0 after the end. `time` is the longest length in the batch (at most
            `max_length`; 0 when every row ended at its first step).
        lengths: int32 [batch]: the number of generated tokens before the end token (`max_length`
            when a row never produced the end token).
        scores: float32 [batch]: the total log-probability of the generated tokens under the model,
            including the end token's log-probability when the row ended. Beam search returns its
            length-normalized ranking score instead (see `beam_search`).
    """

    token_ids: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor


# === Public decoders ===


def greedy_search(step_function: StepFunction, initial_state, start_tokens, *, end_token: int,
                  max_length: int) -> DecodeResult:
    """Decodes by taking the most probable token at every step.

    Args:
        step_function: `(token_ids, state, step) -> (logits, new_state)`, see the module docstring.
        initial_state: Nest of tensors with leading dimension batch, passed to the first step.
        start_tokens: int32 [batch]: the token fed at step 0.
        end_token: The token id that ends a sequence.
        max_length: The most tokens generated per row (the end token included).

    Returns:
        A `DecodeResult`; `scores` are the summed log-softmax of the chosen tokens.

    Raises:
        ValueError: If `end_token` or `max_length` is not a valid integer.
    """
    _check_end_and_length(end_token, max_length)

    def choose_tokens(log_probs, step, live_rows):
        del step, live_rows  # Greedy choice depends on the scores alone.
        return tf.argmax(log_probs, axis=-1, output_type=tf.int32)  # (live,)

    return _decode_one_per_row(step_function, initial_state, start_tokens, choose_tokens, end_token, max_length)


def sample(step_function: StepFunction, initial_state, start_tokens, *, end_token: int, max_length: int,
           temperature: float | tf.Tensor = 1.0, top_k: int = 0, seed: int | tf.Tensor | None = None) -> DecodeResult:
    """Decodes by drawing each token from the model's (reshaped) distribution.

    The logits are divided by `temperature`, then, when `top_k` > 0, all but the `top_k` largest are
    set to -inf (tokens tied with the k-th largest are kept), and a token is drawn with
    `tf.random.stateless_categorical`. The seed of step `t` is `(seed, t)`, so one seed always
    repeats the same draws for the same inputs and batch size.

    Args:
        step_function: `(token_ids, state, step) -> (logits, new_state)`, see the module docstring.
        initial_state: Nest of tensors with leading dimension batch, passed to the first step.
        start_tokens: int32 [batch]: the token fed at step 0.
        end_token: The token id that ends a sequence.
        max_length: The most tokens generated per row (the end token included).
        temperature: Must be > 0. A Python number, or a float tensor that is a scalar or has shape
            [batch] (one temperature per row); tensors are checked with `tf.debugging.assert_positive`.
            Values near 0 approach greedy search; 1 samples from the model's distribution.
        top_k: Keep only the `top_k` most probable tokens at each step; 0 keeps all.
        seed: Integer seed (Python int or int scalar tensor). None draws a fresh seed on every call.

    Returns:
        A `DecodeResult`. `scores` use the model's ORIGINAL log-softmax of the chosen tokens, not the
        temperature-adjusted or top-k-filtered distribution they were drawn from.

    Raises:
        ValueError: If `end_token`, `max_length`, `top_k`, a Python `temperature` or a Python `seed`
            is invalid.
    """
    _check_end_and_length(end_token, max_length)
    temperature = _temperature_tensor(temperature)
    if not _is_integer(top_k) or top_k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 disables it), got {top_k!r}")
    seed = _seed_tensor(seed)
    start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)
    row_temperatures = tf.broadcast_to(temperature, tf.shape(start_tokens))  # (batch,)

    def choose_tokens(log_probs, step, live_rows):
        scaled_logits = log_probs / tf.gather(row_temperatures, live_rows)[:, tf.newaxis]  # (live, vocabulary)
        if top_k:
            scaled_logits = _keep_top_k(scaled_logits, top_k)
        step_seed = tf.stack([seed, tf.cast(step, tf.int64)])  # (2,)
        draws = tf.random.stateless_categorical(scaled_logits, 1, step_seed, dtype=tf.int32)  # (live, 1)
        return draws[:, 0]

    return _decode_one_per_row(step_function, initial_state, start_tokens, choose_tokens, end_token, max_length)


def beam_search(step_function: StepFunction, initial_state, start_tokens, *, end_token: int, max_length: int,
                beam_size: int = 4, length_penalty: float = 0.0) -> DecodeResult:
    """Decodes with a batched beam search and returns the best hypothesis of each row.

    Each row keeps `beam_size` alive hypotheses and a separate set of `beam_size` finished ones.
    At every step the `2 * beam_size` best extensions are taken: those among the best `beam_size` of
    them that end with `end_token` join the finished set (which keeps the best `beam_size` by ranking
    score), and the best `beam_size` that do not end stay alive. At step 0 only the first beam is
    live, so the beams never duplicate each other.

    The ranking score of a hypothesis is `log_prob / ((5 + length) / 6) ** length_penalty` (GNMT),
    where `log_prob` is the summed log-softmax of its tokens and `length` counts the generated tokens
    including the end token. `length_penalty=0` ranks by plain log-probability; larger values favour
    longer outputs (negative values favour shorter ones). A row stops once its worst finished
    hypothesis outranks anything its alive ones could still reach.

    `initial_state` is given un-tiled, [batch, ...]: this function calls `tile_for_beam` on it and
    reorders it with `tf.gather` on the flat [batch * beam_size] axis after every step. The step
    function therefore sees a batch of `batch * beam_size` rows; tile other per-row tensors it closes
    over (for example encoder outputs) with `tile_for_beam` too.

    Args:
        step_function: `(token_ids, state, step) -> (logits, new_state)`, see the module docstring.
            The vocabulary must hold at least 2 tokens.
        initial_state: Nest of tensors with leading dimension batch (not tiled).
        start_tokens: int32 [batch]: the token fed at step 0.
        end_token: The token id that ends a sequence.
        max_length: The most tokens generated per row (the end token included).
        beam_size: Hypotheses kept per row; 1 gives exactly greedy search when `length_penalty` is 0.
        length_penalty: The GNMT exponent above.

    Returns:
        A `DecodeResult` with the best finished hypothesis of each row, or its best alive one when none
        finished within `max_length` steps. `scores` holds the ranking score (equal to the total
        log-probability, end token included, when `length_penalty` is 0).

    Raises:
        ValueError: If `end_token`, `max_length`, `beam_size` or `length_penalty` is invalid.
    """
    _check_end_and_length(end_token, max_length)
    _check_beam_size(beam_size)
    if not isinstance(length_penalty, numbers.Real) or isinstance(length_penalty, bool):
        raise ValueError(f"length_penalty must be a real number, got {length_penalty!r}")
    settings = _BeamSettings(end_token, max_length, beam_size, float(length_penalty))
    beams = _initial_beams(initial_state, start_tokens, settings)

    def condition(beams):
        return tf.logical_and(beams.step < max_length, tf.logical_not(_all_rows_done(beams, settings)))

    def body(beams):
        return (_beam_step(step_function, beams, settings),)

    (beams,) = tf.while_loop(condition, body, (beams,), shape_invariants=(_batch_free_shapes(beams),),
                             maximum_iterations=max_length)
    return _best_hypotheses(beams, settings)


def require_token_counts(step_function: StepFunction, initial_state, counts: tf.Tensor, *, token: int,
                         end_token: int) -> tuple[StepFunction, typing.Any]:
    """Constrains a step function so that each row writes `token` exactly `counts[row]` times.

    While a row still owes `token`, its end token cannot be chosen and `token` takes the end token's score
    where that is higher: where the model would stop, it writes the owed token instead, and otherwise it
    places the token where it chooses. Once the row owes none, `token` cannot be chosen. A row that reaches
    `max_length` first ends owing. The counts travel in the decoding state, so beam search reorders them
    with their beams and greedy search drops them with ended rows.

    Args:
        step_function: `(token_ids, state, step) -> (logits, new_state)`.
        initial_state: Its initial state.
        counts: int [batch]: how many times each row must write `token`.
        token: The required token id.
        end_token: The token id that ends a sequence.

    Returns:
        The constrained step function and its initial state (`(initial_state, counts)`).
    """

    def constrained(token_ids, state, step):
        model_state, owed = state
        # The token fed now was written at the last step (at step 0 it is the start token, written by no one).
        written = tf.logical_and(tf.equal(token_ids, token), step > 0)
        owed = owed - tf.cast(written, owed.dtype)
        logits, model_state = step_function(token_ids, model_state, step)
        lowest = tf.constant(logits.dtype.min, logits.dtype)
        owing = owed > 0
        token_score = tf.where(owing, tf.maximum(logits[:, token], logits[:, end_token]), lowest)  # (batch,)
        end_score = tf.where(owing, lowest, logits[:, end_token])
        columns = tf.range(tf.shape(logits)[-1])[tf.newaxis]  # (1, vocabulary)
        logits = tf.where(tf.equal(columns, token), token_score[:, tf.newaxis],
                          tf.where(tf.equal(columns, end_token), end_score[:, tf.newaxis], logits))
        return logits, (model_state, owed)

    return constrained, (initial_state, tf.cast(counts, tf.int32))


def tile_for_beam(nest, beam_size: int):
    """Repeats each batch entry `beam_size` times along axis 0: [b0, b1] -> [b0, b0, b0, b1, b1, b1].

    This is the layout `beam_search` uses for its state (it tiles `initial_state` itself); use it for
    per-row tensors a step function closes over, such as encoder outputs used by attention.

    Args:
        nest: A tensor or a nest of tensors with leading dimension batch.
        beam_size: Copies of each batch entry.

    Returns:
        The same structure with leading dimension `batch * beam_size`.

    Raises:
        ValueError: If `beam_size` is not an integer >= 1.
    """
    _check_beam_size(beam_size)
    return tf.nest.map_structure(lambda tensor: tf.repeat(tensor, beam_size, axis=0), _as_tensors(nest))


# === Greedy search and sampling ===


class _RowState(typing.NamedTuple):
    """Loop variables of greedy search and sampling (one hypothesis per row).

    The first three follow the live rows (those still decoding), the rest the whole batch.
    """

    step: tf.Tensor  # ()
    live_rows: tf.Tensor  # (live,): each live row's index in the batch
    input_ids: tf.Tensor  # (live,)
    model_state: typing.Any  # nest of (live, ...)
    finished: tf.Tensor  # (batch,)
    lengths: tf.Tensor  # (batch,)
    scores: tf.Tensor  # (batch,)
    token_ids: tf.Tensor  # (batch, max_length)


def _decode_one_per_row(step_function, initial_state, start_tokens, choose_tokens, end_token, max_length):
    """Runs the decoding loop shared by greedy search and sampling.

    `choose_tokens(log_probs, step, live_rows)` picks one token per live row. Rows that end leave the
    batch (see `_drop_finished_rows`), except under XLA, which needs fixed shapes: there they stay and
    keep being fed the end token.
    """
    start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)  # (batch,)
    batch_size = tf.shape(start_tokens)[0]
    rows = _RowState(
        step=tf.constant(0, tf.int32),
        live_rows=tf.range(batch_size),
        input_ids=start_tokens,
        model_state=_as_tensors(initial_state),
        finished=tf.zeros([batch_size], tf.bool),
        lengths=tf.zeros([batch_size], tf.int32),
        scores=tf.zeros([batch_size], tf.float32),
        token_ids=tf.zeros([batch_size, max_length], tf.int32),
    )
    drop_finished = not compat.compiling_with_xla()  # XLA needs fixed shapes

    def condition(rows):
        return tf.logical_and(rows.step < max_length, tf.logical_not(tf.reduce_all(rows.finished)))

    def body(rows):
        rows = _row_step(step_function, choose_tokens, rows, end_token)
        return (_drop_finished_rows(rows) if drop_finished else rows,)

    (rows,) = tf.while_loop(condition, body, (rows,), shape_invariants=(_batch_free_shapes(rows),),
                            maximum_iterations=max_length)
    return _make_result(rows.token_ids, rows.lengths, rows.scores)


def _row_step(step_function, choose_tokens, rows, end_token):
    """Feeds one token per live row, chooses the next one and records it in the batch-wide results."""
    logits, model_state = step_function(rows.input_ids, rows.model_state, rows.step)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # (live, vocabulary)
    chosen = tf.cast(choose_tokens(log_probs, rows.step, rows.live_rows), tf.int32)  # (live,)
    chosen_log_probs = tf.gather(log_probs, chosen, batch_dims=1)  # (live,)
    was_finished = tf.gather(rows.finished, rows.live_rows)  # all False unless rows stay (XLA)
    active = tf.logical_not(was_finished)
    ended = tf.equal(chosen, end_token)
    emitted = tf.logical_and(active, tf.logical_not(ended))
    now_finished = tf.logical_or(was_finished, ended)
    indices = rows.live_rows[:, tf.newaxis]  # (live, 1)
    positions = tf.stack([rows.live_rows, tf.fill(tf.shape(rows.live_rows), rows.step)], axis=1)  # (live, 2)
    return _RowState(
        step=rows.step + 1,
        live_rows=rows.live_rows,
        input_ids=tf.where(now_finished, end_token, chosen),
        model_state=model_state,
        finished=tf.tensor_scatter_nd_update(rows.finished, indices, now_finished),
        lengths=tf.tensor_scatter_nd_add(rows.lengths, indices, tf.cast(emitted, tf.int32)),
        scores=tf.tensor_scatter_nd_add(rows.scores, indices, tf.where(active, chosen_log_probs, 0.0)),
        token_ids=tf.tensor_scatter_nd_update(rows.token_ids, positions, tf.where(emitted, chosen, 0)),
    )


def _drop_finished_rows(rows):
    """Removes the rows that have just ended from the live batch, so later steps skip their work.

    A batch's rows end at different steps; without this, every step computes the logits of all of
    them until the longest one ends (about 40% of the work at batch 64 on Multi30k).
    """

    ended = tf.gather(rows.finished, rows.live_rows)  # (live,)

    def drop():
        keep = tf.where(tf.logical_not(ended))[:, 0]  # (still live,)
        gather = lambda tensor: tf.gather(tensor, keep)  # noqa: E731
        return rows._replace(live_rows=gather(rows.live_rows), input_ids=gather(rows.input_ids),
                             model_state=tf.nest.map_structure(gather, rows.model_state))

    return tf.cond(tf.reduce_any(ended), drop, lambda: rows)


def _keep_top_k(logits, top_k):
    """Sets every logit below the `top_k`-th largest of its row to -inf."""
    k = tf.minimum(top_k, tf.shape(logits)[-1])
    kth_largest = tf.math.top_k(logits, k=k).values[:, -1:]  # (batch, 1)
    return tf.where(logits < kth_largest, _NEGATIVE_INFINITY, logits)  # (batch, vocabulary)


def _temperature_tensor(temperature):
    """Validates the temperature: ValueError for Python numbers, a graph assertion for tensors."""
    if isinstance(temperature, numbers.Real) and not isinstance(temperature, bool):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        return tf.constant(temperature, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    check = tf.debugging.assert_positive(temperature, message="temperature must be > 0")
    with tf.control_dependencies([check]):
        return tf.identity(temperature)


def _seed_tensor(seed):
    """Returns the int64 base seed; a fresh random one when `seed` is None."""
    if seed is None:
        return tf.random.uniform([], maxval=2**31 - 1, dtype=tf.int64)
    if isinstance(seed, bool) or (not _is_integer(seed) and not tf.is_tensor(seed)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    return tf.cast(seed, tf.int64)


# === Beam search ===


class _BeamSettings(typing.NamedTuple):
    end_token: int
    max_length: int
    beam_size: int
    length_penalty: float


class _BeamState(typing.NamedTuple):
    """Loop variables of beam search; per-row hypotheses are sorted best first."""

    step: tf.Tensor  # ()
    input_ids: tf.Tensor  # (batch * beam,)
    model_state: typing.Any  # nest of (batch * beam, ...)
    alive_log_probs: tf.Tensor  # (batch, beam)
    alive_token_ids: tf.Tensor  # (batch, beam, max_length)
    finished_scores: tf.Tensor  # (batch, beam), ranking scores, -inf for empty slots
    finished_lengths: tf.Tensor  # (batch, beam)
    finished_token_ids: tf.Tensor  # (batch, beam, max_length)


def _initial_beams(initial_state, start_tokens, settings):
    """Tiles the inputs to batch * beam with only the first beam of each row live."""
    beam_size = settings.beam_size
    start_tokens = tf.convert_to_tensor(start_tokens, tf.int32)  # (batch,)
    batch_size = tf.shape(start_tokens)[0]
    first_beam_only = tf.constant([[0.0] + [_NEGATIVE_INFINITY] * (beam_size - 1)])  # (1, beam)
    empty_token_ids = tf.zeros([batch_size, beam_size, settings.max_length], tf.int32)
    return _BeamState(
        step=tf.constant(0, tf.int32),
        input_ids=tile_for_beam(start_tokens, beam_size),
        model_state=tile_for_beam(initial_state, beam_size),
        alive_log_probs=tf.tile(first_beam_only, [batch_size, 1]),
        alive_token_ids=empty_token_ids,
        finished_scores=tf.fill([batch_size, beam_size], _NEGATIVE_INFINITY),
        finished_lengths=tf.zeros([batch_size, beam_size], tf.int32),
        finished_token_ids=empty_token_ids,
    )


def _beam_step(step_function, beams, settings):
    """Extends every alive hypothesis by one token and updates the alive and finished sets."""
    beam_size = settings.beam_size
    batch_size = tf.shape(beams.alive_log_probs)[0]
    logits, model_state = step_function(beams.input_ids, beams.model_state, beams.step)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # (batch * beam, vocabulary)
    vocabulary_size = tf.shape(log_probs)[-1]
    log_probs = tf.reshape(log_probs, [batch_size, beam_size, vocabulary_size])  # (batch, beam, vocabulary)
    candidate_log_probs = beams.alive_log_probs[:, :, tf.newaxis] + log_probs  # (batch, beam, vocabulary)
    flat_log_probs = tf.reshape(candidate_log_probs, [batch_size, beam_size * vocabulary_size])
    top_log_probs, top_indices = tf.math.top_k(flat_log_probs, k=2 * beam_size)  # (batch, 2 * beam)
    parent_beams = top_indices // vocabulary_size  # (batch, 2 * beam)
    top_tokens = top_indices % vocabulary_size  # (batch, 2 * beam)
    parent_token_ids = tf.gather(beams.alive_token_ids, parent_beams, batch_dims=1)  # (batch, 2 * beam, max_length)
    ends = tf.equal(top_tokens, settings.end_token)  # (batch, 2 * beam)

    alive = _next_alive(top_log_probs, top_tokens, parent_beams, parent_token_ids, ends, beams.step, beam_size)
    alive_log_probs, alive_token_ids, alive_tokens, alive_parents = alive
    finished = _next_finished(beams, top_log_probs, parent_token_ids, ends, settings)
    flat_parents = alive_parents + tf.range(batch_size)[:, tf.newaxis] * beam_size  # (batch, beam)
    model_state = tf.nest.map_structure(
        lambda tensor: tf.gather(tensor, tf.reshape(flat_parents, [-1]), axis=0), model_state)
    return _BeamState(
        step=beams.step + 1,
        input_ids=tf.reshape(alive_tokens, [-1]),
        model_state=model_state,
        alive_log_probs=alive_log_probs,
        alive_token_ids=alive_token_ids,
        finished_scores=finished[0],
        finished_lengths=finished[1],
        finished_token_ids=finished[2],
    )


def _next_alive(top_log_probs, top_tokens, parent_beams, parent_token_ids, ends, step, beam_size):
    """Keeps the best `beam_size` candidates that did not end (at most `beam_size` of 2 * beam end)."""
    open_log_probs = tf.where(ends, _NEGATIVE_INFINITY, top_log_probs)  # (batch, 2 * beam)
    alive_log_probs, positions = tf.math.top_k(open_log_probs, k=beam_size)  # (batch, beam)
    alive_tokens = tf.gather(top_tokens, positions, batch_dims=1)  # (batch, beam)
    alive_parents = tf.gather(parent_beams, positions, batch_dims=1)  # (batch, beam)
    alive_token_ids = tf.gather(parent_token_ids, positions, batch_dims=1)  # (batch, beam, max_length)
    alive_token_ids = _write_position(alive_token_ids, step, alive_tokens)
    return alive_log_probs, alive_token_ids, alive_tokens, alive_parents


def _next_finished(beams, top_log_probs, parent_token_ids, ends, settings):
    """Merges the candidates that ended into the finished set, keeping the best `beam_size`."""
    # Only endings ranked within the best `beam_size` candidates count, so beam_size=1 is greedy search.
    within_beam = tf.range(2 * settings.beam_size) < settings.beam_size  # (2 * beam,)
    ends = tf.logical_and(ends, within_beam)  # (batch, 2 * beam)
    normalization = _length_normalization(beams.step + 1, settings.length_penalty)
    new_scores = tf.where(ends, top_log_probs / normalization, _NEGATIVE_INFINITY)  # (batch, 2 * beam)
    new_lengths = tf.fill(tf.shape(new_scores), beams.step)  # (batch, 2 * beam)
    scores = tf.concat([beams.finished_scores, new_scores], axis=1)  # (batch, 3 * beam)
    lengths = tf.concat([beams.finished_lengths, new_lengths], axis=1)  # (batch, 3 * beam)
    token_ids = tf.concat([beams.finished_token_ids, parent_token_ids], axis=1)  # (batch, 3 * beam, max_length)
    best_scores, positions = tf.math.top_k(scores, k=settings.beam_size)  # (batch, beam)
    best_lengths = tf.gather(lengths, positions, batch_dims=1)  # (batch, beam)
    best_token_ids = tf.gather(token_ids, positions, batch_dims=1)  # (batch, beam, max_length)
    return best_scores, best_lengths, best_token_ids


def _all_rows_done(beams, settings):
    """True when no alive hypothesis can still outrank the worst finished one, in every row."""
    # Log-probabilities only fall as hypotheses grow, so the best reachable ranking score of an alive
    # hypothesis is its log-probability over the largest normalization among the lengths it can end at.
    largest_normalization = tf.maximum(_length_normalization(beams.step + 1, settings.length_penalty),
                                       _length_normalization(settings.max_length, settings.length_penalty))
    best_reachable = beams.alive_log_probs[:, 0] / largest_normalization  # (batch,)
    worst_finished = tf.reduce_min(beams.finished_scores, axis=1)  # (batch,)
    return tf.reduce_all(worst_finished >= best_reachable)


def _best_hypotheses(beams, settings):
    """The best finished hypothesis of each row, or its best alive one when none finished."""
    has_finished = beams.finished_scores[:, 0] > _NEGATIVE_INFINITY  # (batch,)
    alive_scores = beams.alive_log_probs[:, 0] / _length_normalization(beams.step, settings.length_penalty)
    scores = tf.where(has_finished, beams.finished_scores[:, 0], alive_scores)  # (batch,)
    lengths = tf.where(has_finished, beams.finished_lengths[:, 0], beams.step)  # (batch,)
    token_ids = tf.where(has_finished[:, tf.newaxis], beams.finished_token_ids[:, 0],
                         beams.alive_token_ids[:, 0])  # (batch, max_length)
    return _make_result(token_ids, lengths, scores)


def _length_normalization(length, length_penalty):
    """GNMT length normalization ((5 + length) / 6) ** length_penalty."""
    length = tf.cast(length, tf.float32)
    return tf.pow((5.0 + length) / 6.0, length_penalty)


# === Shared helpers ===


def _make_result(token_ids, lengths, scores):
    """Trims the token columns to the longest output in the batch."""
    longest = tf.maximum(tf.reduce_max(lengths), 0)  # 0 for an empty batch
    return DecodeResult(token_ids=token_ids[:, :longest], lengths=lengths, scores=scores)


def _write_position(token_ids, step, tokens):
    """Writes `tokens` [...] at position `step` of `token_ids` [..., max_length]."""
    positions = tf.range(tf.shape(token_ids)[-1])  # (max_length,)
    return tf.where(tf.equal(positions, step), tokens[..., tf.newaxis], token_ids)


def _batch_free_shapes(loop_state):
    """Shape invariants for a loop state: each tensor's leading (batch) dimension left unknown."""

    def batch_free(tensor):
        shape = tensor.shape
        if shape.rank is None or shape.rank == 0:
            return shape
        return tf.TensorShape([None]).concatenate(shape[1:])

    return tf.nest.map_structure(batch_free, loop_state)


def _as_tensors(nest):
    return tf.nest.map_structure(tf.convert_to_tensor, nest)


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_end_and_length(end_token, max_length):
    if not _is_integer(end_token) or end_token < 0:
        raise ValueError(f"end_token must be an integer >= 0, got {end_token!r}")
    if not _is_integer(max_length) or max_length < 1:
        raise ValueError(f"max_length must be an integer >= 1, got {max_length!r}")


def _check_beam_size(beam_size):
    if not _is_integer(beam_size) or beam_size < 1:
        raise ValueError(f"beam_size must be an integer >= 1, got {beam_size!r}")
