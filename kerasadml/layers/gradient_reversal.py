"""Gradient reversal (Ganin & Lempitsky 2015), used by ADML's modality adversarial learning."""

from __future__ import annotations

import keras
from keras import ops


def dann_lambda(progress):
    """The DANN schedule ``2 / (1 + exp(-10 p)) - 1`` for training progress ``p`` in [0, 1]."""
    progress = ops.clip(ops.convert_to_tensor(progress, "float32"), 0.0, 1.0)
    return 2.0 / (1.0 + ops.exp(-10.0 * progress)) - 1.0


@keras.saving.register_keras_serializable(package="kerasadml")
class GradientReversal(keras.layers.Layer):
    """Identity in the forward pass, gradient multiplied by ``-lambda`` backward.

    Backend-agnostic form: ``y = stop_gradient(x) + (-lambda) * (x - stop_gradient(x))``;
    the forward value is exactly ``x`` (the second term is exactly zero), and the
    gradient reaching ``x`` is ``-lambda`` times the upstream gradient, on every backend.

    ``lambda`` lives in a non-trainable variable (``scale``), so a callback can change it
    during training without recompiling (see ``kerasadml.callbacks``). With
    ``schedule_steps`` set, the layer also counts its training calls and multiplies
    ``scale`` by the DANN ramp ``2/(1+exp(-10 p)) - 1`` with ``p = step / schedule_steps``,
    all inside the compiled step (works under ``jit`` on every backend).

    Args:
        lambda_: the reversal strength (``lambda`` of docs/methods.md §1.8.1). ``0`` blocks the
            gradient; negative values are rejected.
        schedule_steps: if given, the number of training steps of the DANN ramp.

    Call arguments:
        inputs: any float tensor.
        training: whether the call is a training step (advances the schedule).

    Example:

    >>> import numpy as np
    >>> layer = GradientReversal(lambda_=0.5)
    >>> x = np.ones((2, 3), "float32")
    >>> bool((keras.ops.convert_to_numpy(layer(x)) == x).all())
    True

    Paper: Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", 2015;
    used for modality adversarial learning in ADML (arXiv 2505.16735).
    """

    def __init__(self, lambda_: float = 1.0, schedule_steps: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if lambda_ < 0:
            raise ValueError(f"GradientReversal: lambda_ must be >= 0, got {lambda_}")
        if schedule_steps is not None and int(schedule_steps) <= 0:
            raise ValueError(
                f"GradientReversal: schedule_steps must be a positive int or None, got {schedule_steps}"
            )
        self.lambda_ = float(lambda_)
        self.schedule_steps = None if schedule_steps is None else int(schedule_steps)
        self.supports_masking = True
        self.scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.lambda_),
            trainable=False,
            name="scale",
            dtype="float32",
        )
        self.step = None
        if self.schedule_steps is not None:
            self.step = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="step", dtype="float32"
            )

    def current_lambda(self):
        """The reversal strength the next call will use (a scalar tensor)."""
        if self.step is None:
            return ops.convert_to_tensor(self.scale)
        return self.scale * dann_lambda(self.step / float(self.schedule_steps))

    def call(self, inputs, training=None):
        lam = self.current_lambda()
        if training and self.step is not None:
            self.step.assign_add(1.0)
        lam = ops.cast(lam, inputs.dtype)
        frozen = ops.stop_gradient(inputs)
        return frozen + (-lam) * (inputs - frozen)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"lambda_": self.lambda_, "schedule_steps": self.schedule_steps})
        return config
