import os

import keras
import numpy as np
import pytest

from kerasadml.losses.contrastive import AAContrastive, SupervisedContrastive
from tests.helpers import (
    av_blobs,
    pair_batch,
    roundtrip,
    to_numpy,
    two_tower_model,
    unit_rows,
    value_and_grad,
)


def _np_supcon(a, la, r, lr, tau, mask=None, ref_mask=None, exclude_self=False):
    a, r = unit_rows(a.astype("float64")), unit_rows(r.astype("float64"))
    out = np.zeros(len(a))
    for i in range(len(a)):
        if mask is not None and not mask[i]:
            continue
        others = [
            j
            for j in range(len(r))
            if (ref_mask is None or ref_mask[j]) and not (exclude_self and i == j)
        ]
        positives = [j for j in others if la[i] == lr[j]]
        if not positives:
            continue
        logits = {j: a[i] @ r[j] / tau for j in others}
        top = max(logits.values())
        lse = top + np.log(sum(np.exp(v - top) for v in logits.values()))
        out[i] = -np.mean([logits[j] - lse for j in positives])
    return out


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_cross_modal_values_match_numpy(tau):
    a, la, r, lr = pair_batch()
    got = to_numpy(SupervisedContrastive(temperature=tau)(a, la, r, lr))
    ref = _np_supcon(a, la, r, lr, tau)
    assert got.shape == (10,)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_same_set_excludes_the_anchor_itself():
    a, la, _, _ = pair_batch()
    got = to_numpy(SupervisedContrastive(0.2)(a, la))
    np.testing.assert_allclose(
        got, _np_supcon(a, la, a, la, 0.2, exclude_self=True), rtol=1e-4, atol=1e-4
    )


def test_anchors_without_positive_get_zero():
    a, _, r, _ = pair_batch(n=3, m=4)
    got = to_numpy(SupervisedContrastive()(a, np.array([0, 9, 1]), r, np.array([0, 0, 1, 2])))
    assert got[1] == 0.0 and got[0] > 0 and got[2] > 0


def test_masks_match_numpy_and_padding_changes_nothing():
    a, la, r, lr = pair_batch()
    mask = np.array([True] * 7 + [False] * 3)
    ref_mask = np.array([True] * 9 + [False] * 3)
    r[9:] *= 100  # large padded values must not leak
    loss = SupervisedContrastive(0.1)
    got = to_numpy(loss(a, la, r, lr, mask=mask, ref_mask=ref_mask))
    np.testing.assert_allclose(
        got, _np_supcon(a, la, r, lr, 0.1, mask, ref_mask), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_array_equal(got[~mask], 0.0)
    np.testing.assert_allclose(got[:7], to_numpy(loss(a[:7], la[:7], r[:9], lr[:9])), rtol=1e-6)


def test_gradients_are_finite_and_zero_for_masked_items():
    a, la, r, lr = pair_batch(n=5, m=6)
    mask = np.array([True, True, True, False, False])
    ref_mask = np.array([True, True, True, True, False, False])
    loss = SupervisedContrastive(0.1)
    _, (ga, gr) = value_and_grad(
        lambda x, y: keras.ops.sum(loss(x, la, y, lr, mask=mask, ref_mask=ref_mask)), a, r
    )
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gr))
    np.testing.assert_array_equal(ga[3:], 0.0)
    np.testing.assert_array_equal(gr[4:], 0.0)


@pytest.mark.parametrize("aggregation", ["attention", "mean"])
def test_aa_variant_is_the_plain_loss_at_its_proxies(aggregation):
    a, la, r, lr = pair_batch()
    aa = AAContrastive(temperature=0.1, k=3, num_heads=2, key_dim=4, aggregation=aggregation)
    got, scores = aa(a, la, r, lr, return_scores=True)
    proxies, ref_scores = aa.proxy(a)
    plain = SupervisedContrastive(0.1)(proxies, la, r, lr)
    np.testing.assert_allclose(to_numpy(got), to_numpy(plain), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(to_numpy(scores), to_numpy(ref_scores), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(scores).sum(1), 1.0, rtol=1e-5)
    same = aa(a, la)
    ref = _np_supcon(to_numpy(proxies), la, a, la, 0.1, exclude_self=True)
    np.testing.assert_allclose(to_numpy(same), ref, rtol=1e-4, atol=1e-4)


def test_aa_variant_with_padding():
    a, la, r, lr = pair_batch()
    mask = np.array([True] * 8 + [False] * 2)
    aa = AAContrastive(k=2, num_heads=2, key_dim=4)
    got = to_numpy(aa(a, la, r, lr, mask=mask))
    np.testing.assert_allclose(got[:8], to_numpy(aa(a[:8], la[:8], r, lr)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[8:], 0.0)


def test_rejects_bad_arguments():
    a, la, r, _ = pair_batch()
    with pytest.raises(ValueError, match="temperature"):
        SupervisedContrastive(temperature=0.0)
    with pytest.raises(ValueError, match="ref_labels"):
        SupervisedContrastive()(a, la, r)
    with pytest.raises(ValueError, match="k"):
        AAContrastive(k=0)


def test_config_roundtrips():
    for loss in [
        SupervisedContrastive(temperature=0.3, name="c"),
        AAContrastive(
            temperature=0.2,
            k=4,
            num_heads=3,
            key_dim=5,
            residual=False,
            normalize=False,
            aggregation="mean",
            name="aac",
        ),
    ]:
        restored = roundtrip(loss)
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "loss_cls,kw",
    [(SupervisedContrastive, {}), (AAContrastive, {"k": 2, "num_heads": 2, "key_dim": 4})],
)
def test_fit_lowers_the_loss_of_a_two_tower_model(loss_cls, kw):
    xa, xv, y = av_blobs()
    model = two_tower_model(loss_cls, temperature=0.1, **kw)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=lambda t, p: p)
    history = model.fit(
        [xa, xv, y], np.zeros(len(y), "float32"), batch_size=16, epochs=15, shuffle=False, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0]


def test_functional_model_returns_scores_and_reloads(tmp_path):
    xa, xv, y = av_blobs(n=8)
    za = keras.Input((8,))
    zv = keras.Input((8,))
    lab = keras.Input((), dtype="int32")
    loss, scores = AAContrastive(k=2, num_heads=2, key_dim=4, name="aac")(
        za, lab, zv, lab, return_scores=True
    )
    model = keras.Model([za, zv, lab], [loss, scores])
    a, v = xa[:, :6] @ np.ones((6, 8), "float32") + xa[:, :1], xv[:, :8]
    out = model.predict([a, v, y], batch_size=8, verbose=0)
    assert out[0].shape == (8,) and out[1].shape == (8, 3)
    path = os.path.join(tmp_path, "aac.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    for got, want in zip(restored.predict([a, v, y], batch_size=8, verbose=0), out):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
