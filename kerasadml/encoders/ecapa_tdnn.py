"""ECAPA-TDNN acoustic encoder with frame-level and utterance-level outputs (ADML's audio tower)."""

from __future__ import annotations

import keras

from kerasadml.layers.attentive_stats_pooling import AttentiveStatsPooling
from kerasadml.layers.ecapa_blocks import SERes2Block, TDNNBlock
from kerasadml.layers.masked_ops import MaskedDense


@keras.saving.register_keras_serializable(package="kerasadml")
class ECAPATDNN(keras.Model):
    """ECAPA-TDNN: Conv1D(k=5) -> 3 SE-Res2Blocks -> multi-layer feature aggregation -> CCSP.

    A functional Keras model (keras-hub "backbone" style: built in ``__init__``,
    serialised through its constructor arguments). Inputs are log-mel frames and a
    frame mask; outputs are the frame-level ("phoneme-level") sequence ``Ea`` (after a
    k=1 projection to ``embedding_dim``) and the utterance embedding ``ea`` from
    channel- and context-dependent statistics pooling (CCSP) + BatchNorm + Dense.
    Padded frames never change either output (in inference).

    With ``channels=256`` and 40-d input the model has about 1.8 M parameters
    (``model.count_params()``; the paper's size).

    Args:
        input_dim: feature width (40 log-mel bins).
        channels: width ``C`` of the TDNN blocks.
        embedding_dim: ``D``, width of both outputs.
        dilations: Res2Net dilations of the three SE-Res2Blocks.
        scale: Res2Net scale.
        se_channels: squeeze-excitation bottleneck.
        attention_channels: CCSP attention bottleneck.
        mfa_channels: width of the multi-layer feature aggregation (default ``3 * channels``).

    Call arguments:
        inputs: dict with ``"features"`` (B, T, input_dim) float and ``"mask"`` (B, T) bool.

    Returns:
        dict with ``"sequence"`` (B, T, D) and ``"embedding"`` (B, D).

    Example:

    >>> import numpy as np
    >>> enc = ECAPATDNN(channels=32, embedding_dim=16, se_channels=8, attention_channels=8)
    >>> out = enc({"features": np.zeros((2, 50, 40), "float32"), "mask": np.ones((2, 50), bool)})
    >>> out["embedding"].shape, out["sequence"].shape
    ((2, 16), (2, 50, 16))

    Paper: Desplanques et al., "ECAPA-TDNN: Emphasized Channel Attention, Propagation and
    Aggregation in TDNN Based Speaker Verification", Interspeech 2020; the acoustic encoder
    of ADML (arXiv 2505.16735).
    """

    def __init__(
        self,
        input_dim: int = 40,
        channels: int = 256,
        embedding_dim: int = 256,
        dilations: tuple[int, ...] = (2, 3, 4),
        scale: int = 8,
        se_channels: int = 128,
        attention_channels: int = 128,
        mfa_channels: int | None = None,
        **kwargs,
    ):
        dilations = tuple(int(d) for d in dilations)
        mfa = int(mfa_channels) if mfa_channels else channels * len(dilations)
        features = keras.Input((None, input_dim), name="features")
        mask = keras.Input((None,), dtype="bool", name="mask")
        x = TDNNBlock(channels, 5, name="conv_in")(features, mask=mask)
        block_outputs = []
        for i, dilation in enumerate(dilations):
            x = SERes2Block(
                channels, 3, dilation, scale=scale, se_channels=se_channels, name=f"se_res2_{i}"
            )(x, mask=mask)
            block_outputs.append(x)
        x = keras.layers.Concatenate(axis=-1, name="mfa_concat")(block_outputs)
        x = TDNNBlock(mfa, 1, name="mfa")(x, mask=mask)
        sequence = MaskedDense(embedding_dim, name="sequence")(x, mask=mask)
        pooled = AttentiveStatsPooling(attention_channels, name="ccsp")(x, mask=mask)
        pooled = keras.layers.BatchNormalization(name="pool_bn")(pooled)
        embedding = keras.layers.Dense(embedding_dim, name="embedding")(pooled)
        super().__init__(
            inputs={"features": features, "mask": mask},
            outputs={"sequence": sequence, "embedding": embedding},
            **kwargs,
        )
        self.input_dim = int(input_dim)
        self.channels = int(channels)
        self.embedding_dim = int(embedding_dim)
        self.dilations = dilations
        self.scale = int(scale)
        self.se_channels = int(se_channels)
        self.attention_channels = int(attention_channels)
        self.mfa_channels = mfa_channels

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_dim": self.input_dim,
            "channels": self.channels,
            "embedding_dim": self.embedding_dim,
            "dilations": list(self.dilations),
            "scale": self.scale,
            "se_channels": self.se_channels,
            "attention_channels": self.attention_channels,
            "mfa_channels": self.mfa_channels,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
