"""AV-Digits: a small real-data audio-visual set built offline, in the VEGAS/AVE layout.

The visual side is the 1,797 real handwritten digit images that ship with scikit-learn
(``sklearn.datasets.load_digits``, no download); the audio side is the spoken digit name
("zero" ... "nine") synthesised by eSpeak NG (``espeakng-loader`` wheel) with many voices.
A pair is one image and one utterance of the same digit; there are 10 classes, like VEGAS.
Features come from the package's own extractors:

* visual: :func:`digit_image_features`, the 8x8 image upsampled bilinearly to 32x32 and
  flattened, **1024-d** to match the width of the Inception features of VEGAS/AVE;
* audio: :func:`audio_logmel_stats`, the mean and standard deviation over frames of 64
  log-mel bins, **128-d** to match the width of VGGish features (it is *not* VGGish).

So the same HDF5 reader (:func:`kerasadml.data.av.features.load_av_hdf5`) and the same
AADML model serve AV-Digits and the real sets (``docs/data.md`` §2.2). A low-resource
training split (``train_per_class``) is a parameter, because AADML's claim is about
scarce data.

Example:

>>> from kerasadml.data.av.digits import build_av_digits
>>> summary = build_av_digits("av_digits.h5", train_per_class=20, seed=0)  # doctest: +SKIP
>>> summary["num_train"], summary["num_test"]                              # doctest: +SKIP
(200, 539)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerasadml.data.av.features import AVDataset, AVSplit, save_av_hdf5

logger = logging.getLogger(__name__)

#: Class names of AV-Digits; label ``k`` is the digit ``k``.
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Sample rate of the audio before feature extraction.
SAMPLE_RATE = 16000
#: Speaking rates (words per minute) and base pitches (0-100) combined into voices.
DEFAULT_RATES = (130, 150, 175, 200, 230)
DEFAULT_PITCHES = (30, 45, 60, 75)

# --------------------------------------------------------------------------------------
# Visual features
# --------------------------------------------------------------------------------------


def _linear_resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """``(size_out, size_in)`` matrix of 1-D linear interpolation, corners aligned."""
    matrix = np.zeros((size_out, size_in), dtype=np.float64)
    if size_in == 1:
        matrix[:, 0] = 1.0
        return matrix
    positions = np.linspace(0.0, size_in - 1, size_out)
    low = np.clip(np.floor(positions).astype(int), 0, size_in - 2)
    frac = positions - low
    matrix[np.arange(size_out), low] = 1.0 - frac
    matrix[np.arange(size_out), low + 1] += frac
    return matrix


def digit_image_features(
    images: np.ndarray, *, size: int = 32, max_value: float = 16.0
) -> np.ndarray:
    """Visual features of small grey images: bilinear upsampling, scaling, flattening.

    Each ``(H, W)`` image is upsampled bilinearly to ``size x size`` (corners aligned,
    like ``scipy.ndimage.zoom(order=1)``), divided by ``max_value`` (16 for the 4-bit
    scikit-learn digits) and clipped to [0, 1], then flattened. With the default
    ``size=32`` the result is **1024-d, the width of the Inception visual features of
    VEGAS/AVE**, so the same model serves both.

    Args:
        images: ``(N, H, W)`` array (``(H, W)`` for one image).
        size: output side length.
        max_value: the value mapped to 1.

    Returns:
        ``(N, size * size)`` float32 array in [0, 1].
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"digit_image_features expects (N, H, W) images; got shape {images.shape}")
    if not np.isfinite(images).all():
        raise ValueError("digit_image_features: images hold NaN or Inf")
    rows = _linear_resize_matrix(images.shape[1], size)
    cols = _linear_resize_matrix(images.shape[2], size)
    upsampled = np.einsum("oh,nhw,pw->nop", rows, images, cols)
    scaled = np.clip(upsampled / float(max_value), 0.0, 1.0)
    return scaled.reshape(len(images), size * size).astype(np.float32)


