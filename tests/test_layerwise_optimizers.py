"""Discriminative learning rates: each layer group's update is the plain optimizer's at its own learning rate."""

import dataclasses

import keras
import numpy as np
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import fine_tuning
from pipeline import layerwise_optimizers
from pipeline import tasks
from pipeline import training
from pipeline.models import sentiment_classifier


def _setup(*overrides: str):
    """A two-layer sentiment classifier, its task and its train block (clipping on, as by default)."""
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                                    ["model.layers=2", "train.learning_rate=0.01", *overrides])
    model = sentiment_classifier.build_sentiment_classifier(config.model, vocabulary_size=30, num_classes=2)
    return config.train, tasks.create_task(config), model


def _gradients(variables, steps: int, seed: int = 0) -> list[list[np.ndarray]]:
    """Fixed gradients, some with norms above 1 so that `clipnorm` clips them."""
    generator = np.random.default_rng(seed)
    return [[generator.normal(scale=0.5, size=variable.shape).astype("float32") for variable in variables]
            for _ in range(steps)]


def _apply(optimizer, variables, gradients) -> None:
    optimizer.build(variables)
    for step_gradients in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(gradient) for gradient in step_gradients], variables)


def _plain_run(train, learning_rate, initial, gradients):
    """The plain optimizer at `learning_rate` over copies of the variables: (variables, optimizer)."""
    copies = [keras.Variable(value) for value in initial]
    optimizer = training.make_optimizer(dataclasses.replace(train, learning_rate=learning_rate), total_steps=10)
    _apply(optimizer, copies, gradients)
    return copies, optimizer


def _group_positions(train, task, model) -> list[list[int]]:
    """Indices into `model.trainable_variables` of each layer group, bottom to top."""
    index = {id(variable): position for position, variable in enumerate(model.trainable_variables)}
    return [[index[id(variable)] for variable in variables]
            for variables in fine_tuning.variable_groups(train, task, model).values()]


@pytest.mark.parametrize("optimizer_name", ["adam", "adamw", "rmsprop", "sgd"])
def test_each_group_steps_as_the_plain_optimizer_at_its_own_learning_rate(optimizer_name):
    # A factor of 2 keeps every scaled learning rate exact in float32: the updates must match bit for bit.
    train, task, model = _setup(f"train.optimizer={optimizer_name}", "train.discriminative_lr=2",
                                "train.ema_momentum=0.9")
    variables = model.trainable_variables
    initial = [variable.numpy() for variable in variables]
    gradients = _gradients(variables, steps=3)
    optimizer = training.make_optimizer(train, 10, fine_tuning.optimizer_settings(train, task, model, 5))
    assert type(optimizer) is layerwise_optimizers.OPTIMIZERS[optimizer_name]

    _apply(optimizer, variables, gradients)

    groups = _group_positions(train, task, model)
    assert len(groups) == 4  # embedding, recurrent_0, recurrent_1, head
    for position, members in enumerate(groups):
        from_top = len(groups) - 1 - position
        plain, plain_optimizer = _plain_run(train, 0.01 / 2 ** from_top, initial, gradients)
        for member in members:
            assert np.array_equal(variables[member].numpy(), plain[member].numpy()), \
                f"{variables[member].path}: not the plain {optimizer_name} update at lr / 2**{from_top}"
            assert np.array_equal(optimizer._model_variables_moving_average[member].numpy(),
                                  plain_optimizer._model_variables_moving_average[member].numpy())
        assert not np.array_equal(variables[members[0]].numpy(), initial[members[0]])


def test_ulmfit_factor_matches_the_plain_optimizer_closely():
    train, task, model = _setup("train.discriminative_lr=2.6")
    variables = model.trainable_variables
    initial = [variable.numpy() for variable in variables]
    gradients = _gradients(variables, steps=2)

    _apply(training.make_optimizer(train, 10, fine_tuning.optimizer_settings(train, task, model, 5)), variables,
           gradients)

    for position, members in enumerate(groups := _group_positions(train, task, model)):
        plain, _ = _plain_run(train, 0.01 / 2.6 ** (len(groups) - 1 - position), initial, gradients)
        for member in members:
            np.testing.assert_allclose(variables[member].numpy() - initial[member],
                                       plain[member].numpy() - initial[member], rtol=1e-5, atol=1e-9)


