"""Monotonic matching loss L_MM: a guided-attention penalty (docs/methods.md §1.6)."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.losses.base import MetricLoss, masked_mean, validate_embeddings


def _positions_and_lengths(mask, dtype):
    """0-based positions among the valid steps (``cumsum(mask) - 1``) and true lengths."""
    as_int = ops.cast(mask, "int32")
    positions = ops.cast(ops.cumsum(as_int, axis=1) - 1, dtype)
    lengths = ops.cast(ops.sum(as_int, axis=1, keepdims=True), dtype)
    return positions, lengths


@keras.saving.register_keras_serializable(package="kerasadml")
class MonotonicAlignment(MetricLoss):
    """Guided-attention penalty that pushes a text-to-audio affinity toward its diagonal.

    **(reconstruction** of CMCD's monotonic matching loss, Shin et al. 2022, after the
    guided attention of Tachibana et al. 2018.) For pair ``b`` with true lengths
    ``Tt_b`` (phonemes) and ``Ta_b`` (frames):

    ``W_ij = 1 - exp(-(i/Tt_b - j/Ta_b)^2 / (2 g^2))``,
    ``L_b = mean over valid (i, j) of A_ij * W_ij`` (``reduction="elements"``, docs/methods.md §1.6), or
    ``L_b = mean over valid phonemes i of sum_j A_ij * W_ij`` (``reduction="rows"``): the
    expected penalty of each phoneme's attention, in [0, 1] whatever the clip length
    (the element mean shrinks as ``1/Ta``, so its gradient vanishes on long clips),

    with ``i``, ``j`` 0-based positions counted among the valid steps (for the usual
    right-padded masks, the plain indices). Padding never changes the result; a pair
    with no valid entry gets 0.

    Args:
        g: width of the diagonal band (default 0.2).
        reduction: ``"elements"`` (mean over all valid cells) or ``"rows"`` (mean over
            valid phonemes of the row sums).

    Call arguments:
        affinity: (B, Tt, Ta) attention weights (text queries audio).
        text_mask: optional (B, Tt) bool, True = valid phoneme.
        audio_mask: optional (B, Ta) bool, True = valid frame.

    Returns:
        (B,) per-pair penalties.

    Example:

    >>> import numpy as np
    >>> loss = MonotonicAlignment()
    >>> diagonal = np.eye(4, dtype="float32")[None]
    >>> anti = diagonal[:, ::-1]
    >>> bool(loss(diagonal)[0] < loss(anti)[0])
    True

    Paper: Shin et al., "Learning Audio-Text Agreement for Open-vocabulary Keyword
    Spotting" (CMCD), Interspeech 2022; used as ``L_MM`` in ADML (arXiv 2505.16735).
    """

    def __init__(self, g: float = 0.2, reduction: str = "elements", **kwargs):
        super().__init__(**kwargs)
        if g <= 0:
            raise ValueError(f"MonotonicAlignment: g must be > 0, got {g}")
        if reduction not in ("elements", "rows"):
            raise ValueError(f"MonotonicAlignment: reduction must be 'elements' or 'rows', got {reduction!r}")
        self.g = float(g)
        self.reduction = reduction
        self.built = True

    def guide_weights(self, text_mask, audio_mask, dtype="float32"):
        """(B, Tt, Ta) penalty weights ``W`` from the two masks."""
        i, tt = _positions_and_lengths(text_mask, dtype)
        j, ta = _positions_and_lengths(audio_mask, dtype)
        i_frac = i / ops.maximum(tt, 1.0)
        j_frac = j / ops.maximum(ta, 1.0)
        diff = ops.expand_dims(i_frac, 2) - ops.expand_dims(j_frac, 1)
        return 1.0 - ops.exp(-ops.square(diff) / (2.0 * self.g**2))

    def call(self, affinity, text_mask=None, audio_mask=None):
        validate_embeddings("affinity", affinity, rank=3)
        affinity = ops.convert_to_tensor(affinity)
        shape = ops.shape(affinity)
        if text_mask is None:
            text_mask = ops.ones(shape[:2], dtype="bool")
        if audio_mask is None:
            audio_mask = ops.ones((shape[0], shape[2]), dtype="bool")
        text_mask = ops.cast(text_mask, "bool")
        audio_mask = ops.cast(audio_mask, "bool")
        weights = ops.cast(self.guide_weights(text_mask, audio_mask), affinity.dtype)
        valid = ops.logical_and(ops.expand_dims(text_mask, 2), ops.expand_dims(audio_mask, 1))
        if self.reduction == "rows":
            cells = affinity * weights * ops.cast(valid, affinity.dtype)
            return masked_mean(ops.sum(cells, axis=2), text_mask, axis=1)
        return masked_mean(affinity * weights, valid, axis=(1, 2))

    def get_config(self):
        config = super().get_config()
        config.update({"g": self.g, "reduction": self.reduction})
        return config
