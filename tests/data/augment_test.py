"""Waveform augmentation (kerasadml.data.augment): each transform against a NumPy
expectation, determinism per seed, and the tf.data stage feeding a 2-step fit on the
current backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerasadml.data.augment import (
    AugmentConfig,
    Augmenter,
    active_power,
    add_noise,
    apply_gain,
    augment_batch,
    augment_clip,
    babble_noise,
    coloured_noise,
    estimate_rt60,
    formant_warp,
    hard_clip,
    pad_silence,
    reverberate,
    soft_clip,
    speed_perturb,
    synthetic_rir,
    telephone_band,
    white_noise,
)

SR = 16000


def _schroeder_rt60(h: np.ndarray) -> float:
    """Independent T20 estimate: backward-integrated energy of the reverberant part, the
    -5 to -25 dB span fitted by least squares, extrapolated to 60 dB."""
    tail = h[1:] ** 2
    edc = np.flip(np.cumsum(np.flip(tail)))
    db = 10 * np.log10(edc / edc[0])
    t = np.arange(db.size) / SR
    use = (db <= -5) & (db >= -25)
    slope, _ = np.polyfit(t[use], db[use], 1)
    return -60.0 / slope


def _band_energy(x: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def _resonant_noise(peak_hz: float, n: int = 32000, seed: int = 1, bandwidth: float = 80.0) -> np.ndarray:
    """White noise through one resonance (magnitude 1 / sqrt(1 + ((f - F) / bw)^2))."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    return np.fft.irfft(spectrum / np.sqrt(1 + ((freqs - peak_hz) / bandwidth) ** 2), n)


def _spectral_peak(x: np.ndarray) -> float:
    n = 1024
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::256] * np.hanning(n)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    smooth = np.convolve(power, np.ones(5) / 5, mode="same")
    return float(np.fft.rfftfreq(n, 1 / SR)[np.argmax(smooth)])


def _speech_like(n: int = 24000, seed: int = 0) -> np.ndarray:
    """A pulse train (125 Hz) through a 700 Hz resonance, with an amplitude envelope and
    silence at both ends: enough like a vowel sequence for the pipeline."""
    pulses = np.zeros(n)
    pulses[::128] = 1.0
    spectrum = np.fft.rfft(pulses)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    voiced = np.fft.irfft(spectrum / np.sqrt(1 + ((freqs - 700) / 120) ** 2), n)
    envelope = np.sin(np.linspace(0, 3 * np.pi, n)) ** 2
    wave = voiced * envelope
    wave[: n // 10] = 0
    wave[-n // 10 :] = 0
    return 0.5 * wave / np.max(np.abs(wave))


# ------------------------------------------------------------------------------- room
@pytest.mark.parametrize("rt60", [0.15, 0.4, 0.9])
def test_rir_energy_decay_matches_rt60(rt60):
    for seed in range(3):
        h = synthetic_rir(np.random.default_rng(seed), rt60, drr_db=3.0)
        assert h[0] == 1.0 and h.size == math.ceil(rt60 * SR) + 1
        assert abs(_schroeder_rt60(h) - rt60) < 0.1 * rt60
        assert abs(estimate_rt60(h) - rt60) < 0.1 * rt60


@pytest.mark.parametrize("drr", [-2.0, 6.0, 12.0])
def test_rir_direct_to_reverberant_ratio(drr):
    h = synthetic_rir(np.random.default_rng(0), 0.5, drr_db=drr)
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=1e-6)


def test_reverberation_is_a_convolution_that_keeps_the_direct_path_aligned():
    rng = np.random.default_rng(0)
    h = synthetic_rir(rng, 0.3, drr_db=8.0)
    x = np.zeros(8000)
    x[3000] = 1.0
    x[5000] = -0.5
    y = reverberate(x, h)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, np.convolve(x, h)[: x.size], atol=1e-9)
    assert int(np.argmax(np.abs(y))) == 3000  # the keyword does not move
    assert np.all(y[:3000] == pytest.approx(0.0, abs=1e-9))  # nothing before the direct sound


