"""The per-modality projection tower of AADML (pre-extracted features -> common space)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasadml")
class L2Normalize(keras.layers.Layer):
    """Rows divided by their L2 norm (with an epsilon, so zero rows stay finite).

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(L2Normalize()(np.array([[3.0, 4.0]]))).tolist()
    [[0.6, 0.8]]
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(inputs), axis=-1, keepdims=True), self.epsilon))
        return inputs / norm

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config


@keras.saving.register_keras_serializable(package="kerasadml")
class FeatureTower(keras.Model):
    """Dense(hidden) -> BatchNorm -> ReLU -> Dropout -> Dense(D) -> L2 normalisation.

    A functional model (docs/methods.md §2.1, reconstruction); one per modality.

    Args:
        input_dim: width of the pre-extracted features (128 audio, 1024 visual).
        hidden_units: width of the hidden layer (1024).
        embedding_dim: ``D`` of the common space (128).
        dropout: dropout rate after the hidden layer.

    Call arguments:
        inputs: (B, input_dim) features.

    Returns:
        (B, D) unit-norm embeddings.

    Example:

    >>> import numpy as np
    >>> FeatureTower(128, hidden_units=32, embedding_dim=8)(np.zeros((2, 128), "float32")).shape
    (2, 8)

    Paper: AADML, arXiv 2404.13789.
    """

    def __init__(
        self, input_dim: int, hidden_units: int = 1024, embedding_dim: int = 128, dropout: float = 0.2, **kwargs
    ):
        features = keras.Input((input_dim,), name="features")
        x = keras.layers.Dense(hidden_units, name="hidden")(features)
        x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
        x = keras.layers.ReLU(name="relu")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(embedding_dim, name="projection")(x)
        outputs = L2Normalize(name="l2")(x)
        super().__init__(inputs=features, outputs=outputs, **kwargs)
        self.input_dim = int(input_dim)
        self.hidden_units = int(hidden_units)
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_dim": self.input_dim,
            "hidden_units": self.hidden_units,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
