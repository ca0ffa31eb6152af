"""Callbacks: loss terms reach TensorBoard, AffinityImageLogger writes PNGs, the DANN
schedule sets the reversal scale, and an interrupted fit resumes with BackupAndRestore."""

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasadml.callbacks import AffinityImageLogger, GradientReversalSchedule
from kerasadml.zoo import AADML, ADML
from kerasadml.zoo.adml import LOSS_TERMS
from kerasadml.training import fit_with_backup
from tests.helpers import AADML_TINY, ADML_TINY, av_split
from tests.zoo.adml_test import _batch as adml_batch


def _dann(p):
    return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0


def _scalar_tags(log_dir: Path) -> set:
    import tensorflow as tf

    tags = set()
    for event_file in log_dir.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    return tags


class _Recorder(keras.callbacks.Callback):
    """Records the reversal scale the schedule set, at the start of each epoch."""

    def __init__(self):
        super().__init__()
        self.scales = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.scales[epoch] = [
            float(keras.ops.convert_to_numpy(layer.reversal.scale))
            for layer in (self.model.adversary_utt, self.model.adversary_phn)
        ]


@pytest.fixture(scope="module")
def adml_run(tmp_path_factory):
    """One short ADML fit (3 epochs x 1 step) with all three callbacks."""
    root = tmp_path_factory.mktemp("adml_callbacks")
    keras.utils.set_random_seed(0)
    model = ADML(**{**ADML_TINY, "lambda_adv": 0.5})
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    batch = adml_batch()
    clip = batch["audio"][0, : batch["audio_length"][0]]
    schedule = GradientReversalSchedule(total_epochs=3)
    recorder = _Recorder()
    images = AffinityImageLogger(model, clip, "hello world", root / "affinity", every_n_epochs=1)
    board = keras.callbacks.TensorBoard(log_dir=str(root / "tb"), write_graph=False)
    history = model.fit(
        batch, batch_size=8, epochs=3, verbose=0, callbacks=[schedule, recorder, images, board]
    ).history
    return model, history, schedule, recorder, images, root


def test_tensorboard_logs_every_loss_term(adml_run):
    _, history, _, _, _, root = adml_run
    tags = _scalar_tags(root / "tb")
    for term in ("loss",) + LOSS_TERMS:
        assert term in history
        assert f"epoch_{term}" in tags, (term, sorted(tags))


def test_affinity_logger_writes_one_png_per_epoch(adml_run):
    _, _, _, _, images, root = adml_run
    files = sorted((root / "affinity").glob("*.png"))
    assert [f.name for f in files] == ["affinity_epoch001.png", "affinity_epoch002.png", "affinity_epoch003.png"]
    assert images.written == [root / "affinity" / f.name for f in files]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 1000


def test_schedule_sets_dann_values_inside_fit(adml_run):
    model, _, schedule, recorder, _, _ = adml_run
    expected = {e: 0.5 * _dann(e / 3) for e in range(3)}
    assert expected[0] == 0.0
    for epoch, value in expected.items():
        assert schedule.values[epoch] == pytest.approx(value, rel=1e-5, abs=1e-7)
        assert recorder.scales[epoch] == pytest.approx([value, value], rel=1e-5, abs=1e-7)
    # the variable keeps the last value after training
    assert float(keras.ops.convert_to_numpy(model.adversary_utt.reversal.scale)) == pytest.approx(expected[2], rel=1e-5)


def test_schedule_and_logger_reject_bad_arguments(adml_run):
    model = adml_run[0]
    with pytest.raises(ValueError, match="total_epochs"):
        GradientReversalSchedule(0)
    with pytest.raises(ValueError, match="every_n_epochs"):
        AffinityImageLogger(model, np.zeros(16000), "hi", "x", every_n_epochs=0)
    with pytest.raises(ValueError, match="shape"):
        AffinityImageLogger(model, np.zeros((2, 16000)), "hi", "x")
    stepped = ADML(**{**ADML_TINY, "adv_schedule_steps": 100})
    schedule = GradientReversalSchedule(3)
    schedule.set_model(stepped)
    with pytest.raises(ValueError, match="adv_schedule_steps"):
        schedule.on_train_begin()
    # explicit lambda_adv, outside fit
    plain = ADML(**{**ADML_TINY, "mal": "utterance"})
    schedule = GradientReversalSchedule(4, lambda_adv=0.2)
    schedule.set_model(plain)
    schedule.on_epoch_begin(2)
    assert float(keras.ops.convert_to_numpy(plain.adversary_utt.reversal.scale)) == pytest.approx(0.2 * _dann(0.5))


class _Interrupt(Exception):
    pass


class _EpochLog(keras.callbacks.Callback):
    def __init__(self, crash_at=None):
        super().__init__()
        self.crash_at = crash_at
        self.epochs = []
        self.iterations = []

    def on_epoch_begin(self, epoch, logs=None):
        # Crash when epoch `crash_at` starts: the previous epochs are finished and backed up.
        if epoch == self.crash_at:
            raise _Interrupt(f"simulated crash before epoch {epoch + 1}")
        self.epochs.append(epoch)
        self.iterations.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))


def test_interrupted_fit_resumes_at_the_next_epoch(tmp_path):
    from kerasadml.data.av.dataset import make_av_dataset

    split = av_split()

    def new_model():
        keras.utils.set_random_seed(0)
        model = AADML(**AADML_TINY)
        model.adapt(split)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    steps = 2
    first = _EpochLog(crash_at=1)
    with pytest.raises(_Interrupt):
        fit_with_backup(
            new_model(), make_av_dataset(split, batch_size=12), epochs=3, steps_per_epoch=steps,
            out_dir=tmp_path, callbacks=[first], verbose=0,
        )
    assert first.epochs == [0]
    assert any((tmp_path / "backup").iterdir()), "no backup written"

    second = _EpochLog()
    model = new_model()
    history = fit_with_backup(
        model, make_av_dataset(split, batch_size=12), epochs=3, steps_per_epoch=steps,
        out_dir=tmp_path, callbacks=[second], verbose=0,
    )
    assert second.epochs == [1, 2]  # epoch 2 and 3 of 3 (1-based)
    assert second.iterations[0] == steps  # optimizer state restored from epoch 1
    assert len(history.history["loss"]) == 2
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3 * steps
    backup = tmp_path / "backup"
    assert not backup.exists() or not any(backup.iterdir()), "backup not deleted after a finished run"
