"""Zoo models and the preset catalogue.

>>> from kerasadml.zoo import ADML, AADML, list_presets
"""

from kerasadml.zoo.aadml import AADML
from kerasadml.zoo.adml import ADML
from kerasadml.zoo.detector import KeywordDetector
from kerasadml.zoo.presets import PRESETS, PresetError, list_presets

__all__ = ["AADML", "ADML", "KeywordDetector", "PRESETS", "PresetError", "list_presets"]
