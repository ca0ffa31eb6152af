"""kerasadml/layers/modality_discriminator.py: ``ModalityAdversarial``, the modality
discriminator (a head returning ``(loss, accuracy)``; it was a loss module until it moved)."""

import keras
import numpy as np
import pytest

from kerasadml.layers import ModalityAdversarial
from tests.helpers import roundtrip, to_numpy, value_and_grad


def adversarial_reference(layer, audio, text, audio_mask, text_mask):
    """Numpy forward pass with the layer's weights: (masked BCE, accuracy)."""
    w1, b1 = (to_numpy(v).astype("float64") for v in layer.hidden.weights)
    w2, b2 = (to_numpy(v).astype("float64") for v in layer.classifier.weights)
    x = np.concatenate([audio, text]).astype("float64")
    y = np.concatenate([np.ones(len(audio)), np.zeros(len(text))])
    m = np.concatenate([audio_mask, text_mask])
    z = (np.maximum(x @ w1 + b1, 0.0) @ w2 + b2)[:, 0]
    p = 1.0 / (1.0 + np.exp(-z))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    correct = (p > 0.5) == (y > 0.5)
    return bce[m].mean(), correct[m].mean()


def _features(n=7, m=5, dim=6, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, dim).astype("float32") + 0.5, rng.randn(m, dim).astype("float32") - 0.5


def test_matches_numpy_reference_with_masks():
    audio, text = _features()
    am = np.array([1, 1, 0, 1, 1, 1, 0], bool)
    tm = np.array([1, 0, 1, 1, 1], bool)
    layer = ModalityAdversarial(hidden_units=8, lambda_=0.1)
    layer.build((None, 6))
    loss, acc = layer(audio, text, audio_mask=am, text_mask=tm)
    ref_loss, ref_acc = adversarial_reference(layer, audio, text, am, tm)
    np.testing.assert_allclose(to_numpy(loss), ref_loss, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(acc), ref_acc, rtol=1e-6)
    # Padding never changes a result.
    padded_audio = np.concatenate([audio[am], 100 * np.ones((3, 6), "float32")])
    loss2, acc2 = layer(padded_audio, text[tm], audio_mask=np.arange(8) < 5)
    np.testing.assert_allclose(to_numpy(loss2), ref_loss, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(acc2), ref_acc, rtol=1e-6)


@pytest.mark.parametrize("lam", [0.1, 1.0])
def test_input_gradient_is_minus_lambda_times_the_plain_gradient(lam):
    audio, text = _features()
    layer = ModalityAdversarial(hidden_units=8, lambda_=lam)
    layer.build((None, 6))
    hidden = keras.layers.Dense(8, activation="relu")
    logit = keras.layers.Dense(1)
    hidden.build((None, 6))
    logit.build((None, 8))
    hidden.set_weights(layer.hidden.get_weights())
    logit.set_weights(layer.classifier.get_weights())

    def plain(a, t):
        z = keras.ops.squeeze(logit(hidden(keras.ops.concatenate([a, t]))), -1)
        y = keras.ops.concatenate([keras.ops.ones((7,)), keras.ops.zeros((5,))])
        return keras.ops.mean(keras.ops.softplus(z) - y * z)

    value, (ga, gt) = value_and_grad(lambda a, t: layer(a, t, training=True)[0], audio, text)
    plain_value, (pa, pt) = value_and_grad(plain, audio, text)
    np.testing.assert_allclose(value, plain_value, rtol=1e-5)
    assert np.abs(pa).max() > 1e-4
    np.testing.assert_allclose(ga, -lam * pa, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(gt, -lam * pt, rtol=1e-4, atol=1e-7)


def test_schedule_ramps_the_reversal_in_training_calls():
    audio, text = _features()
    layer = ModalityAdversarial(hidden_units=4, lambda_=0.5, schedule_steps=10)
    layer.build((None, 6))
    assert float(to_numpy(layer.reversal.current_lambda())) == 0.0
    layer(audio, text, training=True)
    layer(audio, text, training=False)
    np.testing.assert_allclose(
        to_numpy(layer.reversal.current_lambda()), 0.5 * (2 / (1 + np.exp(-1.0)) - 1), rtol=1e-5
    )


def test_roundtrip_and_build_from_first_call(tmp_path):
    layer = ModalityAdversarial(hidden_units=12, lambda_=0.2, schedule_steps=100, name="adv")
    restored = roundtrip(layer)
    assert restored.get_config() == layer.get_config()
    audio, text = _features()
    auto = ModalityAdversarial(hidden_units=12)
    loss, acc = auto(audio, text)  # built from audio's shape
    assert auto.built and tuple(auto.hidden.kernel.shape) == (6, 12)
    assert 0.0 <= float(to_numpy(acc)) <= 1.0 and np.isfinite(to_numpy(loss))
    with pytest.raises(ValueError, match="text"):
        auto(audio, text[None])


@keras.saving.register_keras_serializable(package="kerasadml_tests")
class AdversaryTestModel(keras.Model):
    """Owns only the adversary; its inputs are constant features (fixed encoders)."""

    def __init__(self, dim=6, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.adversary = ModalityAdversarial(hidden_units=16, lambda_=0.1, name="adversary")
        self.adversary.build((None, dim))

    def call(self, inputs):
        return inputs["audio"]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss, _ = self.adversary(x["audio"], x["text"], training=training)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim})
        return config


