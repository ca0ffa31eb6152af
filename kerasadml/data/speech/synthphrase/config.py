"""SynthPhrase's recipe: the format version, file names, random streams and
:class:`SynthPhraseConfig` with its named sizes (:data:`SYNTHPHRASE_SIZES`).

Every random choice of a build comes from ``numpy.random.default_rng([seed, stream, ...])``
with one of the ``_STREAM_*`` numbers below, so changing one of them changes the data
(and needs a new :data:`FORMAT_VERSION`).
"""

from __future__ import annotations

import dataclasses

from kerasadml.data.augment import AugmentConfig
from kerasadml.data.espeak import ENGLISH_ACCENTS

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
SYNTHPHRASE_ACCENTS = ENGLISH_ACCENTS + ("en-us-nyc",)


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



def _resolve_config(size) -> tuple[str, SynthPhraseConfig]:
    if isinstance(size, SynthPhraseConfig):
        return "custom", size
    if isinstance(size, str) and size in SYNTHPHRASE_SIZES:
        return size, SYNTHPHRASE_SIZES[size]
    raise ValueError(
        f"unknown SynthPhrase size {size!r}; known sizes: {sorted(SYNTHPHRASE_SIZES)} "
        "(or pass a SynthPhraseConfig)"
    )

