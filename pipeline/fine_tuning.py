"""ULMFiT fine-tuning (Howard & Ruder 2018) over the task's layer groups: discriminative learning rates
(`train.discriminative_lr`) and gradual unfreezing (`train.gradual_unfreezing`).

The task names its model's layer groups, bottom to top (`Task.layer_groups`); here they become groups of
variables. Discriminative learning rates are learning-rate multipliers per variable in a
`layerwise_optimizers` optimizer. Gradual unfreezing is a callback that sets which variables train at the
start of every epoch, as a function of the epoch number alone, so a resumed run trains what the
uninterrupted run trained in that epoch.
"""

import logging
import typing

import keras

from pipeline import config as config_lib
from pipeline import tasks as tasks_lib

logger = logging.getLogger(__name__)

VariableGroups = dict[str, list]


def variable_groups(train: config_lib.TrainConfig, task: tasks_lib.Task, model: keras.Model) -> VariableGroups:
    """The model's trainable variables by layer group, bottom to top (group name -> variables).

    Variables frozen by the model itself (not trainable now) belong to no group and stay frozen.

    Raises:
        ConfigError: The task has no layer groups.
        ValueError: A trainable variable is in no group, or in two.
    """
    layer_groups = task.layer_groups(model)
    if layer_groups is None:
        raise config_lib.ConfigError(f"{train.layer_group_keys()[0]}: the {task.config.task} task has no layer "
                                     "groups to fine-tune (its layer_groups returns None); leave it unset")
    groups: VariableGroups = {}
    owner: dict[int, str] = {}
    for name, layers in layer_groups.items():
        groups[name] = []
        for variable in (variable for layer in layers for variable in layer.trainable_weights):
            if owner.get(id(variable), name) != name:
                raise ValueError(f"layer groups: {variable.path} is in both {owner[id(variable)]!r} and {name!r}")
            if id(variable) not in owner:
                owner[id(variable)] = name
                groups[name].append(variable)
    ungrouped = [variable.path for variable in model.trainable_weights if id(variable) not in owner]
    if ungrouped:
        raise ValueError(f"layer groups: {ungrouped} of {model.name} are in no group of {list(groups)}")
    return groups


def optimizer_settings(train: config_lib.TrainConfig, task: tasks_lib.Task, model: keras.Model,
                       steps_per_epoch: int) -> typing.Optional[dict]:
    """Keyword arguments of a `layerwise_optimizers` optimizer for these settings; None when both are off.

    Args:
        train: The run's train block.
        task: The run's task (its `layer_groups`).
        model: The model, built and not yet frozen.
        steps_per_epoch: Training steps per epoch: a group unfrozen at epoch e first trains after
            `(e - 1) * steps_per_epoch` steps.

    Returns:
        `learning_rate_multipliers` (variable path -> `1 / discriminative_lr**k` for a group k from the top)
        and `first_steps` (variable path -> steps before it first trains).
    """
    if not train.layer_group_keys():
        return None
    groups = list(variable_groups(train, task, model).values())
    multipliers, first_steps = {}, {}
    for position, variables in enumerate(groups):
        from_top = len(groups) - 1 - position
        for variable in variables:
            if train.discriminative_lr is not None and from_top:
                multipliers[variable.path] = train.discriminative_lr ** -from_top
            if train.gradual_unfreezing and from_top:
                first_steps[variable.path] = from_top * steps_per_epoch
    return {"learning_rate_multipliers": multipliers, "first_steps": first_steps}


def callbacks(train: config_lib.TrainConfig, task: tasks_lib.Task, model: keras.Model) -> list:
    """The callbacks of these settings: `GradualUnfreezing` when `train.gradual_unfreezing` is on."""
    return [GradualUnfreezing(variable_groups(train, task, model))] if train.gradual_unfreezing else []


def trained_group_count(epoch: int, group_count: int) -> int:
    """How many groups, counted from the top, epoch `epoch` (0-based) trains under gradual unfreezing."""
    return min(epoch + 1, group_count)


class GradualUnfreezing(keras.callbacks.Callback):
    """Trains the top layer group in the first epoch, the top two in the second, ..., then every group.

    The trainable set of an epoch depends on its number alone, also when `fit` starts at a later epoch
    (a resumed run). Frozen variables get no gradient, hence no update, weight decay or moving-average step
    (see `layerwise_optimizers`); the optimizer is built for every variable before anything is frozen, so
    that each has its slots when it starts training. When training ends every group is trainable again.

    Args:
        groups: Group name -> the variables it trains, bottom to top (`variable_groups`).
    """

    def __init__(self, groups: VariableGroups):
        super().__init__()
        self.groups = groups
        self.trained_count: typing.Optional[int] = None

    def on_train_begin(self, logs=None):
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.trained_count = None

    def on_epoch_begin(self, epoch, logs=None):
        count = trained_group_count(epoch, len(self.groups))
        if count == self.trained_count:
            return
        self._set_trainable(count)
        names = list(self.groups)
        frozen = ", ".join(names[:len(names) - count]) or "none"
        logger.info("epoch %d trains layer group(s) %s (frozen: %s)", epoch + 1,
                    ", ".join(names[len(names) - count:]), frozen)

    def on_train_end(self, logs=None):
        self._set_trainable(len(self.groups))

    def _set_trainable(self, count: int) -> None:
        for position, variables in enumerate(self.groups.values()):
            for variable in variables:
                variable.trainable = position >= len(self.groups) - count
        # `fit` calls `model.train_function` at every step; the one traced before kept the old trainable set.
        self.model.make_train_function(force=True)
        self.trained_count = count
