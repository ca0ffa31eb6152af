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
A file shorter than its header says (a truncated wav) is read as far as it goes, with a
:class:`TruncatedAudioWarning` (``on_truncated="raise"`` makes it an error).

Arrays given to the models (``ADML.embed_audio`` / ``score``, the keyword detector) go
through the same checks as files (:func:`check_waveform`, via :func:`load_clips`): NaN or
Inf samples, no samples, fewer than ``min_samples``, silence are :class:`AudioError` s
naming the argument and its index (``audio[3]``); a 2-D clip ``(samples, channels)`` or
``(channels, samples)`` (at most :data:`MAX_CHANNELS` channels, the smaller axis) is
down-mixed by averaging like a file; signed integer arrays are PCM and scaled to [-1, 1)
as soundfile scales files; ``None`` or a non-numeric item is a ``TypeError`` naming it.

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
import struct
import threading
import warnings
from pathlib import Path

import numpy as np

from kerasadml.atomic import atomic_open

logger = logging.getLogger(__name__)

#: Peak absolute amplitude below which a clip counts as silent.
SILENCE_PEAK = 1e-5

#: Most channels a 2-D array clip may have; its smaller axis is taken as the channels.
MAX_CHANNELS = 8

_TRUNCATED_MODES = ("warn", "raise", "ignore")

_BACKENDS = ("auto", "soundfile", "tfio")
_TFIO_LOCK = threading.Lock()
_TFIO_STATE: dict = {}  # {"available": bool, "reason": str}; filled once per process


class AudioError(ValueError):
    """An audio file (or array) that cannot be used; ``path`` names the file (or the
    argument, e.g. ``"audio[3]"``), ``reason`` says why, ``kind`` is ``"audio file"`` or
    ``"audio array"``."""

    def __init__(self, path, reason: str, kind: str = "audio file"):
        self.path = str(path)
        self.reason = str(reason)
        self.kind = str(kind)
        super().__init__(f"{self.kind} {self.path!r}: {self.reason}")

    def __reduce__(self):  # picklable across multiprocessing workers
        return (type(self), (self.path, self.reason, self.kind))


class TruncatedAudioWarning(UserWarning):
    """A file holds fewer frames than its header declares; it was read as far as it goes.

    ``path``, ``declared`` (frames in the header) and ``frames`` (frames read).
    """

    def __init__(self, path, declared: int, frames: int):
        self.path = str(path)
        self.declared = int(declared)
        self.frames = int(frames)
        super().__init__(
            f"audio file {self.path!r}: truncated: its header declares {self.declared} frames "
            f"but it holds {self.frames}; using the {self.frames} frames that are there"
        )

    def __reduce__(self):
        return (type(self), (self.path, self.declared, self.frames))


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


def _native_path(path: str):
    """The path as soundfile/libsndfile can open it: bytes on POSIX, so that a file name
    that is not valid UTF-8 (``os.fsdecode`` keeps its bytes as surrogates) opens too."""
    if os.name == "nt":
        return path
    return os.fsencode(path)


def wav_header_frames(path) -> int | None:
    """Frames a RIFF/RIFX WAVE file's ``data`` chunk declares, or ``None`` when unknown.

    ``None`` for other formats, RF64, a streaming header (data size 0 or 0xFFFFFFFF) or a
    header that cannot be parsed. libsndfile itself reports the frames actually present,
    so this is how a truncated wav is told from a short one.
    """
    try:
        with open(_native_path(os.fspath(path)), "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RIFX"):
                return None
            order = "<" if head[:4] == b"RIFF" else ">"
            block_align = None
            for _ in range(256):  # chunks before "data"
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size)
                    if len(fmt) < 14:
                        return None
                    block_align = struct.unpack(order + "H", fmt[12:14])[0]
                    if size & 1:
                        f.seek(1, 1)
                elif cid == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    f.seek(size + (size & 1), 1)
    except (OSError, struct.error):
        return None
    return None


