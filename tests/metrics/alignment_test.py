"""Alignment diagnostics of attention (affinity) matrices: peaks, monotonic fraction and
peak spread on diagonals, reversed diagonals, collapsed attention and bad shapes."""

import numpy as np
import pytest

from kerasadml.metrics.alignment import attention_peaks, monotonic_fraction, peak_spread


def _diagonal(tt, ta):
    """Soft diagonal: phoneme i peaks at frame round(i (ta - 1) / (tt - 1))."""
    centres = np.round(np.arange(tt) * (ta - 1) / (tt - 1))
    a = np.exp(-0.5 * (np.arange(ta)[None, :] - centres[:, None]) ** 2)
    return a / a.sum(1, keepdims=True), centres.astype(int)


def test_peaks_are_the_argmax_over_the_valid_part():
    a, centres = _diagonal(4, 10)
    np.testing.assert_array_equal(attention_peaks(a), centres)
    # a padded matrix: the valid part only
    padded = np.zeros((6, 14))
    padded[:4, :10] = a
    padded[:, 12] = 5.0  # a large value on a padded frame is ignored
    np.testing.assert_array_equal(attention_peaks(padded, text_length=4, audio_length=10), centres)
    assert attention_peaks(padded, text_length=4, audio_length=10).dtype.kind == "i"
    assert attention_peaks(padded, text_length=0).shape == (0,)


def test_diagonal_is_monotonic_with_full_spread():
    mats = [_diagonal(4, 10)[0], _diagonal(6, 25)[0], np.eye(3)]
    assert monotonic_fraction(mats) == 1.0
    assert peak_spread(mats) == pytest.approx(1.0)
    assert monotonic_fraction([np.eye(3)]) == 1.0 and peak_spread([np.eye(3)]) == 1.0


def test_reversed_diagonal_gives_zero_and_minus_one():
    mats = [_diagonal(4, 10)[0][::-1], np.eye(5)[::-1]]
    assert monotonic_fraction(mats) == 0.0
    assert peak_spread(mats) == pytest.approx(-1.0)


def test_collapsed_attention_is_monotonic_but_has_no_spread():
    collapsed = np.zeros((5, 12))
    collapsed[:, 7] = 1.0
    assert monotonic_fraction([collapsed]) == 1.0  # every step stays on the frame
    assert peak_spread([collapsed]) == 0.0
    # a half-collapsed clip: peaks on frames 2, 2, 2, 9 of 12
    partial = np.zeros((4, 12))
    partial[[0, 1, 2, 3], [2, 2, 2, 9]] = 1.0
    assert peak_spread([partial]) == pytest.approx(7 / 11)


def test_steps_are_pooled_over_matrices():
    forward = np.eye(4)  # 3 forward steps
    mixed = np.zeros((3, 5))  # peaks 0, 3, 1: one forward step, one back
    mixed[[0, 1, 2], [0, 3, 1]] = 1.0
    assert monotonic_fraction([forward, mixed]) == pytest.approx(4 / 5)
    assert peak_spread([forward, mixed]) == pytest.approx((1.0 + 1 / 4) / 2)
    # a generator works as well as a list
    assert monotonic_fraction(m for m in [forward, mixed]) == pytest.approx(4 / 5)


def test_tolerance_lets_peaks_move_back_a_little():
    a = np.zeros((4, 10))
    a[[0, 1, 2, 3], [2, 1, 5, 2]] = 1.0  # steps: -1, +4, -3
    assert monotonic_fraction([a]) == pytest.approx(1 / 3)
    assert monotonic_fraction([a], tolerance=1) == pytest.approx(2 / 3)
    assert monotonic_fraction([a], tolerance=2) == pytest.approx(2 / 3)
    assert monotonic_fraction([a], tolerance=3) == 1.0


def test_too_small_inputs_give_nan():
    assert np.isnan(monotonic_fraction([]))
    assert np.isnan(monotonic_fraction([np.ones((1, 5))]))  # one phoneme: no step
    assert np.isnan(peak_spread([]))
    assert np.isnan(peak_spread([np.ones((1, 5)), np.ones((3, 1))]))  # one phoneme / one frame
    # matrices that cannot count are skipped, the others still do
    assert monotonic_fraction([np.ones((1, 5)), np.eye(3)]) == 1.0


def test_bad_shapes_and_lengths_raise():
    with pytest.raises(ValueError, match=r"attention_peaks.*\(5,\)"):
        attention_peaks(np.ones(5))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        attention_peaks(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="lengths"):
        attention_peaks(np.ones((3, 4)), text_length=4)
    with pytest.raises(ValueError, match="lengths"):
        attention_peaks(np.ones((3, 4)), audio_length=0)
    with pytest.raises(ValueError, match="lengths"):
        attention_peaks(np.ones((3, 4)), text_length=-1)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        monotonic_fraction([np.ones((2, 3, 4))])
    with pytest.raises(ValueError, match=r"\(5,\)"):
        monotonic_fraction([np.ones(5)])
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        peak_spread([np.ones((2, 3, 4))])


def test_peak_spread_rejects_a_1d_matrix():
    # a 1-D array is not a (phonemes, frames) matrix: it must raise ValueError like
    # attention_peaks and monotonic_fraction do (not IndexError)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        peak_spread([np.ones(5)])