def test_frozen_variables_get_no_update_weight_decay_or_average_step():
    train, task, model = _setup("train.optimizer=adamw", "train.ema_momentum=0.9", "train.gradual_unfreezing=true")
    optimizer = training.make_optimizer(train, 10, fine_tuning.optimizer_settings(train, task, model, 5))
    variables = model.trainable_variables
    optimizer.build(variables)
    frozen = fine_tuning.variable_groups(train, task, model)["embedding"]
    before = [variable.numpy() for variable in frozen]
    for variable in frozen:
        variable.trainable = False
    training_variables = [variable for variable in variables if variable.trainable]

    _apply(optimizer, training_variables, _gradients(training_variables, steps=3))

    assert optimizer.weight_decay  # AdamW decays the weights it updates, and only those
    for variable, value in zip(frozen, before):
        assert np.array_equal(variable.numpy(), value)
        average = optimizer._model_variables_moving_average[optimizer._get_variable_index(variable)]
        assert np.array_equal(average.numpy(), value), "the average of a frozen weight is the weight"


def test_a_variable_unfrozen_later_takes_adams_first_step():
    # Counted from the run's first step, Adam's bias correction would make its first steps several times
    # larger than the learning rate; counted from its own first step, it steps as a fresh Adam does.
    train, task, model = _setup("train.gradual_unfreezing=true", "train.clipnorm=null")
    variables = model.trainable_variables
    settings = fine_tuning.optimizer_settings(train, task, model, steps_per_epoch=4)
    head = fine_tuning.variable_groups(train, task, model)["head"]
    late = [id(variable) for variable in variables].index(
        id(fine_tuning.variable_groups(train, task, model)["recurrent_1"][0]))
    assert settings["first_steps"][variables[late].path] == 4 and not settings["learning_rate_multipliers"]
    optimizer = training.make_optimizer(train, 10, settings)
    optimizer.build(variables)
    _apply(optimizer, head, _gradients(head, steps=4))  # epoch 1 trains the head alone
    initial = variables[late].numpy()
    gradient = _gradients([variables[late]], steps=1, seed=1)[0]

    optimizer.apply([keras.ops.convert_to_tensor(gradient[0])], [variables[late]])

    fresh, _ = _plain_run(train, 0.01, [initial], [gradient])
    np.testing.assert_allclose(variables[late].numpy() - initial, fresh[0].numpy() - initial, rtol=1e-5)
    momentum = optimizer._momentums[optimizer._get_variable_index(variables[late])]
    assert np.any(momentum.numpy() != 0), "the unfrozen variable's slots were not updated"


def test_checkpoints_restore_the_optimizer_state(tmp_path):
    def compiled():
        train, task, model = _setup("train.discriminative_lr=2.6", "train.gradual_unfreezing=true",
                                    "train.ema_momentum=0.9")
        settings = fine_tuning.optimizer_settings(train, task, model, 3)
        model.compile(optimizer=training.make_optimizer(train, 10, settings), loss="sparse_categorical_crossentropy")
        model.optimizer.build(model.trainable_variables)
        return model

    saved = compiled()
    _apply(saved.optimizer, saved.trainable_variables, _gradients(saved.trainable_variables, steps=2))
    saved.save_weights(tmp_path / "state.weights.h5")
    restored = compiled()
    restored.load_weights(tmp_path / "state.weights.h5")
    following = _gradients(saved.trainable_variables, steps=2, seed=3)

    for model in (saved, restored):
        _apply(model.optimizer, model.trainable_variables, following)

    assert int(restored.optimizer.iterations) == 4
    for original, copy in zip(saved.optimizer.variables + saved.weights,
                              restored.optimizer.variables + restored.weights):
        assert np.array_equal(original.numpy(), copy.numpy()), original.path


def test_round_trips_through_its_config():
    train, task, model = _setup("train.optimizer=adamw", "train.discriminative_lr=2.6")
    optimizer = training.make_optimizer(train, 10, fine_tuning.optimizer_settings(train, task, model, 3))

    rebuilt = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer),
                                           custom_objects=layerwise_optimizers.CUSTOM_OBJECTS)

    assert type(rebuilt) is layerwise_optimizers.LayerwiseAdamW
    assert rebuilt.get_config() == optimizer.get_config()
    assert rebuilt.learning_rate_multipliers == optimizer.learning_rate_multipliers
    assert min(optimizer.learning_rate_multipliers.values()) == pytest.approx(2.6 ** -3)


def test_building_without_the_frozen_variables_is_refused():
    train, task, model = _setup("train.discriminative_lr=2.6")
    optimizer = training.make_optimizer(train, 10, fine_tuning.optimizer_settings(train, task, model, 3))
    head = fine_tuning.variable_groups(train, task, model)["head"]

    with pytest.raises(ValueError, match="build it with every variable that will train"):
        optimizer.build(head)