# ------------------------------------------------------------------------------ noise
@pytest.mark.parametrize("kind", ["white", "coloured", "babble"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 30.0])
def test_noise_is_added_at_the_requested_snr(kind, snr):
    rng = np.random.default_rng(3)
    speech = _speech_like()
    if kind == "white":
        noise = white_noise(speech.size, rng)
    elif kind == "coloured":
        noise = coloured_noise(speech.size, rng, 1.3)
    else:
        noise = babble_noise(speech.size, rng, [_speech_like(9000, 1), _speech_like(15000, 2)], (3, 5))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=1e-9)
    noisy = add_noise(speech, noise, snr)
    # against the speech's active level (frames within 40 dB of the loudest)
    frames = speech[: speech.size // 160 * 160].reshape(-1, 160)
    energy = np.mean(frames**2, axis=1)
    active = np.mean(energy[energy >= energy.max() * 1e-4])
    measured = 10 * np.log10(active / np.mean((noisy - speech) ** 2))
    assert abs(measured - snr) < 0.5


def test_active_power_ignores_silence():
    speech = _speech_like()
    padded = np.pad(speech, (16000, 16000))
    assert active_power(padded) == pytest.approx(active_power(speech), rel=1e-6)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / SR)
    assert active_power(tone) == pytest.approx(np.mean(tone**2), rel=1e-3)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_coloured_noise_has_a_one_over_f_beta_spectrum(beta):
    noise = coloured_noise(2**16, np.random.default_rng(0), beta)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(noise.size)
    use = (freqs > 1e-3) & (freqs < 0.45)
    slope = np.polyfit(np.log(freqs[use]), np.log(power[use]), 1)[0]
    assert abs(-slope - beta) < 0.1


# ---------------------------------------------------------------------------- channel
def test_telephone_band_removes_energy_outside_300_3400_hz():
    noise = white_noise(32000, np.random.default_rng(0))
    out = telephone_band(noise)
    assert out.shape == noise.shape
    assert _band_energy(out, 4000, 8001) < 1e-4  # nothing above 4 kHz (the 8 kHz channel)
    assert _band_energy(out, 0, 200) < 1e-3
    assert _band_energy(out, 400, 3300) > 0.9
    tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(16000) / SR)
    passed = telephone_band(tone)
    assert np.corrcoef(passed[1000:-1000], tone[1000:-1000])[0, 1] > 0.99  # in band: kept, aligned


def test_soft_and_hard_clipping():
    x = _speech_like()
    soft = soft_clip(x, 9.0)
    assert np.max(np.abs(soft)) == pytest.approx(np.max(np.abs(x)))
    order = np.argsort(x)
    assert np.all(np.diff(soft[order]) >= -1e-12)  # monotonic
    crest = lambda w: np.max(np.abs(w)) / np.sqrt(np.mean(w**2))  # noqa: E731
    assert crest(soft) < crest(x)  # compressed
    noise = white_noise(20000, np.random.default_rng(1)) * 0.2
    clipped = hard_clip(noise, 0.01)
    at_peak = np.mean(np.abs(clipped) >= np.max(np.abs(clipped)) - 1e-12)
    assert 0.009 <= at_peak <= 0.012
    assert np.max(np.abs(clipped)) == pytest.approx(np.max(np.abs(noise)))


def test_gain_never_passes_the_peak():
    x = _speech_like()
    assert np.max(np.abs(apply_gain(x, 20.0, 0.99))) == pytest.approx(0.99)
    np.testing.assert_allclose(apply_gain(x, -6.0), x * 10 ** (-6 / 20))


# ------------------------------------------------------------------------------ voice
@pytest.mark.parametrize("factor", [0.85, 1.0, 1.15])
def test_speed_perturbation_changes_length_and_frequency_by_the_factor(factor):
    n = 32000
    tone = np.sin(2 * np.pi * 500 * np.arange(n) / SR)
    out = speed_perturb(tone, factor)
    assert abs(out.size - n / factor) <= 1
    middle = out[1000:-1000] * np.hanning(out.size - 2000)
    peak = np.fft.rfftfreq(middle.size, 1 / SR)[np.argmax(np.abs(np.fft.rfft(middle)))]
    assert abs(peak - 500 * factor) < 2.0


