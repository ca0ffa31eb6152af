import keras
import numpy as np
import pytest

from kerasadml.losses.base import (
    MetricLoss,
    cosine_similarity_matrix,
    masked_mean,
    reduce_loss,
    validate_embeddings,
)
from kerasadml.losses.multi_similarity import MultiSimilarity, ProxyMS, log1p_sum_exp
from tests.helpers import compiled, roundtrip, to_numpy, unit_rows, value_and_grad


def ms_reference(x, y, r, ry, mask, rmask, alpha, beta, lam, exclude_self):
    """Loop-based Multi-Similarity in float64."""
    sim = unit_rows(x.astype("float64")) @ unit_rows(r.astype("float64")).T
    out = np.zeros(len(x))
    for i in range(len(x)):
        if not mask[i]:
            continue
        pos, neg = [], []
        for j in range(len(r)):
            if not rmask[j] or (exclude_self and i == j):
                continue
            (pos if ry[j] == y[i] else neg).append(sim[i, j])
        pos, neg = np.array(pos), np.array(neg)
        out[i] = np.log1p(np.exp(-alpha * (pos - lam)).sum()) / alpha
        out[i] += np.log1p(np.exp(beta * (neg - lam)).sum()) / beta
    return out


# ----------------------------------------------------------------- base helpers
def test_cosine_similarity_matrix_and_zero_rows():
    a = np.random.randn(4, 5).astype("float32")
    b = np.random.randn(3, 5).astype("float32")
    b[1] = 0.0
    got = to_numpy(cosine_similarity_matrix(a, b))
    expected = unit_rows(a) @ (b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-6)).T
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all(got[:, 1] == 0.0)


def test_masked_mean_and_reduce_loss():
    v = np.array([1.0, 2.0, np.inf, 4.0], "float32")
    m = np.array([True, True, False, True])
    np.testing.assert_allclose(to_numpy(masked_mean(v, m)), 7.0 / 3.0, rtol=1e-6)
    assert float(to_numpy(masked_mean(v, np.zeros(4, bool)))) == 0.0
    rows = np.arange(6, dtype="float32").reshape(2, 3)
    rmask = np.array([[True, False, True], [False, False, False]])
    np.testing.assert_allclose(to_numpy(masked_mean(rows, rmask, axis=1)), [1.0, 0.0])

    w = np.array([1.0, 3.0, 5.0, 0.0], "float32")
    np.testing.assert_allclose(to_numpy(reduce_loss(v, m, w)), (1 + 6) / 4.0, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(reduce_loss(np.array([1.0, 3.0]))), 2.0)
    assert float(to_numpy(reduce_loss(v, np.zeros(4, bool)))) == 0.0
    assert float(to_numpy(reduce_loss(np.array([1.0, 2.0]), sample_weight=np.zeros(2)))) == 0.0


def test_masked_mean_ignores_masked_infinities_and_their_gradient():
    v = np.array([1.0, 2.0, np.inf], "float32")
    value, (grad,) = value_and_grad(lambda t: masked_mean(t, np.array([1, 1, 0], bool)), v)
    np.testing.assert_allclose(value, 1.5)
    np.testing.assert_array_equal(grad, [0.5, 0.5, 0.0])


def test_validate_embeddings_names_argument_and_shape():
    with pytest.raises(ValueError, match=r"ref_embeddings.*\(2, 3, 4\)"):
        validate_embeddings("ref_embeddings", np.zeros((2, 3, 4)))
    assert issubclass(MultiSimilarity, MetricLoss)


def test_log1p_sum_exp_is_stable_and_exact():
    x = np.array([[1000.0, -5.0, 3.0], [0.5, 0.1, -0.2]], "float32")
    mask = np.array([[True, False, True], [False, False, False]])
    got = to_numpy(log1p_sum_exp(x, mask))
    np.testing.assert_allclose(got[0], 1000.0, rtol=1e-6)
    assert got[1] == 0.0
    y = np.random.randn(3, 6).astype("float32")
    np.testing.assert_allclose(
        to_numpy(log1p_sum_exp(y, np.ones_like(y, bool))), np.log1p(np.exp(y).sum(1)), rtol=1e-5
    )


# ----------------------------------------------------------------- MultiSimilarity
@pytest.mark.parametrize("alpha,beta,lam", [(2.0, 50.0, 0.5), (1.0, 10.0, 0.2)])
def test_self_matches_numpy_reference(alpha, beta, lam):
    x = np.random.randn(10, 6).astype("float32")
    y = np.random.randint(0, 3, size=10)
    mask = np.random.rand(10) > 0.2
    got = to_numpy(MultiSimilarity(alpha, beta, lam)(x, y, mask=mask))
    expected = ms_reference(x, y, x, y, mask, mask, alpha, beta, lam, exclude_self=True)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert np.all(got[~mask] == 0.0)


