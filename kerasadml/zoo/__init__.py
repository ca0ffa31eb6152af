"""Zoo models (ADML, AADML) and the preset catalogue.

>>> from kerasadml.zoo import ADML, AADML, list_presets

``KeywordDetector`` and ``keyword_detector`` live in :mod:`kerasadml.kws` (the application
layer above the models); they are also importable from here, as before, resolved on first
use so that this package does not import the one above it.
"""

from kerasadml.zoo.aadml import AADML
from kerasadml.zoo.adml import ADML
from kerasadml.zoo.presets import PRESETS, PresetError, list_presets

__all__ = ["AADML", "ADML", "KeywordDetector", "PRESETS", "PresetError", "keyword_detector", "list_presets"]

_FROM_KWS = ("KeywordDetector", "keyword_detector")


def __getattr__(name: str):
    if name in _FROM_KWS:
        from kerasadml import kws

        return getattr(kws, name)
    raise AttributeError(f"module 'kerasadml.zoo' has no attribute {name!r}")
