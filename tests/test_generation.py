"""pipeline/tasks/generation.py: the decoding signatures of the generative tasks and what each passes on."""

import pytest
import tensorflow as tf

from pipeline.tasks import generation

INPUT_SPEC = tf.TensorSpec([None], tf.string, name="prompt")


def _echo(inputs, mode, temperature=1.0, seed=None):
    """Stands in for a task's generate: returns the settings it was called with, one row per input."""
    batch = tf.shape(inputs)
    return {"mode": tf.fill(batch, mode), "temperature": tf.fill(batch, tf.cast(temperature, tf.float32)),
            "seed": tf.fill(batch, -1 if seed is None else seed)}


def _call(function, *arguments) -> dict:
    return {key: value.numpy().tolist() for key, value in function(tf.constant(["a", "b"]), *arguments).items()}


@pytest.mark.parametrize("mode", ["greedy", "beam"])
def test_serving_default_is_the_configured_greedy_or_beam_signature_itself(mode):
    functions = generation.decoding_signatures(INPUT_SPEC, _echo, default_mode=mode, temperature=0.7, seed=3)

    assert sorted(functions) == ["beam", "greedy", "sample", "serving_default"]
    assert functions["serving_default"] is functions[mode]  # traced and saved once
    assert _call(functions["serving_default"])["mode"] == [mode.encode()] * 2


def test_sampling_default_uses_the_configured_temperature_and_seed_and_sample_takes_its_own():
    functions = generation.decoding_signatures(INPUT_SPEC, _echo, default_mode="sample", temperature=0.5, seed=3)

    assert _call(functions["serving_default"]) == {"mode": [b"sample"] * 2, "temperature": [0.5] * 2, "seed": [3] * 2}
    assert _call(functions["sample"], tf.constant(1.5)) == {"mode": [b"sample"] * 2, "temperature": [1.5] * 2,
                                                             "seed": [-1] * 2}