def test_with_references_matches_reference_and_keeps_identical_vectors():
    x = np.random.randn(5, 6).astype("float32")
    y = np.array([0, 1, 1, 2, 0])
    r = np.concatenate([x[:2], np.random.randn(4, 6).astype("float32")])
    ry = np.array([0, 1, 2, 2, 0, 1])
    rmask = np.array([True, True, True, False, True, True])
    got = to_numpy(MultiSimilarity()(x, y, r, ry, ref_mask=rmask))
    expected = ms_reference(x, y, r, ry, np.ones(5, bool), rmask, 2.0, 50.0, 0.5, exclude_self=False)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_padding_never_changes_a_result():
    x = np.random.randn(6, 4).astype("float32")
    y = np.array([0, 0, 1, 1, 2, 2])
    loss = MultiSimilarity()
    fn = compiled(lambda a, b, m: loss(a, b, mask=m))
    base = to_numpy(fn(x, y, None))
    xp = np.concatenate([x, 1e3 * np.random.randn(3, 4).astype("float32")])
    yp = np.concatenate([y, [0, 1, 7]])
    mask = np.arange(9) < 6
    padded = to_numpy(fn(xp, yp, mask))
    np.testing.assert_allclose(padded[:6], base, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(padded[6:], 0.0)


def test_large_beta_and_identical_vectors_stay_finite():
    x = np.ones((4, 3), "float32")
    y = np.array([0, 1, 2, 3])
    value, (grad,) = value_and_grad(compiled(lambda t: keras.ops.sum(MultiSimilarity(beta=500.0)(t, y))), x)
    expected = ms_reference(x, y, x, y, np.ones(4, bool), np.ones(4, bool), 2.0, 500.0, 0.5, True).sum()
    np.testing.assert_allclose(value, expected, rtol=1e-4)
    assert np.all(np.isfinite(grad))


def test_gradient_pulls_positives_together():
    x = np.random.randn(6, 4).astype("float32")
    y = np.array([0, 0, 1, 1, 2, 2])
    loss = MultiSimilarity()
    value, (grad,) = value_and_grad(compiled(lambda t: keras.ops.mean(loss(t, y))), x)
    step = x - 0.1 * grad
    assert float(to_numpy(keras.ops.mean(loss(step, y)))) < float(value)


def test_argument_errors():
    x = np.random.randn(3, 4).astype("float32")
    y = np.array([0, 1, 0])
    with pytest.raises(ValueError, match="ref_labels"):
        MultiSimilarity()(x, y, x)
    with pytest.raises(ValueError, match="ref_embeddings"):
        ProxyMS()(x, y)
    with pytest.raises(ValueError, match="embeddings"):
        MultiSimilarity()(x[None], y)
    with pytest.raises(ValueError, match="alpha"):
        MultiSimilarity(alpha=0.0)


def test_proxy_ms_matches_reference_without_self_exclusion():
    audio = np.random.randn(7, 5).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2, 0])
    text = np.random.randn(3, 5).astype("float32")
    text_labels = np.array([0, 1, 2])
    mask = np.array([1, 1, 1, 1, 1, 0, 1], bool)
    got = to_numpy(ProxyMS(alpha=2.0, beta=20.0)(audio, labels, text, text_labels, mask=mask))
    expected = ms_reference(audio, labels, text, text_labels, mask, np.ones(3, bool), 2.0, 20.0, 0.5, False)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_serialization_roundtrip():
    for loss in (MultiSimilarity(1.5, 40.0, 0.3, name="ms"), ProxyMS(beta=30.0, name="pms")):
        restored = roundtrip(loss)
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()


class EmbeddingTestModel(keras.Model):
    def __init__(self, loss_layer, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.layers.Dense(4)
        self.loss_layer = loss_layer

    def call(self, x):
        return self.encoder(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return reduce_loss(self.loss_layer(y_pred, y), sample_weight=sample_weight)


def test_fit_lowers_loss_with_sample_weights():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, size=48)
    x = (np.eye(3)[y] @ rng.randn(3, 8) + 0.8 * rng.randn(48, 8)).astype("float32")
    model = EmbeddingTestModel(MultiSimilarity())
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(x, y, sample_weight=np.ones(48, "float32"), batch_size=48, epochs=40, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.9 * losses[0]  # the floor with ~15 positives is ~0.9