def _read_soundfile(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, sr = sf.read(_native_path(path), dtype="float32", always_2d=True)
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
    on_truncated: str = "warn",
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
        on_truncated: a wav holding fewer frames than its header declares:
            ``"warn"`` (default: read what is there and warn with a
            :class:`TruncatedAudioWarning`, which ``evaluate`` counts), ``"raise"``
            (an :class:`AudioError`) or ``"ignore"``.

    Returns:
        ``np.ndarray`` of shape ``(samples,)``, dtype float32; channels are averaged.

    Raises:
        AudioError: missing, unreadable or corrupt file; no samples; shorter than
            ``min_samples``; silent (unless ``allow_silent``); NaN or Inf samples;
            truncated (with ``on_truncated="raise"``).
    """
    if backend not in _BACKENDS:
        raise ValueError(f"load_audio: backend must be one of {_BACKENDS}, got {backend!r}")
    if on_truncated not in _TRUNCATED_MODES:
        raise ValueError(
            f"load_audio: on_truncated must be one of {_TRUNCATED_MODES}, got {on_truncated!r}"
        )
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
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

    if on_truncated != "ignore" and data.shape[0] > 0:
        declared = wav_header_frames(path)
        if declared is not None and data.shape[0] < declared:
            if on_truncated == "raise":
                raise AudioError(
                    path,
                    f"truncated: its header declares {declared} frames but it holds "
                    f"{data.shape[0]}",
                )
            warnings.warn(TruncatedAudioWarning(path, declared, data.shape[0]), stacklevel=2)
    return check_waveform(
        data,
        name=path,
        sample_rate=sr,
        target_sr=target_sr,
        min_samples=min_samples,
        allow_silent=allow_silent,
        layout="frames_channels",
        kind="audio file",
    )


def check_waveform(
    wave,
    *,
    name: str = "audio",
    sample_rate: int = 16000,
    target_sr: int = 16000,
    min_samples: int = 400,
    allow_silent: bool = False,
    layout: str = "auto",
    kind: str = "audio array",
) -> np.ndarray:
    """The checks every clip gets, file or array; returns float32 mono at ``target_sr``.

    Args:
        wave: samples, 1-D ``(samples,)`` or 2-D. Float values are taken as they are;
            signed integers are PCM, scaled by ``2**(bits-1)`` (as soundfile reads files).
        name: what the errors call the clip (a path, or e.g. ``"audio[3]"``).
        sample_rate: the rate of ``wave``; resampled to ``target_sr`` when different.
        min_samples: fewest samples accepted after resampling (400 = one 25 ms frame).
        allow_silent: accept a peak amplitude below :data:`SILENCE_PEAK`.
        layout: ``"frames_channels"`` (2-D is ``(samples, channels)``, as files are read)
            or ``"auto"`` (2-D: the smaller axis, at most :data:`MAX_CHANNELS` long, is
            the channels, so ``(N, 2)`` and ``(2, N)`` are both stereo). Channels are
            averaged (down-mixed), as for files.
        kind: ``"audio file"`` or ``"audio array"`` (the start of error messages).

    Raises:
        TypeError: ``wave`` is ``None`` or not numbers.
        AudioError: naming ``name``: more than 2 dimensions or an ambiguous 2-D shape,
            no samples, NaN or Inf samples, too short, silent (unless ``allow_silent``).
    """
    if wave is None:
        raise TypeError(f"{name} is None, not a waveform (an array of samples) or a file path")
    try:
        data = np.asarray(wave)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise TypeError(f"{name} is not an array of samples ({exc})") from None
    if data.dtype == object or data.dtype.kind in "SUV":
        raise TypeError(
            f"{name} is not an array of samples (dtype {data.dtype}, {type(wave).__name__})"
        )
    if data.dtype.kind == "i":
        data = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    elif data.dtype.kind != "f":
        raise AudioError(
            name, f"dtype {data.dtype} is not audio samples (use float or signed int PCM)", kind
        )
    data = data.astype(np.float32, copy=False)
    if data.ndim == 0:
        raise AudioError(name, "is a single number, not a waveform", kind)
    if data.ndim == 1:
        data = data[:, None]
    elif data.ndim == 2 and layout == "auto":
        rows, cols = data.shape
        if cols <= MAX_CHANNELS and rows > cols:
            pass  # (samples, channels)
        elif rows <= MAX_CHANNELS and cols > rows:
            data = data.T  # (channels, samples)
        else:
            raise AudioError(
                name,
                f"2-D shape {data.shape} is not (samples, channels) or (channels, samples) "
                f"with at most {MAX_CHANNELS} channels; pass one 1-D waveform per clip",
                kind,
            )
    elif data.ndim != 2:
        raise AudioError(
            name, f"has {data.ndim} dimensions {data.shape}; a clip is 1-D (samples,)", kind
        )
    if data.shape[0] == 0:
        raise AudioError(name, "contains no samples", kind)
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        first = int(np.argmin(finite))
        raise AudioError(
            name, f"contains NaN or Inf samples ({int((~finite).sum())}, first at sample {first})", kind
        )
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    wave = resample(wave, sample_rate, target_sr)
    if wave.shape[0] < int(min_samples):
        raise AudioError(
            name,
            f"too short: {wave.shape[0]} samples at {target_sr} Hz, fewer than {int(min_samples)} "
            "(shorter than one 25 ms frame)",
            kind,
        )
    if not allow_silent and float(np.max(np.abs(wave))) < SILENCE_PEAK:
        raise AudioError(name, f"silent (peak amplitude below {SILENCE_PEAK:g})", kind)
    return np.ascontiguousarray(wave, dtype=np.float32)


def load_clips(
    audio,
    *,
    target_sr: int = 16000,
    min_samples: int = 400,
    allow_silent: bool = False,
    name: str = "audio",
) -> list[np.ndarray]:
    """Clips given as paths and/or arrays, each read or checked the same way.

    ``audio`` is a list (any iterable) of clips, each a file path (``str``, ``bytes`` or
    ``os.PathLike``: :func:`load_audio`) or an array of samples at ``target_sr``
    (:func:`check_waveform`, errors naming ``audio[i]``). For convenience a single path,
    or a single 1-D array, is one clip; a 2-D array ``(clips, samples)`` is a batch of
    clips (one per row).

    Raises:
        TypeError: ``audio`` (or an item) is ``None`` or not a clip.
        AudioError: a file or an array that cannot be used (see :func:`check_waveform`).
    """
    if audio is None:
        raise TypeError(f"{name} is None; expected a list of clips (file paths or 16 kHz arrays)")
    if isinstance(audio, (str, bytes, os.PathLike)):
        audio = [audio]
    elif isinstance(audio, np.ndarray):
        if audio.ndim == 1:
            audio = [audio]
        elif audio.ndim == 2 and audio.shape[1] <= MAX_CHANNELS < audio.shape[0]:
            raise AudioError(
                name,
                f"a 2-D array of shape {audio.shape} is read as {audio.shape[0]} clips of "
                f"{audio.shape[1]} samples; for one multi-channel clip pass [wave]",
                "audio array",
            )
        elif audio.ndim != 2:
            raise AudioError(
                name,
                f"an array of shape {audio.shape}: pass a list of clips or a 2-D (clips, samples) array",
                "audio array",
            )
    else:
        try:
            audio = list(audio)
        except TypeError:
            raise TypeError(
                f"{name} must be a list of clips (file paths or 16 kHz arrays), not "
                f"{type(audio).__name__}"
            ) from None
    waves = []
    for i, item in enumerate(audio):
        if isinstance(item, (str, bytes, os.PathLike)):
            waves.append(
                load_audio(item, target_sr=target_sr, min_samples=min_samples, allow_silent=allow_silent)
            )
        else:
            waves.append(
                check_waveform(
                    item,
                    name=f"{name}[{i}]",
                    sample_rate=target_sr,
                    target_sr=target_sr,
                    min_samples=min_samples,
                    allow_silent=allow_silent,
                )
            )
    return waves


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
