import os

import keras
import numpy as np
import pytest

from kerasadml.losses.triplet import AATriplet, Triplet
from tests.helpers import (
    av_blobs,
    pair_batch,
    roundtrip,
    to_numpy,
    two_tower_model,
    unit_rows,
    value_and_grad,
)


def _np_triplet(
    a, la, r, lr, margin, mining, distance, mask=None, ref_mask=None, exclude_self=False
):
    a, r = unit_rows(a.astype("float64")), unit_rows(r.astype("float64"))
    out = np.zeros(len(a))
    for i in range(len(a)):
        if mask is not None and not mask[i]:
            continue
        dp, dn = [], []
        for j in range(len(r)):
            if ref_mask is not None and not ref_mask[j]:
                continue
            d = 1 - a[i] @ r[j] if distance == "cosine" else np.linalg.norm(a[i] - r[j])
            if la[i] == lr[j]:
                if not (exclude_self and i == j):
                    dp.append(d)
            else:
                dn.append(d)
        if not dp or not dn:
            continue
        if mining == "batch_hard":
            out[i] = max(max(dp) - min(dn) + margin, 0.0)
        else:
            out[i] = np.mean([max(p - q + margin, 0.0) for p in dp for q in dn])
    return out


@pytest.mark.parametrize("mining", ["batch_hard", "all"])
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_cross_modal_values_match_numpy(mining, distance):
    a, la, r, lr = pair_batch()
    loss = Triplet(margin=0.4, mining=mining, distance=distance)
    got = to_numpy(loss(a, la, r, lr))
    ref = _np_triplet(a, la, r, lr, 0.4, mining, distance)
    assert got.shape == (10,)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert np.any(ref > 0)


@pytest.mark.parametrize("mining", ["batch_hard", "all"])
def test_same_set_excludes_the_anchor_itself(mining):
    a, la, _, _ = pair_batch()
    got = to_numpy(Triplet(margin=0.3, mining=mining)(a, la))
    ref = _np_triplet(a, la, a, la, 0.3, mining, "cosine", exclude_self=True)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_anchors_without_positive_or_negative_get_zero():
    a, _, r, _ = pair_batch(n=4, m=5)
    la = np.array([0, 0, 7, 0])
    lr = np.zeros(5, int)  # no negatives for label 0, no positive for label 7
    got = to_numpy(Triplet(margin=0.4)(a, la, r, lr))
    np.testing.assert_array_equal(got, np.zeros(4))
    got = to_numpy(Triplet(margin=0.4, mining="all")(a, la, r, lr))
    np.testing.assert_array_equal(got, np.zeros(4))


@pytest.mark.parametrize("mining", ["batch_hard", "all"])
def test_masks_match_numpy_and_padding_changes_nothing(mining):
    a, la, r, lr = pair_batch()
    mask = np.array([True] * 7 + [False] * 3)
    ref_mask = np.array([True] * 8 + [False] * 4)
    loss = Triplet(mining=mining)
    got = to_numpy(loss(a, la, r, lr, mask=mask, ref_mask=ref_mask))
    ref = _np_triplet(a, la, r, lr, 0.4, mining, "cosine", mask, ref_mask)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[~mask], 0.0)
    unpadded = to_numpy(loss(a[:7], la[:7], r[:8], lr[:8]))
    np.testing.assert_allclose(got[:7], unpadded, rtol=1e-6, atol=1e-7)


def test_gradients_are_finite_for_identical_vectors():
    a, la, _, _ = pair_batch(n=4, m=4)
    r = a.copy()  # zero distances between matching items
    for distance in ["cosine", "euclidean"]:
        loss = Triplet(distance=distance, mining="all")
        _, grads = value_and_grad(lambda x, y, f=loss: keras.ops.sum(f(x, la, y, la)), a, r)
        assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("mining", ["batch_hard", "all"])
@pytest.mark.parametrize("aggregation", ["attention", "mean"])
def test_aa_variant_is_the_plain_loss_at_its_proxies(mining, aggregation):
    a, la, r, lr = pair_batch()
    aa = AATriplet(margin=0.4, mining=mining, k=3, num_heads=2, key_dim=4, aggregation=aggregation)
    got, scores = aa(a, la, r, lr, return_scores=True)
    proxies, ref_scores = aa.proxy(a)
    plain = Triplet(margin=0.4, mining=mining)(proxies, la, r, lr)
    np.testing.assert_allclose(to_numpy(got), to_numpy(plain), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(to_numpy(scores), to_numpy(ref_scores), rtol=1e-6)
    assert tuple(scores.shape) == (10, 4)
    np.testing.assert_allclose(to_numpy(scores).sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(aa(a, la, r, lr)), to_numpy(got), rtol=1e-6)
    # without references, the proxies are compared with the raw embeddings
    same = aa(a, la)
    ref = _np_triplet(to_numpy(proxies), la, a, la, 0.4, mining, "cosine", exclude_self=True)
    np.testing.assert_allclose(to_numpy(same), ref, rtol=1e-5, atol=1e-5)


def test_aa_variant_with_padding():
    a, la, r, lr = pair_batch()
    mask = np.array([True] * 8 + [False] * 2)
    aa = AATriplet(k=2, num_heads=2, key_dim=4)
    got = to_numpy(aa(a, la, r, lr, mask=mask))
    np.testing.assert_allclose(got[:8], to_numpy(aa(a[:8], la[:8], r, lr)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[8:], 0.0)


def test_rejects_bad_arguments():
    a, la, r, lr = pair_batch()
    with pytest.raises(ValueError, match="mining"):
        Triplet(mining="semi")
    with pytest.raises(ValueError, match="distance"):
        Triplet(distance="dot")
    with pytest.raises(ValueError, match="ref_labels"):
        Triplet()(a, la, r)
    with pytest.raises(ValueError, match="width"):
        Triplet()(a, la, r[:, :4], lr)
    with pytest.raises(ValueError, match="rank 2"):
        Triplet()(a[None], la)
    with pytest.raises(ValueError, match="k=10"):
        AATriplet(k=10)(a, la, r, lr)


def test_config_roundtrips():
    for loss in [
        Triplet(margin=0.3, mining="all", distance="euclidean", name="t"),
        AATriplet(
            margin=0.5,
            mining="all",
            k=4,
            num_heads=3,
            key_dim=5,
            residual=False,
            normalize=False,
            aggregation="mean",
            name="aat",
        ),
    ]:
        restored = roundtrip(loss)
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "loss_cls,kw", [(Triplet, {}), (AATriplet, {"k": 2, "num_heads": 2, "key_dim": 4})]
)
def test_fit_lowers_the_loss_of_a_two_tower_model(loss_cls, kw):
    xa, xv, y = av_blobs()
    model = two_tower_model(loss_cls, **kw)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=lambda t, p: p)
    history = model.fit(
        [xa, xv, y], np.zeros(len(y), "float32"), batch_size=16, epochs=15, shuffle=False, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_saved_model_restores_the_proxy_weights(tmp_path):
    xa, xv, y = av_blobs(n=8)
    model = two_tower_model(AATriplet, k=2, num_heads=2, key_dim=4)
    assert len(model.get_layer("a2v").trainable_weights) == 8
    path = os.path.join(tmp_path, "aa_triplet.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    for name in ["a2v", "v2a"]:
        for w, rw in zip(model.get_layer(name).weights, restored.get_layer(name).weights):
            np.testing.assert_array_equal(to_numpy(w), to_numpy(rw))
    np.testing.assert_allclose(
        restored.predict([xa, xv, y], verbose=0), model.predict([xa, xv, y], verbose=0), rtol=1e-6
    )
