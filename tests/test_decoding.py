"""Decoding tests with scripted logits: Markov-chain tables written as TensorFlow ops, no model.

Token ids used throughout: 0 is padding, 1 the usual start token, 2 the end token; the rest are words.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from pipeline import decoding

END = 2


# === Scripted step functions ===


def transition_table(transitions: dict, vocabulary_size: int) -> np.ndarray:
    """Log-probabilities [previous token, next token] from {previous: {next: probability}}.

    Unlisted previous tokens go to the end token with probability 1; unlisted next tokens get -inf.
    """
    probabilities = np.zeros((vocabulary_size, vocabulary_size), np.float64)
    probabilities[:, END] = 1.0
    for previous, row in transitions.items():
        probabilities[previous] = 0.0
        for token, probability in row.items():
            probabilities[previous, token] = probability
    with np.errstate(divide="ignore"):
        return np.log(probabilities).astype(np.float32)


def markov_step_function(table: np.ndarray):
    """A step function whose logits are the table row of the token fed in; the state passes through."""
    table = tf.constant(table)

    def step_function(token_ids, state, step):
        del step
        return tf.gather(table, token_ids), state  # (batch, vocabulary)

    return step_function


def sequence_log_prob(table: np.ndarray, start_token: int, tokens, ended: bool = True) -> float:
    """Log-probability of `tokens` (plus the end token when `ended`) under a first-order table."""
    previous, total = start_token, 0.0
    for token in list(tokens) + ([END] if ended else []):
        total += float(table[previous, token])
        previous = token
    return total


def random_table(vocabulary_size: int, seed: int, end_bias: float = 0.0) -> np.ndarray:
    """A random first-order table with no exact ties, padding and start token never produced."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(size=(vocabulary_size, vocabulary_size)) * 2.0
    logits[:, END] += end_bias
    logits[:, 0:2] = -np.inf
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


def dummy_state(batch_size: int):
    return tf.zeros([batch_size, 1])


# Row 0 (start 1) greedily reads 3 4 5; row 1 (start 7) reads 5; row 2 (start 6) ends at once.
CHAIN = transition_table({
    1: {3: 0.6, 4: 0.4},
    3: {4: 0.7, END: 0.3},
    4: {5: 0.8, END: 0.2},
    5: {END: 0.9, 3: 0.1},
    6: {END: 1.0},
    7: {5: 0.9, END: 0.1},
}, vocabulary_size=8)


# === Greedy search ===


