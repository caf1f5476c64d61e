"""Serving signatures shared by the generative tasks (translation, captioning, language model)."""

import typing

import tensorflow as tf

Generate = typing.Callable[..., dict]


def decoding_signatures(input_spec: tf.TensorSpec, generate: Generate, *, default_mode: str,
                        temperature: float, seed: typing.Optional[int]) -> dict[str, typing.Callable]:
    """`serving_default` (the configured decoding) plus `greedy`, `beam` and `sample` signatures.

    Args:
        input_spec: The raw input, a named string [batch] spec (e.g. `text`, `image_bytes`, `prompt`);
            its name is the signature's input name.
        generate: `(inputs, mode, temperature=..., seed=...) -> dict of outputs`.
        default_mode: Decoding of `serving_default`.
        temperature: Softmax temperature of `serving_default` when it samples.
        seed: Seed of `serving_default` when it samples, so that it is repeatable; the `sample` signature
            draws a fresh seed on every call and takes its `temperature` as a float scalar input.
    """
    @tf.function(input_signature=[input_spec])
    def greedy(inputs):
        return generate(inputs, "greedy")

    @tf.function(input_signature=[input_spec])
    def beam(inputs):
        return generate(inputs, "beam")

    @tf.function(input_signature=[input_spec, tf.TensorSpec([], tf.float32, name="temperature")])
    def sample(inputs, temperature):
        return generate(inputs, "sample", temperature=temperature)

    @tf.function(input_signature=[input_spec])
    def serve(inputs):
        return generate(inputs, default_mode, temperature=temperature, seed=seed)

    functions = {"greedy": greedy, "beam": beam, "sample": sample}
    # Greedy and beam decoding take no settings: serving_default is then that very function, traced once.
    return {"serving_default": functions[default_mode] if default_mode in ("greedy", "beam") else serve, **functions}
