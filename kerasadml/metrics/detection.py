"""Detection metrics for keyword spotting: EER, its threshold, ROC AUC, AP (docs/methods.md §3.1).

Evaluation functions on numpy arrays (scikit-learn underneath), meant to be computed over
the whole evaluation set at once, never averaged over batches. ``labels`` are 1 for a
target trial (the keyword is in the clip) and 0 otherwise; ``scores`` are higher for
"more likely target" (e.g. ``cos(ea, et)``). Every rate is a fraction in [0, 1].
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def _validate(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert ``labels`` (binary {0, 1}) and ``scores`` (finite), same length 1-D."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if labels.shape[0] != scores.shape[0]:
        raise ValueError(
            f"labels and scores must have the same length, got {labels.shape[0]} labels "
            f"and {scores.shape[0]} scores"
        )
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not (np.issubdtype(labels.dtype, np.number)):
        raise ValueError(f"labels must be binary 0/1 numbers or booleans, got dtype {labels.dtype}")
    distinct = np.unique(labels)
    if not np.all(np.isin(distinct, (0, 1))):
        raise ValueError(f"labels must be binary {{0, 1}}, got values {distinct[:10].tolist()}")
    labels = labels.astype(np.int64)
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(
        scores.dtype, np.complexfloating
    ):
        raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        bad = int(np.sum(~np.isfinite(scores)))
        raise ValueError(f"scores must be finite, got {bad} NaN or infinite value(s)")
    positives = int(labels.sum())
    if positives == 0 or positives == labels.shape[0]:
        raise ValueError(
            "labels must contain both classes (1 = target, 0 = non-target), got "
            f"{positives} positive(s) and {labels.shape[0] - positives} negative(s)"
        )
    return labels, scores


def _eer_and_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """EER and its threshold from the full ROC (``drop_intermediate=False``).

    Along the ROC (thresholds decreasing) the false-reject rate ``FRR = 1 - TPR`` falls and
    the false-accept rate ``FAR = FPR`` rises; ``d = FRR - FAR`` goes from +1 to -1. Between
    the last point with ``d > 0`` and the first with ``d <= 0`` both rates, and the
    threshold, are interpolated linearly to ``d = 0``. This is the intersection of the
    piecewise-linear ROC with the line ``TPR = 1 - FPR``.
    """
    fpr, tpr, thresholds = skm.roc_curve(labels, scores, drop_intermediate=False)
    thresholds = thresholds.astype(np.float64).copy()
    # sklearn's first point (FAR = 0, FRR = 1: accept nothing) has threshold +inf; any
    # threshold above the top score gives it. Use the top score, so that interpolation
    # stays finite and inside the score range.
    thresholds[0] = thresholds[1]
    frr = 1.0 - tpr
    diff = frr - fpr
    i = int(np.argmax(diff <= 0))  # exists: the last point has FRR = 0, FAR = 1
    if i == 0:  # cannot happen (diff[0] = 1), kept for safety
        return float(fpr[0]), float(thresholds[0])
    d0, d1 = diff[i - 1], diff[i]
    t = d0 / (d0 - d1)  # d0 > 0 >= d1
    eer_value = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    threshold = thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1])
    return float(np.clip(eer_value, 0.0, 1.0)), float(threshold)


def eer(labels, scores) -> float:
    """Equal error rate: where the false-accept rate equals the false-reject rate.

    Computed on the full ROC of ``sklearn.metrics.roc_curve`` and linearly interpolated
    between the two nearest thresholds (see ``eer_threshold``).

    Args:
        labels: 1-D array of {0, 1} (or booleans), 1 = target trial.
        scores: 1-D array of finite scores, higher = more likely target.

    Returns:
        The EER as a fraction in [0, 1].

    Example:

    >>> eer([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    0.5
    """
    return _eer_and_threshold(*_validate(labels, scores))[0]


def eer_threshold(labels, scores) -> float:
    """The score threshold at the EER (accept when ``score >= threshold``).

    Interpolated linearly between the two ROC thresholds around the crossing, with the same
    weight as the EER itself; sklearn's ``+inf`` threshold of the accept-nothing point is
    replaced by the highest score, so the result lies within the range of ``scores``.

    Args:
        labels: 1-D array of {0, 1} (or booleans), 1 = target trial.
        scores: 1-D array of finite scores, higher = more likely target.

    Returns:
        The threshold, in score units.

    Example:

    >>> eer_threshold([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1])  # halfway between 0.9 and 0.5
    0.7
    """
    return _eer_and_threshold(*_validate(labels, scores))[1]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``).

    ``AUC = P(score of a random target > score of a random non-target)``, ties counting 1/2.

    Args:
        labels: 1-D array of {0, 1} (or booleans), 1 = target trial.
        scores: 1-D array of finite scores, higher = more likely target.

    Returns:
        The AUC, a fraction in [0, 1].

    Example:

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    0.75
    """
    labels, scores = _validate(labels, scores)
    return float(skm.roc_auc_score(labels, scores))


def average_precision(labels, scores) -> float:
    """Average precision with ``sklearn.metrics.average_precision_score`` semantics.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds (recall ``R``,
    precision ``P``), without interpolation.

    Args:
        labels: 1-D array of {0, 1} (or booleans), 1 = target trial.
        scores: 1-D array of finite scores, higher = more likely target.

    Returns:
        The AP, a fraction in [0, 1].

    Example:

    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]), 4)  # (1 + 2/3) / 2
    0.8333
    """
    labels, scores = _validate(labels, scores)
    return float(skm.average_precision_score(labels, scores))


def detection_report(labels, scores) -> dict:
    """All detection figures of one trial list.

    Returns:
        ``{"EER", "AUC", "AP"}`` (fractions in [0, 1]), ``"threshold"`` (the EER threshold,
        in score units), ``"positives"`` and ``"negatives"`` (trial counts).

    Example:

    >>> report = detection_report([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    >>> sorted(report)
    ['AP', 'AUC', 'EER', 'negatives', 'positives', 'threshold']
    """
    labels, scores = _validate(labels, scores)
    eer_value, threshold = _eer_and_threshold(labels, scores)
    positives = int(labels.sum())
    return {
        "EER": eer_value,
        "AUC": float(skm.roc_auc_score(labels, scores)),
        "AP": float(skm.average_precision_score(labels, scores)),
        "threshold": threshold,
        "positives": positives,
        "negatives": int(labels.shape[0] - positives),
    }