def test_greedy_follows_argmax_and_pads_after_end():
    result = decoding.greedy_search(markov_step_function(CHAIN), dummy_state(3), [1, 7, 6], end_token=END,
                                    max_length=10)

    np.testing.assert_array_equal(result.token_ids, [[3, 4, 5], [5, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(result.lengths, [3, 1, 0])
    expected_scores = [np.log(0.6 * 0.7 * 0.8 * 0.9), np.log(0.9 * 0.9), 0.0]
    np.testing.assert_allclose(result.scores, expected_scores, rtol=1e-5, atol=1e-6)


def test_end_token_at_first_step_gives_empty_output():
    result = decoding.greedy_search(markov_step_function(CHAIN), dummy_state(2), [6, 6], end_token=END,
                                    max_length=5)

    assert result.token_ids.shape == (2, 0)
    np.testing.assert_array_equal(result.lengths, [0, 0])
    np.testing.assert_allclose(result.scores, [0.0, 0.0], atol=1e-6)


def test_max_length_reached_without_end():
    cycle = transition_table({3: {4: 0.9, END: 0.1}, 4: {3: 0.9, END: 0.1}}, vocabulary_size=5)

    result = decoding.greedy_search(markov_step_function(cycle), dummy_state(1), [3], end_token=END, max_length=5)

    np.testing.assert_array_equal(result.token_ids, [[4, 3, 4, 3, 4]])
    np.testing.assert_array_equal(result.lengths, [5])
    np.testing.assert_allclose(result.scores, [5 * np.log(0.9)], rtol=1e-5)


def test_greedy_stops_when_every_row_ended():
    calls = tf.Variable(0)

    def counting_step_function(token_ids, state, step):
        calls.assign_add(1)
        return markov_step_function(CHAIN)(token_ids, state, step)

    decoding.greedy_search(counting_step_function, dummy_state(2), [1, 7], end_token=END, max_length=50)

    assert int(calls.numpy()) == 4  # row 0 ends at step 3


# Row r of the scripted batch below writes token 3 + r at every step until step ROW_LENGTHS[r], where it ends.
ROW_LENGTHS = (1, 3, 0, 5)


def row_script_step_function(batch_sizes: list):
    """Logits from each row's own script, found through its state (the row's index), so that a state not
    gathered along with its row would write another row's tokens; records the batch size of every call."""
    lengths = tf.constant(ROW_LENGTHS)

    def step_function(token_ids, state, step):
        del token_ids
        batch_sizes.append(state.shape[0])  # None while tracing a graph
        row = state[:, 0]  # (live,)
        token = tf.where(step >= tf.gather(lengths, row), END, 3 + row)
        return tf.one_hot(token, 9, on_value=5.0, off_value=-5.0), state

    return step_function


def expected_row_scripts(max_length: int) -> np.ndarray:
    tokens = np.zeros((len(ROW_LENGTHS), max_length), np.int32)
    for row, length in enumerate(ROW_LENGTHS):
        tokens[row, :min(length, max_length)] = 3 + row
    return tokens


def test_finished_rows_leave_the_batch_without_changing_the_results():
    batch_sizes = []
    state = tf.range(len(ROW_LENGTHS))[:, tf.newaxis]  # each row's index: its state

    result = decoding.greedy_search(row_script_step_function(batch_sizes), state, [1, 1, 1, 1], end_token=END,
                                    max_length=10)

    np.testing.assert_array_equal(result.token_ids, expected_row_scripts(5))
    np.testing.assert_array_equal(result.lengths, ROW_LENGTHS)
    assert batch_sizes == [4, 3, 2, 2, 1, 1]  # rows end after steps 0 (row 2), 1 (row 0), 3 (row 1) and 5


def test_sampling_with_one_temperature_per_row_follows_its_rows_as_they_leave():
    batch_sizes = []
    state = tf.range(len(ROW_LENGTHS))[:, tf.newaxis]
    temperature = tf.constant([1e-3, 1e-3, 1e-3, 1e-3])  # near zero: the scripted token every time

    result = decoding.sample(row_script_step_function(batch_sizes), state, [1, 1, 1, 1], end_token=END,
                             max_length=10, temperature=temperature, seed=3)

    np.testing.assert_array_equal(result.token_ids, expected_row_scripts(5))
    assert batch_sizes[-1] == 1


def test_under_xla_rows_stay_and_results_match():
    state = tf.range(len(ROW_LENGTHS))[:, tf.newaxis]
    decoders = {jit: tf.function(lambda state: decoding.greedy_search(
        row_script_step_function([]), state, tf.ones([4], tf.int32), end_token=END, max_length=10), jit_compile=jit)
        for jit in (False, True)}

    plain, compiled = decoders[False](state), decoders[True](state)

    np.testing.assert_array_equal(compiled.token_ids, plain.token_ids)
    np.testing.assert_array_equal(compiled.lengths, ROW_LENGTHS)
    np.testing.assert_allclose(compiled.scores, plain.scores, atol=1e-6)


# === Beam search ===


def test_beam_size_one_equals_greedy():
    table = random_table(vocabulary_size=9, seed=3, end_bias=1.0)
    step_function = markov_step_function(table)
    start_tokens = [1, 3, 4, 5, 6, 7, 8]
    state = dummy_state(len(start_tokens))

    greedy = decoding.greedy_search(step_function, state, start_tokens, end_token=END, max_length=7)
    beam = decoding.beam_search(step_function, state, start_tokens, end_token=END, max_length=7, beam_size=1)

    np.testing.assert_array_equal(beam.token_ids, greedy.token_ids)
    np.testing.assert_array_equal(beam.lengths, greedy.lengths)
    np.testing.assert_array_equal(beam.scores, greedy.scores)
    assert len(set(greedy.lengths.numpy().tolist())) > 1  # rows end at different steps


def test_beam_finds_more_probable_sequence_than_greedy():
    # Greedy takes 3 (0.6), whose continuations are all poor; 4 (0.4) then ends with 0.9.
    table = transition_table({
        1: {3: 0.6, 4: 0.4},
        3: {5: 0.34, 6: 0.33, 7: 0.33},
        4: {END: 0.9, 5: 0.1},
        5: {END: 1.0}, 6: {END: 1.0}, 7: {END: 1.0},
    }, vocabulary_size=8)
    step_function = markov_step_function(table)

    greedy = decoding.greedy_search(step_function, dummy_state(1), [1], end_token=END, max_length=5)
    beam = decoding.beam_search(step_function, dummy_state(1), [1], end_token=END, max_length=5, beam_size=2)

    np.testing.assert_array_equal(greedy.token_ids, [[3, 5]])
    np.testing.assert_array_equal(beam.token_ids, [[4]])
    np.testing.assert_array_equal(beam.lengths, [1])
    np.testing.assert_allclose(beam.scores, [np.log(0.4 * 0.9)], rtol=1e-5)
    assert float(beam.scores[0]) > float(greedy.scores[0])


# Short: 3 END (0.55 * 0.6 = 0.33, 2 tokens). Long: 4 5 6 7 END (0.45 * 0.9 ** 4 = 0.295, 5 tokens).
LENGTH_CHOICE = transition_table({
    1: {3: 0.55, 4: 0.45},
    3: {END: 0.6, 8: 0.4},
    4: {5: 0.9, 8: 0.1},
    5: {6: 0.9, 8: 0.1},
    6: {7: 0.9, 8: 0.1},
    7: {END: 0.9, 8: 0.1},
    8: {8: 1.0},
}, vocabulary_size=9)


@pytest.mark.parametrize("length_penalty, expected_tokens", [(0.0, [3]), (1.0, [4, 5, 6, 7])])
def test_length_penalty_changes_the_winner(length_penalty, expected_tokens):
    result = decoding.beam_search(markov_step_function(LENGTH_CHOICE), dummy_state(1), [1], end_token=END,
                                  max_length=8, beam_size=2, length_penalty=length_penalty)

    np.testing.assert_array_equal(result.token_ids, [expected_tokens])
    log_prob = sequence_log_prob(LENGTH_CHOICE, 1, expected_tokens)
    normalization = ((5 + len(expected_tokens) + 1) / 6) ** length_penalty
    np.testing.assert_allclose(result.scores, [log_prob / normalization], rtol=1e-5)


def test_length_penalty_keeps_searching_after_a_short_hypothesis_ends():
    # Ending at once (0.55) is found first; 3 4 5 END (0.45) only wins once normalized by its length.
    table = transition_table({1: {END: 0.55, 3: 0.45}, 3: {4: 1.0}, 4: {5: 1.0}, 5: {END: 1.0}}, vocabulary_size=6)

    result = decoding.beam_search(markov_step_function(table), dummy_state(1), [1], end_token=END, max_length=10,
                                  beam_size=1, length_penalty=1.0)

    np.testing.assert_array_equal(result.token_ids, [[3, 4, 5]])
    np.testing.assert_allclose(result.scores, [np.log(0.45) / 1.5], rtol=1e-5)


def test_beam_returns_best_alive_hypothesis_when_nothing_ended():
    never_ends = transition_table({1: {3: 0.7, 4: 0.3}, 3: {3: 0.6, 4: 0.4}, 4: {4: 1.0}}, vocabulary_size=5)

    result = decoding.beam_search(markov_step_function(never_ends), dummy_state(1), [1], end_token=END,
                                  max_length=4, beam_size=2, length_penalty=0.5)

    np.testing.assert_array_equal(result.token_ids, [[4, 4, 4, 4]])  # 0.3 beats 0.7 * 0.6 ** 3 = 0.15
    np.testing.assert_array_equal(result.lengths, [4])
    np.testing.assert_allclose(result.scores, [np.log(0.3) / (9 / 6) ** 0.5], rtol=1e-5)


def test_beam_stops_once_no_alive_hypothesis_can_win():
    calls = tf.Variable(0)

    def counting_step_function(token_ids, state, step):
        calls.assign_add(1)
        return markov_step_function(LENGTH_CHOICE)(token_ids, state, step)

    decoding.beam_search(counting_step_function, dummy_state(1), [1], end_token=END, max_length=50, beam_size=2)

    # Two hypotheses have ended by step 4 and the best alive one (3 8 8 8 8, p=0.22) is already worse.
    assert int(calls.numpy()) == 5


# The end token is barred before this step, so the best sequences are long and the beams reorder often.
FIRST_END_STEP = 3


def second_order_step_function(table: np.ndarray):
    """Logits depend on the token fed in and the one before it, which only the state remembers."""
    table = tf.constant(table)  # (vocabulary, vocabulary, vocabulary)
    end_mask = tf.one_hot(END, table.shape[-1], on_value=float("-inf"), off_value=0.0)  # (vocabulary,)

    def step_function(token_ids, state, step):
        indices = tf.stack([state["previous"], token_ids], axis=1)  # (batch, 2)
        logits = tf.gather_nd(table, indices)  # (batch, vocabulary)
        logits += tf.where(step < FIRST_END_STEP, end_mask, 0.0)
        return logits, {"previous": token_ids}

    return step_function


def second_order_log_prob(table, start_token, tokens):
    history, total = [0, start_token], 0.0
    for step, token in enumerate(list(tokens) + [END]):
        logits = table[history[-2], history[-1]].astype(np.float64)
        if step < FIRST_END_STEP:
            logits[END] = -np.inf
        total += logits[token] - np.log(np.exp(logits).sum())
        history.append(token)
    return total


def test_beam_reorders_state_with_its_hypotheses():
    vocabulary_size, max_length = 5, 5
    generator = np.random.default_rng(7)
    table = (generator.normal(size=(vocabulary_size,) * 3) * 2.0).astype(np.float32)
    table[..., 0:2] = -np.inf
    start_tokens = [1, 3, 4]
    state = {"previous": tf.zeros([len(start_tokens)], tf.int32)}
    step_function = second_order_step_function(table)

    # A beam as wide as every possible prefix is exhaustive: it must find the best finished sequence.
    exhaustive = decoding.beam_search(step_function, state, start_tokens, end_token=END, max_length=max_length,
                                      beam_size=(vocabulary_size - 3) ** max_length)
    narrow = decoding.beam_search(step_function, state, start_tokens, end_token=END, max_length=max_length,
                                  beam_size=2)

    candidates = [tokens for length in range(FIRST_END_STEP, max_length)
                  for tokens in itertools.product([3, 4], repeat=length)]
    for row, start_token in enumerate(start_tokens):
        best = max(candidates, key=lambda tokens: second_order_log_prob(table, start_token, tokens))
        length = int(exhaustive.lengths[row])
        assert tuple(exhaustive.token_ids[row, :length].numpy()) == best
        np.testing.assert_allclose(exhaustive.scores[row], second_order_log_prob(table, start_token, best), rtol=1e-5)
        # Whatever the narrow beam returns, its score is the true log-probability of its tokens.
        narrow_tokens = narrow.token_ids[row, :int(narrow.lengths[row])].numpy()
        np.testing.assert_allclose(narrow.scores[row], second_order_log_prob(table, start_token, narrow_tokens),
                                   rtol=1e-5)


def test_beam_search_with_nested_state_and_memory():
    # Each row reads its own table, chosen by a row id carried in a [batch, time, units] memory tensor.
    tables = np.stack([random_table(7, seed, end_bias=0.5) for seed in (11, 12, 13)])  # (rows, vocab, vocab)
    table_tensor = tf.constant(tables)

    def step_function(token_ids, state, step):
        counter, extras = state
        row_ids = tf.cast(extras["memory"][:, 0, 0], tf.int32)  # (batch,)
        logits = tf.gather_nd(table_tensor, tf.stack([row_ids, token_ids], axis=1))  # (batch, vocabulary)
        return logits, (counter + 1, {"memory": extras["memory"], "last": token_ids})

    batch_size = 3
    memory = tf.tile(tf.range(batch_size, dtype=tf.float32)[:, None, None], [1, 4, 2])  # (batch, time, units)
    state = (tf.zeros([batch_size], tf.int32), {"memory": memory, "last": tf.ones([batch_size], tf.int32)})

    together = decoding.beam_search(step_function, state, [1, 1, 1], end_token=END, max_length=6, beam_size=3)

    for row in range(batch_size):
        alone = decoding.beam_search(markov_step_function(tables[row]), dummy_state(1), [1], end_token=END,
                                     max_length=6, beam_size=3)
        length = int(alone.lengths[0])
        assert int(together.lengths[row]) == length
        np.testing.assert_array_equal(together.token_ids[row, :length], alone.token_ids[0, :length])
        np.testing.assert_allclose(together.scores[row], alone.scores[0], rtol=1e-6)


def test_tile_for_beam_repeats_each_row():
    nest = {"a": tf.constant([[1, 2], [3, 4]]), "b": (tf.constant([5, 6]),)}

    tiled = decoding.tile_for_beam(nest, 3)

    np.testing.assert_array_equal(tiled["a"], [[1, 2]] * 3 + [[3, 4]] * 3)
    np.testing.assert_array_equal(tiled["b"][0], [5, 5, 5, 6, 6, 6])


# === Sampling ===


def uniform_step_function(vocabulary_size: int):
    """Every word equally likely; the end token 50 times less likely than a word."""
    logits = np.zeros(vocabulary_size, np.float32)
    logits[0:2] = -np.inf
    logits[END] = -np.log(50.0)
    logits = tf.constant(logits)

    def step_function(token_ids, state, step):
        del step
        return tf.tile(logits[None, :], [tf.shape(token_ids)[0], 1]), state

    return step_function


def test_same_seed_repeats_and_different_seeds_differ():
    step_function = uniform_step_function(100)
    arguments = dict(end_token=END, max_length=12)

    first = decoding.sample(step_function, dummy_state(4), [1] * 4, seed=1, **arguments)
    again = decoding.sample(step_function, dummy_state(4), [1] * 4, seed=1, **arguments)
    other = decoding.sample(step_function, dummy_state(4), [1] * 4, seed=2, **arguments)

    np.testing.assert_array_equal(first.token_ids, again.token_ids)
    np.testing.assert_array_equal(first.scores, again.scores)
    assert first.token_ids.shape != other.token_ids.shape or np.any(first.token_ids != other.token_ids)


@pytest.mark.parametrize("options", [dict(temperature=1e-4), dict(top_k=1), dict(temperature=tf.constant(1e-4))])
def test_sampling_limits_equal_greedy(options):
    table = random_table(vocabulary_size=9, seed=5, end_bias=1.0)
    step_function = markov_step_function(table)
    start_tokens = [1, 3, 4, 5, 6, 7, 8]
    state = dummy_state(len(start_tokens))

    greedy = decoding.greedy_search(step_function, state, start_tokens, end_token=END, max_length=7)
    sampled = decoding.sample(step_function, state, start_tokens, end_token=END, max_length=7, seed=9, **options)

    np.testing.assert_array_equal(sampled.token_ids, greedy.token_ids)
    np.testing.assert_array_equal(sampled.lengths, greedy.lengths)
    # Scores use the model's own log-probabilities, not the sharpened distribution's (which would be ~0).
    np.testing.assert_allclose(sampled.scores, greedy.scores, rtol=1e-6)


def first_token_frequencies(probabilities, draws: int = 2000, **options) -> np.ndarray:
    """Samples one token for `draws` rows from a fixed distribution; returns the observed frequencies."""
    logits = tf.constant(np.log(probabilities), tf.float32)

    def step_function(token_ids, state, step):
        return tf.tile(logits[None, :], [tf.shape(token_ids)[0], 1]), state

    result = decoding.sample(step_function, dummy_state(draws), tf.ones([draws], tf.int32), end_token=0,
                             max_length=1, seed=123, **options)
    return np.bincount(result.token_ids[:, 0].numpy(), minlength=len(probabilities)) / draws


def test_sampling_frequencies_follow_the_distribution():
    probabilities = np.array([0.05, 0.1, 0.15, 0.3, 0.4])  # token 0 (the end token here) leaves a 0 column

    frequencies = first_token_frequencies(probabilities)

    np.testing.assert_allclose(frequencies[1:], probabilities[1:], atol=0.04)


def test_temperature_and_top_k_reshape_the_distribution():
    probabilities = np.array([0.05, 0.1, 0.15, 0.3, 0.4])

    flattened = first_token_frequencies(probabilities, temperature=2.0)
    truncated = first_token_frequencies(probabilities, top_k=2)

    expected_flat = np.sqrt(probabilities) / np.sqrt(probabilities).sum()
    np.testing.assert_allclose(flattened[1:], expected_flat[1:], atol=0.04)
    np.testing.assert_allclose(truncated, [0.0, 0.0, 0.0, 3 / 7, 4 / 7], atol=0.04)


def test_invalid_arguments_raise_value_error():
    step_function = markov_step_function(CHAIN)
    state, start_tokens = dummy_state(1), [1]
    with pytest.raises(ValueError, match="max_length"):
        decoding.greedy_search(step_function, state, start_tokens, end_token=END, max_length=0)
    with pytest.raises(ValueError, match="end_token"):
        decoding.greedy_search(step_function, state, start_tokens, end_token=-1, max_length=3)
    with pytest.raises(ValueError, match="temperature"):
        decoding.sample(step_function, state, start_tokens, end_token=END, max_length=3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        decoding.sample(step_function, state, start_tokens, end_token=END, max_length=3, top_k=-1)
    with pytest.raises(ValueError, match="beam_size"):
        decoding.beam_search(step_function, state, start_tokens, end_token=END, max_length=3, beam_size=0)
    with pytest.raises(ValueError, match="beam_size"):
        decoding.tile_for_beam(state, 0)


def test_non_positive_temperature_tensor_fails_at_run_time():
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature"):
        decoding.sample(markov_step_function(CHAIN), dummy_state(1), [1], end_token=END, max_length=3,
                        temperature=tf.constant(0.0))


# === Graph mode with a dynamic batch ===


def test_every_decoder_works_in_a_tf_function_with_dynamic_batch():
    table = random_table(vocabulary_size=9, seed=21, end_bias=1.0)
    table_tensor = tf.constant(table)

    def step_function(token_ids, state, step):
        # The state carries per-row memory [batch, time, units] that gets added to the logits.
        bias = tf.reduce_sum(state["memory"], axis=[1, 2])[:, None] * 0.0  # (batch, 1)
        return tf.gather(table_tensor, token_ids) + bias, {"memory": state["memory"], "step": state["step"] + 1}

    signature = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 3, 2], tf.float32),
                 tf.TensorSpec([], tf.float32)]

    @tf.function(input_signature=signature)
    def decode_all(start_tokens, memory, temperature):
        state = {"memory": memory, "step": tf.zeros_like(start_tokens)}
        arguments = dict(end_token=END, max_length=6)
        return (decoding.greedy_search(step_function, state, start_tokens, **arguments),
                decoding.sample(step_function, state, start_tokens, temperature=temperature, top_k=3, seed=4,
                                **arguments),
                decoding.beam_search(step_function, state, start_tokens, beam_size=3, length_penalty=0.6,
                                     **arguments))

    for batch_size in (1, 5):
        start_tokens = tf.constant([1, 3, 4, 5, 6][:batch_size], tf.int32)
        memory = tf.ones([batch_size, 3, 2])
        greedy, sampled, beam = decode_all(start_tokens, memory, tf.constant(0.7))
        state = {"memory": memory, "step": tf.zeros_like(start_tokens)}
        eager_beam = decoding.beam_search(step_function, state, start_tokens, end_token=END, max_length=6,
                                          beam_size=3, length_penalty=0.6)
        for result in (greedy, sampled, beam):
            assert result.token_ids.shape[0] == batch_size
            assert result.lengths.shape == (batch_size,)
            assert result.scores.shape == (batch_size,)
        np.testing.assert_array_equal(beam.token_ids, eager_beam.token_ids)
        np.testing.assert_allclose(beam.scores, eager_beam.scores, rtol=1e-6)
        expected = [sequence_log_prob(table, int(start), greedy.token_ids[row, :int(greedy.lengths[row])],
                                      ended=int(greedy.lengths[row]) < 6)
                    for row, start in enumerate(start_tokens.numpy())]
        np.testing.assert_allclose(greedy.scores, expected, rtol=1e-5)


def test_decoders_survive_a_saved_model_round_trip(tmp_path):
    table = tf.constant(random_table(vocabulary_size=9, seed=31, end_bias=1.0))

    def step_function(token_ids, state, step):
        del step
        return tf.gather(table, token_ids) + state[:, :1] * 0.0, state

    class Decoders(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def greedy(self, start_tokens):
            state = tf.zeros([tf.shape(start_tokens)[0], 2])
            return decoding.greedy_search(step_function, state, start_tokens, end_token=END, max_length=6)._asdict()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.float32)])
        def sample(self, start_tokens, temperature):
            state = tf.zeros([tf.shape(start_tokens)[0], 2])
            return decoding.sample(step_function, state, start_tokens, end_token=END, max_length=6,
                                   temperature=temperature, seed=5)._asdict()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def beam(self, start_tokens):
            state = tf.zeros([tf.shape(start_tokens)[0], 2])
            return decoding.beam_search(step_function, state, start_tokens, end_token=END, max_length=6,
                                        beam_size=3)._asdict()

    module = Decoders()
    tf.saved_model.save(module, str(tmp_path / "decoders"))
    loaded = tf.saved_model.load(str(tmp_path / "decoders"))

    for batch_size in (1, 5):
        start_tokens = tf.constant([1, 3, 4, 5, 6][:batch_size], tf.int32)
        pairs = [(loaded.greedy(start_tokens), module.greedy(start_tokens)),
                 (loaded.sample(start_tokens, 0.8), module.sample(start_tokens, tf.constant(0.8))),
                 (loaded.beam(start_tokens), module.beam(start_tokens))]
        for restored, original in pairs:
            for key in ("token_ids", "lengths", "scores"):
                np.testing.assert_array_equal(restored[key], original[key])


