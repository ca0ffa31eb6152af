"""Reading and writing audio clips: 16 kHz float32 mono, with clear errors for bad files.

Reading uses ``soundfile`` (the libsndfile in its wheel: wav, flac, ogg and, with
libsndfile >= 1.1, mp3) and ``soxr`` for resampling. ``tensorflow-io`` is used only when
it is installed **and** its native kernels load: its newest release (0.37.1) is built
against TensorFlow 2.16.x, and with newer TensorFlow its ops fail with ``undefined symbol``.
:func:`tfio_kernels_available` checks this once per process and logs one line when it
falls back.

Documented repairs (docs/data.md §3.1): multi-channel audio is down-mixed by averaging the
channels; other sample rates are resampled to ``target_sr`` with soxr (``"HQ"``).
Everything else that is wrong with a file is an :class:`AudioError` naming the file.

Example:

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
>>> t = np.arange(8000) / 8000
>>> write_wav_atomic(path, 0.5 * np.sin(2 * np.pi * 440 * t), sample_rate=8000)
>>> wave = load_audio(path, target_sr=16000)
>>> wave.dtype, wave.shape
(dtype('float32'), (16000,))
"""

from __future__ import annotations

import io
import logging
import os
import threading
from pathlib import Path

import numpy as np

from kerasadml.atomic import atomic_open

logger = logging.getLogger(__name__)

#: Peak absolute amplitude below which a clip counts as silent.
SILENCE_PEAK = 1e-5

_BACKENDS = ("auto", "soundfile", "tfio")
_TFIO_LOCK = threading.Lock()
_TFIO_STATE: dict = {}  # {"available": bool, "reason": str}; filled once per process


