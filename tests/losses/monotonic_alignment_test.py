import numpy as np
import pytest

from kerasadml.losses.monotonic_alignment import MonotonicAlignment
from tests.helpers import compiled, lengths_to_mask, roundtrip, to_numpy, value_and_grad


def mm_reference(affinity, text_lengths, audio_lengths, g=0.2):
    """Loop-based guided-attention penalty over the true lengths of each pair."""
    out = np.zeros(len(affinity))
    for b, (tt, ta) in enumerate(zip(text_lengths, audio_lengths)):
        if tt == 0 or ta == 0:
            continue
        total = 0.0
        for i in range(tt):
            for j in range(ta):
                w = 1.0 - np.exp(-((i / tt - j / ta) ** 2) / (2 * g * g))
                total += affinity[b, i, j] * w
        out[b] = total / (tt * ta)
    return out


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("g", [0.2, 0.5])
def test_matches_numpy_reference_with_ragged_lengths(g):
    rng = np.random.RandomState(0)
    tt, ta = [5, 3, 7], [9, 12, 4]
    affinity = _softmax(rng.randn(3, 7, 12)).astype("float32")
    got = to_numpy(MonotonicAlignment(g=g)(affinity, lengths_to_mask(tt, 7), lengths_to_mask(ta, 12)))
    np.testing.assert_allclose(got, mm_reference(affinity, tt, ta, g), rtol=1e-5, atol=1e-7)


def test_without_masks_uses_the_full_lengths():
    affinity = np.random.rand(2, 4, 6).astype("float32")
    got = to_numpy(MonotonicAlignment()(affinity))
    np.testing.assert_allclose(got, mm_reference(affinity, [4, 4], [6, 6]), rtol=1e-5, atol=1e-7)


def test_diagonal_scores_lower_than_anti_diagonal():
    tt, ta = 6, 15
    diagonal = np.zeros((tt, ta), "float32")
    for i in range(tt):
        diagonal[i, int(i * ta / tt)] = 1.0
    anti = diagonal[::-1]
    got = to_numpy(MonotonicAlignment()(np.stack([diagonal, anti])))
    assert got[0] < 0.1 * got[1]
    assert got[0] >= 0.0


def test_padding_never_changes_a_result():
    rng = np.random.RandomState(1)
    affinity = _softmax(rng.randn(2, 4, 5)).astype("float32")
    loss = MonotonicAlignment()
    fn = compiled(lambda *a: loss(*a))
    base = to_numpy(fn(affinity, None, None))
    padded = 100.0 * rng.rand(2, 6, 9).astype("float32")  # garbage in the padding
    padded[:, :4, :5] = affinity
    got = to_numpy(fn(padded, lengths_to_mask([4, 4], 6), lengths_to_mask([5, 5], 9)))
    np.testing.assert_allclose(got, base, rtol=1e-6, atol=1e-7)


def test_empty_pair_gives_zero_and_gradient_is_the_weight_map():
    affinity = np.random.rand(2, 3, 4).astype("float32")
    tm = lengths_to_mask([3, 0], 3)
    am = lengths_to_mask([2, 4], 4)
    loss = MonotonicAlignment()
    values = to_numpy(loss(affinity, tm, am))
    assert values[1] == 0.0
    _, (grad,) = value_and_grad(compiled(lambda a: loss(a, tm, am)[0]), affinity)
    expected = np.zeros_like(affinity)
    for i in range(3):
        for j in range(2):
            expected[0, i, j] = (1 - np.exp(-((i / 3 - j / 2) ** 2) / (2 * 0.04))) / 6
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_serialization_and_argument_errors():
    loss = MonotonicAlignment(g=0.3, name="mm")
    assert roundtrip(loss).get_config() == loss.get_config()
    with pytest.raises(ValueError, match="g must be"):
        MonotonicAlignment(g=0.0)
    with pytest.raises(ValueError, match=r"affinity.*\(3, 4\)"):
        MonotonicAlignment()(np.zeros((3, 4), "float32"))


def test_rows_reduction_is_the_mean_row_sum():
    import numpy as np

    from kerasadml.losses.monotonic_alignment import MonotonicAlignment
    from tests.helpers import to_numpy

    rng = np.random.RandomState(3)
    a = rng.rand(2, 4, 9).astype("float32")
    a /= a.sum(-1, keepdims=True)
    tmask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    amask = np.array([[1] * 7 + [0] * 2, [1] * 9], bool)
    loss = MonotonicAlignment(reduction="rows")
    w = to_numpy(loss.guide_weights(tmask, amask))
    expected = []
    for b in range(2):
        rows = [(a[b, i] * w[b, i] * amask[b]).sum() for i in range(4) if tmask[b, i]]
        expected.append(np.mean(rows))
    np.testing.assert_allclose(to_numpy(loss(a, tmask, amask)), expected, rtol=1e-5)
    assert MonotonicAlignment(reduction="rows").get_config()["reduction"] == "rows"
