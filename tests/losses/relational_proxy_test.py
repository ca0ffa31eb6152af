import keras
import numpy as np
import pytest

from kerasadml.losses.base import reduce_loss
from kerasadml.losses.relational_proxy import RelationalProxy
from tests.helpers import compiled, roundtrip, to_numpy, unit_rows, value_and_grad


def _huber(x):
    return np.where(np.abs(x) < 1, 0.5 * x**2, np.abs(x) - 0.5)


def asyp_reference(x, y, p, py, mask, pmask, alpha, beta, lam):
    sim = unit_rows(x) @ unit_rows(p).T
    pos_terms = []
    for q in range(len(p)):
        s = sim[mask & (y == py[q]), q]
        if pmask[q] and s.size:
            pos_terms.append(np.log1p(np.exp(-alpha * (s - lam)).sum()) / alpha)
    pos_mean = np.mean(pos_terms) if pos_terms else 0.0
    neg = np.array(
        [np.log1p(np.exp(beta * (sim[i, pmask & (py != y[i])] - lam)).sum()) / beta for i in range(len(x))]
    )
    return np.where(mask, neg + pos_mean, 0.0)


def keyword_means_reference(audio, al, text, tl, am, tm, normalize=True):
    if normalize:
        audio, text = unit_rows(audio), unit_rows(text)
    keywords = []
    for k in range(len(text)):
        c = tl[k]
        if tm[k] and c not in keywords and np.any(am & (al == c)):
            keywords.append(c)
    a = np.array([audio[am & (al == c)].mean(0) for c in keywords])
    t = np.array([text[tm & (tl == c)].mean(0) for c in keywords])
    return a, t


def relational_reference(a, t, distance_weight=1.0, angle_weight=2.0, max_angle_keywords=64):
    total = 0.0
    n = len(a)
    if distance_weight and n >= 2:
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        da = np.array([np.linalg.norm(a[i] - a[j]) for i, j in pairs])
        dt = np.array([np.linalg.norm(t[i] - t[j]) for i, j in pairs])
        total += distance_weight * _huber(da / da.mean() - dt / dt.mean()).mean()
    m = n if max_angle_keywords is None else min(n, max_angle_keywords)
    if angle_weight and m >= 3:
        diffs = []
        for i in range(m):
            for j in range(m):
                for k in range(m):
                    if len({i, j, k}) < 3:
                        continue
                    ca = np.dot(unit_rows((a[i] - a[j])[None])[0], unit_rows((a[k] - a[j])[None])[0])
                    ct = np.dot(unit_rows((t[i] - t[j])[None])[0], unit_rows((t[k] - t[j])[None])[0])
                    diffs.append(ca - ct)
        total += angle_weight * _huber(np.array(diffs)).mean()
    return total


def _batch(seed=0):
    rng = np.random.RandomState(seed)
    audio_labels = np.array([3, 3, 7, 7, 1, 1, 9, 5, 5, 2])  # 2 has no text row
    text_labels = np.array([7, 3, 7, 1, 9, 4, 5, 3])  # shared rows; 4 has no audio
    audio = rng.randn(len(audio_labels), 6).astype("float32")
    text = rng.randn(len(text_labels), 6).astype("float32")
    return audio, audio_labels, text, text_labels


def full_reference(audio, al, text, tl, am, tm, **kw):
    a64, t64 = audio.astype("float64"), text.astype("float64")
    point = asyp_reference(a64, al, t64, tl, am, tm, 2.0, 50.0, 0.5)
    a, t = keyword_means_reference(a64, al, t64, tl, am, tm)
    rel = relational_reference(a, t, **kw)
    return np.where(am, point + rel, 0.0), rel


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"distance_weight": 0.5, "angle_weight": 0.0},
        {"distance_weight": 0.0, "angle_weight": 1.0, "max_angle_keywords": 3},
    ],
)
def test_matches_numpy_reference(kw):
    audio, al, text, tl = _batch()
    am = np.ones(len(al), bool)
    am[5] = False
    tm = np.ones(len(tl), bool)
    tm[2] = False
    loss = RelationalProxy(**kw)
    got = to_numpy(
        compiled(lambda *a: loss(*a[:4], audio_mask=a[4], text_mask=a[5]))(audio, al, text, tl, am, tm)
    )
    expected, rel = full_reference(audio, al, text, tl, am, tm, **kw)
    assert rel > 0
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # The mean over valid samples is AsyP + L_rel.
    np.testing.assert_allclose(to_numpy(reduce_loss(got, am)), expected[am].mean(), rtol=1e-4)


def test_keyword_means_match_reference_in_order_of_first_appearance():
    audio, al, text, tl = _batch()
    am = np.ones(len(al), bool)
    tm = np.ones(len(tl), bool)
    a, t, valid = (to_numpy(v) for v in RelationalProxy().keyword_means(audio, al, text, tl, am, tm))
    ra, rt = keyword_means_reference(audio.astype("float64"), al, text.astype("float64"), tl, am, tm)
    # slots: one per text row; valid = first row of a keyword that also has audio
    np.testing.assert_array_equal(valid, [True, True, False, True, True, False, True, False])
    np.testing.assert_allclose(a[valid], ra, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t[valid], rt, rtol=1e-5, atol=1e-6)


