"""SphereFace2 (Wen et al. 2022): C binary one-vs-all classifiers with angular margins,
ADML's keyword classification loss (docs/methods.md §1.7.1)."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasadml.losses.cosine_classifier import CosineClassifierLoss


def sphereface2_bias_init(
    num_classes: int, scale: float, margin: float, lambda_: float, t: float
) -> float:
    """OpenSphere's closed-form initial bias of SphereFace2 (docs/methods.md §1.7.1)."""
    z = lambda_ / ((1.0 - lambda_) * (num_classes - 1.0))
    a_y = scale * (2.0 * 0.5**t - 1.0 - margin)
    a_i = scale * (2.0 * 0.5**t - 1.0 + margin)
    return (
        math.log(2.0 * z)
        - a_i
        - math.log(1.0 - z + math.sqrt((1.0 - z) ** 2 + 4.0 * z * math.exp(a_y - a_i)))
    )


@keras.saving.register_keras_serializable(package="kerasadml")
class SphereFace2(CosineClassifierLoss):
    """SphereFace2: one binary classifier per class, with margin and a shared bias.

    With ``cos_i = cos(e, w_i)`` (embedding and class weight both L2-normalised),
    ``g(c) = 2((c + 1)/2)^t - 1`` and ``y`` the label, the logits and the per-sample loss
    are

        s_i = r * (g(cos_i) - m * (2 [i = y] - 1)) + b
        loss = (lw / r) * (lambda * softplus(-s_y) + (1 - lambda) * sum_{i != y} softplus(s_i))

    This equals OpenSphere's binary cross-entropy with class weights ``lambda`` /
    ``1 - lambda`` scaled by ``lw * C / r`` and averaged over classes. As in OpenSphere,
    ``g`` enters through a detached delta, ``cos + stop_gradient(g(cos) - cos)``: the
    forward value uses ``g`` but the gradient flows through ``cos`` only (d s_i / d cos_i
    = r). Unlike OpenSphere, which renormalises its stored weights in place before each
    step, the kernel is normalised inside the graph (the gradient sees the normalisation).

    The bias ``b`` (one trainable scalar) starts at OpenSphere's closed form (see
    :func:`sphereface2_bias_init`). ``kernel`` (D, C) and ``bias`` are created in
    ``build((None, D))``.

    Args:
        num_classes: number of classes C (>= 2).
        scale: ``r``, the logit scale (40; speech works use 32).
        margin: ``m``, the additive margin (0.4; speech works use 0.2).
        lambda_: weight of the positive term, in (0, 1).
        t: the exponent of ``g`` (``t = 1`` makes ``g`` the identity).
        loss_weight: ``lw``; the loss is scaled by ``lw / r``.
        kernel_initializer: initialiser of the class weights (OpenSphere: Xavier normal).

    Call arguments:
        embeddings: (B, D) float.
        labels: (B,) or (B, 1) int class ids in ``[0, C)``. Out-of-range labels raise
            ``ValueError`` when their values are known (eager, numpy); inside ``jit``
            they cannot be checked and are clipped into range.
        mask: optional (B,) bool; masked samples get a loss of exactly 0.

    Returns:
        (B,) per-sample losses.

    Example:

    >>> import numpy as np
    >>> loss = SphereFace2(num_classes=5)
    >>> loss.build((None, 8))
    >>> values = loss(np.random.randn(4, 8).astype("float32"), np.array([0, 1, 2, 4]))
    >>> tuple(values.shape)
    (4,)

    Paper: Wen, Liu, Feng, Schölkopf, Weller, Liu, "SphereFace2: Binary Classification
    is All You Need for Deep Face Recognition", ICLR 2022 (OpenSphere is the reference
    code); used as ADML's keyword loss (arXiv 2505.16735).
    """

    def __init__(
        self,
        num_classes: int,
        scale: float = 40.0,
        margin: float = 0.4,
        lambda_: float = 0.7,
        t: float = 3.0,
        loss_weight: float = 50.0,
        kernel_initializer="glorot_normal",
        **kwargs,
    ):
        super().__init__(num_classes, scale, margin, kernel_initializer, **kwargs)
        if not 0.0 < lambda_ < 1.0:
            raise ValueError(f"SphereFace2: lambda_ must lie in (0, 1), got {lambda_}")
        if scale <= 0 or t <= 0:
            raise ValueError(f"SphereFace2: scale and t must be > 0, got scale={scale}, t={t}")
        self.lambda_ = float(lambda_)
        self.t = float(t)
        self.loss_weight = float(loss_weight)
        self.bias = None

    def build(self, input_shape):
        super().build(input_shape)  # the kernel, then the bias (the order of saved weights)
        self.bias = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_bias()),
            name="bias",
        )

    def initial_bias(self) -> float:
        """The closed-form initial value of ``bias``."""
        return sphereface2_bias_init(
            self.num_classes, self.scale, self.margin, self.lambda_, self.t
        )

    def _g(self, cos):
        # clipped: rounding can push a cosine just past +-1 (a negative base under a
        # fractional power would give NaN)
        return 2.0 * ops.power(ops.clip((cos + 1.0) / 2.0, 0.0, 1.0), self.t) - 1.0

    def logits(self, embeddings):
        """(B, C) margin-free one-vs-all logits ``r * g(cos) + b``; ``sigmoid`` of a
        logit is the probability that the sample belongs to that class."""
        return self.scale * self._g(self.cosine(embeddings)) + self.bias

    def call(self, embeddings, labels, mask=None):
        labels = self.class_ids(labels, mask)
        cos = self.cosine(embeddings)
        onehot = ops.one_hot(labels, self.num_classes, dtype=cos.dtype)
        g = cos + ops.stop_gradient(self._g(cos) - cos)
        s = self.scale * (g - self.margin * (2.0 * onehot - 1.0)) + self.bias
        per_class = self.lambda_ * onehot * ops.softplus(-s) + (1.0 - self.lambda_) * (
            1.0 - onehot
        ) * ops.softplus(s)
        loss = (self.loss_weight / self.scale) * ops.sum(per_class, axis=-1)
        return self.mask_loss(loss, mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "lambda_": self.lambda_,
                "t": self.t,
                "loss_weight": self.loss_weight,
            }
        )
        return config
