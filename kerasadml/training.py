"""The training loop both model families share: ``fit`` with a resumable backup."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import keras

log = logging.getLogger(__name__)

def fit_with_backup(
    model: keras.Model,
    dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    out_dir: str | os.PathLike | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    keep_backup: bool = False,
):
    """``model.fit`` with :class:`kerasadml.callbacks.SafeBackupAndRestore` under
    ``out_dir/backup`` (an interrupted run resumes at the last finished epoch when started
    again with the same ``out_dir``; a backup damaged by a kill or a full disk falls back
    to the previous one; a backup of another model or configuration is a
    :class:`kerasadml.callbacks.BackupError` saying how to start fresh).

    An unbuilt zoo model (``ADML``/``AADML`` fresh from its constructor) is built first,
    since the backup is restored into existing variables.

    With ``keep_backup`` the backup outlives ``fit``: the caller deletes it once the
    trained model is safely saved (see :func:`discard_backup`), so that a kill between the
    end of ``fit`` and that save does not lose the run.

    Raises:
        ValueError: ``epochs`` or ``steps_per_epoch`` is not a positive integer.
    """
    from kerasadml.callbacks import SafeBackupAndRestore
    from kerasadml.validation import check_int

    epochs = check_int("epochs", epochs, minimum=1)
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    callbacks = list(callbacks)
    if out_dir is not None:
        # The backup is restored into existing variables: zoo models create theirs with
        # build() (a model freshly constructed is not built yet).
        if not model.built and hasattr(model, "build_for_preset"):
            model.build_for_preset()
        backup = Path(out_dir) / "backup"
        backup.mkdir(parents=True, exist_ok=True)
        callbacks.append(SafeBackupAndRestore(backup, delete_checkpoint=not keep_backup))
    return model.fit(
        dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose, shuffle=False
    )


def discard_backup(out_dir: str | os.PathLike) -> None:
    """Delete ``out_dir/backup`` (after the trained model has been saved)."""
    import shutil

    backup = Path(out_dir) / "backup"
    if backup.is_dir():
        shutil.rmtree(backup, ignore_errors=True)
