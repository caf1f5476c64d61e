"""RecurrentStack and the pooling layers: shapes, masking, config round trips."""

import itertools

import keras
import numpy as np
import pytest

from pipeline import layers as layers_lib
from pipeline.layers import pooling
from pipeline.layers import recurrent

CELLS = ("simple_rnn", "lstm", "gru")
BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 6
# Valid steps per row; the last row is empty (every step masked).
ROW_LENGTHS = (5, 2, 0)


def inputs_and_mask(extra_steps: int = 0, seed: int = 0):
    """Random inputs (batch, time + extra, features) and the mask for ROW_LENGTHS; extra steps are junk."""
    generator = np.random.default_rng(seed)
    values = generator.normal(size=(BATCH, TIME + extra_steps, FEATURES)).astype("float32")
    mask = np.zeros((BATCH, TIME + extra_steps), dtype=bool)
    for row, length in enumerate(ROW_LENGTHS):
        mask[row, :length] = True
    return values, mask


def padded_versions():
    """The same examples twice: as they are, and with 3 more masked steps of different junk."""
    values, mask = inputs_and_mask()
    longer, longer_mask = inputs_and_mask(extra_steps=3, seed=1)
    longer[:, :TIME] = values
    for row, length in enumerate(ROW_LENGTHS):
        longer[row, length:] = 100.0 * (row + 1)  # junk where masked, unlike the junk in `values`
    return (values, mask), (longer, longer_mask)


# === RecurrentStack ===

STACK_CASES = list(itertools.product(CELLS, (False, True), (False, True), (1, 2)))


def stack_id(case) -> str:
    cell, bidirectional, return_sequences, num_layers = case
    return (f"{cell}-{'bi' if bidirectional else 'uni'}-{'seq' if return_sequences else 'last'}"
            f"-{num_layers}layer")


@pytest.mark.parametrize("case", STACK_CASES, ids=stack_id)
def test_recurrent_stack_output_shape(case):
    cell, bidirectional, return_sequences, num_layers = case
    stack = recurrent.RecurrentStack(cell, units=UNITS, num_layers=num_layers, bidirectional=bidirectional,
                                     return_sequences=return_sequences)
    values, _ = inputs_and_mask()

    outputs = stack(values)

    features = UNITS * (2 if bidirectional else 1)
    expected = (BATCH, TIME, features) if return_sequences else (BATCH, features)
    assert tuple(outputs.shape) == expected
    assert stack.compute_output_shape((BATCH, TIME, FEATURES)) == expected
    assert stack.output_features == features
    assert len(stack.recurrent_layers) == num_layers


