"""tf.data builders for keyword spotting, on a tiny SynthPhrase build and the LibriPhrase
fixture (which has a missing and a corrupt clip); the training batches feed ``model.fit``
on the active backend."""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasadml.data.sampling import ClassBalancedSampler
from kerasadml.data.speech.dataset import KWSDatasetInfo, make_kws_training_dataset
from kerasadml.data.speech.libriphrase import hard_negative_map, read_libriphrase_csv, training_items
from kerasadml.data.speech.phonemizer import PhonemeVocabulary, Phonemizer
from kerasadml.data.speech.synthphrase import build_synthphrase

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "libriphrase"
AUDIO_BUCKETS = (16000, 24000, 32000)
PHONEME_BUCKETS = (8, 16, 32)


@pytest.fixture(scope="module")
def encode():
    phonemizer, vocabulary = Phonemizer(), PhonemeVocabulary()
    return lambda text: vocabulary.encode(phonemizer.phonemize(text))


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("kws") / "tiny"
    build_synthphrase(out, size="tiny", seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def synth_items(synth_dir):
    return training_items(read_libriphrase_csv(synth_dir / "synthphrase_train.csv"))


@pytest.fixture(scope="module")
def fixture_items():
    return training_items(read_libriphrase_csv(FIXTURE))


def _batches(dataset, n):
    return [{k: np.asarray(v) for k, v in batch.items()} for batch in dataset.take(n).as_numpy_iterator()]


def _check_batch(batch, items, encode, k, m):
    b = k * m
    assert batch["audio"].dtype == np.float32 and batch["audio"].shape[0] == b
    assert batch["audio"].shape[1] in AUDIO_BUCKETS
    assert batch["audio_length"].dtype == np.int32 and batch["audio_length"].shape == (b,)
    assert batch["phonemes"].dtype == np.int32 and batch["phonemes"].shape[0] == b
    assert batch["phonemes"].shape[1] in PHONEME_BUCKETS
    assert batch["label"].dtype == np.int32 and batch["label"].shape == (b,)
    width = batch["audio"].shape[1]
    longest = int(batch["audio_length"].max())
    assert longest <= width
    assert width == min(s for s in AUDIO_BUCKETS if s >= longest)  # the smallest bucket that fits
    for row, length in enumerate(batch["audio_length"]):
        assert np.all(batch["audio"][row, length:] == 0)
        assert np.any(batch["audio"][row, :length] != 0)
    # K distinct keywords x M rows each, grouped
    labels = batch["label"].reshape(k, m)
    assert (labels == labels[:, :1]).all()
    assert len(set(labels[:, 0].tolist())) == k
    # each row carries its own keyword's phonemes
    for row, label in enumerate(batch["label"]):
        expected = encode(items.class_texts[label])
        got = batch["phonemes"][row]
        assert got[: len(expected)].tolist() == list(expected)
        assert np.all(got[len(expected):] == 0)


def test_training_batches_cached(synth_items, encode):
    dataset, info = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, encode_text=encode,
        keywords_per_batch=4, clips_per_keyword=3, seed=0,
    )
    assert isinstance(info, KWSDatasetInfo)
    assert info.cached and info.skipped == 0
    assert info.num_clips == 64 and info.num_keywords == 16 and info.batch_size == 12
    assert info.steps_per_epoch == 6  # ceil(64 / 12)
    batches = _batches(dataset, 8)
    for batch in batches:
        _check_batch(batch, synth_items, encode, 4, 3)
    # keywords come in shuffled rounds: the first 4 batches cover all 16 keywords once
    first_round = np.concatenate([b["label"][::3] for b in batches[:4]])
    assert sorted(first_round.tolist()) == list(range(16))


