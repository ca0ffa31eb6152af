"""Building blocks of the ECAPA-TDNN acoustic encoder (Desplanques et al. 2020)."""

from __future__ import annotations

import keras
from keras import ops


def _apply_mask(x, mask):
    if mask is None:
        return x
    return x * ops.cast(mask, x.dtype)[..., None]


def masked_time_mean(x, mask):
    """Mean over axis 1 of ``x`` (B, T, C) counting only frames where ``mask`` is True."""
    if mask is None:
        return ops.mean(x, axis=1)
    m = ops.cast(mask, x.dtype)[..., None]
    return ops.sum(x * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="kerasadml")
class TDNNBlock(keras.layers.Layer):
    """Conv1D -> ReLU -> BatchNorm over time (statistics of the valid frames), re-zeroing padded frames.

    Args:
        filters: output channels.
        kernel_size: temporal kernel width.
        dilation_rate: temporal dilation.

    Call arguments:
        inputs: (B, T, C_in) frames.
        mask: optional (B, T) bool, True = valid frame.
        training: whether BatchNorm uses batch statistics.

    Returns:
        (B, T, filters); padded frames are exactly zero.

    Example:

    >>> import numpy as np
    >>> TDNNBlock(8, 3)(np.zeros((2, 10, 4), "float32")).shape
    (2, 10, 8)
    """

    def __init__(self, filters: int, kernel_size: int = 1, dilation_rate: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.supports_masking = True
        self.conv = keras.layers.Conv1D(
            self.filters, self.kernel_size, dilation_rate=self.dilation_rate, padding="same", name="conv"
        )
        self.norm = keras.layers.BatchNormalization(name="bn")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, inputs, mask=None, training=None):
        x = _apply_mask(inputs, mask)
        # BatchNorm statistics over the valid frames only: padding would drag the batch
        # mean toward 0 and change with the batch's length mix (docs/methods.md §1.1.2).
        x = self.norm(ops.relu(self.conv(x)), training=training, mask=mask)
        return _apply_mask(x, mask)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"filters": self.filters, "kernel_size": self.kernel_size, "dilation_rate": self.dilation_rate}
        )
        return config


@keras.saving.register_keras_serializable(package="kerasadml")
class SERes2Block(keras.layers.Layer):
    """SE-Res2Block of ECAPA-TDNN: TDNN(k=1) -> Res2Net dilated convs -> TDNN(k=1) -> SE, + residual.

    The Res2Net part splits the channels into ``scale`` groups; group 0 passes through,
    group ``i`` is ``conv_i(x_i + y_{i-1})`` (``conv_1(x_1)`` for the first), as in the
    SpeechBrain and TaoRuijie implementations. The squeeze-excitation takes a masked mean
    over time, so padding changes nothing.

    Args:
        channels: width ``C`` (divisible by ``scale``).
        kernel_size: Res2Net kernel width (3 in the paper).
        dilation_rate: Res2Net dilation (2, 3, 4 for the three blocks).
        scale: Res2Net scale (8).
        se_channels: squeeze-excitation bottleneck (128).

    Call arguments:
        inputs: (B, T, C); mask: optional (B, T) bool; training: BatchNorm mode.

    Returns:
        (B, T, C).

    Example:

    >>> import numpy as np
    >>> SERes2Block(16, dilation_rate=2, scale=4, se_channels=8)(np.zeros((1, 20, 16), "float32")).shape
    (1, 20, 16)

    Paper: Desplanques, Thienpondt, Demuynck, "ECAPA-TDNN", Interspeech 2020.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation_rate: int = 2,
        scale: int = 8,
        se_channels: int = 128,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if channels % scale:
            raise ValueError(f"SERes2Block: channels={channels} must be divisible by scale={scale}")
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.scale = int(scale)
        self.se_channels = int(se_channels)
        self.supports_masking = True
        width = self.channels // self.scale
        self.tdnn_in = TDNNBlock(self.channels, 1, name="tdnn_in")
        self.res2 = [
            TDNNBlock(width, self.kernel_size, self.dilation_rate, name=f"res2_{i}")
            for i in range(self.scale - 1)
        ]
        self.tdnn_out = TDNNBlock(self.channels, 1, name="tdnn_out")
        self.se_squeeze = keras.layers.Dense(self.se_channels, activation="relu", name="se_squeeze")
        self.se_excite = keras.layers.Dense(self.channels, activation="sigmoid", name="se_excite")

    def build(self, input_shape):
        if input_shape[-1] != self.channels:
            raise ValueError(
                f"SERes2Block: input width {input_shape[-1]} must equal channels={self.channels}"
            )
        width = self.channels // self.scale
        self.tdnn_in.build(input_shape)
        for block in self.res2:
            block.build(tuple(input_shape[:-1]) + (width,))
        self.tdnn_out.build(input_shape)
        self.se_squeeze.build((input_shape[0], self.channels))
        self.se_excite.build((input_shape[0], self.se_channels))

    def call(self, inputs, mask=None, training=None):
        x = self.tdnn_in(inputs, mask=mask, training=training)
        chunks = ops.split(x, self.scale, axis=-1)
        outputs = [chunks[0]]
        previous = None
        for i, block in enumerate(self.res2, start=1):
            part = chunks[i] if previous is None else chunks[i] + previous
            previous = block(part, mask=mask, training=training)
            outputs.append(previous)
        x = self.tdnn_out(ops.concatenate(outputs, axis=-1), mask=mask, training=training)
        weights = self.se_excite(self.se_squeeze(masked_time_mean(x, mask)))
        return _apply_mask(x * weights[:, None, :] + inputs, mask)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "scale": self.scale,
                "se_channels": self.se_channels,
            }
        )
        return config
