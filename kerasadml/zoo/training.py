"""Training recipes shared by the CLI, the demo, the examples and the benchmarks."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import keras

log = logging.getLogger(__name__)

SYNTH_TRAIN_CSV = "synthphrase_train.csv"
SYNTH_TEST_CSV = "synthphrase_test.csv"


def resolve_kws_csvs(data: str | os.PathLike, split: str = "train") -> list[str]:
    """CSV paths for ``data``: a CSV file, a list-like string ``a.csv,b.csv``, or a
    SynthPhrase folder (its ``synthphrase_{split}.csv``).

    Raises:
        FileNotFoundError: naming what was looked for.
    """
    text = os.fspath(data)
    if "," in text:
        paths = [p.strip() for p in text.split(",") if p.strip()]
    else:
        path = Path(text)
        if path.is_dir():
            candidate = path / (SYNTH_TRAIN_CSV if split == "train" else SYNTH_TEST_CSV)
            if not candidate.is_file():
                csvs = sorted(str(p) for p in path.glob("*.csv"))
                raise FileNotFoundError(
                    f"{path} is a folder without {candidate.name}; give a CSV explicitly (found: {csvs})"
                )
            paths = [str(candidate)]
        else:
            paths = [text]
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"no such CSV file: {p}")
    return paths


def kws_training_data(
    csvs: Sequence[str],
    encode_text,
    *,
    audio_root: str | os.PathLike | None = None,
    keywords_per_batch: int = 16,
    clips_per_keyword: int = 2,
    family_size: int = 1,
    group_by_length: bool = True,
    allow_outside_root: bool = False,
    seed: int = 0,
    steps_per_epoch: int | None = None,
    audio_buckets: Sequence[int] | None = None,
    phoneme_buckets: Sequence[int] = (16, 32),
    augment=None,
):
    """LibriPhrase-format training CSVs -> (class-balanced tf.data dataset, info, items).

    ``augment``: ``None``/``False`` (default) reads the clips as they are; ``True`` or a
    :class:`kerasadml.data.augment.AugmentConfig` adds the on-the-fly augmentation stage
    (:func:`kerasadml.data.augment.augment_dataset`: speed, formant, room, noise, channel,
    gain; seeded by ``seed``) for corpora that are not augmented already (SynthPhrase
    clips are, when built).

    Batches are padded to the smallest of ``audio_buckets`` (default
    ``DEFAULT_TRAINING_AUDIO_BUCKETS``, 0.55-2 s) that holds their longest clip: every new width is one more compilation of
    the training step (a few seconds to tens of seconds on a CPU), and seven widths keep
    the padding of LibriPhrase-style 0.5-2 s phrases small (batches grouped by length; ``benchmarks/data_pipeline.py`` prints the padded
    fraction). With ``family_size > 1`` each batch is built from keyword families taken
    from the CSVs' hard-negative pairs.
    """
    from kerasadml.data.kws_dataset import DEFAULT_TRAINING_AUDIO_BUCKETS, make_kws_training_dataset
    from kerasadml.data.libriphrase import hard_negative_map, read_libriphrase_csv, training_items

    rows = read_libriphrase_csv(list(csvs))
    items = training_items(rows, audio_root=audio_root, allow_outside_root=allow_outside_root)
    dataset, info = make_kws_training_dataset(
        items.paths,
        items.texts,
        items.labels,
        encode_text=encode_text,
        keywords_per_batch=keywords_per_batch,
        clips_per_keyword=clips_per_keyword,
        seed=seed,
        steps_per_epoch=steps_per_epoch,
        audio_buckets=tuple(audio_buckets or DEFAULT_TRAINING_AUDIO_BUCKETS),
        phoneme_buckets=tuple(phoneme_buckets),
        hard_negatives=hard_negative_map(rows) if family_size > 1 else None,
        family_size=family_size,
        group_by_length=group_by_length,
    )
    if augment:
        from kerasadml.data.augment import AugmentConfig, augment_dataset

        config = augment if isinstance(augment, AugmentConfig) else AugmentConfig()
        dataset = augment_dataset(dataset, config, seed=seed,
                                  audio_buckets=tuple(audio_buckets or DEFAULT_TRAINING_AUDIO_BUCKETS))
    return dataset, info, items


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
