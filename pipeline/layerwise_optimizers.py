"""Keras optimizers whose learning rate and training start differ per variable (discriminative fine-tuning).

Keras 3 optimizers apply one learning rate to every variable, and scaling a variable's gradient instead would
not scale Adam's or RMSprop's step (they divide the gradient by its own running size). `LayerwiseOptimizer`
multiplies the learning rate that `update_step` receives, and AdamW's decoupled weight decay, by a factor per
variable, keyed by the variable's path. It also keeps variables that are frozen for a while (gradual
unfreezing) exactly as they are, their moving average included, and counts Adam's bias correction from a
variable's first trained step, as if its moments had started then: counted from the run's first step
instead, a layer unfrozen late would take steps several times larger than the learning rate.

Everything it adds is a constructor argument (a plain mapping in `get_config`), and it has no variables of
its own: its checkpoints hold what the plain optimizer's hold.
"""

import keras
from keras import ops


class LayerwiseOptimizer:
    """Mixin placed before a Keras optimizer class: per-variable learning-rate multipliers and training starts.

    Args:
        learning_rate_multipliers: Variable path -> factor its learning rate (and weight decay) is
            multiplied by; variables not named keep the optimizer's learning rate.
        first_steps: Variable path -> optimizer steps taken before the variable first trains (0 for
            variables not named); Adam's bias correction counts the variable's steps from there.
        *args, **kwargs: The Keras optimizer's arguments.
    """

    def __init__(self, *args, learning_rate_multipliers=None, first_steps=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Tuples: Keras would wrap a dict attribute in a tracked structure.
        self._multiplier_items = tuple(sorted(dict(learning_rate_multipliers or {}).items()))
        self._first_step_items = tuple(sorted(dict(first_steps or {}).items()))
        self._multiplier_by_index = ()
        self._first_step_by_index = ()

    @property
    def learning_rate_multipliers(self) -> dict:
        return dict(self._multiplier_items)

    @property
    def first_steps(self) -> dict:
        return dict(self._first_step_items)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        paths = [variable.path for variable in variables]
        unknown = sorted((set(self.learning_rate_multipliers) | set(self.first_steps)) - set(paths))
        if unknown:
            raise ValueError(f"{type(self).__name__}: no variable at {unknown[:3]} among the {len(paths)} it "
                             "is built for; build it with every variable that will train (frozen ones included)")
        self._multiplier_by_index = tuple(self.learning_rate_multipliers.get(path, 1.0) for path in paths)
        self._first_step_by_index = tuple(self.first_steps.get(path, 0) for path in paths)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        multiplier = self._multiplier_by_index[index]
        if multiplier != 1.0:
            learning_rate = learning_rate * multiplier
        first_step = self._first_step_by_index[index]
        if first_step and isinstance(self, keras.optimizers.Adam):
            learning_rate = learning_rate * self._bias_correction_ratio(first_step, variable.dtype)
        return super().update_step(gradient, variable, learning_rate)

    def _bias_correction_ratio(self, first_step: int, dtype):
        """Adam's bias correction at the variable's own step over the one at the run's step."""
        run_step = ops.cast(self.iterations + 1, dtype)
        own_step = ops.maximum(run_step - first_step, 1.0)

        def correction(step):
            return (ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step))
                    / (1 - ops.power(ops.cast(self.beta_1, dtype), step)))

        return correction(own_step) / correction(run_step)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not self._multiplier_items:
            return super()._apply_weight_decay(variables)
        by_multiplier = {}
        for variable in variables:
            multiplier = self._multiplier_by_index[self._get_variable_index(variable)]
            by_multiplier.setdefault(multiplier, []).append(variable)
        weight_decay = self.weight_decay
        try:
            for multiplier, subset in by_multiplier.items():
                self.weight_decay = weight_decay * multiplier
                super()._apply_weight_decay(subset)
        finally:
            self.weight_decay = weight_decay

    def _update_model_variables_moving_average(self, trainable_variables):
        super()._update_model_variables_moving_average(trainable_variables)
        if not self.use_ema:
            return
        # A frozen variable's average is the variable itself: swapping averages into the model (and back)
        # then leaves it bit for bit as it is, and its average starts from its value once it trains.
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None and not variable.trainable:
                average.assign(variable)

    def get_config(self) -> dict:
        return {**super().get_config(), "learning_rate_multipliers": self.learning_rate_multipliers,
                "first_steps": self.first_steps}


class LayerwiseAdam(LayerwiseOptimizer, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with per-variable learning-rate multipliers and training starts."""


class LayerwiseAdamW(LayerwiseOptimizer, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with per-variable learning-rate (and weight decay) multipliers and training starts."""


class LayerwiseRMSprop(LayerwiseOptimizer, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with per-variable learning-rate multipliers."""


class LayerwiseSGD(LayerwiseOptimizer, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with per-variable learning-rate multipliers."""


# By `train.optimizer`.
OPTIMIZERS = {
    "adam": LayerwiseAdam,
    "adamw": LayerwiseAdamW,
    "rmsprop": LayerwiseRMSprop,
    "sgd": LayerwiseSGD,
}

# What `keras.optimizers.deserialize` needs to rebuild them.
CUSTOM_OBJECTS = {optimizer.__name__: optimizer for optimizer in OPTIMIZERS.values()}
