"""ProxyNCE (docs/methods.md §1.10): the docstring formula against a numpy reference,
masks, duplicate proxies, the learned scale, serialisation, gradients and a tiny fit."""

import math

import keras
import numpy as np
import pytest

from kerasadml.losses.base import reduce_loss
from kerasadml.losses.proxy_nce import ProxyNCE
from tests.helpers import compiled, roundtrip, to_numpy, value_and_grad


def _normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _lse(v):
    v = np.asarray(v, np.float64)
    top = v.max()
    return top + np.log(np.exp(v - top).sum())


def proxy_nce_reference(x, y, p, py, mask=None, pmask=None, scale=16.0, margin=0.1, symmetric=True):
    """The docstring's formula, written with loops in float64.

    Forward: ``z_ij = r (s_ij - m [y_i = c_j]) + log w_j`` over valid proxies, ``w_j`` = 1 /
    number of valid proxies with label ``c_j``; ``l_i = lse_j z_ij - lse_{j pos} z_ij``.
    Reverse: for each valid proxy with a valid positive anchor, ``z'_ji = r (s_ij - m [..])``
    over valid anchors, ``l'_j = lse_i z'_ji - lse_{i pos} z'_ji``; value ``(l_i + mean_j l'_j) / 2``.
    """
    x, p = np.asarray(x, np.float64), np.asarray(p, np.float64)
    n, m = len(x), len(p)
    mask = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
    pmask = np.ones(m, bool) if pmask is None else np.asarray(pmask, bool)
    s = _normalize(x) @ _normalize(p).T
    forward = np.zeros(n)
    has_pos = np.zeros(n, bool)
    for i in range(n):
        pos = [j for j in range(m) if pmask[j] and py[j] == y[i]]
        if not mask[i] or not pos:
            continue
        has_pos[i] = True
        z = {}
        for j in range(m):
            if not pmask[j]:
                continue
            copies = sum(1 for k in range(m) if pmask[k] and py[k] == py[j])
            z[j] = scale * (s[i, j] - margin * (py[j] == y[i])) - math.log(copies)
        forward[i] = _lse(list(z.values())) - _lse([z[j] for j in pos])
    if not symmetric:
        return np.where(has_pos, forward, 0.0)
    backward = []
    for j in range(m):
        pos = [i for i in range(n) if mask[i] and y[i] == py[j]]
        if not pmask[j] or not pos:
            continue
        z = {i: scale * (s[i, j] - margin * (y[i] == py[j])) for i in range(n) if mask[i]}
        backward.append(_lse(list(z.values())) - _lse([z[i] for i in pos]))
    mean_back = float(np.mean(backward)) if backward else 0.0
    return np.where(has_pos, 0.5 * (forward + mean_back), 0.0)


def _batch(seed=0):
    rng = np.random.RandomState(seed)
    labels = np.array([0, 0, 1, 1, 2, 3, 3, 5])  # 5 has no proxy
    proxy_labels = np.array([0, 1, 1, 2, 3, 4, 3])  # 1 and 3 twice; 4 has no anchor
    x = rng.randn(len(labels), 6).astype("float32")
    p = rng.randn(len(proxy_labels), 6).astype("float32")
    return x, labels, p, proxy_labels


