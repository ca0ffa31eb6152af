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

from kerasadml.data.kws_dataset import (
    KWSDatasetInfo,
    make_audio_dataset,
    make_kws_training_dataset,
    make_text_batches,
)
from kerasadml.data.libriphrase import read_libriphrase_csv, training_items
from kerasadml.data.phonemizer import PhonemeVocabulary, Phonemizer
from kerasadml.data.synthphrase import build_synthphrase

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "libriphrase"
AUDIO_BUCKETS = (16000, 24000, 32000)
PHONEME_BUCKETS = (8, 16, 32)


@pytest.fixture(scope="module")
def encode():
    phonemizer, vocabulary = Phonemizer(), PhonemeVocabulary()
    return lambda text: vocabulary.encode(phonemizer.phonemize(text))


@pytest.fixture(scope="module")
def synth_items(tmp_path_factory):
    out = tmp_path_factory.mktemp("kws") / "tiny"
    build_synthphrase(out, size="tiny", seed=0, progress=False)
    return training_items(read_libriphrase_csv(out / "synthphrase_train.csv"))


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
    with caplog.at_level(logging.WARNING, logger="kerasadml.data.kws_dataset"):
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


def test_audio_dataset_in_order_with_skips(fixture_items):
    dataset, loaded = make_audio_dataset(fixture_items.paths, batch_size=3)
    names = [Path(fixture_items.paths[i]).name for i in loaded]
    assert len(loaded) == 8 and loaded == sorted(loaded)
    assert "106_0001_1word_0.wav" not in names and "107_0001_1word_0.wav" not in names
    batches = _batches(dataset, 10)
    assert [b["audio"].shape[0] for b in batches] == [3, 3, 2]
    from kerasadml.data.audio_io import load_audio

    rows = [row[:n] for b in batches for row, n in zip(b["audio"], b["audio_length"])]
    for i, row in zip(loaded, rows):
        np.testing.assert_array_equal(row, load_audio(fixture_items.paths[i]))
    assert all(b["audio"].shape[1] == 16000 for b in batches)


def test_audio_dataset_from_waves_never_crops():
    waves = [np.ones(500, np.float32), np.ones(40000, np.float32), np.ones(20000, np.float32)]
    dataset, loaded = make_audio_dataset(waves, batch_size=2, audio_buckets=AUDIO_BUCKETS)
    assert loaded == [0, 1, 2]
    first, second = _batches(dataset, 5)
    assert first["audio"].shape == (2, 64000)  # beyond the largest bucket: next multiple of it
    assert first["audio_length"].tolist() == [500, 40000]
    assert second["audio"].shape == (1, 24000)


def test_text_batches(encode):
    texts = ["friend", "the river", "every morning", "friend", "trend"]
    batches = _batches(make_text_batches(texts, encode, batch_size=2), 5)
    assert [b["phonemes"].shape[0] for b in batches] == [2, 2, 1]
    rows = [r for b in batches for r in b["phonemes"]]
    for text, row in zip(texts, rows):
        expected = encode(text)
        assert row[: len(expected)].tolist() == list(expected) and not row[len(expected):].any()
        assert row.shape[0] in PHONEME_BUCKETS
    counts = collections.Counter()

    def counting(text):
        counts[text] += 1
        return encode(text)

    list(make_text_batches(texts, counting).as_numpy_iterator())
    assert counts["friend"] == 1  # once per distinct text
    with pytest.raises(ValueError, match="zzzz"):
        make_text_batches(["zzzz"], lambda t: [])
