import os
import signal

import h5py
import numpy as np
import pytest

from kerasadml.data.av import digits as av_digits
from kerasadml.data.av.digits import (
    DIGIT_NAMES,
    audio_logmel_stats,
    build_av_digits,
    digit_image_features,
    log_mel_spectrogram,
    make_av_digits,
    mel_filterbank,
)
from kerasadml.data.av.features import load_av_hdf5

# ------------------------------------------------------------------ visual features


def test_digit_image_features_shape_range_and_corners():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 17, (5, 8, 8)).astype(np.float64)
    features = digit_image_features(images)
    assert features.shape == (5, 1024) and features.dtype == np.float32
    assert features.min() >= 0.0 and features.max() <= 1.0
    grid = features.reshape(5, 32, 32)
    np.testing.assert_allclose(grid[:, 0, 0], images[:, 0, 0] / 16, rtol=1e-6)
    np.testing.assert_allclose(grid[:, -1, -1], images[:, -1, -1] / 16, rtol=1e-6)
    assert digit_image_features(images[0]).shape == (1, 1024)


def test_digit_image_features_match_scipy_bilinear_zoom():
    ndimage = pytest.importorskip("scipy.ndimage")
    image = np.random.default_rng(1).uniform(0, 16, (8, 8))
    expected = np.clip(ndimage.zoom(image, 4, order=1) / 16, 0, 1).reshape(-1)
    np.testing.assert_allclose(digit_image_features(image)[0], expected, atol=1e-5)


