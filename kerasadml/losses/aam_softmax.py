"""Additive angular margin softmax (ArcFace), the ablation alternative to SphereFace2
as ADML's keyword loss (docs/methods.md §1.7.2)."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasadml.losses.cosine_classifier import CosineClassifierLoss


@keras.saving.register_keras_serializable(package="kerasadml")
class AAMSoftmax(CosineClassifierLoss):
    """AAM-softmax (ArcFace): softmax cross-entropy with an additive angular margin.

    With ``cos_i = cos(e, w_i)`` and ``theta_y`` the angle to the target class,

        logit_y = s * cos(theta_y + m),   logit_i = s * cos_i  (i != y)
        loss = logsumexp_i(logit_i) - logit_y

    ``cos(theta + m) = cos * cos(m) - sin * sin(m)``. Where ``theta_y + m`` would pass
    ``pi`` (``cos_y <= cos(pi - m)``), the insightface fallback ``cos_y - m sin(m)`` keeps
    the logit monotonic; with ``easy_margin`` the margin is only applied where
    ``cos_y > 0``.

    Args:
        num_classes: number of classes C (>= 2).
        scale: ``s``, the logit scale.
        margin: ``m``, the angular margin in radians.
        easy_margin: apply the margin only where ``cos_y > 0``.
        kernel_initializer: initialiser of the (D, C) class weights.

    Call arguments:
        embeddings: (B, D) float.
        labels: (B,) or (B, 1) int class ids in ``[0, C)``; out-of-range labels raise
            ``ValueError`` when concrete and are clipped inside ``jit``.
        mask: optional (B,) bool; masked samples get a loss of exactly 0.

    Returns:
        (B,) per-sample cross-entropies.

    Example:

    >>> import numpy as np
    >>> loss = AAMSoftmax(num_classes=5)
    >>> values = loss(np.random.randn(4, 8).astype("float32"), np.array([0, 1, 2, 4]))
    >>> tuple(values.shape)
    (4,)

    Paper: Deng, Guo, Xue, Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep
    Face Recognition", CVPR 2019.
    """

    def __init__(
        self,
        num_classes: int,
        scale: float = 30.0,
        margin: float = 0.2,
        easy_margin: bool = False,
        kernel_initializer="glorot_normal",
        **kwargs,
    ):
        super().__init__(num_classes, scale, margin, kernel_initializer, **kwargs)
        if scale <= 0 or not 0.0 <= margin < math.pi / 2:
            raise ValueError(
                f"AAMSoftmax: need scale > 0 and 0 <= margin < pi/2, got scale={scale}, margin={margin}"
            )
        self.easy_margin = bool(easy_margin)

    def logits(self, embeddings):
        """(B, C) margin-free logits ``s * cos`` (for prediction)."""
        return self.scale * self.cosine(embeddings)

    def call(self, embeddings, labels, mask=None):
        labels = self.class_ids(labels, mask)
        cos = self.cosine(embeddings)
        onehot = ops.one_hot(labels, self.num_classes, dtype=cos.dtype)
        sin = ops.sqrt(ops.maximum(1.0 - ops.square(cos), 1e-12))
        phi = cos * math.cos(self.margin) - sin * math.sin(self.margin)
        if self.easy_margin:
            phi = ops.where(cos > 0.0, phi, cos)
        else:
            threshold = math.cos(math.pi - self.margin)
            phi = ops.where(
                cos > threshold, phi, cos - math.sin(math.pi - self.margin) * self.margin
            )
        logits = self.scale * ops.where(onehot > 0, phi, cos)
        target = ops.sum(logits * onehot, axis=-1)
        loss = ops.logsumexp(logits, axis=-1) - target
        return self.mask_loss(loss, mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "easy_margin": self.easy_margin,
            }
        )
        return config
