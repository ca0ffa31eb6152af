"""SynthPhrase builder: LibriPhrase format, open-vocabulary and voice-disjoint splits, the
LibriPhrase pair rules, determinism and resume. One tiny build per session (a few seconds)."""

from __future__ import annotations

import collections
import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from kerasadml.data.speech.libriphrase import (
    LIBRIPHRASE_COLUMNS,
    read_libriphrase_csv,
    training_items,
)
from kerasadml.data.speech.synthphrase import (
    CONFIG_JSON,
    FORMAT_VERSION,
    SYNTHPHRASE_SIZES,
    SynthPhraseConfig,
    build_synthphrase,
    hard_negatives,
    levenshtein,
    phoneme_sequence,
    word_pool,
    word_splits,
)
from kerasadml.data.speech.synthphrase.vocabulary import (
    _cmu,
    _distance_one_share,
    _levenshtein_to_many,
    _plan_vocabulary,
)
from kerasadml.data.speech.synthphrase.voices import _plan_voices, _variant_family

SPLITS = ("train", "test")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthphrase") / "tiny"
    summary = build_synthphrase(out, size="tiny", seed=0, progress=False)
    return out, summary


def _rows(out: Path, split: str) -> list[dict]:
    with open(out / f"synthphrase_{split}.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reference_distance(a, b) -> int:
    """Independent edit distance (full DP table)."""
    table = np.zeros((len(a) + 1, len(b) + 1), int)
    table[:, 0] = np.arange(len(a) + 1)
    table[0, :] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i, j] = min(table[i - 1, j] + 1, table[i, j - 1] + 1, table[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return int(table[-1, -1])


def _phones(text: str) -> tuple:
    """Reference phonemes straight from the CMU dictionary (first pronunciation, stress
    removed); the dictionary object is the one already loaded by the module under test."""
    return tuple(p.rstrip("012") for w in text.split() for p in _cmu()[w][0])


def test_summary_and_files(built):
    out, summary = built
    cfg = SYNTHPHRASE_SIZES["tiny"]
    assert summary["clips"] == {"train": 16 * 4, "test": 8 * 4}
    assert summary["keywords"] == {"train": cfg.train_keywords, "test": cfg.test_keywords}
    assert summary["skipped"]["clips"] == 0 and summary["skipped"]["dropped_keywords"] == 0
    assert summary["written"] == 96 and summary["reused"] == 0
    assert summary["hours"]["total"] > 0 and summary["seconds"] > 0
    assert json.loads((out / "summary.json").read_text())["clips"] == summary["clips"]
    for split in SPLITS:
        assert len(list((out / split).glob("*.wav"))) == summary["clips"][split]
    assert not list(out.rglob("*.tmp"))


def test_csv_columns_and_values(built):
    out, _ = built
    for split in SPLITS:
        with open(out / f"synthphrase_{split}.csv", newline="") as handle:
            assert tuple(next(csv.reader(handle))) == LIBRIPHRASE_COLUMNS
        rows = _rows(out, split)
        assert rows
        for row in rows:
            assert row["type"] in {"diffspk_positive", "diffspk_easyneg", "diffspk_hardneg"}
            assert row["target"] == ("1" if row["type"] == "diffspk_positive" else "0")
            assert int(row["class"]) == len(row["anchor_text"].split())  # LibriPhrase: word count
            assert row["anchor"].startswith(f"{split}/") and not os.path.isabs(row["anchor"])
            assert row["anchor_spk"] != row["comparison_spk"]  # diffspk
            assert (row["anchor_text"] == row["comparison_text"]) == (row["target"] == "1")
        for rel, dur in {(r["anchor"], r["anchor_dur"]) for r in rows}:
            info = soundfile.info(str(out / rel))
            assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
            assert abs(info.frames / 16000 - float(dur)) < 1e-4
            assert 0.5 <= float(dur) <= 2.0


def test_reader_reads_synthphrase(built):
    out, _ = built
    rows = read_libriphrase_csv(out / "synthphrase_train.csv")
    items = training_items(rows)
    assert len(items) == 64 and items.num_classes == 16
    speakers = collections.defaultdict(set)
    for text, speaker in zip(items.texts, items.speakers):
        speakers[text].add(speaker)
    assert min(len(s) for s in speakers.values()) >= 4  # LibriPhrase: one speaker + 3 others
    assert all(os.path.isfile(p) for p in items.paths)


def test_keywords_words_and_voices_are_disjoint(built):
    out, _ = built
    texts = {s: {r["anchor_text"] for r in _rows(out, s)} for s in SPLITS}
    words = {s: {w for t in texts[s] for w in t.split()} for s in SPLITS}
    speakers = {s: {r["anchor_spk"] for r in _rows(out, s)} for s in SPLITS}
    variants = {s: {k.split("_")[1] for k in speakers[s]} for s in SPLITS}
    assert not texts["train"] & texts["test"]
    assert not words["train"] & words["test"]
    assert not speakers["train"] & speakers["test"]
    assert not variants["train"] & variants["test"]
    for split in SPLITS:
        assert all(1 <= len(t.split()) <= 4 for t in texts[split])
        assert all(w.isalpha() and 3 <= len(w) <= 10 for w in words[split])
        # no two keywords of a split sound the same
        assert len({_phones(t) for t in texts[split]}) == len(texts[split])


def test_pairs_follow_the_libriphrase_rules(built):
    out, _ = built
    for split in SPLITS:
        rows = _rows(out, split)
        texts = sorted({r["anchor_text"] for r in rows})
        per_anchor = collections.defaultdict(collections.Counter)
        hard = collections.defaultdict(set)
        for row in rows:
            per_anchor[row["anchor"]][row["type"]] += 1
            if row["type"] == "diffspk_hardneg":
                hard[row["anchor_text"]].add(row["comparison_text"])
        for counts in per_anchor.values():
            assert counts == {"diffspk_positive": 3, "diffspk_easyneg": 3, "diffspk_hardneg": 3}
        for anchor_text, negatives in hard.items():
            words = len(anchor_text.split())
            same_count = [t for t in texts if t != anchor_text and len(t.split()) == words]
            distance = {t: _reference_distance(_phones(anchor_text), _phones(t)) for t in same_count}
            for negative in negatives:
                assert len(negative.split()) == words
                assert 0 < distance[negative] <= 5 * (words + 2)
            # they are the nearest ones
            worst_chosen = max(distance[n] for n in negatives)
            assert all(distance[t] >= worst_chosen for t in same_count if t not in negatives)
        for row in rows:  # easy negatives are never one of the anchor's hard negatives
            if row["type"] == "diffspk_easyneg":
                assert row["comparison_text"] not in hard[row["anchor_text"]]


def test_deterministic_for_a_seed_whatever_the_workers(built, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    build_synthphrase(again, size="tiny", seed=0, progress=False, workers=2)
    for name in ("synthphrase_train.csv", "synthphrase_test.csv"):
        assert (out / name).read_bytes() == (again / name).read_bytes()
    wavs = sorted(p.relative_to(out) for p in out.rglob("*.wav"))
    assert wavs == sorted(p.relative_to(again) for p in again.rglob("*.wav"))
    for rel in wavs:
        assert _digest(out / rel) == _digest(again / rel), rel


def test_resume_recreates_only_missing_clips(built, tmp_path):
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    wavs = sorted(copy.rglob("*.wav"))
    victim = wavs[5]
    digest = _digest(victim)
    victim.unlink()
    (copy / "synthphrase_test.csv").unlink()
    before = {p: p.stat().st_mtime_ns for p in wavs if p != victim}
    summary = build_synthphrase(copy, size="tiny", seed=0, progress=False)
    assert summary["written"] == 1 and summary["reused"] == 95
    assert _digest(victim) == digest
    assert {p: p.stat().st_mtime_ns for p in wavs if p != victim} == before
    for name in ("synthphrase_train.csv", "synthphrase_test.csv"):
        assert (copy / name).read_bytes() == (out / name).read_bytes()


def test_other_settings_in_the_same_folder_are_refused(built):
    out, _ = built
    with pytest.raises(ValueError, match="other settings"):
        build_synthphrase(out, size="tiny", seed=1, progress=False)


def test_config_validation_and_sizes():
    assert set(SYNTHPHRASE_SIZES) == {"tiny", "small", "medium", "large"}
    with pytest.raises(ValueError, match="voices_per_keyword"):
        SynthPhraseConfig(train_keywords=4, test_keywords=4, voices_per_keyword=3, train_voices=8, test_voices=8)
    with pytest.raises(ValueError, match="tiny"):
        build_synthphrase("/nonexistent", size="huge")


def test_custom_config(tmp_path):
    cfg = SynthPhraseConfig(
        train_keywords=5, test_keywords=4, voices_per_keyword=4, train_voices=5, test_voices=4,
        word_count_weights=(1.0,), positives_per_anchor=2, easy_negatives=1, hard_negatives=2,
    )
    summary = build_synthphrase(tmp_path / "custom", size=cfg, seed=3, progress=False)
    assert summary["size"] == "custom" and summary["clips"] == {"train": 20, "test": 16}
    counts = collections.Counter(r["type"] for r in _rows(tmp_path / "custom", "train"))
    assert counts == {"diffspk_positive": 40, "diffspk_easyneg": 20, "diffspk_hardneg": 40}


def test_levenshtein_against_reference():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(0, 4, size=rng.integers(1, 9)).tolist()
        b = rng.integers(0, 4, size=rng.integers(1, 9)).tolist()
        assert levenshtein(a, b) == _reference_distance(a, b)
    query = rng.integers(0, 5, size=6)
    candidates = rng.integers(0, 5, size=(40, 7))
    np.testing.assert_array_equal(
        _levenshtein_to_many(query, candidates), [_reference_distance(query, c) for c in candidates]
    )


def test_hard_negatives_match_brute_force():
    pool = word_pool()
    rng = np.random.default_rng(1)
    texts = [pool[i][0] for i in rng.choice(len(pool), 60, replace=False)]
    texts += [" ".join(pool[i][0] for i in rng.choice(len(pool), 2, replace=False)) for _ in range(20)]
    result = hard_negatives(texts, k=3)
    for text in texts:
        words = len(text.split())
        brute = sorted(
            (d, j)
            for j, other in enumerate(texts)
            if other != text and len(other.split()) == words
            for d in [_reference_distance(_phones(text), _phones(other))]
            if 0 < d <= 5 * (words + 2)
        )[:3]
        assert result[text] == [(texts[j], d) for d, j in brute]
    assert phoneme_sequence("the river") == ("DH", "AH", "R", "IH", "V", "ER")
    with pytest.raises(ValueError, match="qwxz"):
        phoneme_sequence("qwxz")


# ---------------------------------------------------------------------- SynthPhrase v2
def test_sizes_v2():
    """large: >= 2,000 training keywords, >= 150 voices, >= 40,000 clips; medium between
    small and large; tiny and small keep their v1 sizes (tests and the demo)."""
    clips = {
        name: (cfg.train_keywords + cfg.test_keywords) * cfg.voices_per_keyword
        for name, cfg in SYNTHPHRASE_SIZES.items()
    }
    assert clips["tiny"] == 96 and clips["small"] == 3000
    assert clips["small"] < clips["medium"] < clips["large"] and clips["large"] >= 40_000
    large = SYNTHPHRASE_SIZES["large"]
    assert large.train_keywords >= 2000
    pools, variants = _plan_voices(large, 0)
    assert len(pools["train"]) + len(pools["test"]) >= 150
    assert not set(pools["train"]) & set(pools["test"])
    assert not set(variants["train"]) & set(variants["test"])
    # versions of one voice are on one side; every klatt variant is used
    families = {s: {_variant_family(v) for v in variants[s]} for s in ("train", "test")}
    assert not families["train"] & families["test"]
    every = set(variants["train"]) | set(variants["test"])
    assert {"klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "", "m1", "f5"} <= every


def test_summary_v2(built):
    out, summary = built
    assert summary["format_version"] == FORMAT_VERSION == 3
    assert summary["voices_total"] == summary["voices"]["train"] + summary["voices"]["test"] == 20
    for split in SPLITS:
        assert summary["voice_bins"][split] >= summary["voices"][split]
        shares = summary["hard_negative_distance"][split]
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3) and "1" in shares
    assert summary["clips_per_second"] > 0
    # speaker ids are accent_variant and the file names carry them
    for row in _rows(out, "train"):
        accent, variant = row["anchor_spk"].split("_")
        assert row["anchor"].endswith(f"_{accent}_{variant}.wav")


def test_clips_are_augmented_and_bounded(built):
    out, _ = built
    levels = []
    for path in sorted((out / "train").glob("*.wav"))[:30]:
        wave, rate = soundfile.read(path, dtype="float32")
        assert rate == 16000 and np.all(np.isfinite(wave)) and np.max(np.abs(wave)) <= 1.0
        levels.append(20 * np.log10(np.sqrt(np.mean(wave**2))))
    assert np.ptp(levels) > 6  # random gains, volumes and voices: not one level


def test_an_older_format_folder_is_refused(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / CONFIG_JSON).write_text(json.dumps({"format_version": 1, "seed": 0, "config": {}}))
    with pytest.raises(ValueError, match="format version 1.*will not mix"):
        build_synthphrase(folder, size="tiny", progress=False)


def test_hard_negatives_at_distance_one_as_often_in_test_as_in_train():
    """v1: 41 % in train, 19 % in test (small). Planned keywords only (no synthesis)."""
    cfg = SYNTHPHRASE_SIZES["small"]
    plan, words = _plan_vocabulary(cfg, 0)
    assert not {w for w, _ in words["train"]} & {w for w, _ in words["test"]}
    shares = {split: _distance_one_share(plan[split], cfg.hard_negatives) for split in SPLITS}
    assert shares["test"] > 0.3 and abs(shares["train"] - shares["test"]) < 0.05, shares


def test_word_split_does_not_depend_on_the_size():
    """The demo scores presets trained on ``large`` on ``small``'s test split: no test word
    of one size may be a train word of another (format 2 let 563 of small's 956 test words
    into large's train split)."""
    planned = {size: _plan_vocabulary(SYNTHPHRASE_SIZES[size], 0)[0] for size in ("small", "large")}

    def words(texts):
        return {w for text in texts for w in text.split()}

    for test_size in planned:
        for train_size in planned:
            assert not words(planned[test_size]["test"]) & words(planned[train_size]["train"]), (test_size, train_size)
    splits = word_splits(0)
    assert all(splits[w] == "test" for w in words(planned["small"]["test"]))
    share = sum(v == "test" for v in splits.values()) / len(splits)
    assert 0.28 < share < 0.35, share
    assert word_splits(1) != splits  # another seed, another split
