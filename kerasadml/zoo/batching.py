"""Numpy batching for inference: fixed batch sizes and bucketed lengths, so a compiled
predict function is traced for a handful of shapes only (JAX recompiles per shape)."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

AUDIO_BUCKET = 16000  # pad clips to a multiple of 1 s at 16 kHz
TEXT_BUCKET = 8  # pad phoneme sequences to a multiple of 8


def bucket_length(length: int, step: int) -> int:
    """The smallest multiple of ``step`` that is >= ``length`` (at least ``step``)."""
    return max(step, int(np.ceil(length / step)) * step)


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
    waves: Sequence[np.ndarray], batch_size: int = 32, bucket: int = AUDIO_BUCKET
) -> Iterator[tuple[dict, int]]:
    """Yield ``({"audio", "audio_length"}, valid_rows)`` in order."""
    for chunk, valid in _fixed_size_chunks(waves, batch_size):
        width = bucket_length(max(len(w) for w in chunk), bucket)
        audio = np.zeros((len(chunk), width), "float32")
        for i, w in enumerate(chunk):
            audio[i, : len(w)] = w
        lengths = np.array([len(w) for w in chunk], "int32")
        yield {"audio": audio, "audio_length": lengths}, valid


def pad_id_batches(
    ids: Sequence[Sequence[int]], batch_size: int = 256, bucket: int = TEXT_BUCKET
) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(ids (B, Tt) int32 zero-padded, valid_rows)`` in order."""
    for chunk, valid in _fixed_size_chunks(ids, batch_size):
        width = bucket_length(max(len(s) for s in chunk), bucket)
        out = np.zeros((len(chunk), width), "int32")
        for i, s in enumerate(chunk):
            out[i, : len(s)] = s
        yield out, valid
