"""Frame-wise layers that respect a padding mask: PaddingMask, MaskedDense,
MaskedAveragePooling and MaskedAttentionPooling, against numpy references; padding
invariance, serialisation, and a fit of the attentive pooling."""

import keras
import numpy as np
import pytest

from kerasadml.layers import MaskedAttentionPooling, MaskedAveragePooling, MaskedDense, PaddingMask
from tests.helpers import dense_reference, lengths_to_mask, roundtrip, to_numpy


def _forward(layer, x, mask=None):
    """``layer(x, mask=mask)`` as one compiled call (``predict_on_batch``), as numpy."""
    x_in = keras.Input(x.shape[1:], dtype=x.dtype)
    if mask is None:
        model = keras.Model(x_in, layer(x_in))
        return np.asarray(model.predict_on_batch(x))
    mask_in = keras.Input(mask.shape[1:], dtype="bool")
    model = keras.Model([x_in, mask_in], layer(x_in, mask=mask_in))
    return np.asarray(model.predict_on_batch([x, mask]))


def _inputs(batch=3, steps=6, dim=5, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(batch, steps, dim).astype("float32")
    mask = lengths_to_mask([steps, 2, 4][:batch], steps)
    return x, mask


# ------------------------------------------------------------------ PaddingMask
def test_padding_mask():
    ids = np.array([[3, 4, 0, 0], [7, 0, 0, 0]], "int32")
    got = to_numpy(PaddingMask()(ids))
    assert got.dtype == bool
    np.testing.assert_array_equal(got, ids != 0)
    np.testing.assert_array_equal(to_numpy(PaddingMask(padding_id=4)(ids)), ids != 4)
    # in a functional model the output is a bool tensor of the input's shape
    ids_in = keras.Input((None,), dtype="int32")
    out = PaddingMask()(ids_in)
    assert out.dtype == "bool" and tuple(out.shape) == (None, None)
    restored = roundtrip(PaddingMask(padding_id=4, name="pad"))
    assert restored.get_config()["padding_id"] == 4 and restored.name == "pad"


# ------------------------------------------------------------------ MaskedDense
def test_masked_dense_matches_reference_and_zeros_padding():
    x, mask = _inputs()
    layer = MaskedDense(4)
    got = _forward(layer, x, mask)
    expected = dense_reference(layer.dense)(x.astype("float64")) * mask[..., None]
    assert got.shape == (3, 6, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all(got[~mask] == 0.0)
    # without a mask every frame is projected
    np.testing.assert_allclose(_forward(layer, x), dense_reference(layer.dense)(x.astype("float64")), rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, 7, 5)) == (None, 7, 4)


def test_masked_dense_roundtrip():
    x, mask = _inputs(seed=1)
    layer = MaskedDense(3, name="md")
    out = _forward(layer, x, mask)
    restored = roundtrip(layer)
    assert restored.get_config() == layer.get_config()
    assert restored.built  # rebuilt from the serialised build config
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(_forward(restored, x, mask), out, rtol=1e-6)


# ------------------------------------------------------------ MaskedAveragePooling
def test_masked_average_pooling_reference_padding_and_empty_rows():
    x, mask = _inputs(seed=2)
    got = _forward(MaskedAveragePooling(), x, mask)
    expected = np.stack([x[b, mask[b]].mean(0) for b in range(3)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_forward(MaskedAveragePooling(), x), x.mean(1), rtol=1e-5, atol=1e-6)
    # padded positions (with garbage) change nothing
    garbage = 1e3 * np.random.RandomState(3).randn(3, 4, 5).astype("float32")
    padded = np.concatenate([x, garbage], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((3, 4), bool)], axis=1)
    np.testing.assert_allclose(_forward(MaskedAveragePooling(), padded, padded_mask), got, rtol=1e-5, atol=1e-6)
    # a row with no valid position gives zeros, not NaN
    empty = mask.copy()
    empty[1] = False
    out = _forward(MaskedAveragePooling(), x, empty)
    assert np.all(out[1] == 0.0)
    assert MaskedAveragePooling().compute_output_shape((None, 7, 5)) == (None, 5)
    assert roundtrip(MaskedAveragePooling(name="avg")).name == "avg"


# ---------------------------------------------------------- MaskedAttentionPooling
def attention_pooling_reference(layer, x, mask):
    """scores = x W_score + b (B, T, H); softmax over the valid t per head; pooled per
    head; heads concatenated (head-major) and projected by Dense(D)."""
    x = x.astype("float64")
    batch, steps, dim = x.shape
    heads = layer.num_heads
    scores = dense_reference(layer.score)(x)  # (B, T, H)
    pooled = np.zeros((batch, heads, dim))
    for b in range(batch):
        valid = mask[b]
        if not valid.any():
            continue
        for h in range(heads):
            s = scores[b, valid, h]
            a = np.exp(s - s.max())
            a /= a.sum()
            pooled[b, h] = a @ x[b, valid]
    return dense_reference(layer.project)(pooled.reshape(batch, heads * dim))


@pytest.mark.parametrize("heads", [1, 3])
def test_attention_pooling_matches_numpy_reference(heads):
    x, mask = _inputs(seed=4)
    layer = MaskedAttentionPooling(num_heads=heads)
    got = _forward(layer, x, mask)
    assert got.shape == (3, 5)
    assert to_numpy(layer.score.kernel).shape == (5, heads)
    assert to_numpy(layer.project.kernel).shape == (5 * heads, 5)
    np.testing.assert_allclose(got, attention_pooling_reference(layer, x, mask), rtol=1e-4, atol=1e-5)
    # without a mask every position is valid
    np.testing.assert_allclose(
        _forward(layer, x), attention_pooling_reference(layer, x, np.ones(mask.shape, bool)), rtol=1e-4, atol=1e-5
    )


def test_attention_pooling_heads_can_differ_from_the_mean():
    # with random score weights the pooling is not the masked mean
    x, mask = _inputs(seed=5)
    layer = MaskedAttentionPooling(num_heads=2)
    _forward(layer, x, mask)
    score_kernel = 3.0 * np.random.RandomState(0).randn(5, 2).astype("float32")
    layer.score.kernel.assign(score_kernel)
    got = _forward(layer, x, mask)
    # the same weights with zero scores give the projection of the masked means
    layer.score.kernel.assign(np.zeros((5, 2), "float32"))
    means = np.stack([x[b, mask[b]].mean(0) for b in range(3)]).astype("float64")
    uniform = dense_reference(layer.project)(np.concatenate([means, means], axis=1))
    np.testing.assert_allclose(_forward(layer, x, mask), uniform, rtol=1e-4, atol=1e-5)
    assert np.abs(got - uniform).max() > 1e-2


def test_attention_pooling_padding_invariance():
    x, mask = _inputs(seed=6)
    layer = MaskedAttentionPooling(num_heads=2)
    base = _forward(layer, x, mask)
    garbage = 1e3 * np.random.RandomState(7).randn(3, 5, 5).astype("float32")
    padded = np.concatenate([x, garbage], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((3, 5), bool)], axis=1)
    np.testing.assert_allclose(_forward(layer, padded, padded_mask), base, rtol=1e-5, atol=1e-5)
    # garbage inside the existing padded positions does not matter either
    x2 = x.copy()
    x2[~mask] = 1e3
    np.testing.assert_allclose(_forward(layer, x2, mask), base, rtol=1e-5, atol=1e-5)


