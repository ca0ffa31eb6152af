"""Small frame-wise layers that respect a boolean padding mask (True = valid)."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.ops import large_negative


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


@keras.saving.register_keras_serializable(package="kerasadml")
class MaskedAttentionPooling(keras.layers.Layer):
    """Multi-head attentive pooling over time of (B, T, D), padding excluded.

    Each head ``h`` scores every valid position, ``a_th = softmax_t(x_t · q_h)`` (a learned
    query per head; padded positions get no weight), pools ``p_h = Σ_t a_th x_t``, and the
    concatenated heads are projected back to ``D``: ``Dense(D)(concat_h p_h)``. Unlike a
    plain mean, a head can put its weight on the one phoneme where two keywords differ,
    so close keywords keep distinct embeddings (docs/methods.md §1.10).

    Args:
        num_heads: number of pooling heads.

    Call arguments:
        inputs: (B, T, D).
        mask: optional (B, T) bool, True = valid.

    Returns:
        (B, D).

    Example:

    >>> import numpy as np
    >>> x = np.ones((2, 3, 4), "float32"); m = np.array([[True, True, False]] * 2)
    >>> MaskedAttentionPooling(num_heads=2)(x, mask=m).shape
    (2, 4)
    """

    def __init__(self, num_heads: int = 4, **kwargs):
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"MaskedAttentionPooling: num_heads must be >= 1, got {num_heads}")
        self.num_heads = int(num_heads)
        self.supports_masking = True
        self.score = None
        self.project = None

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.score = keras.layers.Dense(self.num_heads, name="score", dtype=self.dtype_policy)
        self.score.build(input_shape)
        self.project = keras.layers.Dense(dim, name="project", dtype=self.dtype_policy)
        self.project.build(tuple(input_shape[:1]) + (dim * self.num_heads,))

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, mask=None):
        scores = ops.cast(self.score(inputs), "float32")  # (B, T, H)
        if mask is not None:
            valid = ops.cast(mask, "bool")[..., None]
            scores = ops.where(valid, scores, large_negative(scores.dtype))
        weights = ops.softmax(scores, axis=1)
        if mask is not None:
            weights = weights * ops.cast(valid, weights.dtype)
        weights = ops.cast(weights, inputs.dtype)
        pooled = ops.einsum("bth,btd->bhd", weights, inputs)
        shape = ops.shape(pooled)
        return self.project(ops.reshape(pooled, (shape[0], shape[1] * shape[2])))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads})
        return config