# === Required token counts ===


def _required(counts, token=6, state_rows=3):
    return decoding.require_token_counts(markov_step_function(CHAIN), dummy_state(state_rows),
                                         tf.constant(counts), token=token, end_token=END)


def test_an_owed_token_is_written_where_the_row_would_end():
    step_function, state = _required([0, 1, 2])
    result = decoding.greedy_search(step_function, state, [1, 7, 6], end_token=END, max_length=10)

    np.testing.assert_array_equal(result.token_ids, [[3, 4, 5], [5, 6, 0], [6, 6, 0]])


def test_a_token_owed_no_more_is_barred_and_one_the_model_places_stays_put():
    barred, state = _required([0], token=3, state_rows=1)
    placed, placed_state = _required([1], token=3, state_rows=1)

    barred_result = decoding.greedy_search(barred, state, [1], end_token=END, max_length=10)
    placed_result = decoding.greedy_search(placed, placed_state, [1], end_token=END, max_length=10)

    np.testing.assert_array_equal(barred_result.token_ids, [[4, 5]])
    np.testing.assert_array_equal(placed_result.token_ids, [[3, 4, 5]])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_beam_search_writes_each_row_its_count_under_xla_too(jit_compile):
    @tf.function(jit_compile=jit_compile)
    def decode(state):
        step_function, constrained_state = decoding.require_token_counts(
            markov_step_function(CHAIN), state, tf.constant([0, 1, 2, 3]), token=6, end_token=END)
        return decoding.beam_search(step_function, constrained_state, tf.constant([1, 7, 1, 7]), end_token=END,
                                    max_length=12, beam_size=3, length_penalty=0.6)

    result = decode(dummy_state(4))

    rows = [list(row[:length]) for row, length in zip(result.token_ids.numpy(), result.lengths.numpy())]
    assert [row.count(6) for row in rows] == [0, 1, 2, 3]
    assert rows[1] == [5, 6] and rows[3] == [5, 6, 6, 6]  # the owed tokens take the end's place