@pytest.mark.parametrize("case", STACK_CASES, ids=stack_id)
def test_recurrent_stack_ignores_masked_steps(case):
    cell, bidirectional, return_sequences, num_layers = case
    stack = recurrent.RecurrentStack(cell, units=UNITS, num_layers=num_layers, bidirectional=bidirectional,
                                     return_sequences=return_sequences)
    (values, mask), (longer, longer_mask) = padded_versions()

    short_out = keras.ops.convert_to_numpy(stack(values, mask=mask))
    long_out = keras.ops.convert_to_numpy(stack(longer, mask=longer_mask))

    if return_sequences:
        valid = mask[..., None] & np.ones_like(short_out, dtype=bool)
        np.testing.assert_allclose(long_out[:, :TIME][valid], short_out[valid], rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(long_out, short_out, rtol=1e-5, atol=1e-5)
    assert np.all(np.isfinite(long_out))


def test_recurrent_stack_mask_is_passed_on_only_for_sequences():
    values, mask = inputs_and_mask()
    sequences = recurrent.RecurrentStack("gru", units=UNITS, return_sequences=True)
    last = recurrent.RecurrentStack("gru", units=UNITS, return_sequences=False)

    assert np.array_equal(keras.ops.convert_to_numpy(sequences.compute_mask(values, mask)), mask)
    assert last.compute_mask(values, mask) is None


def test_recurrent_stack_final_output_is_state_after_last_valid_step():
    # A unidirectional single-layer stack returns the output at each row's last unmasked step.
    stack_last = recurrent.RecurrentStack("lstm", units=UNITS, return_sequences=False)
    values, mask = inputs_and_mask()
    final = keras.ops.convert_to_numpy(stack_last(values, mask=mask))
    stack_sequences = recurrent.RecurrentStack.from_config({**stack_last.get_config(), "return_sequences": True})
    stack_sequences.build(values.shape)
    stack_sequences.set_weights(stack_last.get_weights())

    sequences = keras.ops.convert_to_numpy(stack_sequences(values, mask=mask))

    np.testing.assert_allclose(final[0], sequences[0, 4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final[1], sequences[1, 1], rtol=1e-5, atol=1e-6)


def test_recurrent_stack_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell"):
        recurrent.RecurrentStack("transformer")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_stack_config_round_trip(bidirectional):
    stack = recurrent.RecurrentStack("gru", units=7, num_layers=2, bidirectional=bidirectional, dropout=0.25,
                                     return_sequences=True, name="encoder")

    config = stack.get_config()
    rebuilt = recurrent.RecurrentStack.from_config(config)

    assert rebuilt.get_config() == config
    assert (config["cell"], config["units"], config["num_layers"], config["bidirectional"],
            config["dropout"], config["return_sequences"]) == ("gru", 7, 2, bidirectional, 0.25, True)
    assert rebuilt.name == "encoder"


def test_recurrent_stack_rebuilt_from_config_computes_the_same():
    stack = recurrent.RecurrentStack("lstm", units=UNITS, num_layers=2, bidirectional=True)
    values, mask = inputs_and_mask()
    expected = keras.ops.convert_to_numpy(stack(values, mask=mask))

    rebuilt = recurrent.RecurrentStack.from_config(stack.get_config())
    rebuilt.build(values.shape)
    rebuilt.set_weights(stack.get_weights())

    np.testing.assert_allclose(keras.ops.convert_to_numpy(rebuilt(values, mask=mask)), expected, rtol=1e-6)


def test_recurrent_stack_dropout_only_in_training():
    stack = recurrent.RecurrentStack("gru", units=UNITS, num_layers=2, dropout=0.5)
    values, _ = inputs_and_mask()

    first = keras.ops.convert_to_numpy(stack(values, training=False))
    second = keras.ops.convert_to_numpy(stack(values, training=False))
    trained = keras.ops.convert_to_numpy(stack(values, training=True))

    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, trained)


# === Pooling ===


def test_masked_mean_pools_over_valid_steps_only():
    values, mask = inputs_and_mask()

    pooled = keras.ops.convert_to_numpy(pooling.MaskedPooling("mean")(values, mask=mask))

    assert pooled.shape == (BATCH, FEATURES)
    np.testing.assert_allclose(pooled[0], values[0].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(pooled[1], values[1, :2].mean(axis=0), rtol=1e-5)


def test_masked_max_pools_over_valid_steps_only():
    values, mask = inputs_and_mask()
    values[1, 3] = 1000.0  # masked: must not win

    pooled = keras.ops.convert_to_numpy(pooling.MaskedPooling("max")(values, mask=mask))

    np.testing.assert_allclose(pooled[0], values[0].max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(pooled[1], values[1, :2].max(axis=0), rtol=1e-6)


def test_masked_max_of_negative_values():
    values = -np.arange(1, 7, dtype="float32").reshape(1, 3, 2) - 10.0  # all well below zero
    mask = np.array([[True, True, False]])

    pooled = keras.ops.convert_to_numpy(pooling.MaskedPooling("max")(values, mask=mask))

    np.testing.assert_allclose(pooled[0], [-11.0, -12.0])


def test_mean_max_concatenates_the_masked_mean_and_max():
    values, mask = inputs_and_mask()
    values[1, 3] = 1000.0  # masked: must not win

    layer = pooling.MaskedPooling("mean_max")
    pooled = keras.ops.convert_to_numpy(layer(values, mask=mask))

    assert pooled.shape == (BATCH, 2 * FEATURES) == layer.compute_output_shape(values.shape)
    np.testing.assert_allclose(pooled[1, :FEATURES], values[1, :2].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(pooled[1, FEATURES:], values[1, :2].max(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(pooled[2], np.zeros(2 * FEATURES))


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_masked_pooling_without_mask_uses_every_step(mode):
    values, _ = inputs_and_mask()

    pooled = keras.ops.convert_to_numpy(pooling.MaskedPooling(mode)(values))

    reduce = np.mean if mode == "mean" else np.max
    np.testing.assert_allclose(pooled, reduce(values, axis=1), rtol=1e-5)


@pytest.mark.parametrize("layer_factory", [
    lambda: pooling.MaskedPooling("mean"),
    lambda: pooling.MaskedPooling("max"),
    lambda: pooling.AttentionPooling(units=8),
], ids=["mean", "max", "attention"])
def test_all_masked_row_pools_to_zeros(layer_factory):
    values, mask = inputs_and_mask()

    pooled = keras.ops.convert_to_numpy(layer_factory()(values, mask=mask))

    assert pooled.shape == (BATCH, FEATURES)
    np.testing.assert_array_equal(pooled[2], np.zeros(FEATURES))
    assert np.abs(pooled[:2]).sum() > 0


def test_masked_pooling_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        pooling.MaskedPooling("median")


def test_attention_weights_sum_to_one_over_valid_steps():
    values, mask = inputs_and_mask()
    layer = pooling.AttentionPooling(units=8, return_attention=True)

    pooled, weights = (keras.ops.convert_to_numpy(item) for item in layer(values, mask=mask))

    assert pooled.shape == (BATCH, FEATURES)
    assert weights.shape == (BATCH, TIME)
    np.testing.assert_allclose(weights[:2].sum(axis=1), [1.0, 1.0], rtol=1e-5)
    np.testing.assert_array_equal(weights[~mask], 0.0)
    assert np.all(weights[mask] > 0)
    np.testing.assert_allclose(pooled, np.einsum("bt,btf->bf", weights, values), rtol=1e-5, atol=1e-6)


def test_attention_pooling_ignores_masked_steps():
    layer = pooling.AttentionPooling(units=8)
    (values, mask), (longer, longer_mask) = padded_versions()

    short_out = keras.ops.convert_to_numpy(layer(values, mask=mask))
    long_out = keras.ops.convert_to_numpy(layer(longer, mask=longer_mask))

    np.testing.assert_allclose(long_out, short_out, rtol=1e-5, atol=1e-6)


def test_pooling_output_shapes_and_masks():
    mean = pooling.MaskedPooling("mean")
    attention = pooling.AttentionPooling(units=8, return_attention=True)

    assert mean.compute_output_shape((BATCH, TIME, FEATURES)) == (BATCH, FEATURES)
    assert attention.compute_output_shape((BATCH, TIME, FEATURES)) == ((BATCH, FEATURES), (BATCH, TIME))
    assert mean.compute_mask(None, np.ones((BATCH, TIME), bool)) is None


@pytest.mark.parametrize("layer", [
    pooling.MaskedPooling("max", name="pool"),
    pooling.AttentionPooling(units=5, return_attention=True, name="attend"),
], ids=["masked", "attention"])
def test_pooling_config_round_trip(layer):
    config = layer.get_config()

    rebuilt = type(layer).from_config(config)

    assert rebuilt.get_config() == config
    assert rebuilt.name == layer.name


def test_custom_objects_name_the_recurrent_and_pooling_layers():
    for layer_class in (recurrent.RecurrentStack, pooling.MaskedPooling, pooling.AttentionPooling):
        assert layers_lib.CUSTOM_OBJECTS[layer_class.__name__] is layer_class
    for name, layer_class in layers_lib.CUSTOM_OBJECTS.items():
        assert layer_class.__name__ == name
        assert issubclass(layer_class, keras.layers.Layer)


@pytest.fixture
def restore_dtype_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_attention_pooling_all_masked_row_is_zero_under_mixed_precision(restore_dtype_policy, policy):
    keras.mixed_precision.set_global_policy(policy)
    values, mask = inputs_and_mask()
    layer = pooling.AttentionPooling(units=8, return_attention=True)

    pooled, weights = (keras.ops.convert_to_numpy(keras.ops.cast(item, "float32"))
                       for item in layer(values, mask=mask))

    assert np.all(np.isfinite(pooled)), pooled
    np.testing.assert_array_equal(pooled[2], np.zeros(FEATURES))
    np.testing.assert_array_equal(weights[2], np.zeros(TIME))
    np.testing.assert_allclose(weights[:2].sum(axis=1), [1.0, 1.0], rtol=1e-2)
