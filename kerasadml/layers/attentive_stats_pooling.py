"""Attentive statistics pooling with global context (ECAPA-TDNN; "CCSP" of docs/methods.md §1.1.3)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kerasadml.ops import concrete_value, large_negative


@keras.saving.register_keras_serializable(package="kerasadml")
class AttentiveStatsPooling(keras.layers.Layer):
    """Channel- and context-dependent attentive statistics pooling (ECAPA-TDNN).

    For frames ``h_t`` with ``C`` channels (valid frames only)::

        g_t     = [h_t ; mean_t h ; std_t h]                 (3C; h_t alone without global context)
        e_t     = W2 tanh(BN(ReLU(W1 g_t)))                   W1: 3C -> attention_channels, W2: -> C
        alpha_t = softmax_t(e_t)                              per channel, over the valid frames
        mu      = sum_t alpha_t h_t
        sigma   = sqrt(max(sum_t alpha_t (h_t - mu)^2, epsilon))   (= sum alpha h^2 - mu^2)
        output  = [mu ; sigma]                                (B, 2C)

    ``W1`` and ``W2`` are ``Dense`` layers on the channel axis (a ``Conv1D`` with kernel 1);
    ``W1`` has a bias, ``W2`` has a bias, as in SpeechBrain's ECAPA. The global standard
    deviation uses the same ``sqrt(max(var, epsilon))``, so a constant input has finite
    gradients.

    Masking (``mask`` True = valid frame): padded frames get zero attention weight, do not
    enter the global mean/std, and are excluded from the batch statistics of the
    ``BatchNormalization`` in training (its ``mask`` argument). Appending padded frames
    therefore changes nothing, in inference and in training. The values stored in padded
    frames are never read (they may even be NaN). The layer consumes the mask: its output
    has none.

    A sample whose mask is all False has no frame to pool. If the mask's value is known at
    call time (an eager call), this raises ``ValueError``; inside a traced function
    (``fit``, ``predict``, ``jit``) it cannot be seen, and such a sample gives the finite
    output ``[0 ; sqrt(epsilon)]``.

    Args:
        attention_channels: width of the attention bottleneck (``W1``'s output; 128 in
            ECAPA-TDNN).
        global_context: whether the attention sees the utterance mean and std next to each
            frame (ECAPA's "context-dependent" variant). ``False`` gives channel-dependent
            attentive statistics pooling with ``g_t = h_t``.
        epsilon: floor of the variances under the square roots.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: float tensor (B, T, C) of frame features.
        mask: optional bool tensor (B, T), True = valid frame. Taken from the Keras mask of
            ``inputs`` when not given.
        training: whether the BatchNormalization uses (and updates) batch statistics.

    Returns:
        (B, 2C): the attentive mean and standard deviation, concatenated.

    Example:

    >>> import numpy as np
    >>> pool = AttentiveStatsPooling(attention_channels=16)
    >>> frames = np.random.rand(2, 50, 8).astype("float32")
    >>> mask = np.arange(50)[None, :] < np.array([[50], [30]])
    >>> tuple(pool(frames, mask=mask).shape)
    (2, 16)

    Paper: Desplanques et al., "ECAPA-TDNN: Emphasized Channel Attention, Propagation and
    Aggregation in TDNN Based Speaker Verification", Interspeech 2020 (section 2.3, after
    Okabe et al. 2018's attentive statistics pooling); the acoustic encoder of ADML
    (arXiv 2505.16735).
    """

    def __init__(
        self,
        attention_channels: int = 128,
        global_context: bool = True,
        epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(attention_channels) <= 0:
            raise ValueError(
                f"AttentiveStatsPooling: attention_channels must be a positive int, got {attention_channels}"
            )
        if not float(epsilon) > 0.0:
            raise ValueError(f"AttentiveStatsPooling: epsilon must be > 0, got {epsilon}")
        self.attention_channels = int(attention_channels)
        self.global_context = bool(global_context)
        self.epsilon = float(epsilon)
        self.supports_masking = True
        self.attention_dense = keras.layers.Dense(
            self.attention_channels, name="attention_dense", dtype=self.dtype_policy
        )
        self.attention_norm = keras.layers.BatchNormalization(
            name="attention_norm", dtype=self.dtype_policy
        )
        self.channels = None
        self.score_dense = None

    @staticmethod
    def _check_rank(input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                "AttentiveStatsPooling: inputs must have rank 3 (batch, time, channels), "
                f"got shape {input_shape}"
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"AttentiveStatsPooling: the channel size of inputs must be known, got shape {input_shape}"
            )

    def build(self, input_shape):
        self._check_rank(input_shape)
        channels = int(input_shape[-1])
        self.channels = channels
        in_width = 3 * channels if self.global_context else channels
        batch_time = tuple(input_shape[:2])
        self.attention_dense.build(batch_time + (in_width,))
        self.attention_norm.build(batch_time + (self.attention_channels,))
        self.score_dense = keras.layers.Dense(channels, name="score_dense", dtype=self.dtype_policy)
        self.score_dense.build(batch_time + (self.attention_channels,))

    def _masked_std(self, x, weights, mean):
        """sqrt(max(sum_t w_t (x_t - mean)^2, eps)) over axis 1; ``weights`` (B, T, 1 or C)."""
        var = ops.sum(weights * ops.square(x - mean[:, None, :]), axis=1)
        return ops.sqrt(ops.maximum(var, ops.cast(self.epsilon, var.dtype)))

    def call(self, inputs, mask=None, training=None):
        self._check_rank(inputs.shape)
        if mask is not None:
            mask_shape = tuple(mask.shape)
            if len(mask_shape) != 2 or any(
                m is not None and d is not None and m != d
                for m, d in zip(mask_shape, tuple(inputs.shape)[:2])
            ):
                raise ValueError(
                    "AttentiveStatsPooling: mask must have shape (batch, time) of inputs, got "
                    f"mask.shape={mask_shape} and inputs.shape={tuple(inputs.shape)}"
                )
            value = concrete_value(mask)
            if value is not None and value.size and not np.all(np.any(value, axis=1)):
                empty = np.flatnonzero(~np.any(value, axis=1)).tolist()
                raise ValueError(
                    "AttentiveStatsPooling: mask has no valid frame for sample(s) "
                    f"{empty}; every sample needs at least one frame (mask.shape={mask_shape})"
                )
            mask = ops.cast(mask, "bool")
            valid = mask[:, :, None]
            x = ops.where(valid, inputs, ops.zeros_like(inputs))  # padded values never read
            frame_w = ops.cast(valid, x.dtype)
        else:
            x = inputs
            frame_w = ops.ones_like(x[:, :, :1])

        if self.global_context:
            count = ops.maximum(ops.sum(frame_w, axis=1), ops.cast(1.0, x.dtype))  # (B, 1)
            uniform = frame_w / count[:, None, :]
            mean = ops.sum(uniform * x, axis=1)  # (B, C)
            std = self._masked_std(x, uniform, mean)
            shape = ops.shape(x)
            context = ops.concatenate(
                [
                    x,
                    ops.broadcast_to(mean[:, None, :], shape),
                    ops.broadcast_to(std[:, None, :], shape),
                ],
                axis=-1,
            )
        else:
            context = x

        hidden = ops.relu(self.attention_dense(context))
        hidden = self.attention_norm(hidden, training=training, mask=mask)
        logits = self.score_dense(ops.tanh(hidden))  # (B, T, C)
        if keras.backend.standardize_dtype(logits.dtype) in ("float16", "bfloat16"):
            logits = ops.cast(logits, "float32")  # softmax in float32 under mixed precision
        if mask is not None:
            logits = ops.where(valid, logits, large_negative(logits.dtype))
        alpha = ops.cast(ops.softmax(logits, axis=1), x.dtype)
        if mask is not None:
            alpha = alpha * frame_w  # an all-padding sample: zero weights, not uniform

        mu = ops.sum(alpha * x, axis=1)
        sigma = self._masked_std(x, alpha, mu)
        return ops.concatenate([mu, sigma], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        self._check_rank(input_shape)
        return (input_shape[0], 2 * input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention_channels": self.attention_channels,
                "global_context": self.global_context,
                "epsilon": self.epsilon,
            }
        )
        return config
