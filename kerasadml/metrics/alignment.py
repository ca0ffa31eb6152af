"""How well an attention (affinity) matrix aligns text to audio: monotonicity of its peaks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def attention_peaks(affinity: np.ndarray, text_length: int | None = None, audio_length: int | None = None) -> np.ndarray:
    """The audio frame each phoneme attends to most: ``argmax`` over the valid frames.

    Args:
        affinity: (Tt, Ta) attention of each phoneme over the audio frames.
        text_length, audio_length: valid phonemes and frames (default: all).

    Returns:
        (text_length,) int frame indices.
    """
    a = np.asarray(affinity, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"attention_peaks: affinity must be (phonemes, frames), got shape {a.shape}")
    tt = a.shape[0] if text_length is None else int(text_length)
    ta = a.shape[1] if audio_length is None else int(audio_length)
    if tt < 0 or ta < 1 or tt > a.shape[0] or ta > a.shape[1]:
        raise ValueError(
            f"attention_peaks: lengths ({text_length}, {audio_length}) do not fit the affinity shape {a.shape}"
        )
    return np.argmax(a[:tt, :ta], axis=1)


def monotonic_fraction(affinities: Iterable[np.ndarray], tolerance: int = 0) -> float:
    """Share of phoneme-to-next-phoneme steps whose attention peak does not move back in time.

    For each matrix (Tt, Ta) (valid part only), the peaks ``p_i = argmax_j A[i, j]`` are
    taken and every step ``i -> i+1`` counts as monotonic when ``p_{i+1} >= p_i - tolerance``.
    The result pools the steps of all matrices. A collapsed attention (all phonemes on one
    frame) counts as monotonic step by step, so report it together with
    :func:`peak_spread`.

    Args:
        affinities: matrices already cut to their valid phonemes and frames.
        tolerance: frames a peak may move back and still count as forward.

    Returns:
        The fraction in [0, 1] (``nan`` if no matrix has two phonemes).

    Example:

    >>> monotonic_fraction([np.eye(3)])
    1.0
    """
    good = total = 0
    for a in affinities:
        peaks = attention_peaks(a)
        if peaks.shape[0] < 2:
            continue
        steps = np.diff(peaks)
        good += int(np.sum(steps >= -int(tolerance)))
        total += int(steps.shape[0])
    return float(good / total) if total else float("nan")


def peak_spread(affinities: Iterable[np.ndarray]) -> float:
    """Mean over matrices of ``(last peak - first peak) / (frames - 1)``, in [-1, 1].

    Near 0 when the attention of every phoneme collapses onto the same frames; near 1
    when the peaks sweep the clip from its start to its end (a diagonal).

    Example:

    >>> peak_spread([np.eye(3)])
    1.0
    """
    values = []
    for a in affinities:
        a = np.asarray(a)
        if a.ndim != 2:
            raise ValueError(f"peak_spread: each affinity must be (phonemes, frames), got shape {a.shape}")
        if a.shape[0] < 2 or a.shape[1] < 2:
            continue
        peaks = attention_peaks(a)
        values.append((peaks[-1] - peaks[0]) / (a.shape[1] - 1))
    return float(np.mean(values)) if values else float("nan")
