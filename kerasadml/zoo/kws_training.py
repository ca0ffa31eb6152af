"""Train an ADML preset on LibriPhrase-format data (used by ``kerasadml train`` and the demo)."""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path

import keras

from kerasadml.zoo.presets import preset_recipe
from kerasadml.zoo.training import fit_with_backup, kws_training_data, resolve_kws_csvs

log = logging.getLogger(__name__)


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
):
    """Train ``preset`` (name or folder) on ``data`` and save it as ``out_dir/model``.

    The keyword classes (and so the SphereFace2 head) come from the training CSV; the
    rest of the architecture from the preset. Unset recipe values come from the preset's
    recipe. A run interrupted mid-way resumes from ``out_dir/backup`` when re-run.

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
    recipe = {"epochs": 10, "steps_per_epoch": 100, "keywords_per_batch": 16, "clips_per_keyword": 2}
    recipe.update(preset_recipe(preset))
    for key, value in dict(
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        keywords_per_batch=keywords_per_batch,
        clips_per_keyword=clips_per_keyword,
    ).items():
        if value is not None:
            recipe[key] = int(value)
    csvs = resolve_kws_csvs(data, "train")
    # Read the CSVs once for the class count, then build the model and its pipeline.
    from kerasadml.data.libriphrase import read_libriphrase_csv, training_items

    num_keywords = training_items(read_libriphrase_csv(csvs), audio_root=audio_root).num_classes
    if recipe["keywords_per_batch"] > num_keywords:
        log.warning(
            "keywords_per_batch=%d but the data have %d keywords; using %d",
            recipe["keywords_per_batch"], num_keywords, num_keywords,
        )
        recipe["keywords_per_batch"] = num_keywords
    model = ADML.from_preset(preset, load_weights=init_weights, num_keywords=num_keywords, **(overrides or {}))
    dataset, info, items = kws_training_data(
        csvs,
        model.encode_text,
        audio_root=audio_root,
        keywords_per_batch=recipe["keywords_per_batch"],
        clips_per_keyword=recipe["clips_per_keyword"],
        seed=seed,
    )
    model.compile(optimizer="auto")
    start = time.time()
    history = fit_with_backup(
        model,
        dataset,
        epochs=recipe["epochs"],
        steps_per_epoch=recipe["steps_per_epoch"],
        out_dir=out_dir,
        verbose=verbose,
    )
    seconds = time.time() - start
    report = {
        "preset": str(preset),
        "data": csvs,
        "recipe": recipe,
        "seed": seed,
        "clips": len(items),
        "keywords": items.num_classes,
        "skipped_clips": int(getattr(info, "skipped", 0)),
        "train_seconds": round(seconds, 1),
        "backend": keras.backend.backend(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "final": {k: float(v[-1]) for k, v in history.history.items()},
        "parameters": int(model.count_params()),
    }
    model.save_to_preset(Path(out_dir) / "model", info={"training": report})
    return model, report
