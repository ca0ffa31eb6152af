"""Encoders (functional Keras models) of the zoo models."""

from kerasadml.encoders.ecapa_tdnn import ECAPATDNN
from kerasadml.encoders.feature_tower import FeatureTower, L2Normalize
from kerasadml.encoders.phoneme_bilstm import PhonemeBiLSTM

__all__ = ["ECAPATDNN", "FeatureTower", "L2Normalize", "PhonemeBiLSTM"]
