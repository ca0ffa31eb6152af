import os

import keras
import numpy as np
import pytest

from kerasadml.losses.sphereface2 import SphereFace2
from tests.helpers import class_blobs, roundtrip, to_numpy, value_and_grad


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_bias(c, r, m, lam, t):
    z = lam / ((1 - lam) * (c - 1))
    ay = r * (2 * 0.5**t - 1 - m)
    ai = r * (2 * 0.5**t - 1 + m)
    return np.log(2 * z) - ai - np.log(1 - z + np.sqrt((1 - z) ** 2 + 4 * z * np.exp(ay - ai)))


def _np_forward(e, w, b, y, r, m, lam, t, lw):
    e = e.astype("float64")
    w = w.astype("float64")
    en = e / np.linalg.norm(e, axis=1, keepdims=True)
    wn = w / np.linalg.norm(w, axis=0, keepdims=True)
    cos = en @ wn
    onehot = np.eye(w.shape[1])[y]
    g = 2 * ((cos + 1) / 2) ** t - 1
    s = r * (g - m * (2 * onehot - 1)) + b
    loss = lw / r * (lam * onehot * _softplus(-s) + (1 - lam) * (1 - onehot) * _softplus(s)).sum(1)
    parts = {"en": en, "wn": wn, "cos": cos, "s": s, "onehot": onehot}
    parts["norm"] = np.linalg.norm(e, axis=1)
    return loss, parts


def _setup(c=5, d=8, b=6, **kw):
    rng = np.random.RandomState(0)
    layer = SphereFace2(num_classes=c, **kw)
    layer.build((None, d))
    e = rng.randn(b, d).astype("float32")
    y = rng.randint(0, c, size=b)
    return layer, e, y


def _params(layer):
    return {
        "r": layer.scale,
        "m": layer.margin,
        "lam": layer.lambda_,
        "t": layer.t,
        "lw": layer.loss_weight,
    }


@pytest.mark.parametrize(
    "c,r,m,lam,t", [(5, 40.0, 0.4, 0.7, 3.0), (100, 32.0, 0.2, 0.7, 3.0), (2, 30.0, 0.3, 0.5, 1.0)]
)
def test_bias_starts_at_the_closed_form(c, r, m, lam, t):
    layer = SphereFace2(num_classes=c, scale=r, margin=m, lambda_=lam, t=t)
    layer.build((None, 4))
    np.testing.assert_allclose(to_numpy(layer.bias), _np_bias(c, r, m, lam, t), rtol=1e-6)
    assert tuple(layer.kernel.shape) == (4, c) and tuple(layer.bias.shape) == ()
    assert len(layer.trainable_weights) == 2


@pytest.mark.parametrize(
    "kw", [{}, {"scale": 32.0, "margin": 0.2, "t": 2.0, "lambda_": 0.6, "loss_weight": 10.0}]
)
def test_per_sample_values_match_numpy(kw):
    layer, e, y = _setup(**kw)
    layer.bias.assign(0.3)
    got = to_numpy(layer(e, y))
    ref, _ = _np_forward(e, to_numpy(layer.kernel), 0.3, y, **_params(layer))
    assert got.shape == (6,)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # (B, 1) labels work the same way
    np.testing.assert_allclose(to_numpy(layer(e, y[:, None])), got, rtol=1e-6)


def test_logits_and_cosine():
    layer, e, _ = _setup()
    _, parts = _np_forward(e, to_numpy(layer.kernel), 0.0, np.zeros(6, int), **_params(layer))
    np.testing.assert_allclose(to_numpy(layer.cosine(e)), parts["cos"], rtol=1e-5, atol=1e-6)
    g = 2 * ((parts["cos"] + 1) / 2) ** layer.t - 1
    ref = layer.scale * g + to_numpy(layer.bias)
    np.testing.assert_allclose(to_numpy(layer.logits(e)), ref, rtol=1e-4, atol=1e-4)