def _call(loss):
    return compiled(lambda x, y, p, py, m, pm: loss(x, y, p, py, mask=m, ref_mask=pm))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"symmetric": False},
        {"scale": 4.0, "margin": 0.0},
        {"scale": 30.0, "margin": 0.3, "max_scale": 30.0},
    ],
)
def test_matches_numpy_reference(kwargs):
    x, y, p, py = _batch()
    mask = np.ones(len(y), bool)
    mask[1] = False
    pmask = np.ones(len(py), bool)
    pmask[2] = False  # one of the two copies of label 1
    loss = ProxyNCE(**kwargs)
    got = to_numpy(_call(loss)(x, y, p, py, mask, pmask))
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "max_scale"}
    expected = proxy_nce_reference(x, y, p, py, mask, pmask, **ref_kwargs)
    assert got.shape == (len(y),)
    assert np.all(expected[[0, 2, 3, 4, 5, 6]] > 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_without_masks_and_without_references():
    x, y, p, py = _batch(1)
    loss = ProxyNCE(scale=8.0)
    got = to_numpy(compiled(lambda *a: loss(*a))(x, y, p, py))
    np.testing.assert_allclose(got, proxy_nce_reference(x, y, p, py, scale=8.0), rtol=1e-4, atol=1e-5)
    # no references: the embeddings are their own proxies
    got_self = to_numpy(compiled(lambda a, b: loss(a, b))(x, y))
    np.testing.assert_allclose(got_self, proxy_nce_reference(x, y, x, y, scale=8.0), rtol=1e-4, atol=1e-5)


def test_anchor_without_positive_gives_zero():
    x, y, p, py = _batch()
    got = to_numpy(compiled(lambda *a: ProxyNCE()(*a))(x, y, p, py))
    assert got[7] == 0.0  # label 5 has no proxy
    # a positive that exists only as a masked proxy does not count either
    pmask = py != 2
    got = to_numpy(_call(ProxyNCE())(x, y, p, py, np.ones(len(y), bool), pmask))
    assert got[4] == 0.0 and got[7] == 0.0
    assert np.all(got[[0, 1, 2, 3, 5, 6]] > 0)


def test_masked_anchors_give_zero_and_masked_rows_never_count():
    x, y, p, py = _batch(2)
    loss = ProxyNCE(scale=10.0, margin=0.2)
    fn = _call(loss)
    mask = np.array([True, False, True, True, True, False, True, True])
    pmask = np.array([True, True, False, True, True, True, True])
    base = to_numpy(fn(x, y, p, py, mask, pmask))
    assert np.all(base[~mask] == 0.0)
    # the same result without the masked rows at all
    dropped = to_numpy(fn(x[mask], y[mask], p[pmask], py[pmask], np.ones(mask.sum(), bool), np.ones(pmask.sum(), bool)))
    np.testing.assert_allclose(base[mask], dropped, rtol=1e-5, atol=1e-6)
    # garbage in masked rows (huge values, labels that match everything) changes nothing
    rng = np.random.RandomState(3)
    x2, y2, p2, py2 = x.copy(), y.copy(), p.copy(), py.copy()
    x2[~mask] = 1e3 * rng.randn((~mask).sum(), 6)
    y2[~mask] = [0, 3]
    p2[~pmask] = 1e3 * rng.randn((~pmask).sum(), 6)
    py2[~pmask] = 0
    np.testing.assert_allclose(to_numpy(fn(x2, y2, p2, py2, mask, pmask)), base, rtol=1e-5, atol=1e-6)
    # padded rows appended at the end: the valid values are unchanged, the padding is 0
    xp = np.concatenate([x, rng.randn(3, 6).astype("float32")])
    yp = np.concatenate([y, [0, 1, 2]])
    pp = np.concatenate([p, rng.randn(2, 6).astype("float32")])
    pyp = np.concatenate([py, [0, 5]])
    padded = to_numpy(fn(xp, yp, pp, pyp, np.concatenate([mask, [False] * 3]), np.concatenate([pmask, [False] * 2])))
    np.testing.assert_allclose(padded[:8], base, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(padded[8:], 0.0)


@pytest.mark.parametrize("symmetric", [False, True])
def test_copies_of_a_proxy_count_as_one(symmetric):
    """M copies of every label's proxy (one text per clip of a K x M batch) give the loss
    of one copy each; without the reverse direction any pattern of copies does."""
    rng = np.random.RandomState(4)
    y = np.repeat(np.arange(4), 3)
    x = rng.randn(12, 5).astype("float32")
    protos = rng.randn(4, 5).astype("float32")
    loss = ProxyNCE(scale=12.0, margin=0.15, symmetric=symmetric)
    fn = compiled(lambda *a: loss(*a))
    single = to_numpy(fn(x, y, protos, np.arange(4)))
    repeated = to_numpy(fn(x, y, protos[y], y))  # each text copied once per clip
    np.testing.assert_allclose(repeated, single, rtol=1e-5, atol=1e-6)
    if not symmetric:
        uneven = np.array([0, 1, 1, 1, 1, 2, 3, 3])  # label 1 four times, 3 twice
        got = to_numpy(fn(x, y, protos[uneven], uneven))
        np.testing.assert_allclose(got, single, rtol=1e-5, atol=1e-6)
    # a masked copy is not counted: 3 copies, one masked == 2 copies
    three = np.array([0, 0, 0, 1, 2, 3])
    two_masked = to_numpy(
        compiled(lambda a, b, c, d, pm: loss(a, b, c, d, ref_mask=pm))(
            x, y, protos[three], three, np.array([True, False, True, True, True, True])
        )
    )
    two = np.array([0, 0, 1, 2, 3])
    np.testing.assert_allclose(two_masked, to_numpy(fn(x, y, protos[two], two)), rtol=1e-5, atol=1e-6)


def test_learn_scale_trains_log_scale_only_when_asked():
    fixed = ProxyNCE(scale=16.0)
    learned = ProxyNCE(scale=16.0, learn_scale=True, max_scale=64.0)
    assert fixed.trainable_weights == [] and len(fixed.non_trainable_weights) == 1
    assert [w.name for w in learned.trainable_weights] == ["log_scale"]
    np.testing.assert_allclose(float(to_numpy(learned.current_scale())), 16.0, rtol=1e-6)
    # the scale is clipped to [1, max_scale]
    learned.log_scale.assign(math.log(1000.0))
    np.testing.assert_allclose(float(to_numpy(learned.current_scale())), 64.0, rtol=1e-6)
    learned.log_scale.assign(-3.0)
    np.testing.assert_allclose(float(to_numpy(learned.current_scale())), 1.0, rtol=1e-6)
    learned.log_scale.assign(math.log(16.0))

    # the gradient reaches log_scale through stateless_call
    x, y, p, py = _batch()
    learned.build((None, 6))  # what an owning model does before fit

    def value(log_scale):
        out, _ = learned.stateless_call([log_scale], [], x, y, p, py)
        return keras.ops.mean(out)

    _, (grad,) = value_and_grad(compiled(value), np.float32(math.log(16.0)))
    assert np.isfinite(grad) and abs(float(grad)) > 1e-4


def test_serialization_roundtrip():
    loss = ProxyNCE(scale=20.0, margin=0.25, symmetric=False, learn_scale=True, max_scale=40.0, name="nce")
    restored = roundtrip(loss)
    assert type(restored) is ProxyNCE
    assert restored.get_config() == loss.get_config()
    config = loss.get_config()
    expected = {"scale": 20.0, "margin": 0.25, "symmetric": False, "learn_scale": True, "max_scale": 40.0}
    assert {key: config[key] for key in expected} == expected
    again = ProxyNCE.from_config(config)
    assert [w.name for w in again.trainable_weights] == ["log_scale"]
    x, y, p, py = _batch(5)
    np.testing.assert_allclose(
        to_numpy(compiled(lambda *a: again(*a))(x, y, p, py)),
        to_numpy(compiled(lambda *a: loss(*a))(x, y, p, py)),
        rtol=1e-6,
    )


def test_gradient_is_finite_and_pushes_a_hard_negative_away():
    # an anchor on e_0, its positive at cos 0.53, a hard negative at cos 0.44 (the
    # docstring's case) and an easy negative at cos -0.5, all unit vectors
    x = np.array([[1.0, 0.0, 0.0]], "float32")
    positive = np.array([0.53, math.sqrt(1 - 0.53**2), 0.0], "float32")
    hard = np.array([0.44, -math.sqrt(1 - 0.44**2), 0.0], "float32")
    easy = np.array([-0.5, 0.0, math.sqrt(0.75)], "float32")
    p = np.stack([positive, hard, easy]).astype("float32")
    y, py = np.array([0]), np.array([0, 1, 2])
    loss = ProxyNCE(scale=16.0, margin=0.1, symmetric=False)
    value, (gx, gp) = value_and_grad(compiled(lambda a, b: keras.ops.sum(loss(a, y, b, py))), x, p)
    assert value > 0 and np.all(np.isfinite(gx)) and np.all(np.isfinite(gp))

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    step = 1e-2
    # a descent step on the anchor moves it away from the hard negative, towards the positive
    x_new = x[0] - step * gx[0]
    assert cos(x_new, hard) < cos(x[0], hard)
    assert cos(x_new, positive) > cos(x[0], positive)
    # ... and moves the hard negative proxy away from the anchor
    hard_new = hard - step * gp[1]
    assert cos(x[0], hard_new) < cos(x[0], hard)
    # the hard negative (relatively close to the positive) is pushed much harder than the easy one
    assert np.linalg.norm(gp[1]) > 5 * np.linalg.norm(gp[2])
    # analytic check: d l / d s_hard = r * softmax weight of the hard negative > 0
    z = 16.0 * (np.array([0.53 - 0.1, 0.44, -0.5]))
    w = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    # along the tangent direction of the hard proxy the loss grows at rate r * w_hard
    tangent = x[0] - cos(x[0], hard) * hard  # d cos(x, hard)/d hard for a unit proxy
    np.testing.assert_allclose(gp[1] @ tangent, 16.0 * w[1] * (tangent @ tangent), rtol=1e-3)


def test_gradient_of_masked_rows_is_zero_and_finite():
    x, y, p, py = _batch(6)
    mask = np.arange(len(y)) != 2
    pmask = np.arange(len(py)) != 4
    loss = ProxyNCE(scale=30.0, max_scale=30.0)
    _, (gx, gp) = value_and_grad(
        compiled(lambda a, b: keras.ops.mean(loss(a, y, b, py, mask=mask, ref_mask=pmask))), x, p
    )
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gp))
    assert np.all(gx[2] == 0.0) and np.all(gp[4] == 0.0)