class AudioError(ValueError):
    """An audio file that cannot be used; ``path`` names the file, ``reason`` says why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"audio file {self.path!r}: {self.reason}")

    def __reduce__(self):  # picklable across multiprocessing workers
        return (type(self), (self.path, self.reason))


def resample(wave, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D (or ``(samples, channels)``) float waveform with soxr ("HQ").

    Returns float32; the input is returned as float32 unchanged when the rates agree.
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"resample: sample rates must be positive, got {orig_sr} -> {target_sr}")
    wave = np.asarray(wave, dtype=np.float32)
    if orig_sr == target_sr or wave.shape[0] == 0:
        return wave
    import soxr

    return np.ascontiguousarray(soxr.resample(wave, orig_sr, target_sr, quality="HQ"), np.float32)


def _tiny_wav_bytes() -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(16, np.int16), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _probe_tfio() -> tuple[bool, str]:
    try:
        import tensorflow_io as tfio  # noqa: F401  (imports tensorflow too)
    except ImportError as exc:  # also "undefined symbol" raised while loading its .so
        return False, f"{type(exc).__name__}: {exc}"
    try:
        import tensorflow as tf

        out = tfio.audio.decode_wav(tf.constant(_tiny_wav_bytes()), dtype=tf.int16)
        if tuple(out.shape) != (16, 1):
            return False, f"decode_wav returned shape {tuple(out.shape)}"
    # NotFoundError / NotImplementedError / OSError are the documented failure modes
    # ("undefined symbol" shows up as NotFoundError); anything else that a broken native
    # library raises must not escape either, so the probe catches all of them.
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return True, "ok"


def tfio_kernels_available() -> bool:
    """Whether ``tensorflow_io`` imports and one of its native ops runs (cached).

    The first call that finds them unavailable logs one line, ``"tensorflow-io native
    kernels unavailable (<reason>); using soundfile+soxr"`` (INFO when tensorflow-io is
    simply not installed, WARNING when it is installed but broken). Never raises.
    """
    with _TFIO_LOCK:
        if "available" not in _TFIO_STATE:
            try:
                available, reason = _probe_tfio()
            except BaseException as exc:  # noqa: BLE001  (never let the probe crash a loader)
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                available, reason = False, f"{type(exc).__name__}: {exc}"
            _TFIO_STATE.update(available=available, reason=reason)
            if not available:
                level = (
                    logging.INFO if reason.startswith("ModuleNotFoundError") else logging.WARNING
                )
                logger.log(
                    level,
                    "tensorflow-io native kernels unavailable (%s); using soundfile+soxr",
                    reason,
                )
        return bool(_TFIO_STATE["available"])


def _read_soundfile(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError, EOFError) as exc:
        # soundfile.LibsndfileError is a RuntimeError subclass
        raise AudioError(
            path, f"unreadable or corrupt ({str(exc).strip() or type(exc).__name__})"
        ) from exc
    return data, int(sr)


def _read_tfio(path: str) -> tuple[np.ndarray, int]:
    import tensorflow_io as tfio

    try:
        audio = tfio.audio.AudioIOTensor(path)
        data = np.asarray(audio.to_tensor())
        sr = int(np.asarray(audio.rate))
    except Exception as exc:  # noqa: BLE001  (tf.errors.* have no common narrower base)
        raise AudioError(path, f"unreadable or corrupt ({type(exc).__name__}: {exc})") from exc
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    data = np.asarray(data, np.float32)
    if data.ndim == 1:
        data = data[:, None]
    return data, sr


def load_audio(
    path,
    target_sr: int = 16000,
    *,
    min_samples: int = 400,
    allow_silent: bool = False,
    backend: str = "auto",
) -> np.ndarray:
    """Read an audio file as a float32 mono waveform at ``target_sr``.

    Args:
        path: a wav/flac/ogg (or mp3, where libsndfile supports it) file.
        target_sr: output sample rate; other rates are resampled with soxr.
        min_samples: fewest samples (after resampling) accepted; the default 400 is one
            25 ms frame at 16 kHz.
        allow_silent: accept clips whose peak is below ``1e-5``.
        backend: ``"auto"`` (tensorflow-io when its kernels load, else soundfile),
            ``"soundfile"``, or ``"tfio"`` (raises ``RuntimeError`` when the kernels do
            not load). In ``"auto"`` a file tensorflow-io cannot decode is retried with
            soundfile.

    Returns:
        ``np.ndarray`` of shape ``(samples,)``, dtype float32; channels are averaged.

    Raises:
        AudioError: missing, unreadable or corrupt file; no samples; shorter than
            ``min_samples``; silent (unless ``allow_silent``); NaN or Inf samples.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"load_audio: backend must be one of {_BACKENDS}, got {backend!r}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    if os.path.isdir(path):
        raise AudioError(path, "is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "empty file (0 bytes)")

    use_tfio = False
    if backend == "tfio":
        if not tfio_kernels_available():
            raise RuntimeError(
                "load_audio(backend='tfio'): tensorflow-io native kernels unavailable "
                f"({_TFIO_STATE.get('reason')}); use backend='auto' or 'soundfile'"
            )
        use_tfio = True
    elif backend == "auto":
        use_tfio = tfio_kernels_available()

    if use_tfio:
        try:
            data, sr = _read_tfio(path)
        except AudioError:
            if backend == "tfio":
                raise
            data, sr = _read_soundfile(path)
    else:
        data, sr = _read_soundfile(path)

    if data.shape[0] == 0:
        raise AudioError(path, "contains no samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or Inf samples")
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    wave = resample(wave, sr, target_sr)
    if wave.shape[0] < int(min_samples):
        raise AudioError(
            path,
            f"too short: {wave.shape[0]} samples at {target_sr} Hz, fewer than {int(min_samples)} "
            "(shorter than one 25 ms frame)",
        )
    if not allow_silent and float(np.max(np.abs(wave))) < SILENCE_PEAK:
        raise AudioError(path, f"silent (peak amplitude below {SILENCE_PEAK:g})")
    return np.ascontiguousarray(wave, dtype=np.float32)


def write_wav_atomic(path, wave, sample_rate: int = 16000) -> None:
    """Write ``wave`` (float in [-1, 1], mono ``(samples,)`` or ``(samples, channels)``)
    as 16-bit PCM wav, atomically.

    The data go to a temporary file in the same folder, are flushed to disk, and the file
    is renamed over ``path`` with ``os.replace``; an interrupted writer never leaves a
    truncated file at ``path``. Parent folders are created. Samples are clipped to [-1, 1].
    """
    import soundfile as sf

    path = Path(os.fspath(path))
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim not in (1, 2):
        raise ValueError(f"write_wav_atomic: wave must be 1-D or 2-D, got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise ValueError(f"write_wav_atomic: wave for {str(path)!r} contains NaN or Inf")
    with atomic_open(path, "wb") as f:
        sf.write(f, np.clip(wave, -1.0, 1.0), int(sample_rate), format="WAV", subtype="PCM_16")
