import logging
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasadml.data.av.dataset import (
    av_steps_per_epoch,
    default_classes_per_batch,
    make_av_dataset,
    make_av_eval_arrays,
)
from kerasadml.data.av.features import AVSplit, load_av_hdf5

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "av"


def make_split(per_class=(20, 20, 20, 20, 20), audio_dim=6, visual_dim=10, seed=0) -> AVSplit:
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    labels = rng.permutation(labels)
    audio = rng.normal(size=(len(labels), audio_dim)) + labels[:, None]
    visual = rng.normal(size=(len(labels), visual_dim)) - labels[:, None]
    # Column 0 of audio holds the row index, so a batch can be traced to its rows.
    audio[:, 0] = np.arange(len(labels))
    return AVSplit(audio, visual, labels)


def take(dataset, n):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(n)]


def test_class_balanced_batches_have_p_classes_times_q_and_fixed_shapes():
    split = make_split()
    dataset = make_av_dataset(split, batch_size=16)
    spec = dataset.element_spec
    assert spec["audio"].shape == (16, 6) and spec["visual"].shape == (16, 10)
    assert spec["label"].shape == (16,) and spec["label"].dtype.name == "int32"
    for batch in take(dataset, 12):
        counts = Counter(batch["label"].tolist())
        assert len(counts) == 4 and set(counts.values()) == {4}  # 16 = 4 classes x 4
        assert batch["audio"].dtype == np.float32 and batch["visual"].shape == (16, 10)
        rows = batch["audio"][:, 0].astype(int)
        np.testing.assert_array_equal(split.labels[rows], batch["label"])  # rows stay paired
        np.testing.assert_allclose(split.visual[rows], batch["visual"])
        assert len(set(rows.tolist())) == 16  # no repeats when classes are large enough


def test_class_balanced_sampling_visits_every_sample_and_class():
    split = make_split()
    seen, class_counts = set(), Counter()
    for batch in take(make_av_dataset(split, batch_size=10, classes_per_batch=5), 20):
        seen.update(batch["audio"][:, 0].astype(int).tolist())
        class_counts.update(batch["label"].tolist())
    assert seen == set(range(len(split)))
    assert set(class_counts.values()) == {40}


def test_classes_per_batch_default_and_errors():
    assert default_classes_per_batch(64, 10) == 8
    assert default_classes_per_batch(32, 15) == 8
    assert default_classes_per_batch(12, 3) == 3
    split = make_split()
    with pytest.raises(ValueError, match="does not divide"):
        make_av_dataset(split, batch_size=16, classes_per_batch=3)
    with pytest.raises(ValueError, match="has 5 classes"):
        make_av_dataset(split, batch_size=18, classes_per_batch=6)
    with pytest.raises(ValueError, match=r"leaves 1 sample"):
        make_av_dataset(split, batch_size=5, classes_per_batch=5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_av_dataset(make_split(per_class=(10,)), batch_size=4)


def test_batch_larger_than_split_is_an_error():
    with pytest.raises(ValueError, match=r"batch_size=128 is larger than the split \(100"):
        make_av_dataset(make_split(), batch_size=128)
    with pytest.raises(ValueError, match="larger than the split"):
        make_av_dataset(make_split(), batch_size=128, class_balanced=False)


def test_small_classes_repeat_samples_with_a_warning(caplog):
    split = make_split(per_class=(2, 10, 10))
    with caplog.at_level(logging.WARNING, logger="kerasadml.data.av.dataset"):
        dataset = make_av_dataset(split, batch_size=12, classes_per_batch=3)
    assert "fewer than 4" in caplog.text
    for batch in take(dataset, 3):
        assert sorted(Counter(batch["label"].tolist()).values()) == [4, 4, 4]


def test_same_seed_same_batches_other_seed_other_batches():
    split = make_split()
    first = take(make_av_dataset(split, batch_size=16, seed=5), 4)
    again = take(make_av_dataset(split, batch_size=16, seed=5), 4)
    other = take(make_av_dataset(split, batch_size=16, seed=6), 4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["audio"], b["audio"])
    assert any(not np.array_equal(a["audio"], c["audio"]) for a, c in zip(first, other))


def test_one_epoch_without_repeat_and_reshuffled_epochs():
    split = make_split()
    dataset = make_av_dataset(split, batch_size=16, repeat=False)
    assert int(dataset.cardinality()) == av_steps_per_epoch(split, 16) == 6
    epoch1 = take(dataset, 100)
    epoch2 = take(dataset, 100)
    assert len(epoch1) == len(epoch2) == 6
    assert any(not np.array_equal(a["audio"], b["audio"]) for a, b in zip(epoch1, epoch2))


def test_plain_batches_with_and_without_remainder():
    split = make_split()
    dropped = take(make_av_dataset(split, 32, class_balanced=False, repeat=False), 100)
    assert [len(b["label"]) for b in dropped] == [32, 32, 32]
    kept_ds = make_av_dataset(split, 32, class_balanced=False, repeat=False, drop_remainder=False)
    assert kept_ds.element_spec["audio"].shape.as_list() == [None, 6]
    kept = take(kept_ds, 100)
    assert [len(b["label"]) for b in kept] == [32, 32, 32, 4]
    rows = np.concatenate([b["audio"][:, 0] for b in kept]).astype(int)
    assert sorted(rows.tolist()) == list(range(100))
    ordered = take(make_av_dataset(split, 32, shuffle=False, class_balanced=False), 1)[0]
    np.testing.assert_array_equal(ordered["audio"][:, 0], np.arange(32))


def test_eval_arrays():
    split = make_split()
    arrays = make_av_eval_arrays(split)
    assert arrays["audio"].dtype == np.float32 and arrays["label"].dtype == np.int32
    np.testing.assert_array_equal(arrays["label"], split.labels)
    assert arrays["visual"].shape == (100, 10)


def test_feeds_model_fit_of_a_two_input_model():
    data = load_av_hdf5(FIXTURES / "layout_a.h5")
    train = data.train
    dataset = make_av_dataset(train, batch_size=6, seed=1).map(
        lambda b: ({"audio": b["audio"], "visual": b["visual"]}, b["label"])
    )
    audio = keras.Input((train.audio_dim,), name="audio")
    visual = keras.Input((train.visual_dim,), name="visual")
    hidden = keras.layers.Concatenate()([keras.layers.Dense(4)(audio), keras.layers.Dense(4)(visual)])
    model = keras.Model({"audio": audio, "visual": visual}, keras.layers.Dense(3)(hidden))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(dataset, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
