"""Keyword spotting with ADML: the detector users enroll keywords in, the LibriPhrase
evaluation, the training recipes and the demo (docs/methods.md §1).

>>> from kerasadml.kws import keyword_detector
>>> detector = keyword_detector(["hey computer", "lights off"])  # doctest: +SKIP
"""

from kerasadml.kws.detector import KeywordDetector, check_threshold, keyword_detector
from kerasadml.kws.evaluation import evaluate_alignment, evaluate_libriphrase, format_table
from kerasadml.kws.training import TRAINING_RECIPES, kws_training_data, resolve_kws_csvs, train_adml_from_csv

__all__ = [
    "KeywordDetector",
    "TRAINING_RECIPES",
    "check_threshold",
    "evaluate_alignment",
    "evaluate_libriphrase",
    "format_table",
    "keyword_detector",
    "kws_training_data",
    "resolve_kws_csvs",
    "train_adml_from_csv",
]