# --------------------------------------------------------------------------------------
# Audio features
# --------------------------------------------------------------------------------------


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = 512,
    num_mel_bins: int = 64,
    fmin: float = 125.0,
    fmax: float = 7500.0,
) -> np.ndarray:
    """Triangular mel filters on the HTK mel scale, ``(n_fft // 2 + 1, num_mel_bins)``.

    The defaults (64 bins, 125-7500 Hz) are VGGish's mel range.
    """
    fmax = min(float(fmax), sample_rate / 2.0)
    if not 0.0 <= fmin < fmax:
        raise ValueError(f"mel_filterbank needs 0 <= fmin < fmax; got {fmin}, {fmax}")
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), num_mel_bins + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_hz[:, None] - lower) / (centre - lower)
    falling = (upper - bin_hz[:, None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _cached_filterbank(sample_rate: int, n_fft: int, num_mel_bins: int) -> np.ndarray:
    bank = mel_filterbank(sample_rate, n_fft, num_mel_bins).astype(np.float64)
    bank.setflags(write=False)
    return bank


def log_mel_spectrogram(
    wave: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    num_mel_bins: int = 64,
    window_s: float = 0.025,
    hop_s: float = 0.010,
    log_offset: float = 1e-6,
) -> np.ndarray:
    """``(frames, num_mel_bins)`` log-mel power spectrogram in numpy.

    Hann window of ``window_s`` (400 samples at 16 kHz), hop ``hop_s`` (160), FFT of
    512 points at 16 kHz (the next power of two >= the window at other rates), power
    spectrum, :func:`mel_filterbank`, ``log(mel + log_offset)``. No centring: frames
    start at sample 0; a wave shorter than one window is zero-padded to one frame.

    Args:
        wave: mono float samples ``(T,)``; a ``(T, channels)`` array (soundfile's
            layout) is down-mixed by averaging the channels.
        sample_rate: the rate of ``wave``.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono wave (T,) or (T, channels); got shape {wave.shape}")
    if wave.size == 0:
        raise ValueError("cannot compute features of an empty wave")
    if not np.isfinite(wave).all():
        raise ValueError("the wave holds NaN or Inf samples")
    window = round(window_s * sample_rate)
    hop = round(hop_s * sample_rate)
    n_fft = max(512, 1 << (window - 1).bit_length())
    if wave.size < window:
        wave = np.pad(wave, (0, window - wave.size))
    frames = np.lib.stride_tricks.sliding_window_view(wave, window)[::hop]
    spectrum = np.fft.rfft(frames * np.hanning(window + 2)[1:-1], n=n_fft, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    # einsum, not a BLAS matmul: for these small matrices BLAS thread start-up costs
    # more than the product (10x slower on a busy 2-core machine).
    mel = np.einsum("fk,km->fm", power, _cached_filterbank(sample_rate, n_fft, num_mel_bins))
    return np.log(mel + log_offset).astype(np.float32)


def audio_logmel_stats(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Audio features: mean and std over frames of 64 log-mel bins -> ``(128,)``.

    See :func:`log_mel_spectrogram` for the front-end (25 ms / 10 ms Hann frames,
    512-point FFT at 16 kHz, 64 mel bins over 125-7500 Hz). The output is
    ``[mean_0..mean_63, std_0..std_63]``: **128-d, the width of VGGish embeddings, so the
    VEGAS/AVE model accepts it; it is not VGGish** (no network, no PCA).

    Args:
        wave: mono float samples (``(T, channels)`` is down-mixed).
        sample_rate: the rate of ``wave`` (16 kHz in AV-Digits).

    Returns:
        float32 ``(128,)``.
    """
    logmel = log_mel_spectrogram(wave, sample_rate).astype(np.float64)
    return np.concatenate([logmel.mean(axis=0), logmel.std(axis=0)]).astype(np.float32)


# --------------------------------------------------------------------------------------
# Building the set
# --------------------------------------------------------------------------------------


def _resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    if orig_sr == target_sr:
        return wave.astype(np.float32)
    import soxr

    return np.asarray(soxr.resample(wave, orig_sr, target_sr), dtype=np.float32)


def _voice_pools(seed: int, test_voice_fraction: float, rates, pitches):
    """Disjoint train/test voice lists: the voice *variants* are split, so no test
    speaker shares a variant (timbre) with any training speaker."""
    from kerasadml.data.espeak import ENGLISH_ACCENTS, Voice, voice_variants

    variants = [""] + voice_variants()
    order = np.random.default_rng([seed, 7]).permutation(len(variants))
    num_test = max(1, round(test_voice_fraction * len(variants)))
    test_variants = sorted(variants[i] for i in order[:num_test])
    train_variants = sorted(variants[i] for i in order[num_test:])

    def pool(names):
        return [
            Voice(accent, variant, rate=int(rate), pitch=int(pitch))
            for accent in ENGLISH_ACCENTS
            for variant in names
            for rate in rates
            for pitch in pitches
        ]

    return pool(train_variants), pool(test_variants)


def _select_indices(
    labels: np.ndarray,
    *,
    seed: int,
    test_fraction: float,
    train_per_class: int | None,
    max_images: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test image indices (each sorted)."""
    rng = np.random.default_rng([seed, 0])
    classes = np.unique(labels)
    per_class = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    if max_images is not None:
        # Round-robin over classes keeps the subset balanced and exactly max_images.
        if max_images < 2 * len(classes):
            raise ValueError(f"max_images must be at least {2 * len(classes)}; got {max_images}")
        take = {c: 0 for c in classes}
        for i in range(max_images):
            take[classes[i % len(classes)]] += 1
        per_class = {c: idx[: take[c]] for c, idx in per_class.items()}
    train, test = [], []
    for c, idx in per_class.items():
        num_test = round(test_fraction * len(idx))
        num_test = min(max(num_test, 1), len(idx) - 1)
        test.append(idx[:num_test])
        kept = idx[num_test:]
        if train_per_class is not None:
            if train_per_class > len(kept):
                raise ValueError(
                    f"train_per_class={train_per_class}, but digit {int(c)} has only "
                    f"{len(kept)} training images with test_fraction={test_fraction}"
                )
            kept = kept[:train_per_class]
        train.append(kept)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _speak(tts, text, voice, rng, snr_db, gain_db) -> np.ndarray:
    """One augmented 16 kHz utterance, or raise ValueError / ESpeakError if bad."""
    raw = tts.synthesize(text, voice)
    if raw.size < 0.05 * tts.sample_rate:
        raise ValueError(f"too short ({raw.size} samples)")
    if not np.isfinite(raw).all():
        raise ValueError("NaN or Inf samples")
    if np.abs(raw).max() < 1e-4:
        raise ValueError("silent")
    wave = _resample(raw, tts.sample_rate, SAMPLE_RATE).astype(np.float64)
    power = float(np.mean(wave**2))
    snr = rng.uniform(*snr_db)
    noise = rng.standard_normal(wave.size) * math.sqrt(power / 10.0 ** (snr / 10.0))
    gain = 10.0 ** (rng.uniform(*gain_db) / 20.0)
    return np.clip(gain * (wave + noise), -1.0, 1.0).astype(np.float32)


def _synthesize_jobs(payload: dict) -> tuple[list, list]:
    """Synthesise and featurise ``payload["jobs"]`` (``(image_index, text, pool_name)``)
    in order, in one unit of work of :class:`kerasadml.data.espeak.PristinePool` (one
    engine, one sequence of utterances). Reports progress every 32 jobs.

    Returns:
        ``(features, failures)``: ``features[i]`` is the 128-d vector of job ``i`` or
        ``None`` when all its attempts failed; ``failures`` describes each failed attempt.
    """
    from kerasadml.data.espeak import ESpeak, ESpeakError, Voice, report_progress

    jobs, seed, max_attempts = payload["jobs"], payload["seed"], payload["max_attempts"]
    snr_db, gain_db = payload["snr_db"], payload["gain_db"]
    chunk = 32
    tts = ESpeak()
    if not tts.seedable:  # pragma: no cover - every espeakng-loader build exports it
        logger.warning("this eSpeak NG has no espeak_ng_SetRandSeed: AV-Digits audio is not reproducible")
    voices = {name: [Voice(*v) for v in pool] for name, pool in payload["pools"].items()}
    features: list[np.ndarray | None] = []
    failures: list[str] = []
    for index, text, pool_name in jobs:
        # One generator per image: its voice and noise do not depend on which other
        # images are built (max_images, train_per_class, skips).
        rng = np.random.default_rng([seed, 1, int(index)])
        pool = voices[pool_name]
        feature = None
        for _ in range(max_attempts):
            voice = pool[int(rng.integers(len(pool)))]
            # eSpeak NG seeds its own generator from the clock (some voices draw noise from it)
            tts.set_random_seed(int(rng.integers(2**31 - 1)))
            try:
                wave = _speak(tts, text, voice, rng, snr_db, gain_db)
                feature = audio_logmel_stats(wave, SAMPLE_RATE)
                break
            except (ESpeakError, ValueError) as error:
                failures.append(f"image {int(index)}, voice {voice.key()}: {error}")
        features.append(feature)
        if len(features) % chunk == 0:
            report_progress(chunk)
    if len(features) % chunk:
        report_progress(len(features) % chunk)
    return features, failures


def _run_synthesis(payload: dict, fresh_process: bool, bar) -> tuple[list, list]:
    """Run :func:`_synthesize_jobs` as one unit of a :class:`~kerasadml.data.espeak.PristinePool`
    (``fresh_process``: in a worker, from a never-used engine; else in this process)."""
    from kerasadml.data.espeak import PristinePool, UnitFailure

    with PristinePool(1 if fresh_process else 0, name="AV-Digits", kill_on_error=True) as pool:
        (outcome,) = pool.map(_synthesize_jobs, [payload], progress=bar.update)
    if isinstance(outcome, UnitFailure):
        raise RuntimeError(f"the AV-Digits synthesis did not finish: {outcome.message}")
    return outcome


def make_av_digits(
    *,
    train_per_class: int | None = None,
    test_fraction: float = 0.3,
    seed: int = 0,
    progress: bool = True,
    max_images: int | None = None,
    snr_db: tuple[float, float] = (5.0, 30.0),
    gain_db: tuple[float, float] = (-12.0, 6.0),
    rates: Sequence[int] = DEFAULT_RATES,
    pitches: Sequence[int] = DEFAULT_PITCHES,
    test_voice_fraction: float = 0.25,
    max_attempts: int = 3,
    fresh_process: bool = True,
) -> tuple[AVDataset, dict[str, Any]]:
    """Build AV-Digits in memory; see :func:`build_av_digits` for the arguments.

    Returns:
        ``(dataset, summary)``.
    """
    from sklearn.datasets import load_digits
    from tqdm.auto import tqdm

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    if train_per_class is not None and train_per_class < 1:
        raise ValueError(f"train_per_class must be >= 1 or None; got {train_per_class}")
    start = time.perf_counter()
    digits = load_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    train_idx, test_idx = _select_indices(
        labels,
        seed=seed,
        test_fraction=test_fraction,
        train_per_class=train_per_class,
        max_images=max_images,
    )
    train_voices, test_voices = _voice_pools(seed, test_voice_fraction, rates, pitches)
    jobs = [(int(i), DIGIT_NAMES[labels[i]], "train") for i in train_idx]
    jobs += [(int(i), DIGIT_NAMES[labels[i]], "test") for i in test_idx]
    payload = {
        "jobs": jobs,
        "pools": {
            "train": [dataclasses.astuple(v) for v in train_voices],
            "test": [dataclasses.astuple(v) for v in test_voices],
        },
        "seed": int(seed),
        "snr_db": tuple(float(x) for x in snr_db),
        "gain_db": tuple(float(x) for x in gain_db),
        "max_attempts": int(max_attempts),
    }
    with tqdm(total=len(jobs), desc="AV-Digits", unit="pair", disable=not progress) as bar:
        features, failures = _run_synthesis(payload, fresh_process, bar)

    splits = {}
    skipped = 0
    for name, indices, offset in (("train", train_idx, 0), ("test", test_idx, len(train_idx))):
        chosen = features[offset : offset + len(indices)]
        keep = np.array([f is not None for f in chosen], dtype=bool)
        skipped += int((~keep).sum())
        kept = indices[keep]
        audio = [f for f in chosen if f is not None]
        splits[name] = AVSplit(
            np.stack(audio) if audio else np.zeros((0, 128), np.float32),
            digit_image_features(images[kept]) if len(kept) else np.zeros((0, 1024), np.float32),
            labels[kept],
        )
    if failures:
        logger.warning(
            "AV-Digits: %d failed synthesis attempt(s), %d image(s) skipped; first: %s",
            len(failures),
            skipped,
            failures[0],
        )
    dataset = AVDataset(splits["train"], splits["test"], 10, "av-digits", DIGIT_NAMES)
    summary = {
        "num_classes": 10,
        "num_train": len(dataset.train),
        "num_test": len(dataset.test),
        "audio_dim": dataset.audio_dim,
        "visual_dim": dataset.visual_dim,
        "train_per_class": dataset.train.class_counts(10).tolist(),
        "test_per_class": dataset.test.class_counts(10).tolist(),
        "train_voices": len(train_voices),
        "test_voices": len(test_voices),
        "failed_syntheses": len(failures),
        "skipped_images": skipped,
        "seed": int(seed),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return dataset, summary


def build_av_digits(
    out_file: str | os.PathLike,
    *,
    train_per_class: int | None = None,
    test_fraction: float = 0.3,
    seed: int = 0,
    progress: bool = True,
    max_images: int | None = None,
    snr_db: tuple[float, float] = (5.0, 30.0),
    gain_db: tuple[float, float] = (-12.0, 6.0),
    rates: Sequence[int] = DEFAULT_RATES,
    pitches: Sequence[int] = DEFAULT_PITCHES,
    test_voice_fraction: float = 0.25,
    fresh_process: bool = True,
) -> dict[str, Any]:
    """Build AV-Digits and write it as a layout-A HDF5 file (VEGAS/AVE format).

    Steps, all deterministic for a ``seed``:

    1. Load the 1,797 scikit-learn digit images (``max_images`` keeps a class-balanced
       subset, for tests).
    2. Split each class into test (``test_fraction`` of it, at least one image) and
       train; ``train_per_class`` then keeps only that many training images per class
       (the low-resource split). The test images do not depend on ``train_per_class``,
       and smaller training splits are subsets of larger ones.
    3. Pair every image with the spoken name of its digit: eSpeak NG with a voice drawn
       per image from (``ENGLISH_ACCENTS`` x voice variants x ``rates`` x ``pitches``);
       the variants are split so that train and test voices are **disjoint**
       (``test_voice_fraction`` of the variants are test-only). Resample 22.05 -> 16 kHz,
       add white noise at an SNR drawn from ``snr_db`` and a gain drawn from ``gain_db``.
    4. Features: :func:`audio_logmel_stats` (128-d) and :func:`digit_image_features`
       (1024-d). Labels 0-9 = the digit.

    Determinism: eSpeak NG seeds its own random generator from the clock (some voices
    use it for excitation noise), and keeps state from one utterance to the next
    inside a process (its pitch-flutter phase is a static counter that no API resets).
    So every utterance is preceded by ``ESpeak.set_random_seed`` with a value drawn from
    the image's generator, and with ``fresh_process=True`` (default) the synthesis runs
    in a worker of :class:`kerasadml.data.espeak.PristinePool`, forked from a
    freshly loaded, never-used engine: one seed and one set of arguments give a
    bit-identical file every time. ``fresh_process=False`` synthesises in this process:
    the voices and noise are the same, but the samples may differ slightly between builds.
    The worker is *spawned* (a fresh interpreter that re-imports your script): in a
    script, call this under ``if __name__ == "__main__":``.

    A synthesis that fails (eSpeak error, silent, too short) is retried with another
    voice (3 attempts); an image whose attempts all fail is skipped. Both counts are in
    the summary and logged; the build never stops on one bad utterance.

    Args:
        out_file: the ``.h5`` to write (atomically, via
            :func:`~kerasadml.data.av.features.save_av_hdf5`).
        train_per_class: training pairs kept per class; ``None`` keeps all.
        test_fraction: fraction of each class held out for test.
        seed: the seed of every random choice.
        progress: show a tqdm progress bar.
        max_images: build from a class-balanced subset of this many images.
        snr_db: range of the additive-noise SNR, in dB.
        gain_db: range of the random gain, in dB.
        rates, pitches: speaking rates and pitches combined into voices.
        test_voice_fraction: fraction of voice variants reserved for test.
        fresh_process: synthesise in a new process (bit-exact determinism), see above.

    Returns:
        A JSON-able summary: ``out_file``, ``num_train``, ``num_test``, per-class
        counts, ``audio_dim`` (128), ``visual_dim`` (1024), voice pool sizes,
        ``failed_syntheses``, ``skipped_images``, ``seconds``.

    The file's attributes record ``seed``, ``train_per_class`` (``"none"`` for all),
    ``test_fraction``, ``max_images``, ``sample_rate``, ``snr_db``, ``gain_db``,
    ``class_names`` and a ``description``.
    """
    dataset, summary = make_av_digits(
        train_per_class=train_per_class,
        test_fraction=test_fraction,
        seed=seed,
        progress=progress,
        max_images=max_images,
        snr_db=snr_db,
        gain_db=gain_db,
        rates=rates,
        pitches=pitches,
        test_voice_fraction=test_voice_fraction,
        fresh_process=fresh_process,
    )
    attrs = {
        "description": (
            "AV-Digits: scikit-learn handwritten digit images (visual: 8x8 bilinearly "
            "upsampled to 32x32, scaled to [0,1], flattened, 1024-d) paired with the "
            "digit's spoken name by eSpeak NG, train/test voices disjoint, 16 kHz, noise "
            "and gain augmented (audio: mean+std of 64 log-mel bins, 128-d; not VGGish). "
            "Layout as VEGAS/AVE feature files; labels 0-9 = digit."
        ),
        "seed": int(seed),
        "train_per_class": train_per_class,
        "test_fraction": float(test_fraction),
        "max_images": max_images,
        "sample_rate": SAMPLE_RATE,
        "snr_db": np.asarray(snr_db, dtype=np.float64),
        "gain_db": np.asarray(gain_db, dtype=np.float64),
        "train_voices": summary["train_voices"],
        "test_voices": summary["test_voices"],
        "skipped_images": summary["skipped_images"],
    }
    path = save_av_hdf5(out_file, dataset, attrs=attrs)
    summary["out_file"] = str(path)
    return summary
