import keras
import numpy as np
import pytest

from kerasadml.losses.asyp_adams import AsyPAdaMS
from kerasadml.losses.base import reduce_loss
from tests.helpers import (
    backend_name,
    compiled,
    roundtrip,
    to_numpy,
    unit_rows,
    value_and_grad,
)


def asyp_reference(x, y, p, py, mask, pmask, alphas, betas, lams, positive_proxies_only=True):
    """Loop-based AsyP in float64: returns (per-sample values, L)."""
    sim = unit_rows(x.astype("float64")) @ unit_rows(p.astype("float64")).T
    pos_terms = []
    for q in range(len(p)):
        if not pmask[q]:
            continue
        c = py[q]
        s = np.array([sim[i, q] for i in range(len(x)) if mask[i] and y[i] == c])
        if positive_proxies_only and s.size == 0:
            continue
        pos_terms.append(np.log1p(np.exp(-alphas[c] * (s - lams[c])).sum()) / alphas[c])
    pos_mean = np.mean(pos_terms) if pos_terms else 0.0
    neg = np.zeros(len(x))
    for i in range(len(x)):
        if not mask[i]:
            continue
        c = y[i]
        s = np.array([sim[i, q] for q in range(len(p)) if pmask[q] and py[q] != c])
        neg[i] = np.log1p(np.exp(betas[c] * (s - lams[c])).sum()) / betas[c]
    per_sample = np.where(mask, neg + pos_mean, 0.0)
    total = pos_mean + (neg[mask].mean() if mask.any() else 0.0)
    return per_sample, total


def _inv_softplus(v):
    return v + np.log(-np.expm1(-v))


def _set_parameters(loss, alphas, betas, lams):
    loss.alpha_raw.assign(_inv_softplus(alphas).astype("float32"))
    loss.beta_raw.assign(_inv_softplus(betas).astype("float32"))
    loss.lambda_raw.assign(np.arctanh(lams).astype("float32"))


def _batch(n=12, num_proxies=5, dim=6, num_classes=4, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, dim).astype("float32")
    p = rng.randn(num_proxies, dim).astype("float32")
    y = rng.randint(0, num_classes, size=n)
    py = np.arange(num_proxies) % num_classes
    return x, y, p, py


def test_initial_parameters_equal_the_defaults():
    loss = AsyPAdaMS(num_classes=5, alpha=2.0, beta=50.0, lambda_=0.5)
    np.testing.assert_allclose(to_numpy(loss.alphas()), np.full(5, 2.0), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(loss.betas()), np.full(5, 50.0), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(loss.lambdas()), np.full(5, 0.5), rtol=1e-6)
    assert [w.name for w in loss.trainable_weights] == ["alpha_raw", "beta_raw", "lambda_raw"]
    assert loss.built  # weights exist before any call or fit


@pytest.mark.parametrize("positive_proxies_only", [True, False])
def test_matches_numpy_reference_with_random_per_class_parameters(positive_proxies_only):
    x, y, p, py = _batch(num_proxies=6, num_classes=5)  # class 4 has a proxy ...
    y = np.where(y == 4, 0, y)  # ... but no data point: it only counts with "all proxies"
    rng = np.random.RandomState(1)
    alphas = rng.uniform(0.5, 4.0, 5)
    betas = rng.uniform(5.0, 60.0, 5)
    lams = rng.uniform(-0.5, 0.8, 5)
    mask = rng.rand(len(x)) > 0.25
    pmask = np.array([True, True, False, True, True, True])
    loss = AsyPAdaMS(num_classes=5, positive_proxies_only=positive_proxies_only)
    _set_parameters(loss, alphas, betas, lams)
    got = to_numpy(compiled(lambda *a: loss(*a[:4], mask=a[4], ref_mask=a[5]))(x, y, p, py, mask, pmask))
    expected, total = asyp_reference(x, y, p, py, mask, pmask, alphas, betas, lams, positive_proxies_only)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # The mean over the valid data points is the loss L of docs/methods.md §1.3.3.
    np.testing.assert_allclose(to_numpy(reduce_loss(got, mask)), total, rtol=1e-4)
    assert np.all(got[~mask] == 0.0)


