"""The per-modality projection tower of AADML (pre-extracted features -> common space)."""

from __future__ import annotations

import keras

from kerasadml.ops import L2_EPSILON, l2_normalize


@keras.saving.register_keras_serializable(package="kerasadml")
class L2Normalize(keras.layers.UnitNormalization):
    """Deprecated: kept only so that saved models and configs that name it still load.

    New code uses ``keras.layers.UnitNormalization`` (as :class:`FeatureTower` does). This
    thin subclass accepts the old ``epsilon`` argument and keeps the old numerics,
    ``x / sqrt(max(sum x^2, epsilon))`` (:func:`kerasadml.ops.l2_normalize`), which equal
    ``UnitNormalization``'s for every row of norm >= ``sqrt(epsilon)`` (1e-6).

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(L2Normalize()(np.array([[3.0, 4.0]]))).tolist()
    [[0.6, 0.8]]
    """

    def __init__(self, epsilon: float = L2_EPSILON, axis: int = -1, **kwargs):
        super().__init__(axis=axis, **kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return l2_normalize(inputs, axis=self.axis, epsilon=self.epsilon)

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config


@keras.saving.register_keras_serializable(package="kerasadml")
class FeatureTower(keras.Model):
    """Dense(hidden) -> BatchNorm -> ReLU -> Dropout -> Dense(D) -> ``UnitNormalization``.

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
        outputs = keras.layers.UnitNormalization(name="l2")(x)
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
