"""Bahdanau and Luong attention: shapes, masking of padded source steps, precomputed keys, config round trips."""

import keras
import numpy as np
import pytest

from pipeline.layers import attention

BATCH, QUERY_TIME, VALUE_TIME, QUERY_FEATURES, VALUE_FEATURES = 3, 4, 6, 8, 10
# Real source steps per row; the last row has none.
ROW_LENGTHS = (6, 2, 0)
LAYERS = {
    "bahdanau": lambda: attention.BahdanauAttention(5, name="attention"),
    "luong": lambda: attention.LuongAttention(QUERY_FEATURES, name="attention"),
}


def query_value_mask(seed: int = 0):
    generator = np.random.default_rng(seed)
    query = generator.normal(size=(BATCH, QUERY_TIME, QUERY_FEATURES)).astype("float32")
    value = generator.normal(size=(BATCH, VALUE_TIME, VALUE_FEATURES)).astype("float32")
    mask = np.arange(VALUE_TIME)[None, :] < np.array(ROW_LENGTHS)[:, None]  # (batch, value_time)
    return query, value, mask


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_output_shapes_eager_and_symbolic(kind):
    layer = LAYERS[kind]()
    query, value, mask = query_value_mask()
    context, weights = layer(query, value, value_mask=mask)
    assert tuple(context.shape) == (BATCH, QUERY_TIME, VALUE_FEATURES)
    assert tuple(weights.shape) == (BATCH, QUERY_TIME, VALUE_TIME)
    symbolic_context, symbolic_weights = layer(keras.Input((None, QUERY_FEATURES)), keras.Input((None, VALUE_FEATURES)))
    assert tuple(symbolic_context.shape) == (None, None, VALUE_FEATURES)
    assert tuple(symbolic_weights.shape) == (None, None, None)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_padded_source_steps_get_zero_weight_and_weights_sum_to_one(kind):
    query, value, mask = query_value_mask()
    context, weights = LAYERS[kind]()(query, value, value_mask=mask)
    weights = np.asarray(weights)
    assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)
    np.testing.assert_allclose(weights[:2].sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(weights[2] == 0.0) and np.all(np.asarray(context)[2] == 0.0)  # nothing to attend to


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_junk_in_padded_steps_changes_nothing(kind):
    layer = LAYERS[kind]()
    query, value, mask = query_value_mask()
    junk = value.copy()
    junk[~mask] = 1000.0
    junk = np.concatenate([junk, np.full((BATCH, 2, VALUE_FEATURES), -50.0, "float32")], axis=1)
    longer_mask = np.pad(mask, [[0, 0], [0, 2]])
    context, weights = layer(query, value, value_mask=mask)
    junk_context, junk_weights = layer(query, junk, value_mask=longer_mask)
    np.testing.assert_allclose(np.asarray(junk_context), np.asarray(context), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(junk_weights)[..., :VALUE_TIME], np.asarray(weights), atol=1e-6)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_precomputed_keys_give_the_same_result(kind):
    layer = LAYERS[kind]()
    query, value, mask = query_value_mask()
    context, weights = layer(query, value, value_mask=mask)
    keys = layer.project_keys(value)
    again_context, again_weights = layer(query, value, keys=keys, value_mask=mask)
    np.testing.assert_allclose(np.asarray(again_context), np.asarray(context), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(again_weights), np.asarray(weights), rtol=1e-6)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_config_round_trip_and_named_sublayers(kind):
    layer = LAYERS[kind]()
    query, value, mask = query_value_mask()
    layer(query, value, value_mask=mask)
    rebuilt = type(layer).from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    rebuilt(query, value, value_mask=mask)
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(rebuilt(query, value, value_mask=mask)[0]),
                               np.asarray(layer(query, value, value_mask=mask)[0]), rtol=1e-6)
    assert "key_projection" in {variable.path.split("/")[-2] for variable in layer.weights}


def test_luong_rejects_queries_of_another_size():
    query, value, _ = query_value_mask()
    with pytest.raises(ValueError, match="needs queries with 3 features"):
        attention.LuongAttention(3)(query, value)
