"""The one home of kerasadml's small backend-sensitive helpers (``keras.ops`` only).

Layers, losses, metrics and models import these instead of keeping private copies:

- :func:`l2_normalize` / :func:`l2_normalize_np`: L2 normalisation of a tensor / a numpy
  array, with one epsilon convention (below).
- :func:`concrete_value` / :func:`is_concrete`: whether a tensor's value is known now
  (eager) or only at run time (symbolic: traced by ``jit`` / ``tf.function`` / ``tf.data``,
  or a ``keras.KerasTensor``), so a check on values can run when it is possible.
- :func:`large_negative`: a finite "minus infinity" for masked logits.
- Label and mask helpers: :func:`flat_labels`, :func:`bool_mask`,
  :func:`check_labels_in_range`, :func:`class_ids`.
- :func:`masked_mean` (a mean over the valid entries, 0 where there are none) and
  :func:`validate_embeddings` (a rank check naming the argument), for losses and layers.

**Epsilon convention.** ``epsilon`` is a floor on the *squared* norm:
``x / sqrt(max(sum x^2, epsilon))`` with ``epsilon = 1e-12`` (as
``tf.math.l2_normalize``). A row of norm >= 1e-6 is divided by its norm; a zero row stays
zero and its gradient is finite (unlike a floor on the norm itself, whose ``rsqrt(0)``
gives a NaN gradient on JAX). Rows with norms below ``sqrt(epsilon)`` are scaled by
``1 / sqrt(epsilon)`` rather than to unit norm; pass a smaller ``epsilon`` where that
matters (e.g. ``np.finfo(dtype).tiny`` for scale-free cosine rankings).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

#: The default floor of the squared norm in :func:`l2_normalize` / :func:`l2_normalize_np`.
L2_EPSILON = 1e-12


def l2_normalize(x: Any, axis: int = -1, epsilon: float = L2_EPSILON) -> Any:
    """``x / sqrt(max(sum(x^2, axis), epsilon))``: rows of unit L2 norm along ``axis``.

    A zero row stays zero (never NaN), and its gradient is finite. Computed as
    ``x * rsqrt(...)`` in ``x``'s dtype.

    Args:
        x: a tensor (anything ``keras.ops`` accepts).
        axis: the axis to normalise along.
        epsilon: floor of the squared norm (see the module docstring).

    Returns:
        A tensor of ``x``'s shape.

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))).astype(float).round(6).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    x = ops.convert_to_tensor(x)
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), epsilon))


