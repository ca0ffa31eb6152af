import keras
import numpy as np
import pytest

from kerasadml.encoders import ECAPATDNN, FeatureTower, PhonemeBiLSTM
from tests.helpers import to_numpy


def _tiny_ecapa():
    return ECAPATDNN(channels=16, embedding_dim=8, scale=4, se_channels=4, attention_channels=4)


def test_ecapa_paper_size_parameter_count():
    # docs/methods.md §1.1.2: C=256 with 40-d input is about 1.8 M parameters (adml_base setting).
    model = ECAPATDNN(channels=256, embedding_dim=256, mfa_channels=512)
    assert 1.6e6 < model.count_params() < 2.0e6, model.count_params()


def test_ecapa_shapes_and_padding_invariance():
    model = _tiny_ecapa()
    feats = np.random.randn(1, 30, 40).astype("float32")
    padded = np.concatenate([feats, 5 * np.random.randn(1, 11, 40).astype("float32")], axis=1)
    # predict_on_batch: one compiled graph per shape (fast on JAX) instead of eager ops
    a = model.predict_on_batch({"features": feats, "mask": np.ones((1, 30), bool)})
    b = model.predict_on_batch({"features": padded, "mask": np.arange(41)[None] < 30})
    assert a["sequence"].shape == (1, 30, 8) and a["embedding"].shape == (1, 8)
    np.testing.assert_allclose(to_numpy(b["embedding"]), to_numpy(a["embedding"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(b["sequence"])[:, :30], to_numpy(a["sequence"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(b["sequence"])[:, 30:], 0.0)


def test_bilstm_padding_invariance_and_pooling():
    model = PhonemeBiLSTM(vocabulary_size=20, embedding_dim=8, token_dim=6, lstm_units=5)
    a = model.predict_on_batch({"phonemes": np.array([[3, 4, 5]], "int32")})
    b = model.predict_on_batch({"phonemes": np.array([[3, 4, 5, 0, 0]], "int32")})
    np.testing.assert_allclose(to_numpy(b["embedding"]), to_numpy(a["embedding"]), rtol=1e-5, atol=1e-6)
    seq = to_numpy(b["sequence"])
    np.testing.assert_array_equal(seq[:, 3:], 0.0)
    np.testing.assert_allclose(to_numpy(b["embedding"]), seq[:, :3].mean(1), rtol=1e-5, atol=1e-6)
    assert to_numpy(b["mask"]).tolist() == [[True, True, True, False, False]]


def test_feature_tower_outputs_unit_vectors():
    tower = FeatureTower(12, hidden_units=16, embedding_dim=4)
    out = to_numpy(tower(np.random.randn(5, 12).astype("float32")))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_encoders_roundtrip_through_config():
    for model, batch in (
        (_tiny_ecapa(), {"features": np.random.randn(2, 20, 40).astype("float32"), "mask": np.ones((2, 20), bool)}),
        (PhonemeBiLSTM(vocabulary_size=20, embedding_dim=8, token_dim=6, lstm_units=5), {"phonemes": np.array([[3, 4, 0]], "int32")}),
        (FeatureTower(12, hidden_units=16, embedding_dim=4), np.random.randn(3, 12).astype("float32")),
    ):
        ref = model.predict_on_batch(batch)
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
        clone.set_weights(model.get_weights())
        out = clone.predict_on_batch(batch)
        for r, o in zip(keras.tree.flatten(ref), keras.tree.flatten(out)):
            np.testing.assert_allclose(to_numpy(o), to_numpy(r), rtol=1e-5, atol=1e-6)


def test_ecapa_fit_lowers_loss():
    enc = _tiny_ecapa()
    feats = keras.Input((None, 40))
    mask = keras.Input((None,), dtype="bool")
    emb = enc({"features": feats, "mask": mask})["embedding"]
    model = keras.Model([feats, mask], keras.layers.Dense(3)(emb))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    y = np.arange(24) % 3
    x = np.random.randn(24, 20, 40).astype("float32") * 0.1 + y[:, None, None]
    m = np.ones((24, 20), bool)
    history = model.fit([x, m], y, epochs=6, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]


def _attention_bilstm(**kwargs):
    return PhonemeBiLSTM(
        vocabulary_size=20, embedding_dim=8, token_dim=6, lstm_units=5, pooling="attention", pooling_heads=2, **kwargs
    )


def test_bilstm_attention_pooling_shapes_and_padding_invariance():
    model = _attention_bilstm()
    assert model.get_layer("embedding").__class__.__name__ == "MaskedAttentionPooling"
    assert model.get_layer("embedding").num_heads == 2
    ids = np.array([[3, 4, 5, 0], [6, 7, 0, 0]], "int32")
    a = model.predict_on_batch({"phonemes": ids})
    assert a["embedding"].shape == (2, 8) and a["sequence"].shape == (2, 4, 8)
    assert np.all(np.isfinite(to_numpy(a["embedding"])))
    b = model.predict_on_batch({"phonemes": np.pad(ids, ((0, 0), (0, 3)))})
    np.testing.assert_allclose(to_numpy(b["embedding"]), to_numpy(a["embedding"]), rtol=1e-5, atol=1e-6)
    # each row alone gives the same embedding as in the padded batch
    c = model.predict_on_batch({"phonemes": ids[1:, :2]})
    np.testing.assert_allclose(to_numpy(c["embedding"]), to_numpy(a["embedding"])[1:], rtol=1e-5, atol=1e-6)
    # attentive pooling is not the masked mean of the sequence (random score weights)
    seq = to_numpy(a["sequence"])
    means = np.stack([seq[0, :3].mean(0), seq[1, :2].mean(0)])
    assert not np.allclose(to_numpy(a["embedding"]), means, atol=1e-4)


def test_bilstm_pooling_config_roundtrip_and_bad_pooling():
    model = _attention_bilstm()
    config = model.get_config()
    assert config["pooling"] == "attention" and config["pooling_heads"] == 2
    mean = PhonemeBiLSTM(vocabulary_size=20, embedding_dim=8, token_dim=6, lstm_units=5)
    assert mean.get_config()["pooling"] == "mean"
    batch = {"phonemes": np.array([[3, 4, 0], [5, 0, 0]], "int32")}
    ref = model.predict_on_batch(batch)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert clone.pooling == "attention" and clone.pooling_heads == 2
    clone.set_weights(model.get_weights())
    out = clone.predict_on_batch(batch)
    for r, o in zip(keras.tree.flatten(ref), keras.tree.flatten(out)):
        np.testing.assert_allclose(to_numpy(o), to_numpy(r), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        PhonemeBiLSTM(vocabulary_size=20, pooling="max")
