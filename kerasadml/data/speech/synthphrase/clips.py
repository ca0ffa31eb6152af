"""SynthPhrase's clips: one utterance synthesised, trimmed, perturbed, augmented and
written (:func:`_make_clip`), and a unit of clips run from a pristine eSpeak NG engine
(:func:`_run_unit`, by :class:`kerasadml.data.espeak.PristinePool`; see the package
docstring, "Clips").
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Sequence

import numpy as np

from kerasadml.data.augment import AugmentConfig
from kerasadml.data.speech.synthphrase.config import SAMPLE_RATE

_TRIM_DB = 35.0
_TRIM_MARGIN_S = 0.02
_FRAME_S = 0.01


def _trim(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    frame = int(round(_FRAME_S * sample_rate))
    n_frames = len(wave) // frame
    if n_frames == 0:
        return wave
    energy = np.sqrt(np.mean(wave[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy > max(float(energy.max()) * 10 ** (-_TRIM_DB / 20), 1e-5))
    if loud.size == 0:
        return wave[:0]
    margin = int(round(_TRIM_MARGIN_S * sample_rate))
    start = max(0, loud[0] * frame - margin)
    end = min(len(wave), (loud[-1] + 1) * frame + margin)
    return wave[start:end]


def _noise(kind: str, n: int, rng) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(white)
        freqs = np.arange(spectrum.shape[0], dtype=np.float64)
        freqs[0] = 1.0
        white = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return white / max(float(np.sqrt(np.mean(white**2))), 1e-12)


def _wav_bytes(wave: np.ndarray) -> bytes:
    """``wave`` as 16-bit PCM wav file bytes (what ``write_wav_atomic`` writes)."""
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


#: A clip up to this much longer than ``max_duration`` is sped up to fit (else rejected).
_MAX_FIT_SPEEDUP = 1.3


def _speech(tts, text: str, voice: tuple) -> np.ndarray:
    """One utterance at 16 kHz, float64, leading/trailing silence trimmed."""
    from kerasadml.data.audio_io import resample
    from kerasadml.data.espeak import Voice

    raw = tts.synthesize(text, Voice(*voice))
    return _trim(resample(raw, tts.sample_rate, SAMPLE_RATE), SAMPLE_RATE).astype(np.float64)


def _make_clip(task: dict, babble: Sequence[np.ndarray] = ()) -> tuple[str, int, str, object]:
    """Synthesise, process and write one clip. Returns (status, samples, message, extra)
    with status "written" (extra: the file's SHA-256), "too_long", "failed" (a bad input:
    skipped and counted), "write_failed" (extra: the errno; the build stops) or, for a task
    marked ``exists``, "reused" (synthesised only, to advance the engine state exactly as
    in the first build).

    Processing (all random choices from the clip's generator, ``task["rng_key"]``):
    speed and formant perturbation (:func:`kerasadml.data.augment.perturb_voice`); a clip
    longer than ``max_duration`` by at most 30 % is sped up to fit, a longer one is
    "too_long"; leading/trailing silence within ``max_duration``; zero-padding at a random
    offset up to ``min_duration``; room, noise (``babble``: other utterances of the unit),
    channel, distortion and gain (:func:`kerasadml.data.augment.augment_acoustics`)."""
    import hashlib

    from kerasadml.atomic import atomic_open
    from kerasadml.data.augment import augment_acoustics, pad_silence, perturb_voice, speed_perturb
    from kerasadml.data.espeak import ESpeak, ESpeakError, Voice

    try:
        tts = ESpeak()
        if task.get("exists"):
            tts.synthesize(task["text"], Voice(*task["voice"]))
            return "reused", 0, "", None
        wave = _speech(tts, task["text"], task["voice"])
    except (ESpeakError, ValueError, OSError) as error:
        return "failed", 0, f"{type(error).__name__}: {error}", None
    if wave.size == 0 or float(np.max(np.abs(wave))) < 1e-4:
        return "failed", 0, "synthesis produced silence", None
    augment = task.get("augment")
    if augment is None:
        augment = AugmentConfig()
    elif isinstance(augment, dict):
        augment = AugmentConfig(**augment)
    rng = np.random.default_rng(task["rng_key"])
    max_samples = int(task["max_duration"] * SAMPLE_RATE)
    wave, _ = perturb_voice(wave, rng, augment, SAMPLE_RATE)
    if wave.size > max_samples:
        factor = wave.size / max_samples
        if factor > _MAX_FIT_SPEEDUP:
            return "too_long", 0, f"{wave.size / SAMPLE_RATE:.2f} s", None
        wave = speed_perturb(wave, factor * 1.001, SAMPLE_RATE)[:max_samples]
    if rng.random() < augment.silence_prob:
        lead, trail = (int(round(x * SAMPLE_RATE)) for x in rng.uniform(*augment.silence_s, size=2))
        room = max_samples - wave.size
        if lead + trail > room:
            lead, trail = int(lead * room / (lead + trail)), int(trail * room / (lead + trail))
        wave = pad_silence(wave, lead, trail)
    min_samples = int(math.ceil(task["min_duration"] * SAMPLE_RATE))
    if wave.size < min_samples:
        pad = min_samples - wave.size
        left = int(rng.integers(0, pad + 1))
        wave = pad_silence(wave, left, pad - left)
    wave, _ = augment_acoustics(wave, rng, augment, babble=babble, sample_rate=SAMPLE_RATE)
    data = _wav_bytes(wave)
    # Encoded in memory, then written with plain file writes: a full disk is an OSError
    # here (soundfile's own writer swallows it in a cffi callback).
    try:
        with atomic_open(task["path"], "wb") as handle:
            handle.write(data)
    except OSError as error:
        return "write_failed", 0, f"cannot write {task['path']}: {error.strerror or error}", error.errno
    return "written", int(wave.size), "", hashlib.sha256(data).hexdigest()


def _run_unit(tasks: list[dict]) -> list[tuple[str, int, str, object]]:
    """Make one unit's clips (one voice's clips of a round, in keyword order) after its
    babble utterances; run by :class:`kerasadml.data.espeak.PristinePool`, from a freshly
    initialised engine whose random generator is seeded with 0."""
    from kerasadml.data.espeak import ESpeak

    tts = ESpeak()
    # Babble first (a unit's first task carries its plan): it is synthesised on every run
    # of the unit, so the engine state its clips see never changes.
    babble = []
    for text, voice in tasks[0].get("babble", ()) if tasks else ():
        try:
            speech = _speech(tts, text, voice)
        except Exception:  # noqa: BLE001  (a babble utterance is optional)
            continue
        if speech.size and float(np.max(np.abs(speech))) >= 1e-4:
            babble.append(speech)
    return [_make_clip(task, babble) for task in tasks]


def _unit_results(tasks: list[dict], outcome) -> list[tuple[str, int, str, object]]:
    """One result per task of a unit: the unit's own, or, for a unit that raised or whose
    process died (:class:`kerasadml.data.espeak.UnitFailure`), the same failure for each."""
    from kerasadml.data.espeak import UnitFailure

    if not isinstance(outcome, UnitFailure):
        return outcome
    if outcome.kind == "interrupted":
        return [("interrupted", 0, outcome.message, None)] * len(tasks)
    message = "synthesis process crashed" if outcome.kind == "crashed" else outcome.message
    return [("failed", 0, message, None)] * len(tasks)


def _warm_up() -> None:
    """Run in each :class:`~kerasadml.data.espeak.PristinePool` worker before it forks
    units: warm up what every unit uses (soxr filters, FFT plans, libsndfile, every
    augmentation) so that the units inherit it warm; touches no eSpeak NG state."""
    from kerasadml.data.audio_io import resample, write_wav_atomic

    warm = _noise("pink", 4000, np.random.default_rng(0)).astype(np.float32) * 0.1
    with tempfile.TemporaryDirectory() as folder:
        write_wav_atomic(os.path.join(folder, "warm.wav"), resample(warm, 22050, SAMPLE_RATE), SAMPLE_RATE)
    _warm_augmentation()


def _warm_augmentation() -> None:
    """Run every augmentation once (FFT plans, soxr filters) so that forked children
    inherit them warm; touches no eSpeak NG state."""
    from kerasadml.data.augment import augment_clip

    everything = AugmentConfig(**{f.name: 1.0 for f in dataclasses.fields(AugmentConfig) if f.name.endswith("_prob")})
    warm = _noise("pink", 16000, np.random.default_rng(0)) * 0.1
    augment_clip(warm, np.random.default_rng(0), everything, babble=[warm])

