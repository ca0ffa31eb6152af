"""SpecAugment frequency and time masking (Park et al. 2019) for training the front-end."""

from __future__ import annotations

import keras

from kerasadml._keras_compat import DataLayer, data_layer_seed_generator


@keras.saving.register_keras_serializable(package="kerasadml")
class SpecAugment(DataLayer):
    """Random frequency and time masks on ``(B, T, F)`` features; identity unless training.

    In training, each clip gets ``freq_masks`` bands of ``w ~ U{0..freq_width}`` adjacent
    mel bins and ``time_masks`` spans of ``w ~ U{0..time_width}`` adjacent frames set to
    ``mask_value`` (0 = the mean of mean-normalised log-mel features). With ``lengths``,
    time masks fall inside each clip's valid frames. No time warping.

    Randomness comes from ``keras.random`` with a ``SeedGenerator`` (seeded by ``seed``).
    Like :class:`LogMelSpectrogram` it is a Keras ``DataLayer``, so it also runs inside
    ``tf.data`` (pass ``training=True`` there).

    Args:
        freq_masks: number of frequency masks per clip.
        freq_width: largest frequency mask width (bins).
        time_masks: number of time masks per clip.
        time_width: largest time mask width (frames).
        time_width_ratio: optional; with ``lengths``, the largest time mask width of each
            clip is also at most ``floor(time_width_ratio * length)`` frames, so short
            clips get proportionally short masks (``None``: ``time_width`` for every clip).
        mask_value: value written into masked cells.
        seed: optional int seed.

    Call arguments:
        features: ``(B, T, F)`` float.
        lengths: optional ``(B,)`` int valid frame counts (keyword).
        training: masks are applied only when ``True``.

    Returns:
        ``(B, T, F)`` features, masked cells set to ``mask_value`` (training) or the
        input unchanged (inference).

    Example:

    >>> import numpy as np
    >>> aug = SpecAugment(seed=0)
    >>> x = np.ones((2, 50, 40), "float32")
    >>> bool((keras.ops.convert_to_numpy(aug(x)) == x).all())  # inference: identity
    True

    Paper: Park et al., "SpecAugment", Interspeech 2019.
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 10,
        mask_value: float = 0.0,
        seed: int | None = None,
        time_width_ratio: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if time_width_ratio is not None and not 0.0 < float(time_width_ratio) <= 1.0:
            raise ValueError(f"SpecAugment: time_width_ratio must be in (0, 1] or None, got {time_width_ratio}")
        for name, value in (
            ("freq_masks", freq_masks),
            ("freq_width", freq_width),
            ("time_masks", time_masks),
            ("time_width", time_width),
        ):
            if int(value) < 0:
                raise ValueError(f"SpecAugment: {name} must be >= 0, got {value}")
        self.freq_masks = int(freq_masks)
        self.freq_width = int(freq_width)
        self.time_masks = int(time_masks)
        self.time_width = int(time_width)
        self.mask_value = float(mask_value)
        self.time_width_ratio = None if time_width_ratio is None else float(time_width_ratio)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        # No weights to create; "built" from the start so that a model that never calls it
        # (inference) is fully built, or Keras' JAX predict_on_batch re-runs the model
        # eagerly on every call to build it.
        self.built = True

    def _band_mask(self, batch, size, limit, count, max_width, seed):
        """(B, size) bool: True inside one of ``count`` random bands per row, each of width
        ``U{0..max_width}`` (at most ``limit``) starting in ``[0, limit - width]``."""
        b = self.backend
        limit = b.cast(limit, "float32")  # (B, 1) valid extent per row
        u_w = b.random.uniform((batch, count), seed=seed)
        u_s = b.random.uniform((batch, count), seed=seed)
        width = b.numpy.minimum(b.numpy.floor(u_w * (max_width + 1)), limit)
        start = b.numpy.floor(u_s * (limit - width + 1.0))
        pos = b.cast(b.numpy.arange(size), "float32")[None, None, :]
        inside = b.numpy.logical_and(pos >= start[:, :, None], pos < (start + width)[:, :, None])
        return b.numpy.any(inside, axis=1)

    def call(self, features, lengths=None, training=None):
        if not training or (self.freq_masks == 0 and self.time_masks == 0):
            return features
        b = self.backend
        if len(features.shape) != 3:
            raise ValueError(
                f"SpecAugment expects (batch, frames, bins), got shape {tuple(features.shape)}"
            )
        seed = data_layer_seed_generator(self)
        shape = b.shape(features)
        batch, frames, bins = shape[0], shape[1], shape[2]
        masked = b.numpy.zeros((batch, frames, bins), dtype="bool")
        if self.freq_masks and self.freq_width:
            limit = b.numpy.full((batch, 1), bins, dtype="float32")
            fmask = self._band_mask(batch, bins, limit, self.freq_masks, self.freq_width, seed)
            masked = b.numpy.logical_or(masked, fmask[:, None, :])
        if self.time_masks and self.time_width:
            if lengths is None:
                limit = b.numpy.full((batch, 1), frames, dtype="float32")
            else:
                limit = b.numpy.minimum(b.cast(lengths, "float32"), b.cast(frames, "float32"))[
                    :, None
                ]
            max_width = self.time_width
            if self.time_width_ratio is not None:
                # Scaled to each clip: a mask of 10 frames can hide the one phoneme that
                # tells a keyword from its hard negative in a 50-frame clip.
                max_width = b.numpy.minimum(
                    float(self.time_width), b.numpy.floor(self.time_width_ratio * limit)
                )
            tmask = self._band_mask(batch, frames, limit, self.time_masks, max_width, seed)
            masked = b.numpy.logical_or(masked, tmask[:, :, None])
        fill = b.cast(b.convert_to_tensor(self.mask_value), features.dtype)
        return b.numpy.where(masked, fill, features)

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "freq_masks": self.freq_masks,
                "freq_width": self.freq_width,
                "time_masks": self.time_masks,
                "time_width": self.time_width,
                "time_width_ratio": self.time_width_ratio,
                "mask_value": self.mask_value,
                "seed": self.seed,
            }
        )
        return config
