"""AADML on tiny features: training, retrieval evaluation, retrieve, presets, bad input."""

import keras
import numpy as np
import pytest

from kerasadml.data.av_features import AVSplit
from kerasadml.zoo import AADML, PresetError

TINY = dict(audio_dim=6, visual_dim=10, num_classes=3, embedding_dim=8, hidden_units=16, num_heads=2, key_dim=4)


def _split(n_per_class=8, seed=0):
    centers = np.random.RandomState(42)  # the same classes in every split
    centers_a, centers_v = centers.randn(3, 6) * 2, centers.randn(3, 10) * 2
    rng = np.random.RandomState(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    audio = centers_a[labels] + rng.randn(len(labels), 6)
    visual = centers_v[labels] + rng.randn(len(labels), 10)
    return AVSplit(audio.astype("float32"), visual.astype("float32"), labels.astype("int64"))


def _batch(split):
    return {"audio": split.audio, "visual": split.visual, "label": split.labels.astype("int32")}


@pytest.mark.parametrize("loss", ["aa_triplet", "aa_contrastive", "triplet", "contrastive"])
def test_fit_lowers_loss_for_every_loss(loss):
    keras.utils.set_random_seed(0)
    split = _split()
    model = AADML(loss=loss, **TINY)
    model.adapt(split)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(_batch(split), batch_size=24, epochs=6, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert np.isfinite(history["loss_metric"]).all() and np.isfinite(history["loss_label"]).all()


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    split = _split()
    model = AADML(**TINY)
    model.adapt(split)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(_batch(split), batch_size=24, epochs=40, verbose=0)
    return model


def test_evaluate_reports_whole_gallery_map(trained):
    result = trained.evaluate(_split(seed=1))
    for key in ("MAP_A2V", "MAP_V2A", "MAP", "R@1", "R@5", "R@10"):
        assert 0.0 <= result[key] <= 1.0
    assert result["MAP"] == pytest.approx((result["MAP_A2V"] + result["MAP_V2A"]) / 2, abs=1e-6)
    assert result["MAP"] > 0.5  # 3 separable classes: far above chance (~0.33)


def test_retrieve_returns_sorted_top_k(trained):
    test = _split(seed=2)
    idx, scores = trained.retrieve(test.audio[:5], test.visual, top_k=4)
    assert idx.shape == (5, 4) and scores.shape == (5, 4)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    za = trained.embed(test.audio[:5], "audio")
    zv = trained.embed(test.visual, "visual")
    np.testing.assert_array_equal(idx[:, 0], np.argmax(za @ zv.T, axis=1))


def test_preset_and_keras_roundtrips(trained, tmp_path):
    test = _split(seed=3)
    ref = trained.evaluate(test)
    trained.save_to_preset(tmp_path / "p")
    again = AADML.from_preset(tmp_path / "p")
    assert again.evaluate(test)["MAP"] == pytest.approx(ref["MAP"], abs=1e-6)
    trained.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.embed(test.audio, "audio"), trained.embed(test.audio, "audio"), atol=1e-5)


def test_bad_inputs(trained):
    with pytest.raises(ValueError, match="audio_dim"):
        trained.embed(np.zeros((2, 7), "float32"), "audio")
    bad = np.zeros((3, 6), "float32")
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trained.embed(bad, "audio")
    with pytest.raises(ValueError, match="loss"):
        AADML(loss="hinge", **TINY)
    with pytest.raises(PresetError, match="ADML"):
        AADML.from_preset("adml_tiny")


def test_catalogue_presets_build():
    vegas = AADML.from_preset("aadml_vegas")
    assert (vegas.audio_dim, vegas.visual_dim, vegas.num_classes) == (128, 1024, 10)
    ave = AADML.from_preset("aadml_ave")
    assert ave.num_classes == 15
