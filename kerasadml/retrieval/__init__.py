"""Audio-visual retrieval with AADML: training on VEGAS/AVE-layout features and the
retrieval report (docs/methods.md §2).

>>> from kerasadml.retrieval import format_table, train_aadml_from_h5
"""

from kerasadml.retrieval.evaluation import RETRIEVAL_KEYS, format_table
from kerasadml.retrieval.training import train_aadml_from_h5

__all__ = ["RETRIEVAL_KEYS", "format_table", "train_aadml_from_h5"]
