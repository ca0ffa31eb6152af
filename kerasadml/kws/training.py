"""Train an ADML preset on LibriPhrase-format data (used by ``kerasadml train`` and the demo)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Sequence

import keras

from kerasadml.data.speech.synthphrase import build_provenance
from kerasadml.zoo.presets import preset_recipe, weights_origin
from kerasadml.training import discard_backup, fit_with_backup, training_report

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
    from kerasadml.data.speech.dataset import DEFAULT_TRAINING_AUDIO_BUCKETS, make_kws_training_dataset
    from kerasadml.data.speech.libriphrase import hard_negative_map, read_libriphrase_csv, training_items

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



#: Named ADML training recipes. ``"default"`` trains the preset's own configuration (whose
#: constructor defaults are the recipe that measured best, docs/methods.md §1.10) with
#: keyword-family batches and a warm-up + cosine learning rate; ``"paper"`` overrides the
#: model with :data:`kerasadml.zoo.adml.PAPER_CONFIG` and trains it as the first version of
#: this package did (independent keywords, constant learning rate), for comparisons.
TRAINING_RECIPES: dict[str, dict] = {
    "default": {"family_size": 4, "lr_schedule": "warmup_cosine", "learning_rate": 2e-3},
    "paper": {"family_size": 1, "lr_schedule": "constant", "learning_rate": 1e-3},
}


def _augment_record(augment):
    """How the training clips were augmented on the fly, for the report (JSON)."""
    if not augment:
        return None
    import dataclasses

    from kerasadml.data.augment import AugmentConfig

    return dataclasses.asdict(augment if isinstance(augment, AugmentConfig) else AugmentConfig())


def train_adml_from_csv(
    preset: str,
    data: str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    audio_root: str | os.PathLike | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    keywords_per_batch: int | None = None,
    clips_per_keyword: int | None = None,
    seed: int = 0,
    init_weights: bool = False,
    verbose: int | str = "auto",
    overrides: dict | None = None,
    recipe_overrides: dict | None = None,
    recipe: str = "default",
    callbacks=(),
    allow_outside_root: bool = False,
    augment=None,
):
    """Train ``preset`` (name or folder) on ``data`` and save it as ``out_dir/model``.

    The keyword classes (and so the SphereFace2 head) come from the training CSV; the
    rest of the architecture from the preset. Unset recipe values come from the preset's
    recipe. A run interrupted mid-way resumes from ``out_dir/backup`` when re-run.

    Args:
        recipe: ``"default"`` or ``"paper"`` (see :data:`TRAINING_RECIPES`); the preset's
            recipe, the explicit arguments and ``recipe_overrides`` (``family_size``,
            ``learning_rate``, ``lr_schedule`` = ``"constant"`` or ``"warmup_cosine"``)
            refine it, in that order. ``overrides`` are constructor arguments of the model.
        callbacks: more Keras callbacks for ``fit`` (e.g.
            :class:`kerasadml.diagnostics.LossGradientMonitor`).
        allow_outside_root: with ``audio_root``, accept CSV rows whose audio is absolute or
            leaves the root with ``..`` (refused by default, naming the row).
        augment: ``True`` or an :class:`kerasadml.data.augment.AugmentConfig`: augment
            the training clips on the fly (rooms, noise, channel, speed, formants; for
            corpora that are not augmented already). Off by default; never applied to
            evaluation.

    Raises:
        ValueError: ``epochs``, ``steps_per_epoch``, ``keywords_per_batch`` or
            ``clips_per_keyword`` is not a positive integer, or ``seed`` is not in
            [0, 2**32 - 1] (the message names the argument).

    Returns:
        ``(model, report)`` where ``report`` has the recipe, the data sizes, the time
        taken and the final value of every logged loss term.
    """
    from kerasadml.validation import check_int, check_seed
    from kerasadml.zoo.adml import ADML

    # Bad numbers fail here, naming the argument (epochs=0 used to save an untrained
    # model as trained; steps_per_epoch=0 hung on an infinite dataset).
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch),
                        ("keywords_per_batch", keywords_per_batch), ("clips_per_keyword", clips_per_keyword)):
        check_int(name, value, minimum=1, allow_none=True)
    check_seed(seed)
    keras.utils.set_random_seed(seed)
    if recipe not in TRAINING_RECIPES:
        raise ValueError(f"train_adml_from_csv: recipe must be one of {sorted(TRAINING_RECIPES)}, got {recipe!r}")
    recipe_name = recipe
    recipe = {"epochs": 10, "steps_per_epoch": 100, "keywords_per_batch": 16, "clips_per_keyword": 2}
    recipe.update(TRAINING_RECIPES[recipe_name])
    recipe.update(preset_recipe(preset))
    if recipe_name == "paper":
        from kerasadml.zoo.adml import PAPER_CONFIG

        overrides = {**PAPER_CONFIG, **(overrides or {})}
    for key, value in dict(
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        keywords_per_batch=keywords_per_batch,
        clips_per_keyword=clips_per_keyword,
    ).items():
        if value is not None:
            recipe[key] = int(value)
    recipe.update({k: v for k, v in (recipe_overrides or {}).items() if v is not None})
    if recipe["lr_schedule"] not in ("constant", "warmup_cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'warmup_cosine', got {recipe['lr_schedule']!r}")
    check_int("family_size", recipe["family_size"], minimum=1)
    csvs = resolve_kws_csvs(data, "train")
    # Read the CSVs once for the class count, then build the model and its pipeline.
    from kerasadml.data.speech.libriphrase import read_libriphrase_csv, training_items

    num_keywords = training_items(
        read_libriphrase_csv(csvs), audio_root=audio_root, allow_outside_root=allow_outside_root
    ).num_classes
    if recipe["keywords_per_batch"] > num_keywords:
        log.warning(
            "keywords_per_batch=%d but the data have %d keywords; using %d",
            recipe["keywords_per_batch"], num_keywords, num_keywords,
        )
        recipe["keywords_per_batch"] = num_keywords
    model = ADML.from_preset(preset, load_weights=init_weights, num_keywords=num_keywords, **(overrides or {}))
    origin = weights_origin(preset) if init_weights else None
    dataset, info, items = kws_training_data(
        csvs,
        model.encode_text,
        audio_root=audio_root,
        keywords_per_batch=recipe["keywords_per_batch"],
        clips_per_keyword=recipe["clips_per_keyword"],
        family_size=int(recipe["family_size"]),
        seed=seed,
        allow_outside_root=allow_outside_root,
        augment=augment,
    )
    total_steps = int(recipe["epochs"]) * int(recipe["steps_per_epoch"])
    model.compile(
        optimizer=ADML.default_optimizer(
            total_steps=total_steps if recipe["lr_schedule"] == "warmup_cosine" else None,
            learning_rate=float(recipe["learning_rate"]),
        )
    )
    start = time.time()
    history = fit_with_backup(
        model,
        dataset,
        epochs=recipe["epochs"],
        steps_per_epoch=recipe["steps_per_epoch"],
        out_dir=out_dir,
        verbose=verbose,
        callbacks=callbacks,
        keep_backup=True,
    )
    seconds = time.time() - start
    report = training_report(
        history,
        preset=preset,
        data=csvs,
        recipe={"name": recipe_name, **recipe, "augment": _augment_record(augment)},
        seed=seed,
        seconds=seconds,
        sizes={
            "clips": len(items),
            "keywords": items.num_classes,
            "skipped_clips": int(getattr(info, "skipped", 0)),
        },
        parameters=int(model.count_params()),
        init_weights=origin,
    )
    provenance = build_provenance(data)
    if provenance is not None:
        report["synthphrase"] = provenance
    model.save_to_preset(Path(out_dir) / "model", info={"training": report})
    discard_backup(out_dir)  # only now: a kill before the save resumes from the last epoch
    return model, report