def test_digit_image_features_reject_bad_input():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        digit_image_features(np.zeros((2, 2, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        digit_image_features(np.full((1, 8, 8), np.nan))


# ------------------------------------------------------------------ audio features


def test_mel_filterbank_shape_and_peaks():
    bank = mel_filterbank()
    assert bank.shape == (257, 64)
    assert bank.min() >= 0.0 and bank.max() <= 1.0 + 1e-6
    assert (bank.sum(axis=0) > 0).all()  # no empty filter at 512-point FFT
    peaks = bank.argmax(axis=0)
    assert (np.diff(peaks) >= 0).all()


def test_logmel_stats_of_a_tone():
    sr = 16000
    t = np.arange(sr) / sr
    wave = 0.5 * np.sin(2 * np.pi * 1000 * t)
    logmel = log_mel_spectrogram(wave, sr)
    assert logmel.shape == (1 + (sr - 400) // 160, 64)
    stats = audio_logmel_stats(wave, sr)
    assert stats.shape == (128,) and stats.dtype == np.float32
    # The loudest bin is the one whose filter peaks nearest 1 kHz.
    bin_hz = np.linspace(0, sr / 2, 257)
    nearest = np.argmin(np.abs(bin_hz[mel_filterbank().argmax(axis=0)] - 1000))
    assert abs(int(np.argmax(stats[:64])) - int(nearest)) <= 1
    assert stats[64:].max() < 0.05  # a stationary tone barely varies over frames


def test_logmel_stats_downmix_short_and_bad_waves():
    wave = np.random.default_rng(0).normal(0, 0.1, 3000).astype(np.float32)
    stereo = np.stack([wave, wave], axis=1)
    np.testing.assert_allclose(audio_logmel_stats(stereo), audio_logmel_stats(wave), rtol=1e-6)
    assert audio_logmel_stats(wave[:100]).shape == (128,)  # padded to one frame
    with pytest.raises(ValueError, match="empty"):
        audio_logmel_stats(np.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        audio_logmel_stats(np.array([0.0, np.nan] * 300))


# ------------------------------------------------------------------ building


def test_voice_pools_are_disjoint():
    train, test = av_digits._voice_pools(0, 0.25, (150,), (50,))
    train_variants = {v.variant for v in train}
    test_variants = {v.variant for v in test}
    assert train_variants and test_variants and not train_variants & test_variants
    assert not set(train) & set(test)


def test_tiny_build_shapes_classes_attributes_and_determinism(tmp_path):
    summary = build_av_digits(tmp_path / "a.h5", max_images=60, seed=3, progress=False)
    assert summary["num_train"] + summary["num_test"] == 60
    assert summary["test_per_class"] == [2] * 10 and summary["train_per_class"] == [4] * 10
    assert summary["skipped_images"] == 0 and summary["audio_dim"] == 128
    data = load_av_hdf5(tmp_path / "a.h5", audio_dim=128, visual_dim=1024, num_classes=10)
    assert data.class_names == DIGIT_NAMES
    assert np.isfinite(data.train.audio).all()
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f.attrs["seed"] == 3
        assert f.attrs["train_per_class"] == "none"
        assert "AV-Digits" in f.attrs["description"]
        assert f.attrs["sample_rate"] == 16000
    # Same seed, same file contents (synthesis runs from a never-used engine each time).
    build_av_digits(tmp_path / "b.h5", max_images=60, seed=3, progress=False)
    with h5py.File(tmp_path / "a.h5", "r") as a, h5py.File(tmp_path / "b.h5", "r") as b:
        for key in a:
            np.testing.assert_array_equal(a[key][()], b[key][()], err_msg=key)
    # Another seed gives another split and other voices.
    other, _ = make_av_digits(max_images=60, seed=4, progress=False)
    assert not np.array_equal(other.test.visual, data.test.visual)


def test_low_resource_split_keeps_the_test_set(tmp_path):
    full, _ = make_av_digits(max_images=100, seed=0, progress=False)
    low, summary = make_av_digits(max_images=100, seed=0, train_per_class=2, progress=False)
    assert summary["train_per_class"] == [2] * 10
    assert low.train.class_counts(10).tolist() == [2] * 10
    np.testing.assert_array_equal(low.test.visual, full.test.visual)
    np.testing.assert_array_equal(low.test.labels, full.test.labels)
    # Smaller training splits are subsets of larger ones.
    full_rows = {row.tobytes() for row in full.train.visual}
    assert all(row.tobytes() in full_rows for row in low.train.visual)
    with pytest.raises(ValueError, match=r"train_per_class=50.*only"):
        make_av_digits(max_images=100, train_per_class=50, progress=False)
    with pytest.raises(ValueError, match="test_fraction"):
        make_av_digits(test_fraction=1.0, progress=False)


def test_bad_synthesis_is_skipped_counted_and_reported(monkeypatch, caplog):
    real_speak = av_digits._speak

    def failing_speak(tts, text, voice, rng, snr_db, gain_db):
        if text == "three":
            raise ValueError("silent")
        return real_speak(tts, text, voice, rng, snr_db, gain_db)

    monkeypatch.setattr(av_digits, "_speak", failing_speak)
    data, summary = make_av_digits(max_images=40, seed=0, progress=False, fresh_process=False)
    assert summary["skipped_images"] == 4  # every "three"
    assert summary["failed_syntheses"] == 4 * 3  # three attempts each
    assert summary["num_train"] + summary["num_test"] == 36
    assert 3 not in data.train.labels and 3 not in data.test.labels
    assert "4 image(s) skipped" in caplog.text


@pytest.mark.slow
def test_full_build(tmp_path):
    summary = build_av_digits(tmp_path / "full.h5", seed=0, progress=False)
    assert summary["num_train"] + summary["num_test"] == 1797  # every scikit-learn digit
    assert summary["num_test"] == 539 and summary["skipped_images"] == 0
    assert summary["seconds"] < 60
    data = load_av_hdf5(tmp_path / "full.h5", audio_dim=128, visual_dim=1024, num_classes=10)
    assert data.train.class_counts(10).min() >= 120


# ------------------------------------------------------------------ the eSpeak NG process pool
# (kerasadml.data.espeak.PristinePool, shared with SynthPhrase; units are module-level
# functions, so that the workers can unpickle them)


def _speak_twice(text):
    from kerasadml.data.espeak import ESpeak, Voice, report_progress

    tts = ESpeak()
    first = tts.synthesize(text, Voice("en-us", "m3"))
    report_progress(1)
    second = tts.synthesize(text, Voice("en-us", "m3"))
    report_progress(1)
    return first, second


def _unit_raises(_):
    raise ValueError("bad unit")


def _unit_dies(_):
    os.kill(os.getpid(), signal.SIGKILL)


def test_pristine_pool_units_start_from_a_fresh_engine_and_failures_are_reported():
    from kerasadml.data.espeak import PristinePool, UnitFailure

    ticks = []
    with PristinePool(2, name="test") as pool:
        (a1, a2), (b1, b2) = pool.map(_speak_twice, ["the river", "the river"], progress=ticks.append)
        # whichever worker ran it, a unit gives the same audio: every unit starts pristine
        assert a1.tobytes() == b1.tobytes() and a2.tobytes() == b2.tobytes()
        assert sum(ticks) == 4
        assert list(pool.run(_unit_raises, [None])) == [(0, UnitFailure("error", "ValueError: bad unit"))]
        ((index, died),) = pool.run(_unit_dies, [None])
        assert died.kind == "crashed" and "SIGKILL" in died.message
        (again, _), = pool.map(_speak_twice, ["the river"])  # a dead unit leaves its worker usable
        assert again.tobytes() == a1.tobytes()
