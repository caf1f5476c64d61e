"""Analytic FLOP counts of the recurrent classifier's training step (the numerator of the training_flops figure).

Counted: the matrix products and bias additions of every recurrent cell and of the output layer, a multiply-add
being 2 FLOPs, over every time step the layers compute (padded steps included: a masked step is computed, then
discarded). A training step is 3x the forward pass (the backward pass computes the gradient with respect to the
inputs and to the weights, each costing about one forward pass). Not counted: gate nonlinearities and
elementwise products (under 1% of the total for the sizes used here), the embedding lookup (a gather, no
arithmetic), pooling, the loss and the optimizer update. The count is checked against TensorFlow's graph
profiler on an unrolled layer in tests/test_speed_suite.py.
"""

# Matrix blocks per cell: a GRU has 3 gates (update, reset, candidate), an LSTM 4 (input, forget, cell, output).
GATES = {"simple_rnn": 1, "gru": 3, "lstm": 4}
# Bias vectors per gate: Keras' GRU (reset_after=True, the cuDNN-compatible default) adds an input and a
# recurrent bias; SimpleRNN and LSTM add one.
BIASES = {"simple_rnn": 1, "gru": 2, "lstm": 1}
TRAINING_MULTIPLIER = 3  # forward + backward (gradients for inputs and for weights)


def recurrent_step_flops(cell: str, input_size: int, units: int) -> int:
    """Forward FLOPs of one cell, one example, one time step: 2*gates*units*(input+units) + biases."""
    if cell not in GATES:
        raise ValueError(f"cell: {cell!r} is not one of {sorted(GATES)}")
    gates = GATES[cell]
    return 2 * gates * units * (input_size + units) + BIASES[cell] * gates * units


def recurrent_stack_forward_flops(cell: str, input_size: int, units: int, layers: int, bidirectional: bool,
                                  batch_size: int, time_steps: int) -> int:
    """Forward FLOPs of a (bidirectional) recurrent stack over a [batch_size, time_steps] batch."""
    directions = 2 if bidirectional else 1
    total = 0
    for _ in range(layers):
        total += directions * recurrent_step_flops(cell, input_size, units) * batch_size * time_steps
        input_size = directions * units
    return total


def classifier_forward_flops(model_config, num_classes: int, batch_size: int, time_steps: int) -> int:
    """Forward FLOPs of the sentiment classifier (recurrent stack + output layer) for one batch."""
    stack = recurrent_stack_forward_flops(model_config.cell, model_config.embedding_dim, model_config.units,
                                          model_config.layers, model_config.bidirectional, batch_size, time_steps)
    features = model_config.units * (2 if model_config.bidirectional else 1)
    head = batch_size * (2 * features * num_classes + num_classes)
    return stack + head


def classifier_training_flops(model_config, num_classes: int, batch_size: int, time_steps: int) -> int:
    """FLOPs of one training step (forward and backward) of the sentiment classifier on one batch."""
    return TRAINING_MULTIPLIER * classifier_forward_flops(model_config, num_classes, batch_size, time_steps)
