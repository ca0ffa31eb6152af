"""``tf.data`` pipeline for keyword spotting: class-balanced training batches (inference
batching is :mod:`kerasadml.data.batching`).

The datasets yield dicts of NumPy-convertible tensors, so the same object feeds
``model.fit`` / ``model.predict`` on the TensorFlow and the JAX backends.

Shapes are bucketed to limit retracing/recompilation: a batch's audio is zero-padded to
the smallest of ``audio_buckets`` that holds its longest clip, its phoneme ids to the
smallest of ``phoneme_buckets`` (0 is padding; :mod:`kerasadml.data.batching`).

* :func:`make_kws_training_dataset` -- ``{"audio", "audio_length", "phonemes", "label"}``
  with ``K`` distinct keywords x ``M`` clips each per batch, drawn by
  :class:`kerasadml.data.sampling.ClassBalancedSampler` (``samples="draw"``).

Example:

>>> from kerasadml.data.speech.libriphrase import read_libriphrase_csv, training_items  # doctest: +SKIP
>>> from kerasadml.data.speech.phonemizer import PhonemeVocabulary, Phonemizer         # doctest: +SKIP
>>> items = training_items(read_libriphrase_csv("out/synthphrase_train.csv"))   # doctest: +SKIP
>>> g2p, vocab = Phonemizer(), PhonemeVocabulary()                               # doctest: +SKIP
>>> ds, info = make_kws_training_dataset(                                        # doctest: +SKIP
...     items.paths, items.texts, items.labels,
...     encode_text=lambda t: vocab.encode(g2p.phonemize(t)))
>>> model.fit(ds, steps_per_epoch=info.steps_per_epoch, epochs=10)               # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from kerasadml.data.batching import check_buckets, pad_audio, pad_ids
from kerasadml.data.sampling import ClassBalancedSampler

logger = logging.getLogger(__name__)

DEFAULT_AUDIO_BUCKETS = (16000, 24000, 32000)
#: Widths of the training recipe (0.55, 0.75, 1, 1.25, 1.5, 1.75, 2 s): with batches
#: grouped by length, seven compiled shapes keep the padding of 0.5-2 s phrases small.
DEFAULT_TRAINING_AUDIO_BUCKETS = (8800, 12000, 16000, 20000, 24000, 28000, 32000)
DEFAULT_PHONEME_BUCKETS = (8, 16, 32)
_MAX_EXAMPLES = 10


@dataclasses.dataclass
class KWSDatasetInfo:
    """What :func:`make_kws_training_dataset` built.

    Attributes:
        num_clips: clips the dataset samples from.
        num_keywords: keywords (labels) with at least one usable clip.
        skipped: clips left out (audio that could not be decoded, or a text that
            ``encode_text`` rejected).
        skipped_examples: the first few reasons, each naming the file or text.
        batch_size: ``keywords_per_batch * clips_per_keyword``.
        steps_per_epoch: a suggestion, ``ceil(num_clips / batch_size)`` (or the value
            given), so that an epoch shows about every clip once.
        cached: whether the audio is decoded in memory (else decoded on the fly).
        cache_mb: memory held by the decoded audio.
        decode_failures: on-the-fly mode only: clips that failed when read during
            training (each replaced by another clip of the same keyword); updated live.
    """

    num_clips: int
    num_keywords: int
    skipped: int
    skipped_examples: list
    batch_size: int
    steps_per_epoch: int
    cached: bool
    cache_mb: float
    decode_failures: int = 0


# ------------------------------------------------------------------------------ helpers
def _encode_texts(texts: Sequence[str], encode_text: Callable) -> tuple[dict, dict]:
    """``encode_text`` once per distinct text: ({text: int32 ids}, {text: error message})."""
    encoded: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    for text in dict.fromkeys(texts):
        try:
            ids = np.asarray(list(encode_text(text)), dtype=np.int64)
            if ids.ndim != 1 or ids.size == 0:
                raise ValueError("encode_text returned no phoneme ids")
            if (ids <= 0).any():
                raise ValueError("encode_text returned ids <= 0 (0 is reserved for padding)")
        except Exception as error:  # noqa: BLE001  (any encoder's failure skips that text)
            errors[text] = f"text {text!r}: {type(error).__name__}: {error}"
            continue
        encoded[text] = ids.astype(np.int32)
    return encoded, errors


def _estimate_samples(path: str) -> int:
    """Rough decoded length of a file at 16 kHz, from its size (wav: 16-bit mono)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return 0
    ext = os.path.splitext(path)[1].lower()
    if ext == ".wav":
        return max(0, (size - 44) // 2)
    if ext == ".flac":
        return size
    return size * 8  # lossy formats: generous


def _default_workers() -> int:
    return min(32, 2 * (os.cpu_count() or 1))


def _load(path: str) -> np.ndarray:
    from kerasadml.data.audio_io import load_audio

    return load_audio(path, 16000)


class _ClipCache:
    """Decoded clips in one float32 buffer (``offsets``/``lengths`` per clip)."""

    def __init__(self, waves: list[np.ndarray]):
        self.lengths = np.asarray([w.shape[0] for w in waves], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.buffer = np.concatenate(waves).astype(np.float32) if waves else np.zeros(0, np.float32)

    def get(self, i: int) -> np.ndarray:
        return self.buffer[self.offsets[i] : self.offsets[i] + self.lengths[i]]

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)


def _decode_all(paths: Sequence[str], max_samples: int | None, max_bytes: float | None, workers: int):
    """Decode ``paths`` in a thread pool, in order. Returns (waves, ok_positions, errors,
    aborted); ``aborted`` when the decoded audio passed ``max_bytes``."""
    from kerasadml.data.audio_io import AudioError

    waves: list[np.ndarray] = []
    ok: list[int] = []
    errors: list[str] = []
    total = 0

    def task(path):
        try:
            wave = _load(path)
        except AudioError as error:
            return None, str(error)
        except Exception as error:  # noqa: BLE001  (a long job never dies on one file)
            return None, f"audio file {path!r}: {type(error).__name__}: {error}"
        if max_samples is not None and wave.shape[0] > max_samples:
            wave = np.ascontiguousarray(wave[:max_samples])
        return wave, None

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        # bounded look-ahead keeps memory in check when we abort
        window = 4 * workers
        futures = {}
        for position in range(min(window, len(paths))):
            futures[position] = pool.submit(task, paths[position])
        for position in range(len(paths)):
            wave, error = futures.pop(position).result()
            nxt = position + window
            if nxt < len(paths):
                futures[nxt] = pool.submit(task, paths[nxt])
            if wave is None:
                errors.append(error)
                continue
            waves.append(wave)
            ok.append(position)
            total += wave.nbytes
            if max_bytes is not None and total > max_bytes:
                for future in futures.values():
                    future.cancel()
                return waves, ok, errors, True
    return waves, ok, errors, False


def _log_skipped(what: str, count: int, total: int, examples: list) -> None:
    if count:
        logger.warning("%s: skipped %d of %d clip(s); first: %s", what, count, total, examples[:3])


# ----------------------------------------------------------------------------- training
def make_kws_training_dataset(
    paths: Sequence,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    encode_text: Callable[[str], list],
    keywords_per_batch: int = 16,
    clips_per_keyword: int = 2,
    audio_buckets: Sequence[int] = DEFAULT_AUDIO_BUCKETS,
    phoneme_buckets: Sequence[int] = DEFAULT_PHONEME_BUCKETS,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    cache_audio: bool = True,
    max_cache_mb: float = 2048,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    hard_negatives: Mapping[str, Sequence[str]] | None = None,
    family_size: int = 1,
    group_by_length: bool = False,
) -> tuple[tf.data.Dataset, KWSDatasetInfo]:
    """Class-balanced training batches of (clip, keyword phonemes, label).

    Every batch holds ``K = keywords_per_batch`` distinct keywords x ``M =
    clips_per_keyword`` clips each (rows grouped by keyword), ``B = K * M``:

    * ``"audio"``: float32 ``(B, S)``, ``S`` the smallest of ``audio_buckets`` that holds
      the batch's longest clip. Clips longer than the largest bucket are **cropped** to it
      (their first ``max(audio_buckets)`` samples).
    * ``"audio_length"``: int32 ``(B,)`` valid samples of each row.
    * ``"phonemes"``: int32 ``(B, T)`` the ids of each row's own keyword text, 0-padded to
      the smallest of ``phoneme_buckets``; longer sequences are cropped to the largest.
    * ``"label"``: int32 ``(B,)`` the given labels.

    Keywords are drawn in shuffled rounds (each keyword once per round) from a NumPy
    generator seeded by ``(seed, epoch)``, so runs are reproducible and each pass over a
    finite dataset (``steps_per_epoch``) draws new batches. ``encode_text`` is called
    once per distinct text.

    Audio: with ``cache_audio`` and a corpus estimated to fit in ``max_cache_mb`` (decoded
    float32, after cropping), every clip is decoded once by a thread pool
    (:func:`kerasadml.data.audio_io.load_audio`) and batches are served from memory;
    otherwise clips are decoded on the fly by ``tf.numpy_function`` in a parallel map.
    Clips that cannot be decoded (missing, corrupt, silent, too short) or whose text
    ``encode_text`` rejects are skipped, counted in ``info.skipped`` and logged once. In
    on-the-fly mode missing files are found up front; a file that fails later is replaced
    by another clip of the same keyword and counted in ``info.decode_failures``.

    Args:
        paths: audio files, one per clip.
        texts: the text of each clip.
        labels: integer class of each clip (one text per label).
        encode_text: text -> phoneme ids (>= 1), e.g.
            ``lambda t: vocab.encode(phonemizer.phonemize(t))``.
        keywords_per_batch, clips_per_keyword: ``K`` and ``M``; keywords with fewer than
            ``M`` clips are sampled with replacement.
        audio_buckets, phoneme_buckets: padded widths allowed.
        steps_per_epoch: ``None``: an infinite dataset (give ``steps_per_epoch`` to
            ``fit``); an int: ``take`` that many batches.
        seed: sampling seed.
        cache_audio, max_cache_mb: in-memory decoding, and its memory cap.
        num_parallel_calls: parallelism of the on-the-fly decoding map.
        hard_negatives: optional ``{text: [confusable texts]}`` (e.g. the hard-negative
            pairs of a LibriPhrase-format CSV, see
            :func:`kerasadml.data.speech.libriphrase.hard_negative_map`); texts that are not
            training keywords are ignored.
        family_size: with ``hard_negatives``, batches are built from keyword families of
            up to this many keywords (a keyword and its hard negatives), so that every
            step sees close negatives. ``1`` draws keywords independently.
        group_by_length: batch keywords of similar clip length together (pooled sorting
            within each shuffled round), so that batches are padded little.

    Returns:
        ``(dataset, info)``: the prefetched ``tf.data.Dataset`` and a
        :class:`KWSDatasetInfo`.

    Raises:
        ValueError: inputs of different lengths, one label with two texts, or fewer usable
            keywords than ``keywords_per_batch``.
    """
    paths = [os.fspath(p) for p in paths]
    texts = [str(t) for t in texts]
    labels = np.asarray(labels)
    if not (len(paths) == len(texts) == labels.shape[0]):
        raise ValueError(
            f"make_kws_training_dataset: paths, texts and labels differ in length "
            f"({len(paths)}, {len(texts)}, {labels.shape[0]})"
        )
    if not paths:
        raise ValueError("make_kws_training_dataset: no clips given")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"make_kws_training_dataset: labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    k, m = int(keywords_per_batch), int(clips_per_keyword)
    if k < 1 or m < 1:
        raise ValueError("keywords_per_batch and clips_per_keyword must be >= 1")
    audio_buckets = check_buckets(audio_buckets, "audio_buckets")
    phoneme_buckets = check_buckets(phoneme_buckets, "phoneme_buckets")
    text_of_label: dict[int, str] = {}
    for text, label in zip(texts, labels.tolist()):
        if text_of_label.setdefault(label, text) != text:
            raise ValueError(
                f"make_kws_training_dataset: label {label} has two texts, "
                f"{text_of_label[label]!r} and {text!r}"
            )

    encoded, text_errors = _encode_texts(texts, encode_text)
    skipped_examples = list(text_errors.values())[:_MAX_EXAMPLES]
    keep = [i for i, t in enumerate(texts) if t in encoded]
    skipped = len(paths) - len(keep)
    long_texts = sum(1 for ids in encoded.values() if ids.shape[0] > phoneme_buckets[-1])
    if long_texts:
        logger.warning(
            "make_kws_training_dataset: %d text(s) have more than %d phonemes and are cropped",
            long_texts, phoneme_buckets[-1],
        )

    max_samples = audio_buckets[-1]
    workers = _default_workers()
    cache = None
    use_cache = False
    if cache_audio:
        cap = float(max_cache_mb) * 2**20
        estimate = sum(min(_estimate_samples(paths[i]), max_samples) for i in keep) * 4
        if estimate <= cap:
            waves, ok, errors, aborted = _decode_all([paths[i] for i in keep], max_samples, cap, workers)
            if not aborted:
                use_cache = True
                skipped += len(errors)
                skipped_examples += errors[: max(0, _MAX_EXAMPLES - len(skipped_examples))]
                keep = [keep[j] for j in ok]
                cache = _ClipCache(waves)
            else:
                logger.info("make_kws_training_dataset: decoded audio exceeds max_cache_mb=%s; decoding on the fly",
                            max_cache_mb)
            del waves
        else:
            logger.info(
                "make_kws_training_dataset: estimated %.0f MB of audio > max_cache_mb=%s; decoding on the fly",
                estimate / 2**20, max_cache_mb,
            )
    if not use_cache:
        present = [i for i in keep if os.path.isfile(paths[i])]
        present_set = set(present)
        missing = [i for i in keep if i not in present_set]
        skipped += len(missing)
        skipped_examples += [f"audio file {paths[i]!r}: file not found" for i in missing][
            : max(0, _MAX_EXAMPLES - len(skipped_examples))
        ]
        keep = present
    _log_skipped("make_kws_training_dataset", skipped, len(paths), skipped_examples)

    # keyword groups over the kept clips (positions into `keep`)
    kept_labels = labels[keep]
    group_labels = sorted(set(kept_labels.tolist()))
    if len(group_labels) < k:
        raise ValueError(
            f"make_kws_training_dataset: keywords_per_batch={k} but only {len(group_labels)} keyword(s) "
            "have usable clips; lower keywords_per_batch or add data"
        )
    position = {label: g for g, label in enumerate(group_labels)}
    members: list[list[int]] = [[] for _ in group_labels]
    for j, label in enumerate(kept_labels.tolist()):
        members[position[label]].append(j)
    groups = [np.asarray(g, np.int64) for g in members]
    group_phonemes = [encoded[text_of_label[label]] for label in group_labels]
    group_label_values = np.asarray(group_labels, np.int64)
    if use_cache:
        clip_lengths = cache.lengths.astype(np.float64)
    else:
        clip_lengths = np.asarray([_estimate_samples(paths[i]) for i in keep], np.float64)
    group_lengths = np.asarray([np.median(clip_lengths[g]) for g in groups], np.float64)
    neighbours = None
    if hard_negatives and int(family_size) > 1:
        group_of_text = {text_of_label[label]: g for g, label in enumerate(group_labels)}
        neighbours = [
            np.asarray(
                sorted({group_of_text[t] for t in hard_negatives.get(text_of_label[label], ()) if t in group_of_text} - {g}),
                np.int64,
            )
            for g, label in enumerate(group_labels)
        ]

    batch = k * m
    suggested = int(math.ceil(len(keep) / batch))
    info = KWSDatasetInfo(
        num_clips=len(keep),
        num_keywords=len(group_labels),
        skipped=skipped,
        skipped_examples=skipped_examples,
        batch_size=batch,
        steps_per_epoch=int(steps_per_epoch) if steps_per_epoch else suggested,
        cached=use_cache,
        cache_mb=round(cache.nbytes / 2**20, 2) if cache is not None else 0.0,
    )
    epochs = itertools.count()
    signature = {
        "audio": tf.TensorSpec((batch, None), tf.float32),
        "audio_length": tf.TensorSpec((batch,), tf.int32),
        "phonemes": tf.TensorSpec((batch, None), tf.int32),
        "label": tf.TensorSpec((batch,), tf.int32),
    }

    def new_sampler() -> ClassBalancedSampler:
        """A sampler for one pass over the data, seeded by (seed, pass number)."""
        return ClassBalancedSampler(
            groups,
            k,
            m,
            np.random.default_rng([int(seed), next(epochs)]),
            samples="draw",
            neighbours=neighbours,
            family_size=family_size,
            lengths=group_lengths if group_by_length else None,
            clip_lengths=clip_lengths,
        )

    if use_cache:

        def generate():
            sampler = new_sampler()
            while True:
                rows, keyword = sampler.next_batch()
                audio, lengths = pad_audio([cache.get(r) for r in rows], audio_buckets, "crop")
                yield {
                    "audio": audio,
                    "audio_length": lengths,
                    "phonemes": pad_ids([group_phonemes[g] for g in keyword], phoneme_buckets, "crop"),
                    "label": group_label_values[keyword].astype(np.int32),
                }

        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    else:
        kept_paths = [paths[i] for i in keep]
        bad: set[int] = set()
        lock = threading.Lock()
        logged = []

        def usable(g: int) -> np.ndarray:
            with lock:
                if not bad:
                    return groups[g]
                good = np.asarray([j for j in groups[g] if j not in bad], np.int64)
            return good if good.size else groups[g]

        def load_row(j: int, g: int) -> np.ndarray:
            from kerasadml.data.audio_io import AudioError

            candidates = [j] + [c for c in groups[g].tolist() if c != j]
            for c in candidates:
                with lock:
                    if c in bad:
                        continue
                try:
                    wave = _load(kept_paths[c])
                    return wave[:max_samples]
                except (AudioError, OSError, RuntimeError, ValueError) as error:
                    with lock:
                        if c not in bad:
                            bad.add(c)
                            info.decode_failures += 1
                            if not logged:
                                logged.append(True)
                                logger.warning(
                                    "make_kws_training_dataset: %s; replaced by another clip of the same "
                                    "keyword (further failures are counted in info.decode_failures)",
                                    error,
                                )
            return np.zeros(400, np.float32)  # every clip of this keyword failed

        def load_batch(rows, keyword):
            waves = [load_row(int(j), int(g)) for j, g in zip(rows, keyword)]
            audio, lengths = pad_audio(waves, audio_buckets, "crop")
            phonemes = pad_ids([group_phonemes[int(g)] for g in keyword], phoneme_buckets, "crop")
            return audio, lengths, phonemes, group_label_values[keyword].astype(np.int32)

        def generate_indices():
            sampler = new_sampler()
            while True:
                yield sampler.next_batch(usable)

        def to_batch(rows, keyword):
            audio, lengths, phonemes, label = tf.numpy_function(
                load_batch, [rows, keyword], [tf.float32, tf.int32, tf.int32, tf.int32], stateful=True
            )
            audio.set_shape((batch, None))
            lengths.set_shape((batch,))
            phonemes.set_shape((batch, None))
            label.set_shape((batch,))
            return {"audio": audio, "audio_length": lengths, "phonemes": phonemes, "label": label}

        dataset = tf.data.Dataset.from_generator(
            generate_indices,
            output_signature=(tf.TensorSpec((batch,), tf.int64), tf.TensorSpec((batch,), tf.int64)),
        ).map(to_batch, num_parallel_calls=num_parallel_calls, deterministic=True)

    if steps_per_epoch:
        dataset = dataset.take(int(steps_per_epoch))
    return dataset.prefetch(tf.data.AUTOTUNE), info
