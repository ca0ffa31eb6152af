import os

import keras
import numpy as np
import pytest

from kerasadml.losses.aam_softmax import AAMSoftmax
from tests.helpers import class_blobs, roundtrip, to_numpy, value_and_grad


def _np_aam(e, w, y, s, m, easy_margin):
    e = e.astype("float64")
    w = w.astype("float64")
    cos = (e / np.linalg.norm(e, axis=1, keepdims=True)) @ (
        w / np.linalg.norm(w, axis=0, keepdims=True)
    )
    out = np.empty(len(y))
    for b in range(len(y)):
        logits = s * cos[b].copy()
        c = cos[b, y[b]]
        theta = np.arccos(np.clip(c, -1, 1))
        if easy_margin:
            target = np.cos(theta + m) if c > 0 else c
        else:
            target = np.cos(theta + m) if theta + m < np.pi else c - np.sin(np.pi - m) * m
        logits[y[b]] = s * target
        out[b] = np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[y[b]]
    return out


def _setup(c=5, d=8, b=7, **kw):
    rng = np.random.RandomState(0)
    layer = AAMSoftmax(num_classes=c, **kw)
    layer.build((None, d))
    e = rng.randn(b, d).astype("float32")
    y = rng.randint(0, c, size=b)
    w = to_numpy(layer.kernel)
    e[0] = -w[:, y[0]] * 3  # theta_y = pi: the fallback branch
    e[1] = w[:, y[1]] + 0.01 * rng.randn(d)  # theta_y ~ 0
    return layer, e, y


@pytest.mark.parametrize("easy_margin", [False, True])
@pytest.mark.parametrize("s,m", [(30.0, 0.2), (16.0, 0.5)])
def test_per_sample_values_match_numpy(easy_margin, s, m):
    layer, e, y = _setup(scale=s, margin=m, easy_margin=easy_margin)
    got = to_numpy(layer(e, y))
    ref = _np_aam(e, to_numpy(layer.kernel), y, s, m, easy_margin)
    assert got.shape == (7,)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_zero_margin_is_plain_softmax_cross_entropy():
    layer, e, y = _setup(margin=0.0)
    logits = to_numpy(layer.logits(e)).astype("float64")
    ref = np.log(np.exp(logits).sum(1)) - logits[np.arange(len(y)), y]
    np.testing.assert_allclose(to_numpy(layer(e, y)), ref, rtol=1e-4, atol=1e-4)


def test_gradient_is_finite_at_extreme_angles():
    layer, e, y = _setup()
    e[2] = to_numpy(layer.kernel)[:, y[2]]  # cos exactly ~1
    _, (grad,) = value_and_grad(lambda x: keras.ops.sum(layer(x, y)), e)
    assert np.all(np.isfinite(grad))


def test_mask_and_label_checks():
    layer, e, y = _setup()
    mask = np.array([True, True, False, True, True, False, True])
    bad = y.copy()
    bad[2] = 50
    got = to_numpy(layer(e, bad, mask=mask))
    np.testing.assert_allclose(got, np.where(mask, to_numpy(layer(e, y)), 0.0), rtol=1e-6)
    with pytest.raises(ValueError, match="labels must lie"):
        layer(e, bad)
    with pytest.raises(ValueError, match="num_classes"):
        AAMSoftmax(num_classes=1)


def test_config_roundtrip():
    layer = AAMSoftmax(num_classes=9, scale=20.0, margin=0.3, easy_margin=True, name="aam")
    restored = roundtrip(layer)
    assert isinstance(restored, AAMSoftmax)
    assert restored.get_config() == layer.get_config()


def _model(c=4, d=8):
    emb = keras.Input((d,))
    lab = keras.Input((), dtype="int32")
    h = keras.layers.Dense(d, name="enc")(emb)
    out = AAMSoftmax(num_classes=c, scale=16.0, margin=0.2, name="aam")(h, lab)
    return keras.Model([emb, lab], out)


def test_fit_lowers_the_loss():
    x, y = class_blobs()
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=lambda y_true, y_pred: y_pred)
    k0 = to_numpy(model.get_layer("aam").kernel).copy()
    history = model.fit(
        [x, y], np.zeros(len(x), "float32"), batch_size=16, epochs=10, verbose=0, shuffle=False
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert np.abs(to_numpy(model.get_layer("aam").kernel) - k0).max() > 1e-3


def test_saved_model_restores_kernel(tmp_path):
    x, y = class_blobs(n=8)
    model = _model()
    path = os.path.join(tmp_path, "aam.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(
        to_numpy(restored.get_layer("aam").kernel), to_numpy(model.get_layer("aam").kernel)
    )
    np.testing.assert_allclose(
        restored.predict([x, y], verbose=0), model.predict([x, y], verbose=0), rtol=1e-6
    )
