"""FeatureTower's normalisation and the L2Normalize layer kept for saved configs."""

import keras
import numpy as np

from kerasadml.encoders import FeatureTower, L2Normalize
from tests.helpers import to_numpy


def test_feature_tower_ends_in_unit_normalization():
    tower = FeatureTower(6, hidden_units=8, embedding_dim=4)
    assert type(tower.get_layer("l2")) is keras.layers.UnitNormalization
    out = to_numpy(tower(np.random.randn(3, 6).astype("float32")))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_l2normalize_is_kept_for_saved_configs():
    # configs that name the old L2Normalize layer (with its ``epsilon``) still
    # deserialise, as a UnitNormalization with the old numerics
    old = {
        "module": "kerasadml.encoders.feature_tower",
        "class_name": "L2Normalize",
        "config": {"name": "l2", "trainable": True, "dtype": "float32", "epsilon": 1e-12},
        "registered_name": "kerasadml>L2Normalize",
    }
    layer = keras.saving.deserialize_keras_object(old)
    assert isinstance(layer, L2Normalize) and isinstance(layer, keras.layers.UnitNormalization)
    assert layer.epsilon == 1e-12 and layer.get_config()["epsilon"] == 1e-12
    x = np.array([[3.0, 4.0], [0.0, 0.0], [3e-8, 4e-8]], "float32")
    expected = x / np.sqrt(np.maximum((x.astype("float64") ** 2).sum(1, keepdims=True), 1e-12))
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-6, atol=1e-7)
    # the same as UnitNormalization but for rows of norm below sqrt(epsilon) = 1e-6
    unit = keras.layers.UnitNormalization()(x)
    np.testing.assert_allclose(to_numpy(layer(x))[:2], to_numpy(unit)[:2], rtol=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(again, L2Normalize) and again.epsilon == 1e-12
