"""keras-tuner HyperModels for the zoo models.

>>> from kerasadml.tuning import ADMLHyperModel, AADMLHyperModel
"""

from kerasadml.tuning.hypermodels import (
    AADML_SEARCH_SPACE,
    ADML_SEARCH_SPACE,
    AADMLHyperModel,
    ADMLHyperModel,
)

__all__ = ["AADMLHyperModel", "ADMLHyperModel", "AADML_SEARCH_SPACE", "ADML_SEARCH_SPACE"]
