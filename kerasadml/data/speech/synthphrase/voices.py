"""SynthPhrase's voices (speakers): the train/test voice pools, variant families and the
per-utterance prosody, and the babble utterances of a unit (see the package docstring,
"Voices").
"""

from __future__ import annotations

import re

import numpy as np

from kerasadml.data.speech.synthphrase.config import (
    _SPLIT_CODE,
    _STREAM_BABBLE,
    _STREAM_VOICES,
    SynthPhraseConfig,
)


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



def _voice_bin(voice: tuple) -> tuple:
    """``(accent, variant, pitch bin, rate bin)`` of a clip's voice tuple: pitch in bins of
    20 (0-19, ..., 80-100), rate in bins of 30 words/min (..., 150-179, 180-209, ...)."""
    accent, variant, rate, pitch = voice[:4]
    return accent, variant, min(int(pitch) // 20, 4), int(rate) // 30

