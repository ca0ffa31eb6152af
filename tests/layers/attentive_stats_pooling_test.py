import keras
import numpy as np
import pytest

from kerasadml.layers.attentive_stats_pooling import AttentiveStatsPooling
from tests.helpers import (
    compiled,
    lengths_to_mask,
    roundtrip,
    to_numpy,
    training_call,
    value_and_grad,
)


def _forward(layer, x, mask=None):
    """``layer(x, mask=mask)`` in inference as one compiled call (``predict_on_batch``):
    much faster on JAX than an eager, op-by-op call."""
    x_in = keras.Input(x.shape[1:])
    if mask is None:
        return np.asarray(keras.Model(x_in, layer(x_in)).predict_on_batch(x))
    mask_in = keras.Input(mask.shape[1:], dtype="bool")
    model = keras.Model([x_in, mask_in], layer(x_in, mask=mask_in))
    return np.asarray(model.predict_on_batch([x, mask]))


def _randomise_batchnorm(layer, seed=0):
    """Non-trivial BN parameters and moving statistics, so inference mode is really tested."""
    rng = np.random.RandomState(seed)
    bn = layer.attention_norm
    width = layer.attention_channels
    bn.gamma.assign(rng.uniform(0.5, 1.5, width).astype("float32"))
    bn.beta.assign(rng.uniform(-0.5, 0.5, width).astype("float32"))
    bn.moving_mean.assign(rng.uniform(-0.3, 0.3, width).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, width).astype("float32"))


def _reference(layer, inputs, mask):
    """Numpy ECAPA attentive statistics pooling in inference mode, one sample at a time."""
    w1, b1 = (
        to_numpy(v).astype("float64")
        for v in (layer.attention_dense.kernel, layer.attention_dense.bias)
    )
    w2, b2 = (
        to_numpy(v).astype("float64") for v in (layer.score_dense.kernel, layer.score_dense.bias)
    )
    bn = layer.attention_norm
    gamma, beta, mm, mv = (
        to_numpy(v).astype("float64")
        for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
    )
    eps = layer.epsilon
    out = []
    for x, m in zip(inputs.astype("float64"), mask):
        h = x[m]  # (T_valid, C)
        if layer.global_context:
            mean = h.mean(0)
            std = np.sqrt(np.maximum(((h - mean) ** 2).mean(0), eps))
            g = np.concatenate([h, np.tile(mean, (len(h), 1)), np.tile(std, (len(h), 1))], axis=1)
        else:
            g = h
        a = np.maximum(g @ w1 + b1, 0.0)
        a = (a - mm) / np.sqrt(mv + bn.epsilon) * gamma + beta
        e = np.tanh(a) @ w2 + b2  # (T_valid, C)
        alpha = np.exp(e - e.max(0))
        alpha /= alpha.sum(0)
        mu = (alpha * h).sum(0)
        sigma = np.sqrt(np.maximum((alpha * h**2).sum(0) - mu**2, eps))
        out.append(np.concatenate([mu, sigma]))
    return np.stack(out)


def _inputs(batch=4, steps=12, channels=6, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(batch, steps, channels).astype("float32")
    mask = lengths_to_mask(rng.randint(2, steps + 1, size=batch), steps)
    mask[0] = True
    return x, mask


@pytest.mark.parametrize("global_context", [True, False])
def test_matches_numpy_reference_in_inference(global_context):
    x, mask = _inputs()
    layer = AttentiveStatsPooling(attention_channels=5, global_context=global_context)
    layer.build(x.shape)
    _randomise_batchnorm(layer)
    out = _forward(layer, x, mask)
    assert out.shape == (4, 12)
    np.testing.assert_allclose(out, _reference(layer, x, mask), rtol=2e-4, atol=2e-5)


def test_without_mask_all_frames_count():
    x, _ = _inputs(seed=1)
    layer = AttentiveStatsPooling(attention_channels=4)
    layer.build(x.shape)
    _randomise_batchnorm(layer, seed=1)
    np.testing.assert_allclose(
        _forward(layer, x), _reference(layer, x, np.ones(x.shape[:2], bool)), rtol=2e-4, atol=2e-5
    )


def test_appending_padded_frames_changes_nothing_in_inference():
    x, mask = _inputs(seed=2)
    layer = AttentiveStatsPooling(attention_channels=5)
    layer.build(x.shape)
    _randomise_batchnorm(layer, seed=2)
    out = _forward(layer, x, mask)
    garbage = 100.0 * np.random.RandomState(3).randn(4, 7, 6).astype("float32")
    garbage[0, 0, 0] = np.nan  # padded values are never read
    x_padded = np.concatenate([x, garbage], axis=1)
    mask_padded = np.concatenate([mask, np.zeros((4, 7), bool)], axis=1)
    out_padded = _forward(layer, x_padded, mask_padded)
    np.testing.assert_allclose(out_padded, out, rtol=1e-5, atol=1e-6)


def test_padded_frames_do_not_enter_batchnorm_statistics_in_training():
    x, mask = _inputs(seed=3)
    garbage = 100.0 * np.random.RandomState(4).randn(4, 5, 6).astype("float32")
    x_padded = np.concatenate([x, garbage], axis=1)
    mask_padded = np.concatenate([mask, np.zeros((4, 5), bool)], axis=1)
    a = AttentiveStatsPooling(attention_channels=5)
    a.build(x.shape)
    b = roundtrip(a)
    b.set_weights(a.get_weights())
    out_a, stats_a = training_call(a, x, mask=mask)
    out_b, stats_b = training_call(b, x_padded, mask=mask_padded)
    np.testing.assert_allclose(out_b, out_a, rtol=1e-4, atol=1e-5)
    assert len(stats_a) == 2  # the BatchNormalization moving mean and variance
    assert not np.allclose(stats_a[0], to_numpy(a.attention_norm.moving_mean))  # updated
    for va, vb in zip(stats_a, stats_b):
        np.testing.assert_allclose(vb, va, rtol=1e-5, atol=1e-6)


def test_keras_mask_of_the_inputs_is_used():
    x, mask = _inputs(seed=5)
    x = x * mask[:, :, None]
    layer = AttentiveStatsPooling(attention_channels=4)
    inputs = keras.Input((None, 6))
    masked = keras.layers.Masking(0.0)(inputs)
    model = keras.Model(inputs, layer(masked))
    np.testing.assert_allclose(
        model.predict_on_batch(x), _forward(layer, x, mask), rtol=1e-5, atol=1e-6
    )


def test_gradient_is_finite_for_constant_input():
    """std = 0 (globally and under attention): the epsilon inside the sqrt keeps it finite."""
    x = np.full((2, 9, 4), 0.7, "float32")
    mask = lengths_to_mask([9, 4], 9)
    layer = AttentiveStatsPooling(attention_channels=3)
    layer.build(x.shape)

    def fn(t):
        return keras.ops.sum(layer(t, mask=mask, training=False))

    value, (grad,) = value_and_grad(compiled(fn), x)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))
    out = _forward(layer, x, mask)
    np.testing.assert_allclose(out[:, :4], 0.7, rtol=1e-5)
    np.testing.assert_allclose(out[:, 4:], np.sqrt(layer.epsilon), rtol=1e-3)


