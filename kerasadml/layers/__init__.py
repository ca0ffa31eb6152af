"""Reusable Keras layers of kerasadml."""

from kerasadml.layers.anchor_aware_proxy import AnchorAwareProxy
from kerasadml.layers.attentive_stats_pooling import AttentiveStatsPooling
from kerasadml.layers.cross_attention_aligner import CrossAttentionAligner
from kerasadml.layers.ecapa_blocks import SERes2Block, TDNNBlock
from kerasadml.layers.gradient_reversal import GradientReversal, dann_lambda
from kerasadml.layers.log_mel import LogMelSpectrogram
from kerasadml.layers.masked_ops import MaskedAttentionPooling, MaskedAveragePooling, MaskedDense, PaddingMask
from kerasadml.layers.modality_discriminator import ModalityAdversarial
from kerasadml.layers.spec_augment import SpecAugment

__all__ = [
    "AnchorAwareProxy",
    "AttentiveStatsPooling",
    "CrossAttentionAligner",
    "GradientReversal",
    "LogMelSpectrogram",
    "MaskedAttentionPooling",
    "MaskedAveragePooling",
    "MaskedDense",
    "ModalityAdversarial",
    "PaddingMask",
    "SERes2Block",
    "SpecAugment",
    "TDNNBlock",
    "dann_lambda",
]
