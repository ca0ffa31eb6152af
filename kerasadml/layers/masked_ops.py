"""Small frame-wise layers that respect a boolean padding mask (True = valid)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasadml")
class PaddingMask(keras.layers.Layer):
    """``ids != padding_id`` for integer token ids (B, T) -> bool (B, T).

    Args:
        padding_id: the id used for padding (0).

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(PaddingMask()(np.array([[3, 0]]))).tolist()
    [[True, False]]
    """

    def __init__(self, padding_id: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.padding_id = int(padding_id)

    def call(self, inputs):
        return ops.not_equal(inputs, self.padding_id)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="bool")

    def get_config(self):
        config = super().get_config()
        config["padding_id"] = self.padding_id
        return config


@keras.saving.register_keras_serializable(package="kerasadml")
class MaskedDense(keras.layers.Layer):
    """A frame-wise Dense (a k=1 convolution) whose padded frames are exactly zero.

    Args:
        units: output width.

    Call arguments:
        inputs: (B, T, C); mask: optional (B, T) bool.

    Example:

    >>> import numpy as np
    >>> MaskedDense(4)(np.zeros((1, 3, 2), "float32")).shape
    (1, 3, 4)
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.supports_masking = True
        self.dense = keras.layers.Dense(self.units, name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs, mask=None):
        x = self.dense(inputs)
        if mask is not None:
            x = x * ops.cast(mask, x.dtype)[..., None]
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config



@keras.saving.register_keras_serializable(package="kerasadml")
class MaskedAveragePooling(keras.layers.Layer):
    """Mean over time of (B, T, D) counting only positions where ``mask`` is True.

    Example:

    >>> import numpy as np
    >>> x = np.ones((1, 3, 2), "float32"); m = np.array([[True, True, False]])
    >>> keras.ops.convert_to_numpy(MaskedAveragePooling()(x, mask=m)).tolist()
    [[1.0, 1.0]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None  # the time axis is pooled away

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        m = ops.cast(mask, inputs.dtype)[..., None]
        return ops.sum(inputs * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