def test_streaming_matches_cache(synth_items, encode):
    kwargs = {"encode_text": encode, "keywords_per_batch": 4, "clips_per_keyword": 2, "seed": 3}
    cached, _ = make_kws_training_dataset(synth_items.paths, synth_items.texts, synth_items.labels, **kwargs)
    streamed, info = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, cache_audio=False, **kwargs
    )
    assert not info.cached and info.num_clips == 64
    for a, b in zip(_batches(cached, 3), _batches(streamed, 3)):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_cache_limit_falls_back_to_streaming(synth_items, encode):
    _, info = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, encode_text=encode,
        keywords_per_batch=4, clips_per_keyword=2, max_cache_mb=0.01,
    )
    assert not info.cached and info.cache_mb == 0.0


def test_steps_per_epoch_and_seed(synth_items, encode):
    def labels_of(dataset):
        return [b["label"].tolist() for b in _batches(dataset, 10)]

    kwargs = {"encode_text": encode, "keywords_per_batch": 4, "clips_per_keyword": 2}
    dataset, info = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, steps_per_epoch=3, seed=1, **kwargs
    )
    assert info.steps_per_epoch == 3
    epoch1, epoch2 = labels_of(dataset), labels_of(dataset)
    assert len(epoch1) == 3 and epoch1 != epoch2  # a new draw each pass
    again, _ = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, steps_per_epoch=3, seed=1, **kwargs
    )
    assert labels_of(again) == epoch1  # reproducible from the seed


@pytest.mark.parametrize("cache_audio", [True, False])
def test_bad_clips_are_skipped_and_counted(fixture_items, encode, cache_audio, caplog):
    with caplog.at_level(logging.WARNING, logger="kerasadml.data.speech.dataset"):
        dataset, info = make_kws_training_dataset(
            fixture_items.paths, fixture_items.texts, fixture_items.labels, encode_text=encode,
            keywords_per_batch=2, clips_per_keyword=3, cache_audio=cache_audio,
        )
    if cache_audio:
        assert info.skipped == 2 and info.num_clips == 8  # the missing and the corrupt clip
        assert any("107_0001" in e for e in info.skipped_examples)
    else:  # only the missing file is known up front; the corrupt one is replaced when read
        assert info.skipped == 1 and info.num_clips == 9
    assert any("106_0001" in e for e in info.skipped_examples)
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 1  # logged once
    assert info.num_keywords == 6
    for batch in _batches(dataset, 6):  # "guard" has one clip, others two: with replacement
        _check_batch(batch, fixture_items, encode, 2, 3)
    if not cache_audio:
        assert info.decode_failures <= 1


def test_rejects_bad_inputs(synth_items, encode):
    with pytest.raises(ValueError, match="differ in length"):
        make_kws_training_dataset(synth_items.paths[:3], synth_items.texts, synth_items.labels, encode_text=encode)
    with pytest.raises(ValueError, match="keywords_per_batch=32"):
        make_kws_training_dataset(
            synth_items.paths, synth_items.texts, synth_items.labels, encode_text=encode, keywords_per_batch=32
        )
    texts = list(synth_items.texts)
    texts[1] = "something else"
    with pytest.raises(ValueError, match="two texts"):
        make_kws_training_dataset(synth_items.paths, texts, synth_items.labels, encode_text=encode)


def test_text_that_cannot_be_encoded_is_skipped(synth_items, encode):
    bad_text = synth_items.texts[0]

    def picky(text):
        if text == bad_text:
            raise ValueError("no phonemes")
        return encode(text)

    _, info = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, encode_text=picky, keywords_per_batch=4
    )
    assert info.skipped == 4 and info.num_keywords == 15
    assert bad_text in info.skipped_examples[0]


def test_long_clips_are_cropped_to_the_largest_bucket(synth_items, encode):
    dataset, _ = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, encode_text=encode,
        keywords_per_batch=4, clips_per_keyword=2, audio_buckets=(4000, 6000), phoneme_buckets=(4,),
    )
    for batch in _batches(dataset, 3):
        assert batch["audio"].shape[1] == 6000 and batch["audio_length"].max() == 6000
        assert batch["phonemes"].shape[1] == 4


