import os

import keras
import numpy as np
import pytest

from kerasadml.layers.anchor_aware_proxy import AnchorAwareProxy
from tests.helpers import roundtrip, to_numpy, unit_rows


def _np_neighbours(z, k):
    zn = unit_rows(z)
    s = zn @ zn.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_attention_proxy(layer, z, residual, normalize):
    wq, bq, wk, bk, wv, bv, wo, bo = [
        np.asarray(w, "float64") for w in layer.attention.get_weights()
    ]
    d = z.shape[1]
    h, kd = layer.num_heads, layer.key_dim
    # keras MultiHeadAttention: (D, heads, key_dim) kernels, (heads, key_dim) biases,
    # output kernel (heads, key_dim, D) and bias (D,).
    assert wq.shape == wk.shape == wv.shape == (d, h, kd)
    assert bq.shape == bk.shape == bv.shape == (h, kd)
    assert wo.shape == (h, kd, d) and bo.shape == (d,)
    idx = _np_neighbours(z, layer.k)
    z = z.astype("float64")
    group = np.concatenate([z[:, None, :], z[idx]], axis=1)  # (N, k+1, D)
    q = np.einsum("nd,dhe->nhe", z, wq) + bq  # (N, h, kd)
    key = np.einsum("nsd,dhe->nshe", group, wk) + bk  # (N, k+1, h, kd)
    val = np.einsum("nsd,dhe->nshe", group, wv) + bv
    logits = np.einsum("nhe,nshe->nhs", q, key) / np.sqrt(kd)
    att = _softmax(logits, axis=-1)  # (N, h, k+1)
    heads = np.einsum("nhs,nshe->nhe", att, val)
    out = np.einsum("nhe,hed->nd", heads, wo) + bo
    if residual:
        out = out + z
    if normalize:
        out = unit_rows(out)
    return out, att.mean(axis=1)


def test_neighbor_indices_match_numpy_argsort():
    z = np.random.randn(12, 8).astype("float32")
    layer = AnchorAwareProxy(k=4)
    idx = to_numpy(layer.neighbor_indices(z))
    assert idx.shape == (12, 4)
    np.testing.assert_array_equal(idx, _np_neighbours(z, 4))
    assert not np.any(idx == np.arange(12)[:, None])  # self is never a neighbour


def test_neighbor_indices_skip_masked_items():
    z = np.random.randn(10, 8).astype("float32")
    mask = np.array([True] * 7 + [False] * 3)
    idx = to_numpy(AnchorAwareProxy(k=3).neighbor_indices(z, mask=mask))
    np.testing.assert_array_equal(idx[:7], _np_neighbours(z[:7], 3))


