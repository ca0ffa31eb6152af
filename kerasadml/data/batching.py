"""Padding and length buckets: the one home of the batching rule every pipeline uses.

A batch is zero-padded to the smallest of a few fixed widths (``buckets``) that holds its
longest row, so a compiled training or predict function is traced for a handful of shapes
only (JAX and XLA compile once per shape). Beyond the largest bucket a row is either cut
(``beyond="crop"``: training, where clips have a known maximum length) or the width is
rounded up to a multiple of the largest bucket (``beyond="extend"``: inference, which
never crops a user's clip).

Used by the KWS training pipeline (:mod:`kerasadml.data.speech.dataset`), the on-the-fly
augmentation (:mod:`kerasadml.data.augment`) and ADML inference
(:meth:`kerasadml.zoo.ADML.embed_audio` / ``embed_text``).

Example:

>>> import numpy as np
>>> audio, lengths = pad_audio([np.ones(3), np.ones(5)], buckets=(4, 8))
>>> audio.shape, lengths.tolist()
((2, 8), [3, 5])
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

#: Inference pads clips to a multiple of 1 s at 16 kHz ...
AUDIO_BUCKET = 16000
#: ... and phoneme sequences to a multiple of 8.
TEXT_BUCKET = 8


def check_buckets(buckets: Sequence[int], name: str = "buckets") -> tuple[int, ...]:
    """``buckets`` sorted and de-duplicated; they must be positive integers.

    Raises:
        ValueError: naming ``name``.
    """
    values = tuple(sorted({int(b) for b in buckets}))
    if not values or values[0] <= 0:
        raise ValueError(f"{name} must be positive integers, got {buckets!r}")
    return values


def bucket_width(length: int, buckets: Sequence[int], beyond: str = "extend") -> int:
    """The padded width for a longest row of ``length``: the smallest bucket that holds it;
    beyond the largest, the largest (``"crop"``) or ``length`` rounded up to a multiple of
    it (``"extend"``).

    Args:
        length: the longest row of the batch.
        buckets: the widths, sorted ascending (:func:`check_buckets`).
        beyond: ``"crop"`` or ``"extend"``.

    Example:
        >>> bucket_width(20, (8, 16)), bucket_width(20, (8, 16), "crop")
        (32, 16)
    """
    if beyond not in ("crop", "extend"):
        raise ValueError(f"beyond must be 'crop' or 'extend', got {beyond!r}")
    for value in buckets:
        if length <= value:
            return int(value)
    if beyond == "crop":
        return int(buckets[-1])
    return int(math.ceil(length / buckets[-1]) * buckets[-1])


def pad_ids(seqs: Sequence[Sequence[int]], buckets: Sequence[int], beyond: str = "extend") -> np.ndarray:
    """Token id sequences as an int32 ``(B, W)`` array, 0-padded to a bucket width (0 is
    padding; rows longer than ``W`` are cut, which only ``beyond="crop"`` allows)."""
    seqs = [np.asarray(s) for s in seqs]
    width = bucket_width(max(s.shape[0] for s in seqs), buckets, beyond)
    out = np.zeros((len(seqs), width), np.int32)
    for r, s in enumerate(seqs):
        n = min(s.shape[0], width)
        out[r, :n] = s[:n]
    return out


def pad_audio(
    waves: Sequence[np.ndarray], buckets: Sequence[int], beyond: str = "extend"
) -> tuple[np.ndarray, np.ndarray]:
    """Waveforms as float32 ``(B, W)`` zero-padded to a bucket width, and their int32
    lengths ``(B,)`` (rows longer than ``W`` are cut, which only ``beyond="crop"`` allows)."""
    waves = [np.asarray(w, np.float32) for w in waves]
    width = bucket_width(max(w.shape[0] for w in waves), buckets, beyond)
    out = np.zeros((len(waves), width), np.float32)
    lengths = np.zeros((len(waves),), np.int32)
    for r, w in enumerate(waves):
        n = min(w.shape[0], width)
        out[r, :n] = w[:n]
        lengths[r] = n
    return out, lengths


def _fixed_size_chunks(items: Sequence, batch_size: int) -> Iterator[tuple[list, int]]:
    # Every batch has batch_size rows (the last one is filled with copies of its first
    # row) unless the whole input is smaller than one batch; `valid` counts real rows.
    for start in range(0, len(items), batch_size):
        chunk = list(items[start : start + batch_size])
        valid = len(chunk)
        if len(items) > batch_size:
            chunk += [chunk[0]] * (batch_size - valid)
        yield chunk, valid


def pad_audio_batches(
    waves: Sequence[np.ndarray], batch_size: int = 32, buckets: Sequence[int] = (AUDIO_BUCKET,)
) -> Iterator[tuple[dict, int]]:
    """Inference batches of clips, in order: ``({"audio", "audio_length"}, valid_rows)``;
    every batch has ``batch_size`` rows (see :func:`pad_audio`, never cropped)."""
    for chunk, valid in _fixed_size_chunks(waves, batch_size):
        audio, lengths = pad_audio(chunk, buckets, "extend")
        yield {"audio": audio, "audio_length": lengths}, valid


def pad_id_batches(
    ids: Sequence[Sequence[int]], batch_size: int = 256, buckets: Sequence[int] = (TEXT_BUCKET,)
) -> Iterator[tuple[np.ndarray, int]]:
    """Inference batches of token ids, in order: ``(ids (B, W) int32, valid_rows)``."""
    for chunk, valid in _fixed_size_chunks(ids, batch_size):
        yield pad_ids(chunk, buckets, "extend"), valid