class ProxyNCETestModel(keras.Model):
    """An encoder, one trainable proxy per class and a ProxyNCE with a learned scale."""

    def __init__(self, num_classes=3, dim=4, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.dim = num_classes, dim
        self.encoder = keras.layers.Dense(dim, name="encoder")
        self.proxies = self.add_weight(shape=(num_classes, dim), initializer="random_normal", name="proxies")
        self.nce = ProxyNCE(scale=4.0, margin=0.1, learn_scale=True, max_scale=32.0, name="nce")

    def build(self, input_shape):
        self.encoder.build(input_shape)

    def call(self, x):
        return self.encoder(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        values = self.nce(y_pred, y, self.proxies, keras.ops.arange(self.num_classes))
        return reduce_loss(values, sample_weight=sample_weight)


def test_fit_lowers_the_loss_and_trains_the_scale():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, size=48)
    x = (np.eye(3)[y] @ rng.randn(3, 8) + 0.5 * rng.randn(48, 8)).astype("float32")
    model = ProxyNCETestModel()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(x, y, batch_size=16, epochs=12, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    assert abs(float(to_numpy(model.nce.log_scale)) - math.log(4.0)) > 1e-3


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="scale"):
        ProxyNCE(scale=0.0)
    with pytest.raises(ValueError, match="max_scale"):
        ProxyNCE(scale=16.0, max_scale=8.0)
    loss = ProxyNCE()
    with pytest.raises(ValueError, match=r"embeddings must have rank 2.*\(4,\)"):
        loss(np.zeros(4, "float32"), np.zeros(4, "int32"))
    with pytest.raises(ValueError, match="ref_embeddings must have rank 2"):
        loss(np.zeros((2, 4), "float32"), np.zeros(2, "int32"), np.zeros((2, 4, 1), "float32"), np.zeros(2, "int32"))