def test_all_padding_sample_raises_when_visible_and_is_finite_when_traced():
    x, mask = _inputs(seed=6)
    mask[2] = False
    layer = AttentiveStatsPooling(attention_channels=4, epsilon=1e-4)
    with pytest.raises(ValueError, match=r"no valid frame for sample\(s\) \[2\]"):
        layer(x, mask=mask)
    inputs = keras.Input((None, 6))
    mask_in = keras.Input((None,), dtype="bool")
    model = keras.Model([inputs, mask_in], layer(inputs, mask=mask_in))
    out = model.predict_on_batch([x, mask])  # traced: cannot be seen, documented output
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[2], np.r_[np.zeros(6), np.full(6, np.sqrt(1e-4))], rtol=1e-5)


def test_rejects_bad_inputs_and_arguments():
    layer = AttentiveStatsPooling(attention_channels=4)
    with pytest.raises(ValueError, match=r"rank 3.*\(2, 6\)"):
        layer(np.zeros((2, 6), "float32"))
    with pytest.raises(ValueError, match="rank 3"):
        layer(np.zeros((2, 3, 4, 6), "float32"))
    with pytest.raises(ValueError, match="mask must have shape"):
        layer(np.zeros((2, 5, 6), "float32"), mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="attention_channels"):
        AttentiveStatsPooling(attention_channels=0)
    with pytest.raises(ValueError, match="epsilon"):
        AttentiveStatsPooling(epsilon=0.0)


def test_serialization_roundtrip_gives_same_outputs(tmp_path):
    x, mask = _inputs(seed=7)
    layer = AttentiveStatsPooling(
        attention_channels=5, global_context=False, epsilon=1e-5, name="ccsp"
    )
    layer.build(x.shape)
    _randomise_batchnorm(layer, seed=7)
    expected = _forward(layer, x, mask)
    restored = roundtrip(layer)
    assert restored.get_config() == layer.get_config()
    assert restored.built  # rebuilt from the serialised build config
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(_forward(restored, x, mask), expected, rtol=1e-6)

    inputs = keras.Input((None, 6))
    mask_in = keras.Input((None,), dtype="bool")
    model = keras.Model(
        [inputs, mask_in], AttentiveStatsPooling(attention_channels=5)(inputs, mask=mask_in)
    )
    _randomise_batchnorm(model.layers[-1], seed=8)
    before = model.predict_on_batch([x, mask])
    path = str(tmp_path / "pool.keras")
    model.save(path)
    after = keras.saving.load_model(path).predict_on_batch([x, mask])
    np.testing.assert_allclose(after, before, rtol=1e-6)


def test_tiny_fit_lowers_a_loss():
    rng = np.random.RandomState(0)
    n, steps, channels = 96, 10, 4
    x = rng.randn(n, steps, channels).astype("float32")
    mask = lengths_to_mask(rng.randint(3, steps + 1, size=n), steps)
    # Target: the mean of the valid frames of channel 0 and the max of channel 1.
    valid = np.where(mask[:, :, None], x, np.nan)
    y = np.stack([np.nanmean(valid[:, :, 0], 1), np.nanmax(valid[:, :, 1], 1)], axis=1).astype(
        "float32"
    )

    inputs = keras.Input((steps, channels))
    mask_in = keras.Input((steps,), dtype="bool")
    pooled = AttentiveStatsPooling(attention_channels=8)(inputs, mask=mask_in)
    model = keras.Model([inputs, mask_in], keras.layers.Dense(2)(pooled))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit([x, mask], y, epochs=20, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