def test_gradient_flows_through_cos_only():
    """d loss / d cos_i = r * d loss / d s_i, i.e. the gradient of the same formula with
    g's derivative replaced by 1 (OpenSphere's detached delta)."""
    layer, e, y = _setup(c=4, b=5, t=3.0)
    upstream = np.random.RandomState(1).rand(5).astype("float32")
    value, (grad,) = value_and_grad(lambda x: keras.ops.sum(layer(x, y) * upstream), e)
    ref, p = _np_forward(e, to_numpy(layer.kernel), to_numpy(layer.bias), y, **_params(layer))
    np.testing.assert_allclose(value, np.sum(ref * upstream), rtol=1e-4)
    r, lam, lw, t = layer.scale, layer.lambda_, layer.loss_weight, layer.t
    onehot, s, cos = p["onehot"], p["s"], p["cos"]
    dl_ds = lw / r * (-lam * onehot * _sigmoid(-s) + (1 - lam) * (1 - onehot) * _sigmoid(s))
    dl_dcos = upstream[:, None] * r * dl_ds  # identity in place of g'
    # d cos_i / d e = (w_i - cos_i e_hat) / |e|
    norm = p["norm"][:, None]
    expected = (dl_dcos @ p["wn"].T - (dl_dcos * cos).sum(1, keepdims=True) * p["en"]) / norm
    np.testing.assert_allclose(grad, expected, rtol=1e-3, atol=1e-5)
    # and it is not the gradient through g (t=3 makes g' differ from 1)
    full = dl_dcos * t * ((cos + 1) / 2) ** (t - 1)
    full = (full @ p["wn"].T - (full * cos).sum(1, keepdims=True) * p["en"]) / norm
    assert np.abs(full - expected).max() > 10 * np.abs(grad - expected).max()


def test_mask_zeroes_samples_and_skips_their_labels():
    layer, e, y = _setup()
    mask = np.array([True, False, True, True, False, True])
    y_bad = y.copy()
    y_bad[1] = 99  # masked: not checked
    got = to_numpy(layer(e, y_bad, mask=mask))
    full = to_numpy(layer(e, y))
    np.testing.assert_allclose(got, np.where(mask, full, 0.0), rtol=1e-6)
    assert np.all(got[~mask] == 0.0)


def test_out_of_range_labels_raise_eagerly_and_clip_in_jit():
    layer, e, _ = _setup(c=5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        layer(e, np.array([0, 1, 5, 2, 3, 4]))
    with pytest.raises(ValueError, match="labels"):
        layer(e, np.array([0, -1, 2, 2, 3, 4]))
    emb = keras.Input((8,))
    lab = keras.Input((), dtype="int32")
    model = keras.Model([emb, lab], layer(emb, lab))
    bad = np.array([0, 1, 7, 2, 3, -2], "int32")
    got = model.predict([e, bad], batch_size=6, verbose=0)
    np.testing.assert_allclose(got, to_numpy(layer(e, np.clip(bad, 0, 4))), rtol=1e-5)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        SphereFace2(num_classes=1)
    with pytest.raises(ValueError, match="lambda_"):
        SphereFace2(num_classes=3, lambda_=1.0)
    layer = SphereFace2(num_classes=3)
    with pytest.raises(ValueError, match="rank 2"):
        layer(np.zeros((2, 3, 4), "float32"), np.zeros((2,), "int32"))


def test_config_roundtrip():
    layer = SphereFace2(
        num_classes=7, scale=32.0, margin=0.2, lambda_=0.6, t=2.0, loss_weight=5.0, name="sf2"
    )
    restored = roundtrip(layer)
    assert isinstance(restored, SphereFace2)
    assert restored.get_config() == layer.get_config()


def _model(c=4, d=8):
    emb = keras.Input((d,))
    lab = keras.Input((), dtype="int32")
    h = keras.layers.Dense(d, name="enc")(emb)
    out = SphereFace2(num_classes=c, scale=16.0, margin=0.2, name="sf2")(h, lab)
    return keras.Model([emb, lab], out)


def test_fit_trains_kernel_and_bias_and_lowers_the_loss():
    x, y = class_blobs()
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=lambda y_true, y_pred: y_pred)
    sf2 = model.get_layer("sf2")
    k0, b0 = to_numpy(sf2.kernel).copy(), float(to_numpy(sf2.bias))
    history = model.fit(
        [x, y], np.zeros(len(x), "float32"), batch_size=16, epochs=10, verbose=0, shuffle=False
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert np.abs(to_numpy(sf2.kernel) - k0).max() > 1e-3
    assert abs(float(to_numpy(sf2.bias)) - b0) > 1e-4


def test_saved_model_restores_kernel_and_bias(tmp_path):
    x, y = class_blobs(n=8)
    model = _model()
    sf2 = model.get_layer("sf2")
    sf2.bias.assign(-1.25)
    sf2.kernel.assign(np.random.randn(8, 4).astype("float32"))
    path = os.path.join(tmp_path, "sf2.keras")
    model.save(path)
    restored = keras.models.load_model(path)  # safe mode
    rsf2 = restored.get_layer("sf2")
    np.testing.assert_array_equal(to_numpy(rsf2.kernel), to_numpy(sf2.kernel))
    np.testing.assert_allclose(to_numpy(rsf2.bias), -1.25)
    np.testing.assert_allclose(
        restored.predict([x, y], verbose=0), model.predict([x, y], verbose=0), rtol=1e-6
    )