@pytest.mark.parametrize("factor", [0.88, 0.94, 1.06, 1.12])
def test_formant_warp_moves_the_resonance_and_keeps_pitch_and_length(factor):
    noise = _resonant_noise(1000.0)
    warped = formant_warp(noise, factor)
    assert warped.shape == noise.shape and np.all(np.isfinite(warped))
    assert abs(_spectral_peak(noise) - 1000.0) < 20
    assert abs(_spectral_peak(warped) - 1000.0 * factor) < 0.03 * 1000.0 * factor
    voiced = _speech_like(32000)
    out = formant_warp(voiced, factor)[8000:24000]
    spectrum = np.fft.rfft(out, 2 * out.size)
    correlation = np.fft.irfft(np.abs(spectrum) ** 2)[: out.size]  # autocorrelation
    assert int(np.argmax(correlation[60:300])) + 60 == 128  # pitch period (125 Hz) unchanged


def test_formant_warp_of_one_is_the_identity_and_reconstruction_is_clean():
    x = _speech_like()
    np.testing.assert_array_equal(formant_warp(x, 1.0), x)
    nearly = formant_warp(x, 1.0 + 1e-9)  # the analysis/resynthesis path itself
    assert np.max(np.abs(nearly - x)) < 1e-6


# --------------------------------------------------------------------------- pipeline
def test_augment_clip_is_deterministic_bounded_and_finite():
    x = _speech_like()
    everything = AugmentConfig(speed_prob=1, vtlp_prob=1, silence_prob=1, reverb_prob=1, noise_prob=1,
                               telephone_prob=1, distortion_prob=1, noise_weights=(0, 0, 1))
    babble = [_speech_like(9000, 1), _speech_like(15000, 2)]
    for config in (AugmentConfig(), everything):
        for seed in range(6):
            a = augment_clip(x, np.random.default_rng(seed), config, babble=babble)
            b = augment_clip(x, np.random.default_rng(seed), config, babble=babble)
            np.testing.assert_array_equal(a, b)
            assert a.dtype == np.float32 and np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 1.0
        c = augment_clip(x, np.random.default_rng(100), config, babble=babble)
        assert not np.array_equal(a, c)
    out, params = augment_clip(x, np.random.default_rng(0), everything, babble=babble, max_samples=30000,
                               return_params=True)
    assert out.size <= 30000
    assert params["noise"] == "babble" and params["telephone"] and 0.15 <= params["rt60"] <= 0.9
    assert 0.85 <= params["speed"] <= 1.15 and 0.88 <= params["vtlp"] <= 1.12
    loud = augment_clip(x * 50, np.random.default_rng(0), AugmentConfig.off())  # clipped, not wrapped
    assert np.max(np.abs(loud)) <= 1.0


def test_off_changes_nothing_but_the_dtype():
    x = _speech_like()
    out = augment_clip(x, np.random.default_rng(0), AugmentConfig.off())
    np.testing.assert_allclose(out, x.astype(np.float32), atol=1e-7)
    assert Augmenter(AugmentConfig.off())(x, np.random.default_rng(0)).shape == x.shape


def test_silence_padding():
    x = _speech_like(8000)
    np.testing.assert_array_equal(pad_silence(x, 3, 2)[3:-2], x)
    config = AugmentConfig.off().__class__(**{**AugmentConfig.off().__dict__, "silence_prob": 1.0})
    out, params = augment_clip(x, np.random.default_rng(0), config, return_params=True)
    lead, trail = params["silence"]
    assert out.size == x.size + lead + trail and 0 <= lead <= 4000 and 0 <= trail <= 4000
    limited = augment_clip(x, np.random.default_rng(0), config, max_samples=8100)
    assert limited.size <= 8100


def test_config_validation():
    with pytest.raises(ValueError, match="speed_prob"):
        AugmentConfig(speed_prob=1.5)
    with pytest.raises(ValueError, match="snr_db"):
        AugmentConfig(snr_db=(30, 5))
    with pytest.raises(ValueError, match="noise_weights"):
        AugmentConfig(noise_weights=(1, 1))
    with pytest.raises(ValueError, match="1-D"):
        augment_clip(np.zeros((2, 100)), np.random.default_rng(0))


