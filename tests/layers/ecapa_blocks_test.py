import keras
import numpy as np
import pytest

from kerasadml.layers.ecapa_blocks import SERes2Block, TDNNBlock, masked_time_mean
from tests.helpers import roundtrip, to_numpy


def np_conv1d_same(x, kernel, bias, dilation=1):
    """x (B,T,Ci), kernel (k,Ci,Co): 'same' padding with dilation, like keras Conv1D."""
    k = kernel.shape[0]
    span = dilation * (k - 1)
    left = span // 2
    xp = np.pad(x, ((0, 0), (left, span - left), (0, 0)))
    out = np.zeros(x.shape[:2] + (kernel.shape[2],), np.float64)
    for j in range(k):
        out += xp[:, j * dilation : j * dilation + x.shape[1], :] @ kernel[j]
    return out + bias


def np_bn(x, gamma, beta, mean, var, eps=1e-3):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_tdnn(layer, x, mask):
    kernel, bias = [np.asarray(w) for w in layer.conv.get_weights()]
    gamma, beta, mean, var = [np.asarray(w) for w in layer.norm.get_weights()]
    x = x * mask[..., None]
    y = np_bn(np.maximum(np_conv1d_same(x, kernel, bias, layer.dilation_rate), 0), gamma, beta, mean, var)
    return y * mask[..., None]


def _randomize_bn(layer):
    for sub in layer._flatten_layers():
        if isinstance(sub, keras.layers.BatchNormalization):
            g, b, m, v = sub.get_weights()
            rng = np.random.RandomState(len(sub.name))
            sub.set_weights([1 + 0.1 * rng.randn(*g.shape), 0.1 * rng.randn(*b.shape), 0.1 * rng.randn(*m.shape), 1 + rng.rand(*v.shape)])


def test_tdnn_block_matches_numpy():
    x = np.random.randn(2, 12, 6).astype("float32")
    mask = np.arange(12)[None] < np.array([[12], [7]])
    layer = TDNNBlock(5, 3, 2)
    layer(x, mask=mask)
    _randomize_bn(layer)
    np.testing.assert_allclose(to_numpy(layer(x, mask=mask)), np_tdnn(layer, x, mask), rtol=1e-4, atol=1e-5)


def test_se_res2_block_matches_numpy():
    C, scale = 16, 4
    x = np.random.randn(2, 15, C).astype("float32")
    mask = np.arange(15)[None] < np.array([[15], [9]])
    block = SERes2Block(C, 3, 2, scale=scale, se_channels=8)
    block(x, mask=mask)
    _randomize_bn(block)
    out = to_numpy(block(x, mask=mask))

    h = np_tdnn(block.tdnn_in, x, mask)
    chunks = np.split(h, scale, axis=-1)
    ys, prev = [chunks[0]], None
    for i, sub in enumerate(block.res2, start=1):
        part = chunks[i] if prev is None else chunks[i] + prev
        prev = np_tdnn(sub, part, mask)
        ys.append(prev)
    h = np_tdnn(block.tdnn_out, np.concatenate(ys, -1), mask)
    m = mask[..., None].astype(float)
    s = (h * m).sum(1) / m.sum(1)
    w1, b1 = [np.asarray(w) for w in block.se_squeeze.get_weights()]
    w2, b2 = [np.asarray(w) for w in block.se_excite.get_weights()]
    gate = 1 / (1 + np.exp(-(np.maximum(s @ w1 + b1, 0) @ w2 + b2)))
    expected = (h * gate[:, None, :] + x) * m
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_padding_changes_nothing_in_inference():
    block = SERes2Block(8, 3, 3, scale=4, se_channels=4)
    x = np.random.randn(1, 10, 8).astype("float32")
    padded = np.concatenate([x, np.random.randn(1, 6, 8).astype("float32")], axis=1)
    mask = np.arange(16)[None] < 10
    a = to_numpy(block(x, mask=np.ones((1, 10), bool)))
    b = to_numpy(block(padded, mask=mask))
    np.testing.assert_allclose(b[:, :10], a, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(b[:, 10:], 0.0)


def test_masked_time_mean():
    x = np.arange(12, dtype="float32").reshape(1, 4, 3)
    mask = np.array([[True, True, False, False]])
    np.testing.assert_allclose(to_numpy(masked_time_mean(x, mask)), x[:, :2].mean(1))


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        SERes2Block(10, scale=4)
    with pytest.raises(ValueError, match="channels"):
        SERes2Block(8, scale=4)(np.zeros((1, 5, 6), "float32"))


def test_serialization_roundtrip():
    block = SERes2Block(8, 3, 2, scale=4, se_channels=4)
    x = np.random.randn(2, 9, 8).astype("float32")
    ref = to_numpy(block(x))
    clone = roundtrip(block)
    clone(x)
    clone.set_weights(block.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), ref, rtol=1e-6)
    assert clone.get_config() == block.get_config()