def test_attention_pooling_empty_row_is_finite():
    x, mask = _inputs(seed=8)
    mask[1] = False
    layer = MaskedAttentionPooling(num_heads=2)
    out = _forward(layer, x, mask)
    assert np.all(np.isfinite(out))
    # no valid position: nothing is pooled, the projection's bias remains
    np.testing.assert_allclose(out[1], to_numpy(layer.project.bias), atol=1e-6)


def test_attention_pooling_roundtrip_and_saved_model(tmp_path):
    x, mask = _inputs(seed=9)
    layer = MaskedAttentionPooling(num_heads=3, name="pool")
    out = _forward(layer, x, mask)
    restored = roundtrip(layer)
    assert restored.get_config() == layer.get_config() and restored.get_config()["num_heads"] == 3
    assert restored.built  # rebuilt from the serialised build config
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(_forward(restored, x, mask), out, rtol=1e-6)

    x_in = keras.Input((None, 5))
    m_in = keras.Input((None,), dtype="bool")
    model = keras.Model([x_in, m_in], MaskedAttentionPooling(num_heads=2, name="pool")(x_in, mask=m_in))
    expected = model.predict_on_batch([x, mask])
    path = str(tmp_path / "pool.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict_on_batch([x, mask]), expected, rtol=1e-6)


def test_attention_pooling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        MaskedAttentionPooling(num_heads=0)
    assert MaskedAttentionPooling(2).compute_output_shape((None, 7, 5)) == (None, 5)


def test_attention_pooling_fit_lowers_a_loss():
    """Learn to read the feature of the one marked position (feature 0 = 1) of a sequence."""
    rng = np.random.RandomState(0)
    n, steps, dim = 128, 6, 4
    x = rng.randn(n, steps, dim).astype("float32")
    x[:, :, 0] = 0.0
    mask = lengths_to_mask(rng.randint(2, steps + 1, size=n), steps)
    marked = np.array([rng.randint(0, mask[i].sum()) for i in range(n)])
    x[np.arange(n), marked, 0] = 4.0
    target = x[np.arange(n), marked, 1:2]

    x_in = keras.Input((steps, dim))
    m_in = keras.Input((steps,), dtype="bool")
    pooled = MaskedAttentionPooling(num_heads=2)(x_in, mask=m_in)
    model = keras.Model([x_in, m_in], keras.layers.Dense(1)(pooled))
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="mse")
    losses = model.fit([x, mask], target, epochs=25, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]