def test_fit_on_separable_fixed_features_raises_accuracy_and_saves(tmp_path):
    rng = np.random.RandomState(0)
    audio = rng.randn(64, 6).astype("float32")
    text = rng.randn(64, 6).astype("float32")
    audio[:, 0] += 2.0
    text[:, 0] -= 2.0
    model = AdversaryTestModel()
    model.adversary.classifier.kernel.assign(np.zeros((16, 1), "float32"))  # starts at chance
    _, before = model.adversary(audio, text)
    assert float(to_numpy(before)) == 0.5
    model.compile(optimizer=keras.optimizers.Adam(0.02))
    model.fit({"audio": audio, "text": text}, batch_size=32, epochs=15, verbose=0)
    loss, after = model.adversary(audio, text)
    assert float(to_numpy(after)) > 0.95
    assert float(to_numpy(loss)) < np.log(2.0)

    path = tmp_path / "adversary.keras"
    model.save(path)
    restored = keras.saving.load_model(path, custom_objects={"AdversaryTestModel": AdversaryTestModel})
    restored_loss, restored_acc = restored.adversary(audio, text)
    np.testing.assert_allclose(to_numpy(restored_loss), to_numpy(loss), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(restored_acc), to_numpy(after))


def test_old_import_paths_and_registered_name_still_work():
    import kerasadml.losses
    import kerasadml.losses.modality_adversarial

    assert kerasadml.losses.ModalityAdversarial is ModalityAdversarial
    assert kerasadml.losses.modality_adversarial.ModalityAdversarial is ModalityAdversarial
    assert keras.saving.get_registered_name(ModalityAdversarial) == "kerasadml>ModalityAdversarial"
    # A config saved while the class lived in kerasadml.losses still loads.
    layer = ModalityAdversarial(hidden_units=4, lambda_=0.2, name="adv")
    config = keras.saving.serialize_keras_object(layer)
    config["module"] = "kerasadml.losses.modality_adversarial"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is ModalityAdversarial and restored.get_config() == layer.get_config()


def test_computes_in_float32_under_mixed_precision_and_attaches_no_mask():
    audio, text = _features()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = ModalityAdversarial(hidden_units=4)
    finally:
        keras.config.set_dtype_policy(previous)
    assert layer.dtype_policy.name == "float32" and layer.hidden.dtype_policy.name == "float32"
    assert layer.supports_masking and layer.compute_mask(audio) is None
    loss, acc = layer(audio, text)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
