"""AADML on tiny features: training, retrieval evaluation, retrieve, presets, bad input."""

import keras
import numpy as np
import pytest

from kerasadml.data.av.features import AVSplit
from kerasadml.zoo import AADML, PresetError
from tests.helpers import AADML_TINY as TINY
from tests.helpers import av_split as _split


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


# ------------------------------------------------------- input standardisation (adapt)
def _shifted_split(n, seed):
    rng = np.random.default_rng(seed)
    split = AVSplit(rng.normal(3.0, 2.0, (n, 6)), rng.normal(-1.0, 0.5, (n, 10)), rng.integers(0, 3, n))
    return split


def test_adapt_uses_train_statistics_only_and_centres_constant_dimensions(tmp_path):
    """(Was the test of ``FeatureScaler``, a second copy of this standardisation.)"""
    train = _shifted_split(50, 0)
    train.visual[:, 5] = 7.0  # a constant dimension
    before = train.audio.copy()
    model = AADML(**TINY)
    model.adapt(train)
    np.testing.assert_array_equal(train.audio, before)  # input not modified
    audio = keras.ops.convert_to_numpy(model.audio_norm(train.audio.astype("float32")))
    np.testing.assert_allclose(audio.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(audio.std(0), 1.0, atol=1e-3)
    visual = keras.ops.convert_to_numpy(model.visual_norm(train.visual.astype("float32")))
    np.testing.assert_allclose(visual[:, 5], 0.0, atol=1e-5)  # centred, not divided by ~0
    shifted = train.visual.astype("float32").copy()
    shifted[:, 5] = 9.0
    assert np.abs(keras.ops.convert_to_numpy(model.visual_norm(shifted))[:, 5]).max() < 10.0
    # a test split keeps its own shift: the statistics are the training split's
    test = AVSplit(train.audio + 10.0, train.visual, train.labels)
    shifted_audio = keras.ops.convert_to_numpy(model.audio_norm(test.audio.astype("float32")))
    assert (shifted_audio.mean(0) > 2.0).all()
    # the statistics travel with the saved model
    path = tmp_path / "aadml.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.audio_norm(test.audio.astype("float32"))), shifted_audio, atol=1e-5
    )


def test_compile_refuses_a_loss_and_evaluate_always_returns_a_dict(trained):
    with pytest.raises(ValueError, match=r"AADML.compile\(loss=.*computes its own loss"):
        AADML(**TINY).compile(optimizer="adam", loss="mse")
    split = _split(seed=2)
    result = trained.evaluate(_batch(split), batch_size=24, verbose=0)
    assert isinstance(result, dict) and "loss_metric" in result
    with pytest.raises(ValueError, match="does not use sample_weight"):
        trained.compute_loss(x=_batch(split), sample_weight=np.ones(len(split.labels), "float32"))
