"""Training backups survive kills, Ctrl-C and a full disk (issue 13): a damaged newest
backup falls back to the previous one and says so; nothing usable, or a backup of another
run, is a clear error naming the folder and how to start fresh; a failed write keeps the
previous backup. Every case resumes (or refuses) on the active backend."""

from __future__ import annotations

import errno
import json
import logging

import keras
import numpy as np
import pytest

from kerasadml.callbacks import BACKUP_MANIFEST, BackupError, SafeBackupAndRestore

X = np.random.RandomState(0).randn(16, 4).astype("float32")
Y = X.sum(axis=1, keepdims=True)
CRASH_AT = 3  # the first run stops when epoch index 3 starts: backups of epochs 3 and 2 exist


class _Interrupt(Exception):
    pass


class _Log(keras.callbacks.Callback):
    """Records the epochs run and the weights at each epoch end / first epoch begin."""

    def __init__(self, crash_at=None):
        super().__init__()
        self.crash_at = crash_at
        self.epochs: list[int] = []
        self.saved: dict[int, list] = {}
        self.first_weights = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.crash_at:
            raise _Interrupt(epoch)
        if self.first_weights is None:
            self.first_weights = [np.array(w) for w in self.model.get_weights()]
        self.epochs.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.saved[epoch + 1] = [np.array(w) for w in self.model.get_weights()]


def _model(units: int = 3):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(units, name="hidden"), keras.layers.Dense(1, name="out")], name="tiny"
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def _fit(folder, epochs=5, crash_at=None, units=3, model=None):
    model = model or _model(units)
    backup = SafeBackupAndRestore(folder)
    log = _Log(crash_at)
    try:
        model.fit(X, Y, batch_size=8, epochs=epochs, callbacks=[backup, log], verbose=0, shuffle=False)
    except _Interrupt:
        pass
    return model, backup, log


@pytest.fixture
def interrupted(tmp_path):
    folder = tmp_path / "backup"
    _, _, log = _fit(folder, crash_at=CRASH_AT)
    assert log.epochs == [0, 1, 2]
    return folder, log


def _weights_file(folder, epoch):
    return folder / f"epoch{epoch:05d}.weights.h5"


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _scramble(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)
    path.write_bytes(bytes(data))


def _damage(case, folder):
    if case == "intact":
        return
    if case == "newest truncated (killed while copying)":
        _truncate(_weights_file(folder, 3))
    elif case == "newest zeroed (disk error)":
        _scramble(_weights_file(folder, 3))
    elif case == "newest deleted":
        _weights_file(folder, 3).unlink()
    elif case == "temporary left by a kill during the write":
        (folder / ".epoch00004.weights.h5.4242.tmp.weights.h5").write_bytes(b"\x89HDF\r\n" + b"\0" * 50)
    elif case == "both truncated":
        _truncate(_weights_file(folder, 3))
        _truncate(_weights_file(folder, 2))
    elif case == "manifest not JSON":
        (folder / BACKUP_MANIFEST).write_text("{\"checkpoints\": [")
    else:  # pragma: no cover
        raise AssertionError(case)


# case -> epoch resumed at (an int), or the BackupError text expected
DAMAGE_CASES = [
    ("intact", 3),
    ("newest truncated (killed while copying)", 2),
    ("newest zeroed (disk error)", 2),
    ("newest deleted", 2),
    ("temporary left by a kill during the write", 3),
    ("both truncated", "no usable training backup"),
    ("manifest not JSON", "is damaged"),
]


@pytest.mark.parametrize("case, expected", DAMAGE_CASES, ids=[c for c, _ in DAMAGE_CASES])
def test_resume_after_damage(interrupted, case, expected, caplog):
    folder, first = interrupted
    _damage(case, folder)
    caplog.set_level(logging.WARNING, logger="kerasadml.callbacks")
    if isinstance(expected, str):
        with pytest.raises(BackupError, match=expected) as raised:
            _fit(folder)
        message = str(raised.value)
        assert str(folder) in message and "--fresh" in message and "delete" in message
        return
    model, backup, log = _fit(folder)
    assert backup.restored_epoch == expected
    assert log.epochs == list(range(expected, 5))  # continues at the right epoch
    for restored, saved in zip(log.first_weights, first.saved[expected]):
        np.testing.assert_allclose(restored, saved, rtol=1e-6, atol=1e-7)  # from that epoch's weights
    assert backup.fell_back == (expected != 3)
    if expected != 3:
        assert "previous backup" in caplog.text and f"epoch {expected}" in caplog.text
    assert not folder.exists(), "the backup is deleted when fit finishes"