def test_non_adaptive_has_no_weights_and_uses_constants():
    x, y, p, py = _batch()
    loss = AsyPAdaMS(num_classes=4, alpha=1.5, beta=20.0, lambda_=0.3, adaptive=False)
    assert loss.weights == []
    got = to_numpy(loss(x, y, p, py))
    ones = np.ones(4)
    expected, _ = asyp_reference(
        x, y, p, py, np.ones(12, bool), np.ones(5, bool), 1.5 * ones, 20 * ones, 0.3 * ones
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_padding_never_changes_a_result():
    x, y, p, py = _batch()
    loss = AsyPAdaMS(num_classes=4)
    fn = compiled(lambda *a: loss(*a[:4], mask=a[4], ref_mask=a[5]))
    base = to_numpy(fn(x, y, p, py, None, None))
    rng = np.random.RandomState(3)
    xp = np.concatenate([x, 100 * rng.randn(4, 6).astype("float32")])
    yp = np.concatenate([y, [0, 1, -1, 99]])  # out-of-range labels are fine where masked
    pp = np.concatenate([p, rng.randn(2, 6).astype("float32")])
    ppy = np.concatenate([py, [1, 123]])
    got = to_numpy(fn(xp, yp, pp, ppy, np.arange(16) < 12, np.arange(7) < 5))
    np.testing.assert_allclose(got[:12], base, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[12:], 0.0)


def test_out_of_range_labels_raise_when_concrete():
    x, y, p, py = _batch()
    loss = AsyPAdaMS(num_classes=4)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        loss(x, np.where(np.arange(12) == 3, 4, y), p, py)
    with pytest.raises(ValueError, match="proxy_labels"):
        loss(x, y, p, np.array([0, 1, 2, 3, -1]))


def test_out_of_range_labels_are_clipped_inside_jit():
    x, y, p, py = _batch()
    loss = AsyPAdaMS(num_classes=4, adaptive=False)
    bad = np.where(np.arange(12) == 3, 7, y).astype("int32")
    if backend_name() == "jax":
        import jax

        fn = jax.jit(lambda *a: loss(*a))
    else:
        import tensorflow as tf

        fn = tf.function(lambda *a: loss(*a))
    got = to_numpy(fn(x, bad, p, py.astype("int32")))
    assert got.shape == (12,) and np.all(np.isfinite(got))


def test_gradient_reaches_every_per_class_parameter():
    x, y, p, py = _batch()
    loss = AsyPAdaMS(num_classes=4)
    raw = [to_numpy(v) for v in loss.trainable_variables]

    def fn(a, b, lam):
        values, _ = loss.stateless_call([a, b, lam], [], x, y, p, py)
        return keras.ops.mean(values)

    value, grads = value_and_grad(compiled(fn), *raw)
    np.testing.assert_allclose(value, to_numpy(keras.ops.mean(loss(x, y, p, py))), rtol=1e-6)
    for g in grads:
        assert np.all(np.isfinite(g))
        assert np.abs(g).max() > 0
    # Also the embeddings and the proxies receive gradients.
    _, (gx, gp) = value_and_grad(compiled(lambda a, b: keras.ops.mean(loss(a, y, b, py))), x, p)
    assert np.abs(gx).max() > 0 and np.abs(gp).max() > 0


@keras.saving.register_keras_serializable(package="kerasadml_tests")
class ProxyTestModel(keras.Model):
    """A tiny model that owns an encoder and an AsyPAdaMS loss; the proxies are fixed."""

    def __init__(self, num_classes=3, dim=4, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dim = dim
        self.encoder = keras.layers.Dense(dim, name="encoder")
        self.proxy_loss = AsyPAdaMS(num_classes, name="proxy_loss")

    def call(self, x):
        return self.encoder(x)

    def proxies(self):
        return keras.ops.eye(self.num_classes, self.dim)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        values = self.proxy_loss(y_pred, y, self.proxies(), keras.ops.arange(self.num_classes))
        return reduce_loss(values, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dim": self.dim})
        return config


def _data():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, size=48)
    x = (np.eye(3)[y] @ rng.randn(3, 8) + 0.5 * rng.randn(48, 8)).astype("float32")
    return x, y


def test_fit_trains_the_parameters_and_save_load_restores_them(tmp_path):
    x, y = _data()
    model = ProxyTestModel()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(x, y, batch_size=16, epochs=15, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0]
    alphas = to_numpy(model.proxy_loss.alphas())
    betas = to_numpy(model.proxy_loss.betas())
    lambdas = to_numpy(model.proxy_loss.lambdas())
    for trained, default in ((alphas, 2.0), (betas, 50.0), (lambdas, 0.5)):
        assert np.abs(trained - default).max() > 1e-3  # the per-class parameters trained
    assert np.ptp(alphas) > 0  # ... each class its own

    path = tmp_path / "proxy_model.keras"
    model.save(path)
    restored = keras.saving.load_model(
        path, custom_objects={"ProxyTestModel": ProxyTestModel, "AsyPAdaMS": AsyPAdaMS}
    )
    np.testing.assert_allclose(to_numpy(restored.proxy_loss.alphas()), alphas, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(restored.proxy_loss.betas()), betas, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(restored.proxy_loss.lambdas()), lambdas, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(restored(x)), to_numpy(model(x)), rtol=1e-5, atol=1e-6)


def test_build_call_from_owner_and_serialization_roundtrip():
    loss = AsyPAdaMS(num_classes=7, alpha=1.0, beta=30.0, lambda_=0.2, adaptive=True, name="adams")
    loss.build((None, 8))  # what an owning model does; the weights already exist
    restored = roundtrip(loss)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(to_numpy(restored.alphas()), np.ones(7), rtol=1e-6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        AsyPAdaMS(num_classes=0)
    with pytest.raises(ValueError, match="lambda_"):
        AsyPAdaMS(num_classes=3, lambda_=1.0)
    with pytest.raises(ValueError, match="proxies"):
        AsyPAdaMS(num_classes=3)(np.zeros((2, 4)), np.array([0, 1]), np.zeros((4,)), np.array([0]))
