import keras
import numpy as np
import pytest

from kerasadml.layers.cross_attention_aligner import CrossAttentionAligner
from tests.helpers import (
    compiled,
    dense_reference,
    lengths_to_mask,
    roundtrip,
    to_numpy,
    training_call,
    value_and_grad,
)


def _forward(layer, text, audio, text_mask=None, audio_mask=None):
    """``layer(text, audio, ...)`` in inference as one compiled call (``predict_on_batch``):
    much faster on JAX than an eager, op-by-op call. Returns numpy ``(aligned, affinity)``."""
    text_in = keras.Input(text.shape[1:])
    audio_in = keras.Input(audio.shape[1:])
    inputs, arrays, kwargs = [text_in, audio_in], [text, audio], {}
    for name, mask in (("text_mask", text_mask), ("audio_mask", audio_mask)):
        if mask is not None:
            mask_in = keras.Input(mask.shape[1:], dtype="bool")
            inputs.append(mask_in)
            arrays.append(mask)
            kwargs[name] = mask_in
    model = keras.Model(inputs, layer(text_in, audio_in, **kwargs))
    aligned, affinity = model.predict_on_batch(arrays)
    return np.asarray(aligned), np.asarray(affinity)


def _reference(layer, text, audio, text_mask, audio_mask):
    """Independent numpy forward pass with the layer's weights (float64, loops over rows)."""
    text, audio = text.astype("float64"), audio.astype("float64")
    batch, tt, _ = text.shape
    ta = audio.shape[1]
    heads, dk, dv = layer.num_heads, layer.key_dim, layer.value_dim
    q = dense_reference(layer.query_dense)(text).reshape(batch, tt, heads, dk)
    k = dense_reference(layer.key_dense)(audio).reshape(batch, ta, heads, dk)
    v = dense_reference(layer.value_dense)(audio).reshape(batch, ta, heads, dv)
    weights = np.zeros((batch, heads, tt, ta))
    for b in range(batch):
        valid = audio_mask[b]
        for h in range(heads):
            for i in range(tt):
                if not text_mask[b, i] or not valid.any():
                    continue
                logits = k[b, valid, h] @ q[b, i, h] / np.sqrt(dk)
                e = np.exp(logits - logits.max())
                weights[b, h, i, valid] = e / e.sum()
    context = np.einsum("bhts,bshd->bthd", weights, v).reshape(batch, tt, heads * dv)
    if layer.output_dense is not None:
        context = dense_reference(layer.output_dense)(context) * text_mask[:, :, None]
    return context, weights.mean(axis=1)