def test_angle_term_uses_only_the_first_keywords():
    rng = np.random.RandomState(5)
    a = rng.randn(6, 4).astype("float32")
    t = rng.randn(6, 4).astype("float32")
    valid = np.array([True, False, True, True, True, True])
    loss = RelationalProxy(distance_weight=0.0, angle_weight=1.0, max_angle_keywords=4)
    got = float(to_numpy(compiled(loss.relational_term)(a, t, valid)))
    expected = relational_reference(a[valid][:4].astype("float64"), t[valid][:4].astype("float64"), 0.0, 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    unbounded = RelationalProxy(distance_weight=0.0, angle_weight=1.0, max_angle_keywords=None)
    expected_all = relational_reference(a[valid].astype("float64"), t[valid].astype("float64"), 0.0, 1.0)
    got_all = float(to_numpy(compiled(unbounded.relational_term)(a, t, valid)))
    np.testing.assert_allclose(got_all, expected_all, rtol=1e-4)


def test_relational_term_is_zero_for_the_same_structure_and_stops_text_gradient():
    rng = np.random.RandomState(2)
    t = rng.randn(5, 4).astype("float32")
    loss = RelationalProxy()
    same = float(to_numpy(compiled(loss.relational_term)(3.0 * t + 1.0, t)))  # scaled + shifted copy
    assert abs(same) < 1e-6

    a = rng.randn(5, 4).astype("float32")
    value, (grad_a, grad_t) = value_and_grad(compiled(loss.relational_term), a, t)
    assert value > 0
    assert np.abs(grad_a).max() > 0
    # The teacher is under stop_gradient: zeros (JAX) or no gradient at all (TensorFlow).
    assert grad_t.dtype == object and grad_t.item() is None or np.all(grad_t == 0.0)


def test_text_gradient_comes_only_from_the_point_term():
    audio, al, text, tl = _batch()
    with_rel = RelationalProxy()
    point_only = RelationalProxy(distance_weight=0.0, angle_weight=0.0)
    _, (ga, gt) = value_and_grad(compiled(lambda a, t: keras.ops.mean(with_rel(a, al, t, tl))), audio, text)
    _, (ga0, gt0) = value_and_grad(
        compiled(lambda a, t: keras.ops.mean(point_only(a, al, t, tl))), audio, text
    )
    np.testing.assert_allclose(gt, gt0, rtol=1e-5, atol=1e-7)
    assert np.abs(ga - ga0).max() > 1e-4  # the relational term does train the audio side
    assert np.all(np.isfinite(ga))


def test_padding_never_changes_a_result():
    audio, al, text, tl = _batch()
    loss = RelationalProxy()
    fn = compiled(lambda *a: loss(*a[:4], audio_mask=a[4], text_mask=a[5]))
    base = to_numpy(fn(audio, al, text, tl, None, None))
    rng = np.random.RandomState(4)
    ap = np.concatenate([audio, 50 * rng.randn(3, 6).astype("float32")])
    alp = np.concatenate([al, [3, 4, 0]])
    tp = np.concatenate([text, rng.randn(2, 6).astype("float32")])
    tlp = np.concatenate([tl, [2, 3]])
    got = to_numpy(fn(ap, alp, tp, tlp, np.arange(13) < 10, np.arange(10) < 8))
    np.testing.assert_allclose(got[:10], base, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[10:], 0.0)


def test_too_few_keywords_give_no_relational_term():
    audio, al, text, tl = _batch()
    loss = RelationalProxy()
    point_only = RelationalProxy(distance_weight=0.0, angle_weight=0.0)
    one = np.full_like(al, 3)
    got = to_numpy(compiled(lambda *a: loss(*a))(audio, one, text, tl))
    np.testing.assert_allclose(
        got, to_numpy(compiled(lambda *a: point_only(*a))(audio, one, text, tl)), rtol=1e-6
    )


def test_serialization_roundtrip_and_argument_errors():
    loss = RelationalProxy(
        alpha=1.0, distance_weight=0.5, angle_weight=0.0, max_angle_keywords=None, name="utt"
    )
    restored = roundtrip(loss)
    assert restored.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="angle_weight"):
        RelationalProxy(angle_weight=-1.0)
    with pytest.raises(ValueError, match="max_angle_keywords"):
        RelationalProxy(max_angle_keywords=2)
    with pytest.raises(ValueError, match="text"):
        RelationalProxy()(np.zeros((2, 3)), np.array([0, 1]), np.zeros((2, 3, 1)), np.array([0, 1]))


class AudioTowerTestModel(keras.Model):
    def __init__(self, text, text_labels, **kwargs):
        super().__init__(**kwargs)
        self.text = text
        self.text_labels = text_labels
        self.encoder = keras.layers.Dense(text.shape[1])
        self.loss_layer = RelationalProxy()

    def call(self, x):
        return self.encoder(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return reduce_loss(self.loss_layer(y_pred, y, self.text, self.text_labels))


def test_fit_lowers_the_loss():
    rng = np.random.RandomState(0)
    text = rng.randn(4, 6).astype("float32")
    text_labels = np.arange(4)
    y = rng.randint(0, 4, size=32)
    x = (np.eye(4)[y] @ rng.randn(4, 10) + 0.3 * rng.randn(32, 10)).astype("float32")
    model = AudioTowerTestModel(text, text_labels)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    losses = model.fit(x, y, batch_size=32, epochs=30, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0]