def l2_normalize_np(x: np.ndarray, axis: int = -1, epsilon: float = L2_EPSILON) -> np.ndarray:
    """Numpy twin of :func:`l2_normalize`: ``x / sqrt(max(sum(x^2, axis), epsilon))``.

    Keeps ``x``'s floating dtype (integers become float64).

    Example:

    >>> l2_normalize_np(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x / np.sqrt(np.maximum(np.sum(np.square(x), axis=axis, keepdims=True), epsilon))


def concrete_value(x: Any) -> np.ndarray | None:
    """``x`` as a numpy array when its value is known now, else ``None``.

    Known: numpy arrays, Python numbers and lists, eager TensorFlow tensors, concrete JAX
    arrays. Not known (``None``): ``None``, a ``keras.KerasTensor`` (functional model
    construction), a TensorFlow graph tensor (``tf.function``, ``tf.data``, Keras' compiled
    ``fit`` / ``predict``) and a JAX tracer (``jit``, ``grad``). Converting a traced value
    raises ``TypeError`` on JAX (``TracerArrayConversionError``, a ``TypeError``) and
    ``NotImplementedError`` (a ``RuntimeError``) on TensorFlow ("Cannot convert a symbolic
    tf.Tensor to a numpy array"); only those are caught, so a real error still surfaces.

    Use it to run a check on values (labels in range, no empty mask) where that is
    possible; inside a traced function the check cannot run and the caller must cope.
    """
    if x is None or keras.backend.is_keras_tensor(x):
        return None
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except (TypeError, RuntimeError):  # a traced tensor: its value is not known yet
        return None


def is_concrete(x: Any) -> bool:
    """True when ``x``'s value is known now (see :func:`concrete_value`); False for
    ``None``, symbolic and traced tensors."""
    return concrete_value(x) is not None


def large_negative(dtype: Any) -> float:
    """A large negative logit for masked positions that stays finite in ``dtype``.

    ``-3e4`` for float16 (whose largest finite value is 65504), ``-1e9`` otherwise.
    ``-inf`` would turn a fully masked softmax row into NaN; this turns it into a uniform
    row, and ``exp`` of it underflows to exactly 0 next to any real logit.
    """
    return -3.0e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1.0e9


def flat_labels(name: str, labels: Any) -> Any:
    """``labels`` of shape ``(N,)`` or ``(N, 1)`` as an ``(N,)`` tensor.

    Raises:
        ValueError: naming ``name`` and the shape, for any other rank or width.
    """
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got {tuple(labels.shape)}")
    return labels


def bool_mask(mask: Any, labels: Any) -> Any:
    """``mask`` (``(N,)`` or ``(N, 1)``, bool or 0/1) as an ``(N,)`` bool tensor; all True
    (the shape of ``labels``) when ``mask`` is None."""
    if mask is None:
        return ops.ones(ops.shape(labels), dtype="bool")
    mask = ops.convert_to_tensor(mask)
    if len(mask.shape) == 2 and mask.shape[-1] == 1:
        mask = ops.squeeze(mask, axis=-1)
    return ops.cast(mask, "bool")


def check_labels_in_range(name: str, labels: Any, num_classes: int, mask: Any = None) -> None:
    """Raise ``ValueError`` if concrete ``labels`` (where ``mask`` is True) fall outside
    ``[0, num_classes)``.

    The message is ``"{name} must lie in [0, num_classes), got out-of-range values
    [...]"``. Symbolic labels (inside ``jit`` / ``tf.function``) cannot be checked and
    pass; a mask whose value is not known counts as all True.
    """
    values = concrete_value(labels)
    if values is None:
        return
    values = np.reshape(values, (-1,))
    valid = concrete_value(mask)
    if valid is not None:
        values = values[np.reshape(np.asarray(valid), (-1,)).astype(bool)]
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}), got out-of-range values "
            f"{sorted(set(bad.tolist()))[:10]}"
        )


def class_ids(name: str, labels: Any, num_classes: int, mask: Any = None) -> Any:
    """``labels`` flattened to ``(N,)`` int32 class ids in ``[0, num_classes)``.

    Concrete labels are checked with :func:`check_labels_in_range` (``ValueError`` naming
    ``name``); traced ones cannot be and are clipped into range, so an out-of-range label
    inside ``jit`` behaves as the nearest class (and a masked one does not matter).
    """
    labels = ops.reshape(labels, (-1,))
    check_labels_in_range(name, labels, num_classes, mask)
    return ops.clip(ops.cast(labels, "int32"), 0, num_classes - 1)


def masked_mean(values: Any, mask: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean of ``values`` over the entries where ``mask`` is True; 0 (not NaN) if none.

    The masked-out entries are replaced by zeros before summing, so a NaN or inf there
    does not leak into the result, and the gradient reaching them is exactly 0.

    Args:
        values: a tensor.
        mask: bool or 0/1, broadcastable to ``values``; None for a plain mean.
        axis: the axes to average over (as in ``ops.mean``; None: all).
        keepdims: keep the averaged axes with size 1.

    Returns:
        The masked mean, of ``values``' dtype.

    Example:

    >>> from keras import ops
    >>> values, mask = [[1.0, 2.0], [5.0, 7.0]], [[True, False], [False, False]]
    >>> ops.convert_to_numpy(masked_mean(values, mask, axis=1)).tolist()
    [1.0, 0.0]
    """
    values = ops.convert_to_tensor(values)
    if mask is None:
        mask = ops.ones_like(values, dtype="bool")
    mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(values))
    weights = ops.cast(mask, values.dtype)
    total = ops.sum(ops.where(mask, values, ops.zeros_like(values)), axis=axis, keepdims=keepdims)
    count = ops.sum(weights, axis=axis, keepdims=keepdims)
    return total / ops.maximum(count, ops.cast(1.0, values.dtype)) * ops.cast(count > 0, values.dtype)


def validate_embeddings(name: str, x: Any, rank: int = 2) -> Any:
    """``x`` unchanged if it has rank ``rank``.

    Args:
        name: what to call ``x`` in the error (e.g. ``"audio"``).
        x: a tensor or array.
        rank: the rank it must have.

    Raises:
        ValueError: naming ``name`` and the shape, for any other rank.

    Example:

    >>> import numpy as np
    >>> validate_embeddings("audio", np.zeros((3, 4))).shape
    (3, 4)
    """
    shape = tuple(ops.shape(x))
    if len(shape) != rank:
        raise ValueError(f"{name} must have rank {rank}, got an array of shape {shape} (rank {len(shape)})")
    return x


__all__ = [
    "L2_EPSILON",
    "bool_mask",
    "check_labels_in_range",
    "class_ids",
    "concrete_value",
    "flat_labels",
    "is_concrete",
    "l2_normalize",
    "l2_normalize_np",
    "large_negative",
    "masked_mean",
    "validate_embeddings",
]
