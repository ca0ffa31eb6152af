import keras
import numpy as np
import pytest

from kerasadml.layers.gradient_reversal import GradientReversal, dann_lambda
from tests.helpers import roundtrip, to_numpy, value_and_grad


def test_forward_is_exact_identity():
    x = np.random.randn(4, 7).astype("float32") * 1e3
    layer = GradientReversal(lambda_=0.3)
    np.testing.assert_array_equal(to_numpy(layer(x)), x)


@pytest.mark.parametrize("lam", [0.0, 0.1, 1.0, 2.5])
def test_gradient_is_minus_lambda_times_upstream(lam):
    x = np.random.randn(3, 5).astype("float32")
    upstream = np.random.randn(3, 5).astype("float32")
    layer = GradientReversal(lambda_=lam)

    def fn(t):
        return keras.ops.sum(layer(t) * upstream)

    value, (grad,) = value_and_grad(fn, x)
    np.testing.assert_allclose(value, np.sum(x * upstream), rtol=1e-5)
    np.testing.assert_allclose(grad, -lam * upstream, rtol=1e-6, atol=1e-7)


def test_scale_can_be_changed_after_build():
    x = np.random.randn(2, 3).astype("float32")
    layer = GradientReversal(lambda_=1.0)
    layer.scale.assign(0.25)
    _, (grad,) = value_and_grad(lambda t: keras.ops.sum(layer(t)), x)
    np.testing.assert_allclose(grad, -0.25 * np.ones_like(x), rtol=1e-6)


def test_dann_schedule_matches_formula_and_advances_in_training():
    layer = GradientReversal(lambda_=0.5, schedule_steps=10)
    x = np.zeros((1, 2), "float32")
    expected = []
    for step in range(4):
        p = step / 10
        expected.append(0.5 * (2 / (1 + np.exp(-10 * p)) - 1))
        np.testing.assert_allclose(to_numpy(layer.current_lambda()), expected[-1], rtol=1e-5)
        layer(x, training=True)
    layer(x, training=False)  # inference does not advance the schedule
    np.testing.assert_allclose(to_numpy(layer.step), 4.0)
    np.testing.assert_allclose(to_numpy(dann_lambda(1.0)), 2 / (1 + np.exp(-10)) - 1, rtol=1e-6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lambda_"):
        GradientReversal(lambda_=-1.0)
    with pytest.raises(ValueError, match="schedule_steps"):
        GradientReversal(schedule_steps=0)


def test_serialization_roundtrip():
    layer = GradientReversal(lambda_=0.2, schedule_steps=100, name="grl")
    restored = roundtrip(layer)
    assert restored.get_config() == layer.get_config()


def _one_sgd_step_encoder_update(lam):
    keras.utils.set_random_seed(7)
    x = np.random.RandomState(0).randn(32, 4).astype("float32")
    y = (x[:, 0] > 0).astype("float32")[:, None]
    inputs = keras.Input((4,))
    enc = keras.layers.Dense(4, name="enc", kernel_initializer="identity")
    h = enc(inputs)
    if lam is not None:
        h = GradientReversal(lambda_=lam)(h)
    clf = keras.layers.Dense(1, activation="sigmoid", name="clf", kernel_initializer="ones")
    model = keras.Model(inputs, clf(h))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False)
    return to_numpy(enc.kernel) - np.eye(4), to_numpy(clf.kernel)


def test_fit_reverses_encoder_update_and_keeps_classifier_update():
    """Through ``fit``: the encoder's update is -lambda times the plain one, while the
    classifier (in front of the reversal) updates exactly as without it."""
    plain_enc, plain_clf = _one_sgd_step_encoder_update(None)
    rev_enc, rev_clf = _one_sgd_step_encoder_update(0.5)
    assert np.abs(plain_enc).max() > 1e-4
    np.testing.assert_allclose(rev_enc, -0.5 * plain_enc, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(rev_clf, plain_clf, rtol=1e-5, atol=1e-7)