def test_augment_batch_pads_and_keeps_lengths():
    rows = [_speech_like(n, s) for s, n in enumerate((8000, 12000, 16000, 6000))]
    audio = np.zeros((4, 16000), np.float32)
    for r, w in enumerate(rows):
        audio[r, : w.size] = w
    lengths = np.asarray([w.size for w in rows], np.int32)
    out, new = augment_batch(audio, lengths, np.random.default_rng(0), labels=np.asarray([0, 0, 1, 1]))
    assert out.shape == (4, 16000) and out.dtype == np.float32 and new.dtype == np.int32
    for r in range(4):
        assert 0 < new[r] <= 16000 and np.all(out[r, new[r] :] == 0)
    out, new = augment_batch(audio, lengths, np.random.default_rng(0), audio_buckets=(16000, 24000, 32000))
    assert out.shape[1] in (16000, 24000, 32000) and new.max() <= out.shape[1]


# ---------------------------------------------------------------------------- tf.data
@pytest.fixture(scope="module")
def kws_batches(tmp_path_factory):
    """make_kws_training_dataset over a few synthetic clips (4 labels x 3 clips)."""
    import soundfile

    from kerasadml.data.speech.dataset import make_kws_training_dataset

    folder = tmp_path_factory.mktemp("augment_clips")
    paths, texts, labels = [], [], []
    for label in range(4):
        for clip in range(3):
            path = folder / f"k{label}_{clip}.wav"
            soundfile.write(path, _speech_like(8000 + 2000 * clip, 10 * label + clip).astype(np.float32), SR)
            paths.append(str(path))
            texts.append(f"word{label}")
            labels.append(label)

    def make(seed=0):
        dataset, _ = make_kws_training_dataset(
            paths, texts, labels, encode_text=lambda t: [1 + int(t[-1]), 2],
            keywords_per_batch=2, clips_per_keyword=2, seed=seed,
        )
        return dataset

    return make


def _batches(dataset, n):
    return [{k: np.asarray(v) for k, v in element.items()} for element in dataset.take(n).as_numpy_iterator()]


def test_augment_dataset_yields_valid_deterministic_batches(kws_batches):
    from kerasadml.data.augment import augment_dataset

    plain = _batches(kws_batches(), 3)
    first = _batches(augment_dataset(kws_batches(), AugmentConfig(), seed=5), 3)
    again = _batches(augment_dataset(kws_batches(), AugmentConfig(), seed=5), 3)
    other = _batches(augment_dataset(kws_batches(), AugmentConfig(), seed=6), 3)
    for p, a, b, o in zip(plain, first, again, other):
        assert set(a) == set(p) and a["audio"].dtype == np.float32 and a["audio_length"].dtype == np.int32
        assert a["audio"].shape[0] == p["audio"].shape[0] == 4
        np.testing.assert_array_equal(a["label"], p["label"])
        np.testing.assert_array_equal(a["phonemes"], p["phonemes"])
        np.testing.assert_array_equal(a["audio"], b["audio"])  # same seed, same batches
        assert not np.array_equal(a["audio"], p["audio"]) and not np.array_equal(a["audio"], o["audio"])
        assert np.all(np.isfinite(a["audio"])) and np.max(np.abs(a["audio"])) <= 1.0
        for r in range(4):
            assert 0 < a["audio_length"][r] <= a["audio"].shape[1]
            assert np.all(a["audio"][r, a["audio_length"][r] :] == 0)
    with pytest.raises(ValueError, match="audio_length"):
        import tensorflow as tf

        augment_dataset(tf.data.Dataset.from_tensor_slices({"x": np.zeros((2, 3))}))


def test_augment_dataset_feeds_model_fit(kws_batches):
    """Two training steps of a tiny Keras model on augmented batches, on the current backend."""
    import keras

    from kerasadml.data.augment import augment_dataset

    dataset = augment_dataset(kws_batches(), AugmentConfig(), seed=0, audio_buckets=(16000, 24000, 32000))
    dataset = dataset.map(lambda e: ({"audio": e["audio"]}, e["label"]))
    audio = keras.Input(shape=(None,), name="audio")
    x = keras.layers.Reshape((-1, 1))(audio)
    x = keras.layers.Conv1D(4, 160, strides=160)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model({"audio": audio}, keras.layers.Dense(4)(x))
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][-1])
