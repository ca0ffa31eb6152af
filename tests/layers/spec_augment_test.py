import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasadml.layers.spec_augment import SpecAugment
from tests.helpers import roundtrip, to_numpy


def _features(batch=4, frames=60, bins=40):
    return np.random.RandomState(0).uniform(1.0, 2.0, (batch, frames, bins)).astype("float32")


def _bands(mask_2d, axis):
    """Number of fully masked rows (axis=1: frames) or columns (axis=0: bins)."""
    return int(np.all(mask_2d, axis=axis).sum())


def test_identity_at_inference():
    x = _features()
    layer = SpecAugment(seed=1)
    np.testing.assert_array_equal(to_numpy(layer(x)), x)
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), x)


def test_masks_applied_in_training_with_bounded_widths():
    x = _features()
    layer = SpecAugment(freq_masks=2, freq_width=8, time_masks=2, time_width=10, seed=3)
    out = to_numpy(layer(x, training=True))
    assert out.shape == x.shape
    zero = out == 0.0
    assert zero.any()
    # masked cells are exactly zero, others untouched
    np.testing.assert_array_equal(out[~zero], x[~zero])
    for i in range(x.shape[0]):
        freq_cols = np.all(zero[i], axis=0)  # bins masked at every frame
        time_rows = np.all(zero[i], axis=1)  # frames masked at every bin
        assert freq_cols.sum() <= 2 * 8 and time_rows.sum() <= 2 * 10
        # every zero lies in a masked band of bins or of frames
        assert np.all(zero[i] == (freq_cols[None, :] | time_rows[:, None]))
    # over the batch both kinds of mask occur
    assert any(np.all(zero[i], axis=0).any() for i in range(4))
    assert any(np.all(zero[i], axis=1).any() for i in range(4))


def test_successive_calls_differ_and_seed_reproduces():
    x = _features()
    a = SpecAugment(seed=5)
    first, second = to_numpy(a(x, training=True)), to_numpy(a(x, training=True))
    assert not np.array_equal(first, second)
    again = to_numpy(SpecAugment(seed=5)(x, training=True))
    np.testing.assert_array_equal(first, again)


def test_time_masks_stay_inside_valid_frames():
    x = _features()
    lengths = np.array([60, 30, 12, 5])
    layer = SpecAugment(freq_masks=0, time_masks=3, time_width=10, seed=2)
    for _ in range(5):
        out = to_numpy(layer(x, lengths=lengths, training=True))
        for i, n in enumerate(lengths):
            np.testing.assert_array_equal(out[i, n:], x[i, n:])


def test_zero_masks_is_identity_and_mask_value():
    x = _features()
    np.testing.assert_array_equal(
        to_numpy(SpecAugment(freq_masks=0, time_masks=0)(x, training=True)), x
    )
    out = to_numpy(SpecAugment(mask_value=-7.0, seed=0)(x, training=True))
    assert (out == -7.0).any() and not (out == 0.0).any()


def test_in_model_fit_and_predict():
    inp = keras.Input((None, 40))
    h = SpecAugment(seed=0)(inp)
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(inp, out)
    model.compile("adam", "mse")
    x = _features()
    model.fit(x, np.ones((4, 1)), epochs=1, verbose=0)
    # predict = inference: identical to the model without augmentation
    plain = keras.Model(inp, out)
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-6)


def test_in_tf_data():
    x = _features()
    layer = SpecAugment(seed=0)
    ds = tf.data.Dataset.from_tensors(x).map(lambda t: layer(t, training=True))
    out = next(iter(ds)).numpy()
    assert out.shape == x.shape and (out == 0.0).any()


def test_config_and_errors():
    layer = SpecAugment(freq_masks=1, freq_width=4, time_masks=3, time_width=7, seed=9)
    assert roundtrip(layer).get_config() == layer.get_config()
    assert layer.compute_output_shape((2, 10, 40)) == (2, 10, 40)
    with pytest.raises(ValueError, match="freq_width"):
        SpecAugment(freq_width=-1)
    with pytest.raises(ValueError, match="batch, frames, bins"):
        SpecAugment()(np.ones((2, 10), "float32"), training=True)