def test_fit_on_training_batches(synth_items, encode):
    dataset, _ = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, encode_text=encode,
        keywords_per_batch=4, clips_per_keyword=2,
    )
    audio = keras.Input(shape=(None,), name="audio")
    lengths = keras.Input(shape=(), dtype="int32", name="audio_length")
    mean = keras.layers.Lambda(
        lambda t: keras.ops.sum(t[0], axis=1, keepdims=True)
        / keras.ops.expand_dims(keras.ops.cast(t[1], "float32"), 1)
    )([audio, lengths])
    logits = keras.layers.Dense(synth_items.num_classes)(mean)
    model = keras.Model({"audio": audio, "audio_length": lengths}, logits)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs = dataset.map(lambda b: ({"audio": b["audio"], "audio_length": b["audio_length"]}, b["label"]))
    history = model.fit(inputs, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


# ------------------------------------------------------- keyword families, length grouping
class _RecordingSampler(ClassBalancedSampler):
    """Records every shuffled round, the keywords still queued when it was drawn, and
    every keyword taken from the queue (a seed) together with the batch it went to."""

    class _Queue(list):
        def __init__(self, items, popped):
            super().__init__(items)
            self.popped = popped

        def pop(self, index=-1):
            value = super().pop(index)
            self.popped.append(value)
            return value

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rounds, self.popped = [], []

    def _round(self, pending):
        order = super()._round(pending)
        self.rounds.append((sorted(pending), list(order)))
        return order

    def _refill(self):
        super()._refill()
        self.queue = self._Queue(self.queue, self.popped)


def _family_groups(num_keywords=10, clips=3):
    groups = [np.arange(g * clips, (g + 1) * clips, dtype=np.int64) for g in range(num_keywords)]
    # families of 3 (0-1-2, 3-4-5, 6-7-8) plus a pair link 8-9
    near = {g: set() for g in range(num_keywords)}
    for family in ((0, 1, 2), (3, 4, 5), (6, 7, 8), (8, 9)):
        for a in family:
            near[a] |= set(family) - {a}
    neighbours = [np.asarray(sorted(near[g]), np.int64) for g in range(num_keywords)]
    return groups, neighbours


@pytest.mark.parametrize("with_lengths", [False, True])
def test_sampler_families_keep_every_keyword_once_per_round(with_lengths):
    groups, neighbours = _family_groups()
    lengths = np.linspace(8000, 9000, 10) if with_lengths else None
    clip_lengths = np.repeat(lengths, 3) if with_lengths else None
    k, m = 4, 2
    sampler = _RecordingSampler(
        groups, k, m, np.random.default_rng(0), neighbours=neighbours, family_size=3, lengths=lengths,
        clip_lengths=clip_lengths,
    )
    batches, seeds_per_batch = [], []
    for _ in range(40):
        before = len(sampler.popped)
        rows, keywords = sampler.next_batch()
        seeds_per_batch.append(sampler.popped[before:])
        chosen = keywords[::m].tolist()
        # K distinct keywords x M clips of their own keyword each, grouped
        assert len(rows) == k * m and len(set(chosen)) == k
        np.testing.assert_array_equal(keywords, np.repeat(chosen, m))
        for row, g in zip(rows, keywords):
            assert row in groups[g]
        batches.append(chosen)
        # at least one family in the batch: a keyword with one of its hard negatives
        assert any(b in neighbours[a] for a in chosen for b in chosen), chosen
    # every round is a permutation of the keywords not already queued ...
    for pending, order in sampler.rounds:
        assert sorted(pending + order) == list(range(10))
    # ... and is consumed in order, each turn landing in the batch it was taken for
    flat = [g for _, order in sampler.rounds for g in order]
    assert sampler.popped == flat[: len(sampler.popped)]
    assert len(sampler.rounds) >= 5
    for chosen, seeds in zip(batches, seeds_per_batch):
        assert set(seeds) <= set(chosen)
    # so each keyword appears in the batches of every round (its turn may fall in the
    # previous round's tail: the keywords still queued are left out of the next round)
    for i, (pending, order) in enumerate(sampler.rounds):
        start = sum(len(o) for _, o in sampler.rounds[:i])
        if start + len(order) > len(sampler.popped):
            break
        assert set(sampler.popped[start - len(pending) : start + len(order)]) == set(range(10))
    counts = collections.Counter(sampler.popped)
    assert set(counts) == set(range(10)) and min(counts.values()) >= 5


def test_sampler_without_neighbours_ignores_family_size():
    groups, _ = _family_groups()
    plain = ClassBalancedSampler(groups, 4, 2, np.random.default_rng(3))
    family_off = ClassBalancedSampler(groups, 4, 2, np.random.default_rng(3), neighbours=None, family_size=3)
    assert family_off.family_size == 1
    for _ in range(6):
        a, b = plain.next_batch(), family_off.next_batch()
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_sampler_length_grouping_keeps_rounds_and_shortens_batches():
    rng = np.random.default_rng(0)
    num, clips, k, m = 24, 3, 4, 2
    groups = [np.arange(g * clips, (g + 1) * clips, dtype=np.int64) for g in range(num)]
    lengths = rng.uniform(2000, 32000, size=num)
    clip_lengths = np.repeat(lengths, clips) * rng.uniform(0.9, 1.1, size=num * clips)

    def spread(sampler, batches=60):
        """(keywords, padded fraction) of each batch, padded to its longest clip."""
        for _ in range(batches):
            rows, keywords = sampler.next_batch()
            width = clip_lengths[rows].max()
            yield keywords[::m], 1.0 - clip_lengths[rows].sum() / (len(rows) * width)

    grouped_sampler = ClassBalancedSampler(
        groups, k, m, np.random.default_rng(1), lengths=lengths, clip_lengths=clip_lengths
    )
    grouped = list(spread(grouped_sampler))
    plain = list(spread(ClassBalancedSampler(groups, k, m, np.random.default_rng(1))))
    first_round = np.concatenate([c for c, _ in grouped[: num // k]])
    assert sorted(first_round.tolist()) == list(range(num))
    padded_grouped = np.mean([p for _, p in grouped])
    padded_plain = np.mean([p for _, p in plain])
    assert padded_grouped < 0.5 * padded_plain, (padded_grouped, padded_plain)


def test_sampler_draws_short_clips_of_a_keyword_with_clip_lengths():
    # keyword 0 has 3 typical clips and one very long one; the batch limit is slack x
    # the longest typical length, so the long clip is never drawn while 3 short ones exist
    groups = [np.array([0, 1, 2, 3]), np.array([4, 5, 6]), np.array([7, 8, 9])]
    clip_lengths = np.array([1000, 1000, 1000, 30000, 1100, 1100, 1100, 900, 900, 900], float)
    lengths = np.array([1000.0, 1100.0, 900.0])
    sampler = ClassBalancedSampler(groups, 3, 3, np.random.default_rng(0), lengths=lengths, clip_lengths=clip_lengths)
    for _ in range(20):
        rows, _ = sampler.next_batch()
        assert 3 not in rows.tolist()
    # fewer than M short clips: all the keyword's clips are candidates again
    sampler = ClassBalancedSampler(groups, 3, 4, np.random.default_rng(0), lengths=lengths, clip_lengths=clip_lengths)
    drawn = set()
    for _ in range(30):
        drawn |= set(sampler.next_batch()[0].tolist())
    assert 3 in drawn


@pytest.fixture(scope="module")
def synth_hard_negatives(synth_dir):
    return hard_negative_map(read_libriphrase_csv(synth_dir / "synthphrase_train.csv"))


def test_family_batches_hold_hard_negative_pairs(synth_items, synth_hard_negatives, encode):
    near = synth_hard_negatives
    texts = synth_items.class_texts
    assert all(texts[label] in near for label in range(synth_items.num_classes))  # the data have them
    kwargs = dict(encode_text=encode, keywords_per_batch=4, clips_per_keyword=2, seed=0)
    dataset, info = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels,
        # texts that are not training keywords are ignored
        hard_negatives={**near, "not a keyword": [texts[0]], texts[0]: near[texts[0]] + ["not a keyword"]},
        family_size=3, **kwargs,
    )
    assert info.num_keywords == 16
    batches = _batches(dataset, 24)
    seen = collections.Counter()
    for batch in batches:
        _check_batch(batch, synth_items, encode, 4, 2)
        keywords = [texts[label] for label in batch["label"][::2]]
        seen.update(keywords)
        assert any(b in near[a] for a in keywords for b in keywords if a != b), keywords
    assert set(seen) == set(texts)  # every keyword is drawn
    # without families the same seed gives batches without that guarantee (sanity: it differs)
    plain, _ = make_kws_training_dataset(synth_items.paths, synth_items.texts, synth_items.labels, **kwargs)
    assert [b["label"].tolist() for b in _batches(plain, 6)] != [b["label"].tolist() for b in batches[:6]]


def test_family_and_grouped_batches_are_deterministic_per_seed(synth_items, synth_hard_negatives, encode):
    def labels_of(seed, **extra):
        dataset, _ = make_kws_training_dataset(
            synth_items.paths, synth_items.texts, synth_items.labels, encode_text=encode,
            keywords_per_batch=4, clips_per_keyword=2, seed=seed, steps_per_epoch=6, **extra,
        )
        return [(b["label"].tolist(), b["audio_length"].tolist()) for b in _batches(dataset, 6)]

    options = dict(hard_negatives=synth_hard_negatives, family_size=2, group_by_length=True)
    first = labels_of(5, **options)
    assert labels_of(5, **options) == first
    assert labels_of(6, **options) != first
    # streaming gives the same batches as the cache
    dataset, info = make_kws_training_dataset(
        synth_items.paths, synth_items.texts, synth_items.labels, encode_text=encode,
        keywords_per_batch=4, clips_per_keyword=2, seed=5, steps_per_epoch=6, cache_audio=False, **options,
    )
    assert not info.cached
    assert [(b["label"].tolist(), b["audio_length"].tolist()) for b in _batches(dataset, 6)] == first


def _write_mixed_length_corpus(folder, num_keywords=12, clips=2):
    """``num_keywords`` keywords in four length classes (0.2, 0.6, 1.2 and 2 s), two clips each."""
    from kerasadml.data.audio_io import write_wav_atomic

    rng = np.random.default_rng(0)
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()
    paths, texts, labels = [], [], []
    for g in range(num_keywords):
        samples = (3200, 9600, 19200, 32000)[g * 4 // num_keywords]
        for c in range(clips):
            n = int(samples * rng.uniform(0.95, 1.0))
            t = np.arange(n) / 16000.0
            wave = 0.3 * np.sin(2 * np.pi * (220 + 40 * g) * t) + 0.01 * rng.standard_normal(n)
            path = folder / f"{g:02d}_{c}.wav"
            write_wav_atomic(path, wave)
            paths.append(str(path))
            texts.append(words[g])
            labels.append(g)
    return paths, texts, np.asarray(labels)


def test_group_by_length_reduces_padding(tmp_path, encode):
    paths, texts, labels = _write_mixed_length_corpus(tmp_path)
    buckets = tuple(range(1600, 32001, 1600))

    def padded_fraction(group_by_length):
        dataset, _ = make_kws_training_dataset(
            paths, texts, labels, encode_text=encode, keywords_per_batch=3, clips_per_keyword=2,
            audio_buckets=buckets, seed=0, group_by_length=group_by_length,
        )
        batches = _batches(dataset, 24)
        seen = collections.Counter(int(label) for b in batches for label in b["label"][::2])
        assert set(seen) == set(range(12))
        first_round = np.concatenate([b["label"][::2] for b in batches[:4]])
        assert sorted(first_round.tolist()) == list(range(12))  # every keyword once per round
        for b in batches:
            assert len(set(b["label"][::2].tolist())) == 3
        return np.mean([1.0 - b["audio_length"].sum() / b["audio"].size for b in batches])

    grouped, plain = padded_fraction(True), padded_fraction(False)
    assert grouped < 0.5 * plain, (grouped, plain)
    assert grouped < 0.1
