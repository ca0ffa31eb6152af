"""Keras metrics for live detection figures during ``fit`` (EER and ROC AUC of scores).

These accumulate over the whole epoch (not an average of per-batch values) and run inside
the compiled train/eval step on every backend. They approximate the exact evaluation
functions of ``kerasadml.metrics.detection``, which should be used for reported results.
"""

from __future__ import annotations

import keras
from keras import ops


def _check_range(score_range) -> tuple[float, float]:
    low, high = (float(v) for v in score_range)
    if not high > low:
        raise ValueError(f"score_range must be (low, high) with high > low, got {score_range}")
    return low, high


@keras.saving.register_keras_serializable(package="kerasadml")
class StreamingEER(keras.metrics.Metric):
    """Approximate equal error rate from running score histograms.

    Scores (``y_pred``, e.g. cosine similarities) are binned into ``num_thresholds`` equal
    bins over ``score_range`` (values outside are clipped into the end bins), with separate
    (sample-weighted) histograms for positives (``y_true > 0.5``, so {0, 1} and {-1, 1}
    targets both work) and negatives. ``result``
    sweeps the ``num_thresholds + 1`` bin edges ``c_j`` (accept when ``score >= c_j``)::

        FRR(c_j) = positives below c_j / positives,  FAR(c_j) = negatives at or above c_j / negatives

    and interpolates linearly between the two edges where ``FAR - FRR`` changes sign. Scores
    are resolved to one bin, so the error against the exact ``kerasadml.metrics.eer`` is of
    the order of the fraction of trials in the bins around the crossing. The result is 0
    until both classes have been seen.

    Args:
        num_thresholds: number of histogram bins.
        name: metric name.
        dtype: metric dtype.
        score_range: ``(low, high)`` range of the scores; ``(-1, 1)`` for cosine scores,
            ``(0, 1)`` for probabilities.

    Example:

    >>> import numpy as np
    >>> metric = StreamingEER()
    >>> metric.update_state([0, 0, 1, 1], [-0.5, 0.2, 0.1, 0.8])
    >>> round(float(metric.result()), 2)
    0.5
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        name: str = "eer",
        dtype=None,
        score_range: tuple[float, float] = (-1.0, 1.0),
    ):
        super().__init__(name=name, dtype=dtype)
        if int(num_thresholds) < 2:
            raise ValueError(f"StreamingEER: num_thresholds must be >= 2, got {num_thresholds}")
        self.num_thresholds = int(num_thresholds)
        self.score_range = _check_range(score_range)
        self.positive_hist = self.add_variable(
            shape=(self.num_thresholds,), initializer="zeros", name="positive_hist", dtype="float32"
        )
        self.negative_hist = self.add_variable(
            shape=(self.num_thresholds,), initializer="zeros", name="negative_hist", dtype="float32"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        y_true = ops.reshape(ops.cast(ops.convert_to_tensor(y_true), "float32"), (-1,))
        scores = ops.reshape(y_pred, (-1,))
        if sample_weight is None:
            weights = ops.ones_like(scores)
        else:
            weights = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            while len(weights.shape) < len(y_pred.shape):  # (B,) weights for (B, 1) scores
                weights = ops.expand_dims(weights, -1)
            weights = ops.reshape(ops.broadcast_to(weights, ops.shape(y_pred)), (-1,))
        low, high = self.score_range
        position = (scores - low) / (high - low) * self.num_thresholds
        bins = ops.cast(ops.clip(ops.floor(position), 0, self.num_thresholds - 1), "int32")
        positive = ops.cast(y_true > 0.5, "float32") * weights
        negative = ops.cast(y_true <= 0.5, "float32") * weights
        self.positive_hist.assign_add(
            ops.segment_sum(positive, bins, num_segments=self.num_thresholds)
        )
        self.negative_hist.assign_add(
            ops.segment_sum(negative, bins, num_segments=self.num_thresholds)
        )

    def result(self):
        pos = ops.convert_to_tensor(self.positive_hist)
        neg = ops.convert_to_tensor(self.negative_hist)
        total_pos = ops.sum(pos)
        total_neg = ops.sum(neg)
        zero = ops.zeros((1,), "float32")
        # Edge j accepts bins j, j+1, ...: FRR counts the bins below it, FAR those above.
        frr = ops.concatenate([zero, ops.cumsum(pos)]) / ops.maximum(total_pos, 1e-12)
        neg_below = ops.concatenate([zero, ops.cumsum(neg)])
        far = (total_neg - neg_below) / ops.maximum(total_neg, 1e-12)
        diff = far - frr  # +1 at the first edge, -1 at the last
        i = ops.maximum(ops.argmax(ops.cast(diff <= 0.0, "int32")), 1)
        d0 = ops.take(diff, i - 1)
        d1 = ops.take(diff, i)
        t = d0 / ops.maximum(d0 - d1, 1e-12)
        f0 = ops.take(far, i - 1)
        f1 = ops.take(far, i)
        value = f0 + t * (f1 - f0)
        seen_both = ops.logical_and(total_pos > 0, total_neg > 0)
        return ops.cast(ops.where(seen_both, value, 0.0), self.dtype)

    def reset_state(self):
        self.positive_hist.assign(ops.zeros((self.num_thresholds,), "float32"))
        self.negative_hist.assign(ops.zeros((self.num_thresholds,), "float32"))

    def get_config(self):
        return {
            "num_thresholds": self.num_thresholds,
            "score_range": list(self.score_range),
            "name": self.name,
            "dtype": self.dtype,
        }


@keras.saving.register_keras_serializable(package="kerasadml")
class StreamingAUC(keras.metrics.AUC):
    """ROC AUC of scores in ``score_range`` (a thin wrapper of ``keras.metrics.AUC``).

    ``keras.metrics.AUC`` expects predictions in [0, 1]; this maps scores linearly from
    ``score_range`` (``(-1, 1)``, cosine scores, by default) onto [0, 1] (clipping values
    outside) before updating it. Its thresholds are evenly spaced, so, like ``StreamingEER``,
    it approximates the exact ``kerasadml.metrics.roc_auc``.

    Args:
        num_thresholds: number of thresholds of ``keras.metrics.AUC``.
        name: metric name.
        dtype: metric dtype.
        score_range: ``(low, high)`` range of the scores.
        **kwargs: further ``keras.metrics.AUC`` arguments (``curve`` stays "ROC" unless given).

    Example:

    >>> metric = StreamingAUC()
    >>> metric.update_state([0, 0, 1, 1], [-0.5, 0.2, 0.1, 0.8])
    >>> round(float(metric.result()), 2)
    0.75
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        name: str = "auc",
        dtype=None,
        score_range: tuple[float, float] = (-1.0, 1.0),
        **kwargs,
    ):
        super().__init__(num_thresholds=num_thresholds, name=name, dtype=dtype, **kwargs)
        self.score_range = _check_range(score_range)

    def update_state(self, y_true, y_pred, sample_weight=None):
        low, high = self.score_range
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        y_pred = ops.clip((y_pred - low) / (high - low), 0.0, 1.0)
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config["score_range"] = list(self.score_range)
        return config
