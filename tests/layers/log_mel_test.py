import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasadml.layers.log_mel import LogMelSpectrogram, htk_mel_matrix
from tests.helpers import roundtrip, to_numpy

SR, FL, FS, NFFT, NMEL = 16000, 400, 160, 512, 40


def _reference(wave, length=None, mean_normalize=True, eps=1e-6):
    """Independent numpy log-mel: explicit frame loop, scipy's periodic Hann window,
    np.fft, and TensorFlow's own ``linear_to_mel_weight_matrix``; float64 throughout."""
    from scipy.signal import get_window

    wave = np.asarray(wave, np.float64)
    num_frames = 1 + (len(wave) - FL) // FS
    window = get_window("hann", FL, fftbins=True)
    frames = np.stack([wave[t * FS : t * FS + FL] * window for t in range(num_frames)])
    power = np.abs(np.fft.rfft(frames, n=NFFT, axis=-1)) ** 2
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        NMEL, NFFT // 2 + 1, SR, 20.0, 7600.0
    ).numpy()
    feats = np.log(power @ mel_matrix.astype(np.float64) + eps)
    valid = num_frames if length is None else min(num_frames, 1 + (length - FL) // FS)
    if mean_normalize:
        feats = feats - feats[:valid].mean(axis=0, keepdims=True)
    feats[valid:] = 0.0
    return feats


def _waves(batch=3, samples=4000, seed=0):
    """Noise plus a tone. Tests keep to (3, 4000) where they can: JAX eager compiles every
    op once per shape, so one shape keeps the suite fast."""
    rng = np.random.RandomState(seed)
    t = np.arange(samples) / SR
    waves = 0.1 * rng.randn(batch, samples)
    waves += 0.5 * np.sin(2 * np.pi * rng.uniform(100, 4000, (batch, 1)) * t)
    return waves.astype("float32")


def test_mel_matrix_matches_tensorflow():
    ours = htk_mel_matrix(NMEL, NFFT // 2 + 1, SR, 20.0, 7600.0)
    theirs = tf.signal.linear_to_mel_weight_matrix(NMEL, NFFT // 2 + 1, SR, 20.0, 7600.0).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("mean_normalize", [False, True])
def test_matches_numpy_reference(mean_normalize):
    waves = _waves()
    lengths = np.array([4000, 2500, 400])
    layer = LogMelSpectrogram(mean_normalize=mean_normalize)
    out = to_numpy(layer(waves, lengths=lengths))
    assert out.shape == (3, 1 + (4000 - FL) // FS, NMEL)
    for i in range(3):
        ref = _reference(waves[i], lengths[i], mean_normalize=mean_normalize)
        if mean_normalize:
            np.testing.assert_allclose(out[i], ref, atol=2e-3)
        else:
            np.testing.assert_allclose(out[i], ref, rtol=1e-3, atol=1e-3)
    # no lengths: every frame is valid
    out = to_numpy(layer(waves))
    np.testing.assert_allclose(
        out[1], _reference(waves[1], None, mean_normalize), rtol=1e-3, atol=2e-3
    )


def test_invalid_frames_are_zero_and_frame_lengths():
    layer = LogMelSpectrogram(mean_normalize=False)  # (one normalised frame is all zeros)
    lengths = np.array([4000, 559, 560])
    out = to_numpy(layer(_waves(), lengths=lengths))
    frames = to_numpy(layer.frame_lengths(lengths))
    np.testing.assert_array_equal(frames, [23, 1, 2])
    for i, n in enumerate(frames):
        assert np.all(out[i, n:] == 0.0) and np.any(out[i, :n] != 0.0)
    np.testing.assert_array_equal(
        to_numpy(layer.frame_lengths(np.array([0, 399, 10_000]))), [0, 0, 61]
    )


def test_padding_invariance():
    """Zeros (or anything) after ``lengths`` change nothing in the valid frames."""
    layer = LogMelSpectrogram()
    lengths = np.array([4000, 2321, 1000])
    waves = _waves()
    for i, n in enumerate(lengths):
        waves[i, n:] = 0.0
    base = to_numpy(layer(waves, lengths=lengths))
    junk = waves.copy()
    rng = np.random.RandomState(1)
    for i, n in enumerate(lengths):
        junk[i, n:] = rng.randn(4000 - n)
    longer = np.concatenate([waves, np.zeros((3, 1000), "float32")], axis=1)
    frames = to_numpy(layer.frame_lengths(lengths))
    for padded in (junk, longer):
        out = to_numpy(layer(padded, lengths=lengths))
        for i, n in enumerate(frames):
            np.testing.assert_allclose(out[i, :n], base[i, :n], atol=1e-5)
            assert np.all(out[i, n:] == 0.0)
    # and the valid frames are those of the unpadded clip
    np.testing.assert_allclose(base[1, : frames[1]], _reference(waves[1, :2321]), atol=2e-3)


def test_tf_data_map_matches_direct_call():
    layer = LogMelSpectrogram()
    waves = _waves()
    lengths = np.array([4000, 3000, 401], "int32")
    direct = to_numpy(layer(waves, lengths=lengths))

    ds = tf.data.Dataset.from_tensor_slices((waves, lengths)).batch(3)
    mapped = next(iter(ds.map(lambda w, n: layer(w, lengths=n)))).numpy()
    np.testing.assert_allclose(mapped, direct, atol=1e-5)

    # variable-length clips, padded per batch, unknown static length inside the graph
    def gen():
        for w, n in zip(waves, lengths, strict=True):
            yield w[:n], np.int32(n)

    ds = tf.data.Dataset.from_generator(
        gen,
        output_signature=(tf.TensorSpec((None,), tf.float32), tf.TensorSpec((), tf.int32)),
    )
    ds = ds.padded_batch(3).map(lambda w, n: (layer(w, lengths=n), n))
    assert ds.element_spec[0].shape.as_list() == [None, None, NMEL]
    feats, n = next(iter(ds))
    feats = feats.numpy()
    assert feats.shape == direct.shape  # padded to the longest clip (4000)
    np.testing.assert_allclose(feats, direct, atol=1e-5)


def test_inside_a_model_matches_direct_call_and_saves(tmp_path):
    layer = LogMelSpectrogram(name="logmel")
    wave_in = keras.Input((None,), name="wave")
    len_in = keras.Input((), dtype="int32", name="length")
    feats = layer(wave_in, lengths=len_in)
    assert tuple(feats.shape) == (None, None, NMEL)
    pooled = keras.layers.GlobalAveragePooling1D()(feats)
    model = keras.Model([wave_in, len_in], [feats, pooled])

    waves = _waves()
    lengths = np.array([4000, 3200, 1000], "int32")
    direct = to_numpy(layer(waves, lengths=lengths))
    got, _ = model.predict([waves, lengths], verbose=0, batch_size=3)
    np.testing.assert_allclose(got, direct, atol=1e-5)

    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    got2, _ = restored.predict([waves, lengths], verbose=0, batch_size=3)
    np.testing.assert_allclose(got2, direct, atol=1e-5)


def test_trainable_model_after_frontend_fits():
    wave_in = keras.Input((4000,))
    x = LogMelSpectrogram()(wave_in)
    x = keras.layers.GlobalAveragePooling1D()(x)
    out = keras.layers.Dense(1)(x)
    model = keras.Model(wave_in, out)
    model.compile("adam", "mse")
    history = model.fit(_waves(8, 4000), np.ones((8, 1)), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_compute_output_shape_and_config():
    layer = LogMelSpectrogram(num_mel_bins=24, frame_step=100)
    assert layer.compute_output_shape((2, 16000)) == (2, 1 + (16000 - 400) // 100, 24)
    assert layer.compute_output_shape((None, None)) == (None, None, 24)
    restored = roundtrip(layer)
    assert restored.get_config() == layer.get_config()
    x = _waves()
    np.testing.assert_allclose(to_numpy(restored(x)), to_numpy(layer(x)), atol=1e-6)


def test_errors():
    layer = LogMelSpectrogram()
    with pytest.raises(ValueError, match="rank 1"):
        layer(np.zeros(16000, "float32"))
    with pytest.raises(ValueError, match="rank 3"):
        layer(np.zeros((1, 16000, 1), "float32"))
    with pytest.raises(ValueError, match=r"clip\(s\) \[1\].*\[399\].*shorter than one frame"):
        layer(_waves(2, 1000), lengths=np.array([1000, 399]))
    with pytest.raises(ValueError, match="399 samples, shorter than one frame"):
        layer(np.zeros((2, 399), "float32"))
    with pytest.raises(ValueError, match="lengths must have shape"):
        layer(_waves(2, 1000), lengths=np.array([1000, 1000, 1000]))
    with pytest.raises(ValueError, match="frame_length"):
        LogMelSpectrogram(frame_length=600)
    with pytest.raises(ValueError, match="upper_edge_hz"):
        LogMelSpectrogram(upper_edge_hz=9000.0)