def test_backup_of_another_model_is_refused(interrupted):
    folder, _ = interrupted
    with pytest.raises(BackupError, match="another run") as raised:
        _fit(folder, units=5)
    assert str(folder) in str(raised.value) and "--fresh" in str(raised.value)


def test_keras_backup_is_still_resumed_and_a_truncated_one_refused(tmp_path):
    folder = tmp_path / "backup"
    model = _model()
    with pytest.raises(_Interrupt):
        model.fit(X, Y, batch_size=8, epochs=5, verbose=0, shuffle=False,
                  callbacks=[keras.callbacks.BackupAndRestore(str(folder)), _Log(crash_at=2)])
    _, backup, log = _fit(folder)
    assert backup.restored_epoch == 2 and log.epochs == [2, 3, 4]

    with pytest.raises(_Interrupt):
        _model().fit(X, Y, batch_size=8, epochs=5, verbose=0, shuffle=False,
                     callbacks=[keras.callbacks.BackupAndRestore(str(folder)), _Log(crash_at=2)])
    _truncate(folder / "latest.weights.h5")  # what a kill during Keras' in-place write leaves
    with pytest.raises(BackupError, match="cannot be loaded") as raised:
        _fit(folder)
    assert "--fresh" in str(raised.value)


def test_full_disk_during_a_backup_keeps_the_previous_one(tmp_path):
    folder = tmp_path / "backup"
    model = _model()
    real_save = model.save_weights
    calls = []

    def save_then_fill_the_disk(filepath, overwrite=True, **kwargs):
        calls.append(filepath)
        if len(calls) == 3:  # the backup of epoch 3: a partial file, then ENOSPC
            with open(filepath, "wb") as handle:
                handle.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(filepath, overwrite=overwrite, **kwargs)

    model.save_weights = save_then_fill_the_disk
    with pytest.raises(OSError) as raised:
        _fit(folder, model=model)
    assert raised.value.errno == errno.ENOSPC
    assert "epoch 2 is kept" in str(raised.value) and "run the same command again" in str(raised.value)
    assert sorted(p.name for p in folder.iterdir()) == [BACKUP_MANIFEST, "epoch00001.weights.h5", "epoch00002.weights.h5"]
    assert json.loads((folder / BACKUP_MANIFEST).read_text())["checkpoints"][0]["epoch"] == 2
    _, backup, log = _fit(folder)
    assert backup.restored_epoch == 2 and log.epochs == [2, 3, 4]


def test_keeps_two_backups_and_fingerprint(interrupted):
    folder, _ = interrupted
    manifest = json.loads((folder / BACKUP_MANIFEST).read_text())
    assert [c["epoch"] for c in manifest["checkpoints"]] == [3, 2]
    assert sorted(p.name for p in folder.glob("*.h5")) == ["epoch00002.weights.h5", "epoch00003.weights.h5"]
    assert manifest["fingerprint"]["class"] == "Sequential"
    with pytest.raises(ValueError, match="keep"):
        SafeBackupAndRestore(folder, keep=1)


def test_training_recipes_keep_the_backup_until_the_model_is_saved(tmp_path):
    # kws.training / retrieval.training call fit_with_backup(keep_backup=True) and delete the
    # backup only after save_to_preset: a kill in between resumes instead of starting over.
    import keras

    from kerasadml.training import discard_backup, fit_with_backup

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    data = (np.ones((8, 3), "float32"), np.ones((8, 1), "float32"))
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(data).batch(4).repeat()
    fit_with_backup(model, dataset, epochs=2, steps_per_epoch=2, out_dir=tmp_path, verbose=0, keep_backup=True)
    assert any((tmp_path / "backup").iterdir()), "the backup outlives fit"
    discard_backup(tmp_path)
    assert not (tmp_path / "backup").exists()
    discard_backup(tmp_path)  # nothing to delete is fine