# ------------------------------------------------------- masks from PaddingMask / Keras
def test_padding_mask_drives_the_masked_layers_in_a_model():
    """The phoneme-encoder wiring: ids -> PaddingMask -> explicit masks of MaskedDense and
    the poolings, against numpy (embedding lookup, projection, masked mean)."""
    ids = np.array([[5, 3, 0, 0, 0], [2, 7, 4, 1, 0], [6, 0, 0, 0, 0]], "int32")
    ids_in = keras.Input((None,), dtype="int32")
    mask = PaddingMask()(ids_in)
    embed = keras.layers.Embedding(8, 4)
    dense = MaskedDense(3)
    frames = dense(embed(ids_in), mask=mask)
    model = keras.Model(ids_in, [frames, MaskedAveragePooling()(frames, mask=mask)])
    got_frames, got_mean = model.predict_on_batch(ids)
    valid = ids != 0
    table = to_numpy(embed.embeddings).astype("float64")
    expected = dense_reference(dense.dense)(table[ids]) * valid[..., None]
    np.testing.assert_allclose(got_frames, expected, rtol=1e-5, atol=1e-6)
    assert np.all(got_frames[~valid] == 0.0)
    means = np.stack([expected[b, valid[b]].mean(0) for b in range(3)])
    np.testing.assert_allclose(got_mean, means, rtol=1e-5, atol=1e-6)
    assert PaddingMask().compute_output_shape((None, 7)) == (None, 7)


def test_keras_mask_is_used_when_no_mask_is_passed():
    """``supports_masking``: a Keras mask carried by the inputs (``Embedding(mask_zero=True)``)
    reaches MaskedDense and the poolings as if passed explicitly."""
    ids = np.array([[5, 3, 0, 0], [2, 7, 4, 1], [6, 0, 0, 0]], "int32")
    ids_in = keras.Input((None,), dtype="int32")
    embed = keras.layers.Embedding(8, 4, mask_zero=True)
    dense = MaskedDense(4)
    attention = MaskedAttentionPooling(num_heads=2)
    frames = dense(embed(ids_in))
    implicit = keras.Model(ids_in, [frames, MaskedAveragePooling()(frames), attention(frames)])
    got_frames, got_mean, got_attention = implicit.predict_on_batch(ids)

    valid = ids != 0
    x = to_numpy(embed.embeddings).astype("float64")[ids]
    expected = dense_reference(dense.dense)(x) * valid[..., None]
    np.testing.assert_allclose(got_frames, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        got_mean, np.stack([expected[b, valid[b]].mean(0) for b in range(3)]), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        got_attention, attention_pooling_reference(attention, expected, valid), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("dtype", ["int32", "float32"])
def test_masks_may_be_zero_one_numbers(dtype):
    """A 0/1 mask of numbers means the same as the boolean mask."""
    x, mask = _inputs(seed=10)
    numeric = mask.astype(dtype)
    for layer in (MaskedDense(3), MaskedAveragePooling(), MaskedAttentionPooling(num_heads=2)):
        boolean = _forward(layer, x, mask)
        x_in = keras.Input(x.shape[1:])
        m_in = keras.Input(mask.shape[1:], dtype=dtype)
        got = keras.Model([x_in, m_in], layer(x_in, mask=m_in)).predict_on_batch([x, numeric])
        np.testing.assert_allclose(got, boolean, rtol=1e-6, atol=1e-6, err_msg=type(layer).__name__)


def test_pooled_outputs_carry_no_mask_and_masked_dense_keeps_it():
    """The poolings remove the time axis, so they return no mask; MaskedDense is
    frame-wise and passes the frame mask on."""
    x, mask = _inputs(seed=11)
    assert MaskedAveragePooling().compute_mask(x, mask) is None
    assert MaskedAttentionPooling().compute_mask(x, mask) is None
    np.testing.assert_array_equal(to_numpy(MaskedDense(3).compute_mask(x, mask)), mask)
