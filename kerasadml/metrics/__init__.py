"""Evaluation metrics of kerasadml.

- Detection (keyword spotting, docs/methods.md §3.1), numpy/scikit-learn over a whole trial
  list: ``eer``, ``eer_threshold``, ``roc_auc``, ``average_precision``, ``detection_report``.
- Retrieval (audio-visual, docs/methods.md §3.2), numpy, chunked over queries:
  ``retrieval_map``, ``average_precision_per_query``, ``recall_at_k``, ``precision_at_k``,
  ``retrieval_report``.
- Keras metrics for live figures during ``fit``: ``StreamingEER``, ``StreamingAUC``.
- Alignment (docs/methods.md §1.10), numpy: ``attention_peaks``, ``monotonic_fraction``,
  ``peak_spread``.
"""

from kerasadml.metrics.alignment import attention_peaks, monotonic_fraction, peak_spread
from kerasadml.metrics.detection import (
    average_precision,
    detection_report,
    eer,
    eer_threshold,
    roc_auc,
)
from kerasadml.metrics.keras_metrics import StreamingAUC, StreamingEER
from kerasadml.metrics.retrieval import (
    average_precision_per_query,
    precision_at_k,
    recall_at_k,
    retrieval_map,
    retrieval_report,
)

__all__ = [
    "attention_peaks",
    "monotonic_fraction",
    "peak_spread",
    "StreamingAUC",
    "StreamingEER",
    "average_precision",
    "average_precision_per_query",
    "detection_report",
    "eer",
    "eer_threshold",
    "precision_at_k",
    "recall_at_k",
    "retrieval_map",
    "retrieval_report",
    "roc_auc",
]
