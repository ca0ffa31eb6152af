"""Waveform augmentation: voices, rooms and microphones a keyword spotter has not heard.

Small NumPy transforms of a mono float waveform (16 kHz by default), each deterministic
for the :class:`numpy.random.Generator` it is given, and :func:`augment_clip`, which
applies each with a probability set in an :class:`AugmentConfig`. SynthPhrase applies
them to every clip it writes (docs/data.md §1.3); :func:`augment_dataset` applies them on
the fly to the batches of :func:`kerasadml.data.speech.dataset.make_kws_training_dataset`
(training on user data, e.g. a LibriPhrase-format corpus). Nothing here augments unless
asked: evaluation pipelines are never augmented.

The transforms (NumPy and ``soxr`` only, both already dependencies):

* **Speed** (:func:`speed_perturb`): resampling by a factor (0.85-1.15), which changes
  duration, pitch and formants together, like Kaldi's speed perturbation.
* **Vocal-tract length** (:func:`formant_warp`): a spectral-envelope warp. Each 32 ms
  frame's all-pole (LPC, order 18 at 16 kHz) envelope is warped in frequency by the
  factor (0.88-1.12: a formant at F moves to ``factor * F``) and the frame's spectrum is
  multiplied by warped / original envelope; the harmonics (the pitch), the phases and the
  duration are kept. This is VTLP (Jaitly & Hinton, 2013) done on the waveform; it costs
  one STFT/ISTFT (512-point FFTs, hop 128) per clip. (A cepstrally smoothed envelope was
  tried first: too blunt, sharp formant peaks stayed where they were.)
* **Silence** (:func:`pad_silence`): leading and trailing silence, as in LibriPhrase's
  clips cut at word alignments from continuous speech (later noise fills it).
* **Room** (:func:`synthetic_rir`, :func:`reverberate`): an impulse response made of a
  unit direct path at sample 0, a few early reflections (1-30 ms) and a diffuse tail of
  exponentially decaying Gaussian noise whose energy falls by 60 dB in ``rt60`` seconds
  (0.15-0.9 s), scaled to a direct-to-reverberant ratio; applied by FFT convolution and
  cut to the input's length, so the direct path stays aligned (the keyword does not move).
* **Noise** (:func:`add_noise`): white, coloured (power spectrum ``1/f**beta``, ``beta``
  0.5-2: pink to brown) or babble (3-6 other utterances summed) at an SNR measured
  against the speech's active level (:func:`active_power`).
* **Channel** (:func:`telephone_band`): down to 8 kHz, a 300-3400 Hz band-pass, 8-bit
  mu-law (G.711) quantisation, and back to the input rate.
* **Distortion** (:func:`soft_clip`, :func:`hard_clip`): tanh compression or clipping of
  the loudest 0.1-1 % of samples.
* **Gain** (:func:`apply_gain`): a random gain, lowered where the peak would pass 0.99;
  the output of :func:`augment_clip` is always float32 in [-1, 1].

Example:

>>> import numpy as np
>>> from kerasadml.data.augment import AugmentConfig, augment_clip
>>> wave = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32) * 0.3
>>> out = augment_clip(wave, np.random.default_rng(0), AugmentConfig())
>>> bool(np.all(np.abs(out) <= 1.0)), out.dtype
(True, dtype('float32'))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000
#: Amplitude ratio of 60 dB: the tail of an impulse response decays by this in ``rt60``.
_LN_1000 = math.log(1000.0)
_NOISE_KINDS = ("white", "coloured", "babble")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of :func:`augment_clip` (every range is ``(low, high)``,
    drawn uniformly; a probability of 0 turns a transform off).

    Args:
        speed_prob, speed_range: speed perturbation factor (> 1 is faster and shorter).
        vtlp_prob, vtlp_range: formant (vocal-tract length) warp factor.
        silence_prob, silence_s: leading and trailing silence, each drawn from
            ``silence_s`` seconds (limited by ``max_samples`` in :func:`augment_clip`).
        reverb_prob, rt60_range, drr_db: room reverberation: RT60 in seconds and
            direct-to-reverberant energy ratio in dB.
        noise_prob, snr_db, noise_weights, beta_range, babble_talkers: additive noise;
            ``noise_weights`` are the relative odds of white, coloured and babble noise
            (babble only when utterances are given); coloured noise has a ``1/f**beta``
            power spectrum; babble sums ``babble_talkers`` utterances.
        telephone_prob: the 8 kHz telephone channel (:func:`telephone_band`).
        distortion_prob, drive_db, clip_fraction: tanh compression (drive in dB) or
            clipping (share of samples clipped), 50/50.
        gain_prob, gain_db: random gain in dB.
        peak: the largest absolute sample a gain may leave (louder clips are scaled down).
    """

    speed_prob: float = 0.5
    speed_range: tuple = (0.85, 1.15)
    vtlp_prob: float = 0.5
    vtlp_range: tuple = (0.88, 1.12)
    silence_prob: float = 0.5
    silence_s: tuple = (0.0, 0.25)
    reverb_prob: float = 0.4
    rt60_range: tuple = (0.15, 0.9)
    drr_db: tuple = (-2.0, 12.0)
    noise_prob: float = 0.8
    snr_db: tuple = (5.0, 35.0)
    noise_weights: tuple = (1.0, 1.0, 1.0)
    beta_range: tuple = (0.5, 2.0)
    babble_talkers: tuple = (3, 6)
    telephone_prob: float = 0.1
    distortion_prob: float = 0.1
    drive_db: tuple = (0.0, 12.0)
    clip_fraction: tuple = (0.001, 0.01)
    gain_prob: float = 1.0
    gain_db: tuple = (-12.0, 3.0)
    peak: float = 0.99

    def __post_init__(self):
        problems = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_prob"):
                if not 0.0 <= float(value) <= 1.0:
                    problems.append(f"{field.name} must be in [0, 1], got {value}")
            elif isinstance(value, (list, tuple)):
                object.__setattr__(self, field.name, tuple(value))
                value = tuple(value)
                if field.name == "noise_weights":
                    if len(value) != 3 or min(value) < 0 or sum(value) <= 0:
                        problems.append("noise_weights needs 3 non-negative weights (white, coloured, babble)")
                elif len(value) != 2 or value[0] > value[1]:
                    problems.append(f"{field.name} must be (low, high), got {value}")
        if not problems:
            if self.speed_range[0] <= 0 or self.vtlp_range[0] <= 0:
                problems.append("speed_range and vtlp_range must be positive")
            if self.rt60_range[0] <= 0:
                problems.append("rt60_range must be positive")
            if self.silence_s[0] < 0:
                problems.append("silence_s must be >= 0")
            if self.babble_talkers[0] < 1:
                problems.append("babble_talkers must be >= 1")
            if self.clip_fraction[0] < 0 or self.clip_fraction[1] >= 0.5:
                problems.append("clip_fraction must be in [0, 0.5)")
            if not 0 < self.peak <= 1:
                problems.append("peak must be in (0, 1]")
        if problems:
            raise ValueError("AugmentConfig: " + "; ".join(problems))

    @classmethod
    def off(cls) -> AugmentConfig:
        """A config that changes nothing (every probability 0)."""
        return cls(**{f.name: 0.0 for f in dataclasses.fields(cls) if f.name.endswith("_prob")})


