"""BiLSTM phoneme encoder with phoneme-level and utterance-level outputs (ADML's text tower)."""

from __future__ import annotations

import keras
from kerasadml.layers.masked_ops import MaskedAttentionPooling, MaskedAveragePooling, MaskedDense, PaddingMask

TEXT_POOLINGS = ("mean", "attention")


@keras.saving.register_keras_serializable(package="kerasadml")
class PhonemeBiLSTM(keras.Model):
    """Phoneme ids -> Embedding -> stacked bidirectional LSTMs -> Dense(D).

    Returns the phoneme-level sequence ``Et`` (B, Tt, D), zero at padding, and the
    utterance embedding ``et``: the masked average of ``Et`` (``pooling="mean"``, the
    paper's) or a multi-head attentive pooling of it (``pooling="attention"``, which keeps
    one-phoneme differences between keywords, docs/methods.md §1.10). Id 0 is padding.

    Args:
        vocabulary_size: number of phoneme ids (``PhonemeVocabulary.size``).
        embedding_dim: ``D``, width of both outputs.
        token_dim: width of the phoneme embedding table.
        lstm_units: units of each LSTM direction (256 in the paper).
        num_layers: number of bidirectional layers (2 in the paper).
        dropout: dropout between layers.
        pooling: ``"mean"`` or ``"attention"`` (utterance embedding).
        pooling_heads: heads of the attentive pooling.

    Call arguments:
        inputs: dict with ``"phonemes"`` (B, Tt) int ids.

    Returns:
        dict with ``"sequence"``, ``"embedding"`` and ``"mask"`` (B, Tt) bool.

    Example:

    >>> import numpy as np
    >>> enc = PhonemeBiLSTM(vocabulary_size=42, embedding_dim=16, lstm_units=8)
    >>> enc({"phonemes": np.array([[5, 6, 0]])})["embedding"].shape
    (1, 16)

    Paper: the text encoder of ADML (arXiv 2505.16735).
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 256,
        token_dim: int = 128,
        lstm_units: int = 256,
        num_layers: int = 2,
        dropout: float = 0.1,
        pooling: str = "mean",
        pooling_heads: int = 4,
        **kwargs,
    ):
        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"PhonemeBiLSTM: pooling must be one of {TEXT_POOLINGS}, got {pooling!r}")
        phonemes = keras.Input((None,), dtype="int32", name="phonemes")
        mask = PaddingMask(name="padding_mask")(phonemes)
        x = keras.layers.Embedding(vocabulary_size, token_dim, name="token_embedding")(phonemes)
        for i in range(num_layers):
            x = keras.layers.Bidirectional(
                keras.layers.LSTM(lstm_units, return_sequences=True), name=f"bilstm_{i}"
            )(x, mask=mask)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
        sequence = MaskedDense(embedding_dim, name="sequence")(x, mask=mask)
        if pooling == "attention":
            embedding = MaskedAttentionPooling(pooling_heads, name="embedding")(sequence, mask=mask)
        else:
            embedding = MaskedAveragePooling(name="embedding")(sequence, mask=mask)
        super().__init__(
            inputs={"phonemes": phonemes},
            outputs={"sequence": sequence, "embedding": embedding, "mask": mask},
            **kwargs,
        )
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.token_dim = int(token_dim)
        self.lstm_units = int(lstm_units)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.pooling = pooling
        self.pooling_heads = int(pooling_heads)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "token_dim": self.token_dim,
            "lstm_units": self.lstm_units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "pooling": self.pooling,
            "pooling_heads": self.pooling_heads,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