@pytest.mark.parametrize("residual,normalize", [(True, True), (False, False), (True, False)])
def test_attention_proxy_matches_numpy_reference(residual, normalize):
    z = np.random.randn(9, 16).astype("float32")
    layer = AnchorAwareProxy(k=3, num_heads=2, key_dim=4, residual=residual, normalize=normalize)
    # non-zero biases so that they are checked too
    layer.build((None, 16))
    layer.attention.set_weights(
        [
            w + 0.1 * np.random.randn(*w.shape).astype("float32")
            for w in layer.attention.get_weights()
        ]
    )
    proxies, scores = layer(z)
    ref_p, ref_s = _np_attention_proxy(layer, z, residual, normalize)
    np.testing.assert_allclose(to_numpy(proxies), ref_p, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(scores), ref_s, rtol=1e-4, atol=1e-6)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(to_numpy(proxies), axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("normalize", [True, False])
def test_mean_aggregation_matches_numpy(normalize):
    z = np.random.randn(8, 5).astype("float32")
    layer = AnchorAwareProxy(k=2, aggregation="mean", normalize=normalize)
    proxies, scores = layer(z)
    idx = _np_neighbours(z, 2)
    ref = (z + z[idx[:, 0]] + z[idx[:, 1]]) / 3.0
    if normalize:
        ref = unit_rows(ref)
    np.testing.assert_allclose(to_numpy(proxies), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(scores), np.full((8, 3), 1 / 3), rtol=1e-6)
    assert layer.trainable_weights == []


@pytest.mark.parametrize("aggregation", ["attention", "mean"])
def test_scores_rows_sum_to_one(aggregation):
    layer = AnchorAwareProxy(k=3, num_heads=4, key_dim=8, aggregation=aggregation)
    proxies, scores = layer(np.random.randn(7, 12).astype("float32"))
    assert tuple(proxies.shape) == (7, 12) and tuple(scores.shape) == (7, 4)
    s = to_numpy(scores)
    assert np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("aggregation", ["attention", "mean"])
def test_padding_does_not_change_valid_proxies(aggregation):
    z = np.random.randn(6, 8).astype("float32")
    padded = np.concatenate([z, 10 * np.random.randn(4, 8).astype("float32")], axis=0)
    mask = np.array([True] * 6 + [False] * 4)
    layer = AnchorAwareProxy(k=2, num_heads=2, key_dim=4, aggregation=aggregation)
    p, s = layer(z)
    pp, sp = layer(padded, mask=mask)
    np.testing.assert_allclose(to_numpy(pp)[:6], to_numpy(p), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(sp)[:6], to_numpy(s), rtol=1e-5, atol=1e-6)


def test_fewer_valid_items_than_k_gives_zero_weight_to_padding():
    z = np.random.randn(5, 8).astype("float32")
    mask = np.array([True, True, False, False, False])
    layer = AnchorAwareProxy(k=3, num_heads=2, key_dim=4)
    _, s = layer(z, mask=mask)
    s = to_numpy(s)
    # each valid anchor has one valid neighbour (slot 1) and two invalid slots
    np.testing.assert_allclose(s[:2, 2:], 0.0, atol=1e-7)
    np.testing.assert_allclose(s[:2].sum(axis=1), 1.0, rtol=1e-5)


def test_jit_compiled_call_matches_eager():
    z = np.random.randn(8, 6).astype("float32")
    inputs = keras.Input((6,))
    layer = AnchorAwareProxy(k=2, num_heads=2, key_dim=3)
    proxies, scores = layer(inputs)
    model = keras.Model(inputs, [proxies, scores])
    got_p, got_s = model.predict(z, batch_size=8, verbose=0)
    p, s = layer(z)
    np.testing.assert_allclose(got_p, to_numpy(p), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_s, to_numpy(s), rtol=1e-5, atol=1e-6)


def test_rejects_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="k"):
        AnchorAwareProxy(k=0)
    with pytest.raises(ValueError, match="aggregation"):
        AnchorAwareProxy(aggregation="max")
    with pytest.raises(ValueError, match=r"k=4.*batch size 4"):
        AnchorAwareProxy(k=4)(np.random.randn(4, 3).astype("float32"))
    with pytest.raises(ValueError, match="rank 2"):
        AnchorAwareProxy(k=1)(np.random.randn(2, 4, 3).astype("float32"))


def test_config_roundtrip():
    layer = AnchorAwareProxy(
        k=5, num_heads=3, key_dim=7, residual=False, normalize=False, aggregation="mean", name="aa"
    )
    restored = roundtrip(layer)
    assert isinstance(restored, AnchorAwareProxy)
    assert restored.get_config() == layer.get_config()


def test_saved_model_restores_attention_weights(tmp_path):
    z = np.random.randn(8, 6).astype("float32")
    inputs = keras.Input((6,))
    proxies, scores = AnchorAwareProxy(k=2, num_heads=2, key_dim=3, name="aa")(inputs)
    model = keras.Model(inputs, [proxies, scores])
    path = os.path.join(tmp_path, "aa.keras")
    model.save(path)
    restored = keras.models.load_model(path)  # safe mode
    assert len(restored.get_layer("aa").trainable_weights) == 8
    for a, b in zip(model.predict(z, verbose=0), restored.predict(z, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_fit_lowers_a_loss():
    rng = np.random.RandomState(0)
    x = rng.randn(64, 8).astype("float32")
    y = unit_rows(rng.randn(64, 8)).astype("float32")
    inputs = keras.Input((8,))
    h = keras.layers.Dense(8)(inputs)
    proxies, _ = AnchorAwareProxy(k=2, num_heads=2, key_dim=4, name="aa")(h)
    model = keras.Model(inputs, proxies)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = [to_numpy(w).copy() for w in model.get_layer("aa").trainable_weights]
    history = model.fit(x, y, batch_size=16, epochs=15, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.9 * losses[0]
    after = [to_numpy(w) for w in model.get_layer("aa").trainable_weights]
    assert all(np.abs(a - b).max() > 0 for a, b in zip(after, before))