def _inputs(batch=3, tt=5, ta=9, dt=8, da=6, seed=0):
    rng = np.random.RandomState(seed)
    text = rng.randn(batch, tt, dt).astype("float32")
    audio = rng.randn(batch, ta, da).astype("float32")
    text_mask = lengths_to_mask(rng.randint(1, tt + 1, size=batch), tt)
    audio_mask = lengths_to_mask(rng.randint(1, ta + 1, size=batch), ta)
    text_mask[0] = True
    audio_mask[0] = True
    return text, audio, text_mask, audio_mask


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # single head, d_k = Dt, aligned width = Da, no Wo
        {"num_heads": 2, "use_bias": True},  # 2 heads, d_k = Dt // 2, Wo: 2 d_k -> Da
        {"num_heads": 2, "units": 3, "output_dim": 5},
        {"output_dim": 4},  # single head with Wo
    ],
)
def test_matches_numpy_reference(kwargs):
    text, audio, text_mask, audio_mask = _inputs()
    layer = CrossAttentionAligner(**kwargs)
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    ref_aligned, ref_affinity = _reference(layer, text, audio, text_mask, audio_mask)
    expected_dim = kwargs.get("output_dim", audio.shape[-1])
    assert aligned.shape == (3, 5, expected_dim)
    assert affinity.shape == (3, 5, 9)
    np.testing.assert_allclose(aligned, ref_aligned, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(affinity, ref_affinity, rtol=1e-4, atol=1e-6)


def test_default_widths():
    layer = CrossAttentionAligner(num_heads=2)
    layer.build((1, 2, 8), (1, 3, 6))
    assert layer.key_dim == 4 and layer.value_dim == 4 and layer.output_dense is not None
    single = CrossAttentionAligner()
    single.build((1, 2, 8), (1, 3, 6))
    assert single.key_dim == 8 and single.value_dim == 6 and single.output_dense is None


def test_affinity_rows_sum_to_one_over_valid_audio_and_zero_on_padding():
    text, audio, text_mask, audio_mask = _inputs(batch=4, seed=3)
    layer = CrossAttentionAligner(num_heads=2)
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    row_sums = affinity.sum(-1)
    np.testing.assert_allclose(row_sums[text_mask], 1.0, rtol=1e-5)
    assert np.all(row_sums[~text_mask] == 0.0)
    assert np.all(affinity[~audio_mask[:, None, :].repeat(5, axis=1)] == 0.0)
    assert np.all(aligned[~text_mask] == 0.0)


def test_padding_audio_does_not_change_valid_outputs():
    text, audio, text_mask, audio_mask = _inputs(seed=1)
    layer = CrossAttentionAligner(num_heads=2, output_dim=7, use_bias=True)
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    garbage = 50.0 * np.random.RandomState(9).randn(3, 4, audio.shape[-1]).astype("float32")
    audio_padded = np.concatenate([audio, garbage], axis=1)
    audio_mask_padded = np.concatenate([audio_mask, np.zeros((3, 4), bool)], axis=1)
    aligned2, affinity2 = _forward(layer, text, audio_padded, text_mask, audio_mask_padded)
    np.testing.assert_allclose(aligned2, aligned, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(affinity2[:, :, :9], affinity, rtol=1e-5, atol=1e-7)
    assert np.all(affinity2[:, :, 9:] == 0.0)


def test_padding_text_does_not_change_valid_outputs():
    text, audio, text_mask, audio_mask = _inputs(seed=2)
    layer = CrossAttentionAligner(num_heads=2, use_bias=True)
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    garbage = 50.0 * np.random.RandomState(8).randn(3, 3, text.shape[-1]).astype("float32")
    text_padded = np.concatenate([text, garbage], axis=1)
    text_mask_padded = np.concatenate([text_mask, np.zeros((3, 3), bool)], axis=1)
    aligned2, affinity2 = _forward(layer, text_padded, audio, text_mask_padded, audio_mask)
    np.testing.assert_allclose(aligned2[:, :5], aligned, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(affinity2[:, :5], affinity, rtol=1e-5, atol=1e-7)
    assert np.all(aligned2[:, 5:] == 0.0) and np.all(affinity2[:, 5:] == 0.0)


def test_all_padding_audio_row_gives_finite_zeros_and_finite_gradients():
    text, audio, text_mask, audio_mask = _inputs(seed=4)
    audio_mask[1] = False
    layer = CrossAttentionAligner(num_heads=2, output_dim=4)
    layer.build(text.shape, audio.shape)

    def fn(t, a):
        out, aff = layer(t, a, text_mask=text_mask, audio_mask=audio_mask)
        return keras.ops.sum(out**2) + keras.ops.sum(aff**2)

    _, grads = value_and_grad(compiled(fn), text, audio)
    assert all(np.all(np.isfinite(g)) for g in grads)
    assert np.all(grads[1][1] == 0.0)  # the fully padded clip gets no gradient
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    assert np.all(np.isfinite(aligned)) and np.all(np.isfinite(affinity))
    assert np.all(aligned[1] == 0.0) and np.all(affinity[1] == 0.0)


def test_without_masks_everything_is_valid():
    text, audio, _, _ = _inputs(seed=5)
    layer = CrossAttentionAligner()
    aligned, affinity = _forward(layer, text, audio)
    ones_t, ones_a = np.ones(text.shape[:2], bool), np.ones(audio.shape[:2], bool)
    ref_aligned, ref_affinity = _reference(layer, text, audio, ones_t, ones_a)
    np.testing.assert_allclose(aligned, ref_aligned, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(affinity, ref_affinity, rtol=1e-4, atol=1e-6)


def test_dropout_only_in_training_and_affinity_is_pre_dropout():
    text, audio, text_mask, audio_mask = _inputs(seed=6)
    layer = CrossAttentionAligner(dropout=0.5)
    aligned_inf, affinity_inf = _forward(layer, text, audio, text_mask, audio_mask)
    ref_aligned, _ = _reference(layer, text, audio, text_mask, audio_mask)
    np.testing.assert_allclose(aligned_inf, ref_aligned, rtol=1e-4, atol=1e-5)  # no dropout
    (aligned_tr, affinity_tr), _ = training_call(
        layer, text, audio, text_mask=text_mask, audio_mask=audio_mask
    )
    np.testing.assert_allclose(affinity_tr, affinity_inf, rtol=1e-5, atol=1e-7)
    assert not np.allclose(aligned_tr, aligned_inf)


def test_rejects_bad_inputs():
    layer = CrossAttentionAligner()
    text = np.zeros((2, 3, 4), "float32")
    audio = np.zeros((2, 5, 6), "float32")
    with pytest.raises(ValueError, match="text must have rank 3"):
        layer(text[0], audio)
    with pytest.raises(ValueError, match="audio must have rank 3"):
        layer(text, audio[..., None])
    with pytest.raises(ValueError, match=r"same batch size.*\(2, 3, 4\).*\(3, 5, 6\)"):
        layer(text, np.zeros((3, 5, 6), "float32"))
    layer(text, audio)  # builds
    with pytest.raises(ValueError, match="audio_mask"):
        layer(text, audio, audio_mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="text_mask"):
        layer(text, audio, text_mask=np.ones((2, 3, 1), bool))
    with pytest.raises(ValueError, match="text_mask batch"):
        layer(text, audio, text_mask=np.ones((1, 3), bool))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        CrossAttentionAligner(num_heads=0)
    with pytest.raises(ValueError, match="units"):
        CrossAttentionAligner(units=-1)
    with pytest.raises(ValueError, match="output_dim"):
        CrossAttentionAligner(output_dim=0)
    with pytest.raises(ValueError, match="dropout"):
        CrossAttentionAligner(dropout=1.0)
    with pytest.raises(ValueError, match="units explicitly"):
        CrossAttentionAligner(num_heads=8)(
            np.zeros((1, 2, 4), "float32"), np.zeros((1, 3, 6), "float32")
        )


def test_serialization_roundtrip_gives_same_outputs():
    text, audio, text_mask, audio_mask = _inputs(seed=7)
    layer = CrossAttentionAligner(
        units=3, num_heads=2, output_dim=5, use_bias=True, dropout=0.1, name="al"
    )
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    restored = roundtrip(layer)
    assert restored.get_config() == layer.get_config()
    assert restored.built  # rebuilt from the serialised build config
    restored.set_weights(layer.get_weights())
    aligned2, affinity2 = _forward(restored, text, audio, text_mask, audio_mask)
    np.testing.assert_allclose(aligned2, aligned, rtol=1e-6)
    np.testing.assert_allclose(affinity2, affinity, rtol=1e-6)


def _functional_model(**kwargs):
    text = keras.Input((None, 8), name="text")
    audio = keras.Input((None, 6), name="audio")
    text_mask = keras.Input((None,), dtype="bool", name="text_mask")
    audio_mask = keras.Input((None,), dtype="bool", name="audio_mask")
    aligned, affinity = CrossAttentionAligner(name="aligner", **kwargs)(
        text, audio, text_mask=text_mask, audio_mask=audio_mask
    )
    return keras.Model([text, audio, text_mask, audio_mask], [aligned, affinity])


def test_saved_model_file_roundtrip(tmp_path):
    text, audio, text_mask, audio_mask = _inputs(seed=8)
    model = _functional_model(num_heads=2, output_dim=3)
    expected = model.predict([text, audio, text_mask, audio_mask], verbose=0)
    path = str(tmp_path / "aligner.keras")
    model.save(path)
    restored = keras.saving.load_model(path)  # safe mode
    got = restored.predict([text, audio, text_mask, audio_mask], verbose=0)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


def test_tiny_fit_lowers_a_loss():
    """Learn to copy, for each phoneme, the audio frame whose key matches it."""
    rng = np.random.RandomState(0)
    n, tt, ta, dt, da = 64, 4, 7, 8, 6
    text = rng.randn(n, tt, dt).astype("float32")
    audio = rng.randn(n, ta, da).astype("float32")
    text_mask = lengths_to_mask(rng.randint(2, tt + 1, size=n), tt)
    audio_mask = lengths_to_mask(rng.randint(4, ta + 1, size=n), ta)
    target = (audio * audio_mask[:, :, None]).sum(1, keepdims=True) / audio_mask.sum(1)[
        :, None, None
    ]
    target = np.repeat(target, tt, axis=1) * text_mask[:, :, None]

    text_in = keras.Input((tt, dt))
    audio_in = keras.Input((ta, da))
    tm_in = keras.Input((tt,), dtype="bool")
    am_in = keras.Input((ta,), dtype="bool")
    aligned, _ = CrossAttentionAligner(num_heads=2)(
        text_in, audio_in, text_mask=tm_in, audio_mask=am_in
    )
    model = keras.Model([text_in, audio_in, tm_in, am_in], aligned)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    history = model.fit(
        [text, audio, text_mask, audio_mask], target, epochs=15, batch_size=16, verbose=0
    )
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]


# ------------------------------------------------------------------ cosine attention
def _cosine_reference(layer, text, audio, text_mask, audio_mask):
    """Cosine attention in numpy: per head, q and k L2-normalised, logits
    ``exp(clip(log_scale, 0, log 100)) * cos(q, k)``, softmax over the valid audio frames."""
    text, audio = text.astype("float64"), audio.astype("float64")
    batch, tt, _ = text.shape
    ta = audio.shape[1]
    heads, dk, dv = layer.num_heads, layer.key_dim, layer.value_dim
    r = np.exp(np.clip(float(to_numpy(layer.log_scale)), 0.0, np.log(100.0)))
    q = dense_reference(layer.query_dense)(text).reshape(batch, tt, heads, dk)
    k = dense_reference(layer.key_dense)(audio).reshape(batch, ta, heads, dk)
    v = dense_reference(layer.value_dense)(audio).reshape(batch, ta, heads, dv)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    k = k / np.linalg.norm(k, axis=-1, keepdims=True)
    weights = np.zeros((batch, heads, tt, ta))
    for b in range(batch):
        valid = audio_mask[b]
        for h in range(heads):
            for i in range(tt):
                if not text_mask[b, i] or not valid.any():
                    continue
                logits = r * (k[b, valid, h] @ q[b, i, h])
                e = np.exp(logits - logits.max())
                weights[b, h, i, valid] = e / e.sum()
    context = np.einsum("bhts,bshd->bthd", weights, v).reshape(batch, tt, heads * dv)
    if layer.output_dense is not None:
        context = dense_reference(layer.output_dense)(context) * text_mask[:, :, None]
    return context, weights.mean(axis=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"similarity": "cosine"},
        {"similarity": "cosine", "num_heads": 2, "use_bias": True, "scale": 30.0},
    ],
)
def test_cosine_attention_matches_numpy_reference(kwargs):
    text, audio, text_mask, audio_mask = _inputs(seed=11)
    layer = CrossAttentionAligner(**kwargs)
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    np.testing.assert_allclose(float(to_numpy(layer.log_scale)), np.log(kwargs.get("scale", 10.0)), rtol=1e-6)
    assert "log_scale" in [w.name for w in layer.trainable_weights]
    ref_aligned, ref_affinity = _cosine_reference(layer, text, audio, text_mask, audio_mask)
    np.testing.assert_allclose(aligned, ref_aligned, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(affinity, ref_affinity, rtol=1e-4, atol=1e-6)
    # not the dot-product attention
    _, dot_affinity = _reference(layer, text, audio, text_mask, audio_mask)
    assert np.abs(dot_affinity - affinity).max() > 1e-3


def test_cosine_attention_scale_is_clipped_to_1_100():
    text, audio, text_mask, audio_mask = _inputs(seed=12)
    layer = CrossAttentionAligner(similarity="cosine", num_heads=2)
    _forward(layer, text, audio, text_mask, audio_mask)
    for log_scale in (np.log(1000.0), -2.0):
        layer.log_scale.assign(np.float32(log_scale))
        aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
        ref_aligned, ref_affinity = _cosine_reference(layer, text, audio, text_mask, audio_mask)
        np.testing.assert_allclose(affinity, ref_affinity, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(aligned, ref_aligned, rtol=1e-4, atol=1e-5)


def test_cosine_attention_ignores_frame_norms_and_padding():
    text, audio, text_mask, audio_mask = _inputs(seed=13)
    layer = CrossAttentionAligner(similarity="cosine", num_heads=2)  # no bias: keys scale with frames
    _, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    loud = audio * np.array([1.0, 20.0, 0.05, 7.0, 1.0, 3.0, 0.5, 1.0, 9.0], "float32")[None, :, None]
    _, affinity_loud = _forward(layer, text, loud, text_mask, audio_mask)
    np.testing.assert_allclose(affinity_loud, affinity, rtol=1e-4, atol=1e-6)
    # the valid rows still sum to 1; padded audio gets 0 and changes nothing
    np.testing.assert_allclose(affinity.sum(-1)[text_mask], 1.0, rtol=1e-5)
    garbage = 50.0 * np.random.RandomState(14).randn(3, 4, audio.shape[-1]).astype("float32")
    audio_padded = np.concatenate([audio, garbage], axis=1)
    mask_padded = np.concatenate([audio_mask, np.zeros((3, 4), bool)], axis=1)
    _, affinity2 = _forward(layer, text, audio_padded, text_mask, mask_padded)
    np.testing.assert_allclose(affinity2[:, :, :9], affinity, rtol=1e-5, atol=1e-7)
    assert np.all(affinity2[:, :, 9:] == 0.0)


def test_cosine_attention_trains_its_scale():
    text, audio, text_mask, audio_mask = _inputs(seed=15)
    layer = CrossAttentionAligner(similarity="cosine")
    layer.build(text.shape, audio.shape)
    names = [v.name for v in layer.trainable_variables]
    assert "log_scale" in names
    at = names.index("log_scale")
    values = [v.value for v in layer.trainable_variables]

    def fn(log_scale):
        weights = list(values)
        weights[at] = log_scale
        (aligned, affinity), _ = layer.stateless_call(
            weights, [], text, audio, text_mask=text_mask, audio_mask=audio_mask
        )
        return keras.ops.sum(affinity[..., 0])

    _, (grad,) = value_and_grad(compiled(fn), np.float32(np.log(10.0)))
    assert np.isfinite(grad) and abs(float(grad)) > 0


def test_cosine_attention_config_roundtrip_and_bad_arguments():
    text, audio, text_mask, audio_mask = _inputs(seed=16)
    layer = CrossAttentionAligner(num_heads=2, similarity="cosine", scale=20.0, name="al")
    aligned, affinity = _forward(layer, text, audio, text_mask, audio_mask)
    config = layer.get_config()
    assert config["similarity"] == "cosine" and config["scale"] == 20.0
    assert CrossAttentionAligner().get_config()["similarity"] == "dot"
    restored = roundtrip(layer)
    assert restored.get_config() == config
    assert restored.built and restored.log_scale is not None
    restored.set_weights(layer.get_weights())
    aligned2, affinity2 = _forward(restored, text, audio, text_mask, audio_mask)
    np.testing.assert_allclose(aligned2, aligned, rtol=1e-6)
    np.testing.assert_allclose(affinity2, affinity, rtol=1e-6)
    # a dot-product aligner has no scale weight
    dot = CrossAttentionAligner()
    dot.build(text.shape, audio.shape)
    assert dot.log_scale is None and "log_scale" not in [w.name for w in dot.weights]
    with pytest.raises(ValueError, match="similarity"):
        CrossAttentionAligner(similarity="euclidean")
    with pytest.raises(ValueError, match="scale"):
        CrossAttentionAligner(similarity="cosine", scale=0.5)
    with pytest.raises(ValueError, match="scale"):
        CrossAttentionAligner(similarity="cosine", scale=150.0)
