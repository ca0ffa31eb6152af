"""What both model families' training shares: ``fit`` with a resumable backup, and the
training report saved with the trained model."""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Sequence

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


def training_report(
    history: keras.callbacks.History,
    *,
    preset: str | os.PathLike,
    data: Any,
    recipe: Mapping[str, Any],
    seed: int,
    seconds: float,
    sizes: Mapping[str, int],
    **results: Any,
) -> dict[str, Any]:
    """The report of one training run (returned by the ``train_*`` functions and saved as
    ``info["training"]`` with the trained model).

    Its keys, in order: ``"preset"``, ``"data"``, ``"recipe"``, ``"seed"``, the ``sizes``
    of the data, ``"train_seconds"`` (rounded to 0.1 s), ``"backend"``, ``"machine"``
    (architecture and CPU count), ``"final"`` (the last value of every logged history
    key), then ``results``.

    Args:
        history: what ``fit`` returned (e.g. :func:`fit_with_backup`).
        preset: the preset trained (a name or a folder; reported as a string).
        data: where the training data came from (JSON-serialisable, reported as given).
        recipe: the training recipe in effect.
        seed: the random seed of the run.
        seconds: how long training took.
        sizes: the data sizes (e.g. ``{"clips": 64, "keywords": 16}``).
        **results: further entries, after ``"final"`` (e.g. ``parameters``, ``test``).

    Returns:
        The report, a JSON-serialisable dict.

    Example:

    >>> import types
    >>> history = types.SimpleNamespace(history={"loss": [2.0, 1.5]})
    >>> report = training_report(
    ...     history, preset="adml_tiny", data="train.csv", recipe={"epochs": 2}, seed=0,
    ...     seconds=12.345, sizes={"clips": 64}, parameters=1000,
    ... )
    >>> report["train_seconds"], report["final"], report["parameters"]
    (12.3, {'loss': 1.5}, 1000)
    >>> list(report)[:5]
    ['preset', 'data', 'recipe', 'seed', 'clips']
    """
    return {
        "preset": str(preset),
        "data": data,
        "recipe": recipe,
        "seed": seed,
        **sizes,
        "train_seconds": round(seconds, 1),
        "backend": keras.backend.backend(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "final": {k: float(v[-1]) for k, v in history.history.items()},
        **results,
    }
