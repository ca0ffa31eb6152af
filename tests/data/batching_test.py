"""The one padding/bucketing rule (kerasadml.data.batching), against plain numpy, and as
``ADML.embed_audio`` / ``embed_text`` apply it (a tiny ADML)."""

import numpy as np
import pytest

from kerasadml.data.batching import (
    TEXT_BUCKET,
    bucket_width,
    check_buckets,
    pad_audio,
    pad_audio_batches,
    pad_id_batches,
    pad_ids,
)
from kerasadml.data.speech.phonemizer import PhonemizerError
from kerasadml.zoo import ADML
from tests.helpers import ADML_TINY, record_predict_batches

AUDIO_BUCKETS = (16000, 24000, 32000)


def test_bucket_width_crop_and_extend():
    buckets = (16000, 24000, 32000)
    assert bucket_width(1, buckets) == 16000
    assert bucket_width(16000, buckets) == 16000
    assert bucket_width(16001, buckets) == 24000
    assert bucket_width(40000, buckets, "crop") == 32000
    assert bucket_width(40000, buckets, "extend") == 64000  # next multiple of the largest
    with pytest.raises(ValueError, match="beyond"):
        bucket_width(1, buckets, "pad")
    assert check_buckets([24000, 16000, 16000]) == (16000, 24000)
    with pytest.raises(ValueError, match="audio_buckets must be positive"):
        check_buckets([0, 8], "audio_buckets")


def test_pad_audio_keeps_samples_and_lengths():
    rng = np.random.default_rng(0)
    waves = [rng.normal(size=n).astype("float32") for n in (500, 40000, 20000)]
    audio, lengths = pad_audio(waves, (16000, 24000, 32000), "extend")
    assert audio.shape == (3, 64000) and audio.dtype == np.float32
    assert lengths.tolist() == [500, 40000, 20000]
    for row, wave in zip(audio, waves):
        np.testing.assert_array_equal(row[: wave.size], wave)
        assert not row[wave.size:].any()
    cropped, lengths = pad_audio(waves, (16000, 24000, 32000), "crop")
    assert cropped.shape == (3, 32000) and lengths.tolist() == [500, 32000, 20000]
    np.testing.assert_array_equal(cropped[1], waves[1][:32000])


def test_pad_ids_zero_pads():
    out = pad_ids([[3, 4, 5], [7]], (8, 16))
    assert out.dtype == np.int32 and out.shape == (2, 8)
    assert out[0, :3].tolist() == [3, 4, 5] and out[1].tolist() == [7] + [0] * 7


def test_inference_batches_have_a_fixed_size_and_never_crop():
    waves = [np.ones(n, np.float32) for n in (500, 40000, 20000)]
    batches = list(pad_audio_batches(waves, batch_size=2))
    (first, valid1), (second, valid2) = batches
    assert (valid1, valid2) == (2, 1)
    assert first["audio"].shape == (2, 48000) and first["audio_length"].tolist() == [500, 40000]
    assert second["audio"].shape == (2, 32000)  # filled up to batch_size with a copy
    assert second["audio_length"].tolist() == [20000, 20000]
    single = list(pad_audio_batches(waves[:1], batch_size=4))
    assert single[0][0]["audio"].shape == (1, 16000) and single[0][1] == 1  # smaller than a batch
    ids = list(pad_id_batches([[1] * 9, [2]], batch_size=8))
    assert ids[0][0].shape == (2, 16) and ids[0][1] == 2


# Was test_audio_dataset_from_waves_never_crops (make_audio_dataset, removed in c12122a).
def test_audio_batches_from_waves_never_crop(monkeypatch):
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.normal(size=n).astype("float32") for n in (500, 40000, 20000)]
    (first, valid1), (second, valid2) = pad_audio_batches(waves, batch_size=2, buckets=AUDIO_BUCKETS)
    assert first["audio"].shape == (2, 64000)  # beyond the largest bucket: next multiple of it
    assert first["audio_length"].tolist() == [500, 40000] and valid1 == 2
    assert second["audio"].shape == (2, 24000) and valid2 == 1
    # ADML.embed_audio feeds its network the same way (1 s buckets): the 2.5 s clip whole.
    model = ADML(**ADML_TINY)
    batches = record_predict_batches(model, monkeypatch)
    embeddings = model.embed_audio(waves, batch_size=2)
    assert embeddings.shape == (3, model.embedding_dim)
    assert [b["audio"].shape for b in batches] == [(2, 48000), (2, 32000)]
    assert [b["audio_length"].tolist() for b in batches] == [[500, 40000], [20000, 20000]]
    for wave, row in zip(waves, batches[0]["audio"]):
        np.testing.assert_array_equal(row[: wave.size], wave)
        assert not row[wave.size :].any()


# Was test_text_batches (make_text_batches, removed in c12122a): batches in order, each
# text's own phonemes, each distinct text encoded once.
def test_text_batches_from_embed_text(monkeypatch):
    texts = ["friend", "the river", "every morning", "friend", "trend"]
    model = ADML(**ADML_TINY)
    distinct = ["friend", "the river", "every morning", "trend"]
    encoded = [model.encode_text(t) for t in distinct]
    batches = list(pad_id_batches(encoded, batch_size=3))
    assert [valid for _, valid in batches] == [3, 1]
    assert all(ids.shape[0] == 3 for ids, _ in batches)  # the last filled up with a copy
    calls = []
    real_encode = model.encode_text
    monkeypatch.setattr(model, "encode_text", lambda t: calls.append(t) or real_encode(t))
    recorded = record_predict_batches(model, monkeypatch)
    embeddings = model.embed_text(texts, batch_size=2)
    assert calls == distinct  # once per distinct text, in first-seen order
    assert embeddings.shape == (5, model.embedding_dim)
    np.testing.assert_array_equal(embeddings[0], embeddings[3])  # the repeat shares its row
    alone = model.embed_text(["trend"])
    np.testing.assert_allclose(embeddings[4], alone[0], rtol=1e-5, atol=1e-6)
    assert [b["phonemes"].shape[0] for b in recorded] == [2, 2, 1]
    rows = [row for b in recorded[:2] for row in b["phonemes"]]
    for ids, row in zip(encoded, rows):  # in order, each text's own phonemes, zero-padded
        assert row[: len(ids)].tolist() == list(ids) and not row[len(ids) :].any()
    for b in recorded:  # the smallest multiple of TEXT_BUCKET that holds the batch
        longest = max(int(np.count_nonzero(row)) for row in b["phonemes"])
        assert b["phonemes"].shape[1] == bucket_width(longest, (TEXT_BUCKET,))
    with pytest.raises(PhonemizerError, match=r"'\?!'"):  # no phonemes: the text is named
        model.embed_text(["friend", "?!"])
