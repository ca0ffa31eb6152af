"""The shared base of kerasadml's metric losses and a few small helpers.

Every metric loss of kerasadml is a ``keras.layers.Layer`` (see :class:`MetricLoss`),
so that it can own trainable weights (proxies, per-class margins, a bias) that are
trained, saved and restored with the model that owns it.
"""

from __future__ import annotations

import keras
from keras import ops


def cosine_similarity_matrix(a, b, epsilon: float = 1e-12):
    """Cosine similarities between the rows of ``a`` (N, D) and ``b`` (M, D): (N, M).

    Rows are L2-normalised as ``x / sqrt(max(sum x^2, epsilon))`` (a zero row gives
    zeros, never NaN), then multiplied.
    """
    a = ops.convert_to_tensor(a)
    b = ops.cast(ops.convert_to_tensor(b), a.dtype)
    a = a * ops.rsqrt(ops.maximum(ops.sum(ops.square(a), axis=-1, keepdims=True), epsilon))
    b = b * ops.rsqrt(ops.maximum(ops.sum(ops.square(b), axis=-1, keepdims=True), epsilon))
    return ops.matmul(a, ops.transpose(b))


def masked_mean(values, mask=None, axis=None, keepdims: bool = False):
    """Mean of ``values`` over the entries where ``mask`` is True; 0 (not NaN) if none.

    ``mask`` (bool or 0/1, broadcastable to ``values``) may be None (plain mean).
    ``axis``/``keepdims`` as in ``ops.mean``. The masked-out entries are replaced by
    zeros before summing, so a NaN or inf there does not leak into the result, and the
    gradient reaching them is exactly 0.
    """
    values = ops.convert_to_tensor(values)
    if mask is None:
        mask = ops.ones_like(values, dtype="bool")
    mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(values))
    weights = ops.cast(mask, values.dtype)
    total = ops.sum(ops.where(mask, values, ops.zeros_like(values)), axis=axis, keepdims=keepdims)
    count = ops.sum(weights, axis=axis, keepdims=keepdims)
    return total / ops.maximum(count, ops.cast(1.0, values.dtype)) * ops.cast(count > 0, values.dtype)


def reduce_loss(values, mask=None, sample_weight=None):
    """Scalar weighted mean of per-sample loss ``values`` over the valid entries.

    ``sum(w * v * m) / sum(w * m)`` with ``w = sample_weight`` (ones if None) and
    ``m = mask`` (all True if None); 0 when no entry is valid or all weights are zero.
    """
    values = ops.convert_to_tensor(values)
    weights = ops.ones_like(values)
    if sample_weight is not None:
        weights = weights * ops.cast(sample_weight, values.dtype)
    if mask is not None:
        valid = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(values))
        weights = ops.where(valid, weights, ops.zeros_like(weights))
    used = weights != 0
    total = ops.sum(ops.where(used, weights * values, ops.zeros_like(values)))
    denom = ops.sum(weights)
    safe = ops.where(denom != 0, denom, ops.ones_like(denom))
    return ops.where(denom != 0, total / safe, ops.zeros_like(total))


def validate_embeddings(name: str, x, rank: int = 2):
    """Raise ``ValueError`` naming ``name`` and the shape unless ``x`` has rank ``rank``."""
    shape = tuple(ops.shape(x))
    if len(shape) != rank:
        raise ValueError(f"{name} must have rank {rank}, got an array of shape {shape} (rank {len(shape)})")
    return x


class MetricLoss(keras.layers.Layer):
    """Base class of kerasadml's metric losses: a Keras layer that returns per-sample losses.

    A metric loss is a layer rather than a ``keras.losses.Loss`` because it may own
    trainable weights (per-class margins, proxies, a bias) that the optimiser trains and
    ``model.save`` stores. Following pytorch-metric-learning, one loss serves both
    same-modality and cross-modal use: it takes ``embeddings`` and ``labels`` (the
    anchors) and optionally ``ref_embeddings`` and ``ref_labels`` (what the anchors are
    compared with, e.g. the other modality or a set of proxies; by default the
    embeddings themselves).

    Conventions every subclass follows:

    - ``call`` returns **per-sample** loss values (one per anchor, shape ``(N,)``) or, where
      documented, a tuple of scalars; reduction is the caller's (see :func:`reduce_loss`).
    - Masks are boolean, True = valid. Masked anchors get a loss of exactly 0 and masked
      references never enter a sum, so padding never changes a result.
    - Only ``keras.ops`` is used: the loss runs under every backend and inside ``jit``.
    - Every constructor argument is an attribute and appears in ``get_config``.
    - Weights are created in ``__init__`` or ``build`` so they exist before ``fit``.
    - The default dtype policy is ``"float32"`` (not the global one): under mixed
      precision the inputs are cast up and the loss is computed in float32.

    Helpers for subclasses: :func:`cosine_similarity_matrix`, :func:`masked_mean`,
    :func:`validate_embeddings`, :func:`reduce_loss`.
    """

    def __init__(self, **kwargs):
        # Losses compute in float32 even under a mixed-precision policy (as Keras losses do).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # Masks are explicit call arguments here, not Keras mask propagation: accept a
        # ``mask=`` argument without Keras' "destroys the mask" warning, attach none.
        self.supports_masking = True

    def compute_mask(self, inputs, previous_mask=None):
        return None
