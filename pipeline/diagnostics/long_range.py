"""Long-range dependency probe: recall the first token of a sequence after N distractors.

Each sequence is a key (one of `KEYS` tokens) followed by N random distractor tokens; a recurrent
classifier reads it and must name the key from its final state. Accuracy against N shows how far back a
cell can carry information that gradient descent taught it to keep: a SimpleRNN falls to chance as N
grows, an LSTM or GRU holds on. Training draws the number of distractors uniformly from 0..N (left-padded
and masked), so short lags give a learning signal before long ones are needed; testing always uses N.
"""

import os
import typing

import keras
import numpy as np

from pipeline.diagnostics import reports
from pipeline.layers import recurrent

CELLS = ("simple_rnn", "lstm", "gru")
KEYS = 4
DISTRACTORS = 8
VOCABULARY_SIZE = 1 + KEYS + DISTRACTORS  # padding (0), keys (1..KEYS), distractors
_TEST_EXAMPLES = 512


def distractor_sequences(num_distractors: int, count: int, *, seed: int,
                         mixed_lengths: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sequences [count, 1 + num_distractors] (key, then distractors) and labels [count] (key index).

    With `mixed_lengths`, row i keeps only its first 1 + n_i tokens, n_i uniform in 0..num_distractors,
    left-padded with 0 so that every row still ends at the last column.
    """
    generator = np.random.default_rng(seed)
    keys = generator.integers(0, KEYS, size=count)
    distractors = generator.integers(1 + KEYS, VOCABULARY_SIZE, size=(count, num_distractors))
    sequences = np.concatenate([keys[:, None] + 1, distractors], axis=1)  # (count, 1 + N)
    if mixed_lengths:
        kept = generator.integers(0, num_distractors + 1, size=count) + 1  # tokens kept per row
        columns = np.arange(num_distractors + 1)
        shifted = np.zeros_like(sequences)
        for row, length in enumerate(kept):
            shifted[row, columns[-length:]] = sequences[row, :length]
        sequences = shifted
    return sequences.astype(np.int32), keys.astype(np.int32)


def probe_model(cell: str, *, units: int, embedding_dim: int = 16) -> keras.Model:
    """Embedding (padding masked; N(0, 1) entries) -> one recurrent layer -> logits over the keys."""
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(VOCABULARY_SIZE, embedding_dim, mask_zero=True,
                               embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0)),
        recurrent.CELLS[cell](units),
        keras.layers.Dense(KEYS),
    ], name=f"long_range_{cell}")


def probe_accuracy(cell: str, num_distractors: int, *, units: int = 16, train_steps: int = 120,
                   batch_size: int = 32, learning_rate: float = 0.01, seed: int = 0) -> float:
    """Trains a fresh probe model for `train_steps` Adam steps and returns its test accuracy at N distractors."""
    keras.utils.set_random_seed(seed)
    model = probe_model(cell, units=units)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    inputs, labels = distractor_sequences(num_distractors, train_steps * batch_size, seed=seed, mixed_lengths=True)
    model.fit(inputs, labels, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    test_inputs, test_labels = distractor_sequences(num_distractors, _TEST_EXAMPLES, seed=seed + 1)
    return float(model.evaluate(test_inputs, test_labels, batch_size=256, verbose=0)[1])


def long_range_probe(cells: typing.Sequence[str] = CELLS, distractors: typing.Sequence[int] = (5, 20, 50),
                     **settings) -> dict:
    """Test accuracy per cell and number of distractors: {cell: [accuracy for each N]}.

    Args:
        cells: Recurrent cells to compare.
        distractors: Values of N.
        **settings: `probe_accuracy` keyword arguments (units, train_steps, batch_size, learning_rate, seed).
    """
    return {cell: [probe_accuracy(cell, count, **settings) for count in distractors] for cell in cells}


def run(output_dir: str, *, cells: typing.Sequence[str] = CELLS, distractors: typing.Sequence[int] = (5, 20, 50),
        units: int = 16, train_steps: int = 120, batch_size: int = 32, learning_rate: float = 0.01,
        seed: int = 0) -> dict:
    """Runs the probe and writes `long_range.png` (accuracy vs N, chance level dashed) and `long_range.json`.

    Returns:
        {"results": {cell: accuracies}, "json": path, "png": path}.
    """
    settings = {"units": units, "train_steps": train_steps, "batch_size": batch_size,
                "learning_rate": learning_rate, "seed": seed}
    results = long_range_probe(cells, distractors, **settings)
    data = {"diagnosis": "long-range", "distractors": list(distractors), "chance": 1.0 / KEYS,
            "settings": {**settings, "keys": KEYS, "distractor_tokens": DISTRACTORS}, "accuracy": results}
    png = reports.line_plot(
        os.path.join(output_dir, "long_range.png"),
        {cell: (list(distractors), accuracies) for cell, accuracies in results.items()},
        title="Recall the first token after N distractors", xlabel="N (distractors)", ylabel="test accuracy",
        reference=(1.0 / KEYS, "chance"))
    return {"results": results, "json": reports.write_json(os.path.join(output_dir, "long_range.json"), data),
            "png": png}
