"""Zoo models and the preset catalogue.

>>> from kerasadml.zoo import ADML, AADML, list_presets
"""

from kerasadml.zoo.aadml import AADML
from kerasadml.zoo.adml import ADML
from kerasadml.zoo.detector import KeywordDetector, keyword_detector
from kerasadml.zoo.presets import PRESETS, PresetError, list_presets

__all__ = ["AADML", "ADML", "KeywordDetector", "PRESETS", "PresetError", "keyword_detector", "list_presets"]