# ------------------------------------------------------------------------------ helpers
def _as_float(wave) -> np.ndarray:
    wave = np.asarray(wave, np.float64)
    if wave.ndim != 1:
        raise ValueError(f"augment: expected a 1-D waveform, got shape {wave.shape}")
    return wave


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _fft_size(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def active_power(wave, sample_rate: int = SAMPLE_RATE, floor_db: float = 40.0) -> float:
    """Mean power of the "active" part of ``wave``: its 10 ms frames whose energy is within
    ``floor_db`` of the loudest frame (so leading/trailing silence and pauses do not lower
    it, as in ITU-T P.56's active speech level). A wave shorter than a frame: its mean power."""
    x = _as_float(wave)
    frame = max(1, int(round(0.01 * sample_rate)))
    n = x.size // frame
    if n == 0:
        return float(np.mean(x**2)) if x.size else 0.0
    energy = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    loudest = float(energy.max())
    if loudest <= 0:
        return 0.0
    return float(np.mean(energy[energy >= loudest * 10 ** (-floor_db / 10)]))


# ------------------------------------------------------------------------------- voice
def speed_perturb(wave, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``wave`` ``factor`` times faster: its length becomes ``len / factor`` (rounded)
    and every frequency (pitch, formants) is multiplied by ``factor``. Done by resampling
    with soxr (the signal is read as if sampled at ``factor * sample_rate``)."""
    x = _as_float(wave)
    factor = float(factor)
    if factor <= 0:
        raise ValueError(f"speed_perturb: factor must be > 0, got {factor}")
    if factor == 1.0 or x.size == 0:
        return x.copy()
    import soxr

    return np.asarray(soxr.resample(x, sample_rate * factor, sample_rate, quality="HQ"), np.float64)


def _lpc_log_envelope(power: np.ndarray, order: int, sample_rate: int) -> np.ndarray:
    """Log magnitude of the all-pole (LPC) envelope ``1 / |A(f)|`` of frames given by their
    power spectra ``(frames, bins)`` (autocorrelation method, Levinson-Durbin vectorised over
    frames); the gain is left out (it cancels in a ratio of envelopes). The autocorrelation
    is the circular one of the frame's FFT: Hann-windowed frames make the difference
    negligible at the few lags used."""
    n_fft = 2 * (power.shape[1] - 1)
    r = np.fft.irfft(power, n_fft, axis=1)[:, : order + 1]
    r[:, 0] = r[:, 0] * (1.0 + 1e-6) + 1e-12  # white-noise floor: keeps the recursion stable
    lag = np.arange(order + 1)
    r = r * np.exp(-0.5 * (2 * np.pi * 20.0 / sample_rate * lag) ** 2)  # 20 Hz lag window
    a = np.zeros((power.shape[0], order + 1))
    a[:, 0] = 1.0
    error = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -np.sum(a[:, :i] * r[:, i:0:-1], axis=1) / error
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * a[:, i - 1 :: -1][:, :i]
        error = error * (1.0 - k**2)
    return -np.log(np.abs(np.fft.rfft(a, n_fft, axis=1)) + 1e-12)


def formant_warp(
    wave,
    factor: float,
    sample_rate: int = SAMPLE_RATE,
    *,
    frame_s: float = 0.032,
    order: int | None = None,
    max_ratio_db: float = 40.0,
) -> np.ndarray:
    """Vocal-tract-length perturbation: move the spectral envelope (the formants) by
    ``factor`` (a formant at F goes to ``factor * F``), keeping the pitch, the phases and
    the length.

    STFT (Hann window of ``frame_s``, 75 % overlap) -> per frame, the all-pole (LPC)
    envelope of order ``order`` (default ``2 + sample_rate / 1000``) -> the magnitude is
    multiplied by ``envelope(f / factor) / envelope(f)`` (limited to +-``max_ratio_db``;
    above the Nyquist frequency the envelope is held) -> weighted overlap-add. The LPC
    envelope follows formant peaks closely, so the resonances themselves move (a
    cepstrally smoothed envelope is too blunt: the sharp peaks would stay put).
    """
    x = _as_float(wave)
    factor = float(factor)
    if factor <= 0:
        raise ValueError(f"formant_warp: factor must be > 0, got {factor}")
    if factor == 1.0 or x.size == 0:
        return x.copy()
    order = int(order) if order is not None else 2 + int(round(sample_rate / 1000))
    n_fft = _fft_size(int(round(frame_s * sample_rate)))
    hop = n_fft // 4
    window = np.hanning(n_fft + 1)[:-1]
    padded = np.pad(x, (n_fft, n_fft + hop - (x.size % hop)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * window
    spectrum = np.fft.rfft(frames, axis=1)
    envelope = _lpc_log_envelope(spectrum.real**2 + spectrum.imag**2, order, sample_rate)
    bins = envelope.shape[1]
    source = np.arange(bins) / factor  # warped(f) = envelope(f / factor)
    low = np.clip(np.floor(source).astype(np.int64), 0, bins - 1)
    high = np.minimum(low + 1, bins - 1)
    weight = np.clip(source - low, 0.0, 1.0)
    warped = envelope[:, low] * (1.0 - weight) + envelope[:, high] * weight
    limit = max_ratio_db / 20.0 * math.log(10.0)
    spectrum *= np.exp(np.clip(warped - envelope, -limit, limit))
    out_frames = (np.fft.irfft(spectrum, n=n_fft, axis=1) * window).reshape(-1, 4, hop)
    count = out_frames.shape[0]
    out = np.zeros((count + 3, hop))  # overlap-add, hop = n_fft / 4: four shifted block sums
    norm = np.zeros((count + 3, hop))
    square = (window**2).reshape(4, hop)
    for j in range(4):
        out[j : j + count] += out_frames[:, j]
        norm[j : j + count] += square[j]
    out, norm = out.reshape(-1), norm.reshape(-1)
    return out[n_fft : n_fft + x.size] / np.maximum(norm[n_fft : n_fft + x.size], 1e-8)


def pad_silence(wave, lead: int, trail: int) -> np.ndarray:
    """``wave`` with ``lead`` zeros before and ``trail`` zeros after."""
    return np.pad(_as_float(wave), (max(0, int(lead)), max(0, int(trail))))


# -------------------------------------------------------------------------------- room
def synthetic_rir(
    rng: np.random.Generator,
    rt60: float,
    *,
    drr_db: float = 6.0,
    sample_rate: int = SAMPLE_RATE,
    reflections: tuple = (3, 8),
    max_reflection_s: float = 0.03,
    mixing_s: float = 0.005,
) -> np.ndarray:
    """A room impulse response, made in NumPy.

    ``h[0] = 1`` is the direct path; then ``reflections`` (a count range) early
    reflections at 1 ms-``max_reflection_s`` with random signs; and a diffuse tail of
    Gaussian noise under the envelope ``exp(-ln(1000) t / rt60)`` (energy -60 dB at
    ``rt60``), building up over ``mixing_s``. Reflections and tail together are scaled so
    that direct energy / reverberant energy is ``drr_db``. Length: ``rt60`` seconds.
    """
    rt60 = float(rt60)
    if rt60 <= 0:
        raise ValueError(f"synthetic_rir: rt60 must be > 0, got {rt60}")
    n = int(math.ceil(rt60 * sample_rate)) + 1
    t = np.arange(n) / sample_rate
    decay = np.exp(-_LN_1000 * t / rt60)
    reverb = rng.standard_normal(n) * decay * np.clip(t / max(mixing_s, 1e-6), 0.0, 1.0)
    count = int(rng.integers(reflections[0], reflections[1] + 1))
    first = max(1, int(round(0.001 * sample_rate)))
    last = max(first + 1, min(n - 1, int(round(max_reflection_s * sample_rate))))
    where = rng.integers(first, last, size=count)
    amplitude = rng.uniform(1.0, 4.0, size=count) * decay[where] * rng.choice([-1.0, 1.0], size=count)
    np.add.at(reverb, where, amplitude)
    reverb[0] = 0.0
    energy = float(np.sum(reverb**2))
    if energy > 0:
        reverb *= math.sqrt(10 ** (-float(drr_db) / 10) / energy)
    reverb[0] = 1.0
    return reverb


def estimate_rt60(rir, sample_rate: int = SAMPLE_RATE, *, skip_direct: bool = True) -> float:
    """RT60 of an impulse response by Schroeder backward integration (T20: the decay
    from -5 to -25 dB, fitted by least squares, times 3). ``skip_direct`` leaves out
    ``rir[0]`` (the direct path of :func:`synthetic_rir`)."""
    h = _as_float(rir)[1:] if skip_direct else _as_float(rir)
    edc = np.cumsum((h**2)[::-1])[::-1]
    edc_db = 10 * np.log10(np.maximum(edc / max(edc[0], 1e-30), 1e-30))
    use = np.flatnonzero((edc_db <= -5.0) & (edc_db >= -25.0))
    if use.size < 2:
        raise ValueError("estimate_rt60: the response does not decay by 25 dB")
    slope = np.polyfit(use / sample_rate, edc_db[use], 1)[0]  # dB per second
    return float(-60.0 / slope)


def reverberate(wave, rir) -> np.ndarray:
    """``wave`` convolved with ``rir`` (FFT convolution), cut to ``wave``'s length: with
    the direct path at ``rir[0]``, the speech keeps its position; the reverberant tail
    rings into whatever follows it in the clip (trailing silence) and is cut at its end."""
    x, h = _as_float(wave), _as_float(rir)
    if x.size == 0 or h.size == 0:
        return x.copy()
    size = _fft_size(x.size + h.size - 1)
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: x.size]


# ------------------------------------------------------------------------------- noise
def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise of unit RMS."""
    noise = rng.standard_normal(int(n))
    return noise / max(_rms(noise), 1e-12)


def coloured_noise(n: int, rng: np.random.Generator, beta: float) -> np.ndarray:
    """Gaussian noise of unit RMS with power spectrum ``1/f**beta`` (1: pink, 2: brown;
    the DC bin is set to 0)."""
    n = int(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    shape = np.zeros_like(freqs)
    shape[1:] = freqs[1:] ** (-float(beta) / 2.0)
    noise = np.fft.irfft(spectrum * shape, n)
    return noise / max(_rms(noise), 1e-12)


def babble_noise(
    n: int,
    rng: np.random.Generator,
    utterances: Sequence[np.ndarray],
    talkers: tuple = (3, 6),
) -> np.ndarray:
    """Babble of unit RMS: ``talkers`` (a count range) utterances, each brought to unit
    active level, given +-3 dB, looped and started at a random offset, summed."""
    usable = [u for u in (_as_float(u) for u in utterances) if u.size and active_power(u) > 0]
    if not usable:
        raise ValueError("babble_noise: no (non-silent) utterances given")
    n = int(n)
    out = np.zeros(n)
    for _ in range(int(rng.integers(talkers[0], talkers[1] + 1))):
        utterance = usable[int(rng.integers(len(usable)))]
        utterance = utterance / math.sqrt(active_power(utterance))
        looped = np.tile(utterance, int(math.ceil((n + utterance.size) / utterance.size)))
        start = int(rng.integers(utterance.size))
        out += looped[start : start + n] * 10 ** (rng.uniform(-3.0, 3.0) / 20)
    return out / max(_rms(out), 1e-12)


def add_noise(wave, noise, snr_db: float, signal_power: float | None = None) -> np.ndarray:
    """``wave + scale * noise`` with ``10 log10(signal_power / mean(noise'**2)) == snr_db``;
    ``signal_power`` defaults to :func:`active_power` of ``wave``."""
    x, noise = _as_float(wave), _as_float(noise)
    if noise.size != x.size:
        raise ValueError(f"add_noise: noise has {noise.size} samples, the wave {x.size}")
    power = active_power(x) if signal_power is None else float(signal_power)
    noise_power = float(np.mean(noise**2)) if noise.size else 0.0
    if power <= 0 or noise_power <= 0:
        return x.copy()
    return x + noise * math.sqrt(power / noise_power * 10 ** (-float(snr_db) / 10))


# ----------------------------------------------------------------------------- channel
def telephone_band(
    wave,
    sample_rate: int = SAMPLE_RATE,
    *,
    low_hz: float = 300.0,
    high_hz: float = 3400.0,
    mu_law: bool = True,
) -> np.ndarray:
    """The narrow-band telephone channel: resample to 8 kHz (soxr), band-pass
    ``low_hz``-``high_hz`` (FFT mask with 100 Hz raised-cosine edges), 8-bit mu-law
    (G.711) quantisation when ``mu_law``, back to ``sample_rate``; same length."""
    x = _as_float(wave)
    if x.size == 0:
        return x.copy()
    import soxr

    narrow = np.asarray(soxr.resample(x, sample_rate, 8000, quality="HQ"), np.float64)
    size = narrow.size
    freqs = np.fft.rfftfreq(size, 1.0 / 8000)
    edge = 100.0
    mask = np.clip((freqs - (low_hz - edge / 2)) / edge, 0, 1) * np.clip(((high_hz + edge / 2) - freqs) / edge, 0, 1)
    mask = 0.5 - 0.5 * np.cos(np.pi * mask)
    narrow = np.fft.irfft(np.fft.rfft(narrow) * mask, size)
    if mu_law:
        peak = max(float(np.max(np.abs(narrow))), 1e-12)
        y = np.sign(narrow) * np.log1p(255 * np.abs(narrow / peak)) / math.log(256)
        y = np.round(y * 127) / 127
        narrow = np.sign(y) * ((256.0 ** np.abs(y)) - 1) / 255 * peak
    back = np.asarray(soxr.resample(narrow, 8000, sample_rate, quality="HQ"), np.float64)
    if back.size >= x.size:
        return back[: x.size]
    return np.pad(back, (0, x.size - back.size))


def soft_clip(wave, drive_db: float) -> np.ndarray:
    """Mild compression: ``peak * tanh(d x / peak) / tanh(d)`` with ``d = 10**(drive/20)``;
    the peak is kept, quieter samples are raised (monotonic)."""
    x = _as_float(wave)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        return x.copy()
    d = 10 ** (float(drive_db) / 20)
    return peak * np.tanh(d * x / peak) / math.tanh(d)


def hard_clip(wave, fraction: float) -> np.ndarray:
    """Clip the loudest ``fraction`` of samples (at the ``1 - fraction`` quantile of
    ``|x|``), then scale back to the original peak."""
    x = _as_float(wave)
    if x.size == 0 or fraction <= 0:
        return x.copy()
    peak = float(np.max(np.abs(x)))
    level = float(np.quantile(np.abs(x), 1.0 - float(fraction)))
    if level <= 0 or peak <= 0:
        return x.copy()
    return np.clip(x, -level, level) * (peak / level)


def apply_gain(wave, gain_db: float, peak: float = 0.99) -> np.ndarray:
    """``wave * 10**(gain_db / 20)``, scaled down where its peak would pass ``peak``."""
    x = _as_float(wave) * 10 ** (float(gain_db) / 20)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top > peak:
        x *= peak / top
    return x


# ---------------------------------------------------------------------------- pipeline
def perturb_voice(wave, rng: np.random.Generator, config: AugmentConfig, sample_rate: int = SAMPLE_RATE):
    """The speaker-side steps of :func:`augment_clip`: speed, then formant warp (each with
    its probability). Returns ``(wave, {"speed": factor, "vtlp": factor})``."""
    x = _as_float(wave)
    params = {"speed": 1.0, "vtlp": 1.0}
    if rng.random() < config.speed_prob:
        params["speed"] = float(rng.uniform(*config.speed_range))
        x = speed_perturb(x, params["speed"], sample_rate)
    if rng.random() < config.vtlp_prob:
        params["vtlp"] = float(rng.uniform(*config.vtlp_range))
        x = formant_warp(x, params["vtlp"], sample_rate)
    return x, params


def augment_acoustics(
    wave,
    rng: np.random.Generator,
    config: AugmentConfig,
    *,
    babble: Sequence[np.ndarray] = (),
    sample_rate: int = SAMPLE_RATE,
):
    """The room/microphone steps of :func:`augment_clip`: reverberation, noise, telephone
    band, distortion, gain, then a final clip to [-1, 1]. Returns ``(float32 wave, params)``."""
    x = _as_float(wave)
    params: dict = {}
    if rng.random() < config.reverb_prob:
        params["rt60"] = float(rng.uniform(*config.rt60_range))
        params["drr_db"] = float(rng.uniform(*config.drr_db))
        x = reverberate(x, synthetic_rir(rng, params["rt60"], drr_db=params["drr_db"], sample_rate=sample_rate))
    if rng.random() < config.noise_prob:
        weights = np.asarray(config.noise_weights, np.float64)
        if not len(babble):
            weights[2] = 0.0
        if weights.sum() > 0:
            kind = _NOISE_KINDS[int(rng.choice(3, p=weights / weights.sum()))]
            params["noise"] = kind
            params["snr_db"] = float(rng.uniform(*config.snr_db))
            if kind == "white":
                noise = white_noise(x.size, rng)
            elif kind == "coloured":
                params["beta"] = float(rng.uniform(*config.beta_range))
                noise = coloured_noise(x.size, rng, params["beta"])
            else:
                noise = babble_noise(x.size, rng, babble, config.babble_talkers)
            x = add_noise(x, noise, params["snr_db"])
    if rng.random() < config.telephone_prob:
        params["telephone"] = True
        x = telephone_band(x, sample_rate)
    if rng.random() < config.distortion_prob:
        if rng.random() < 0.5:
            params["drive_db"] = float(rng.uniform(*config.drive_db))
            x = soft_clip(x, params["drive_db"])
        else:
            params["clip_fraction"] = float(rng.uniform(*config.clip_fraction))
            x = hard_clip(x, params["clip_fraction"])
    gain = float(rng.uniform(*config.gain_db)) if rng.random() < config.gain_prob else 0.0
    params["gain_db"] = gain
    x = apply_gain(x, gain, config.peak)
    return np.clip(np.nan_to_num(x), -1.0, 1.0).astype(np.float32), params


def augment_clip(
    wave,
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
    *,
    babble: Sequence[np.ndarray] = (),
    sample_rate: int = SAMPLE_RATE,
    max_samples: int | None = None,
    return_params: bool = False,
):
    """Augment one clip: :func:`perturb_voice` (speed, formants) -> leading/trailing
    silence (``config.silence_s`` each side, within ``max_samples`` if given) ->
    :func:`augment_acoustics` (room, noise, channel, distortion, gain).

    Args:
        wave: 1-D float waveform (speech), at ``sample_rate``.
        rng: the generator every random choice comes from (same generator state, same
            output).
        config: an :class:`AugmentConfig` (default: ``AugmentConfig()``).
        babble: other utterances for babble noise (none: babble is never chosen).
        max_samples: the longest output; a clip made longer by the speed perturbation is
            cut at its end, and silence is only added up to it.
        return_params: also return a dict of what was applied.

    Returns:
        float32 waveform in [-1, 1] (and the params dict with ``return_params``).
    """
    config = AugmentConfig() if config is None else config
    x, params = perturb_voice(wave, rng, config, sample_rate)
    if max_samples is not None and x.size > int(max_samples):
        x = x[: int(max_samples)]
    lead = trail = 0
    if rng.random() < config.silence_prob:
        lead, trail = (int(round(s * sample_rate)) for s in rng.uniform(*config.silence_s, size=2))
        if max_samples is not None:
            room = max(0, int(max_samples) - x.size)
            if lead + trail > room:
                scale = room / (lead + trail)
                lead, trail = int(lead * scale), int(trail * scale)
        x = pad_silence(x, lead, trail)
    params["silence"] = (lead, trail)
    out, acoustic = augment_acoustics(x, rng, config, babble=babble, sample_rate=sample_rate)
    params.update(acoustic)
    return (out, params) if return_params else out


class Augmenter:
    """:func:`augment_clip` with a fixed config and babble bank: ``Augmenter(config)(wave, rng)``."""

    def __init__(self, config: AugmentConfig | None = None, babble: Sequence[np.ndarray] = (),
                 sample_rate: int = SAMPLE_RATE):
        self.config = AugmentConfig() if config is None else config
        self.babble = list(babble)
        self.sample_rate = int(sample_rate)

    def __call__(self, wave, rng: np.random.Generator, max_samples: int | None = None) -> np.ndarray:
        return augment_clip(wave, rng, self.config, babble=self.babble, sample_rate=self.sample_rate,
                            max_samples=max_samples)


# ---------------------------------------------------------------------------- tf.data
def augment_batch(
    audio: np.ndarray,
    lengths: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
    *,
    labels: np.ndarray | None = None,
    audio_buckets: Sequence[int] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[np.ndarray, np.ndarray]:
    """Augment a padded batch (``audio`` ``(B, S)``, ``lengths`` ``(B,)``) row by row.

    Babble for a row is made from the batch's other rows (of another label when
    ``labels`` is given, so a keyword is never its own background). The output is padded
    to ``S`` (``audio_buckets`` None) or to the smallest of ``audio_buckets`` that holds the
    longest row (cropped at the largest); rows made longer than that are cut at the end.
    Returns ``(float32 (B, S'), int32 (B,))``.
    """
    config = AugmentConfig() if config is None else config
    audio = np.asarray(audio, np.float32)
    lengths = np.asarray(lengths).astype(np.int64).reshape(-1)
    rows = audio.shape[0]
    width = audio.shape[1] if audio_buckets is None else int(max(audio_buckets))
    clips = [audio[r, : max(0, min(int(lengths[r]), audio.shape[1]))] for r in range(rows)]
    out = []
    for r in range(rows):
        if labels is not None:
            others = [clips[j] for j in range(rows) if j != r and labels[j] != labels[r] and clips[j].size]
        else:
            others = [clips[j] for j in range(rows) if j != r and clips[j].size]
        if clips[r].size == 0:
            out.append(clips[r])
            continue
        out.append(augment_clip(clips[r], rng, config, babble=others, sample_rate=sample_rate, max_samples=width))
    from kerasadml.data.batching import check_buckets, pad_audio

    if not rows:
        return np.zeros((0, width), np.float32), np.zeros((0,), np.int32)
    buckets = (width,) if audio_buckets is None else check_buckets(audio_buckets, "audio_buckets")
    return pad_audio(out, buckets, "crop")


def augment_dataset(
    dataset,
    config: AugmentConfig | None = None,
    seed: int = 0,
    *,
    audio_buckets: Sequence[int] | None = None,
    sample_rate: int = SAMPLE_RATE,
    num_parallel_calls=None,
):
    """A ``tf.data`` stage that augments the ``"audio"`` / ``"audio_length"`` of each batch
    on the fly (:func:`augment_batch` in a ``tf.numpy_function``); other keys pass through.

    For the batches of :func:`kerasadml.data.speech.dataset.make_kws_training_dataset` (or any
    dataset of dicts with those keys, batched); apply it to training data only. It works
    whatever the Keras backend (the dataset runs in TensorFlow and yields NumPy-convertible
    tensors to ``model.fit`` on TensorFlow and JAX alike).

    Deterministic: batch ``i`` of an iteration is augmented with a NumPy generator seeded by
    ``(seed, r)``, where ``r`` comes from ``tf.data.Dataset.random(seed)`` (re-drawn on each
    new iteration, so epochs of a re-iterated dataset differ), whatever the parallelism.

    Args:
        dataset: a ``tf.data.Dataset`` of dicts with ``"audio"`` float32 ``(B, S)`` and
            ``"audio_length"`` int ``(B,)``; a ``"label"`` key, if present, keeps a
            keyword out of its own babble.
        config: an :class:`AugmentConfig` (default ``AugmentConfig()``).
        seed: the augmentation seed.
        audio_buckets: ``None`` keeps each batch's width ``S`` (clips slowed past it are
            cut at the end); else re-pad to these widths (``make_kws_training_dataset``'s
            ``audio_buckets``).
        num_parallel_calls: parallel batches (default ``tf.data.AUTOTUNE``).

    Returns:
        The augmented ``tf.data.Dataset`` (same element structure).
    """
    import tensorflow as tf

    config = AugmentConfig() if config is None else config
    seed = int(seed)
    spec = dataset.element_spec
    if not isinstance(spec, dict) or "audio" not in spec or "audio_length" not in spec:
        raise ValueError(
            "augment_dataset: expected a dataset of dicts with 'audio' and 'audio_length' "
            f"(as make_kws_training_dataset yields), got {spec}"
        )
    has_label = "label" in spec
    if num_parallel_calls is None:
        num_parallel_calls = tf.data.AUTOTUNE
    buckets = None if audio_buckets is None else tuple(int(b) for b in audio_buckets)

    def run(audio, lengths, labels, key):
        rng = np.random.default_rng([seed, int(key) & 0x7FFFFFFFFFFFFFFF])
        return augment_batch(audio, lengths, rng, config, labels=labels if has_label else None,
                             audio_buckets=buckets, sample_rate=sample_rate)

    def stage(element, key):
        labels = element["label"] if has_label else tf.zeros_like(element["audio_length"])
        audio, lengths = tf.numpy_function(
            run, [element["audio"], element["audio_length"], labels, key], [tf.float32, tf.int32], stateful=False
        )
        audio.set_shape(element["audio"].shape)
        lengths.set_shape(element["audio_length"].shape)
        out = dict(element)
        out["audio"] = tf.cast(audio, spec["audio"].dtype)
        out["audio_length"] = tf.cast(lengths, spec["audio_length"].dtype)
        return out

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((dataset, keys)).map(stage, num_parallel_calls=num_parallel_calls, deterministic=True)
