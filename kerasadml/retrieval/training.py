"""Train and evaluate AADML presets on VEGAS/AVE-layout HDF5 features."""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras

from kerasadml.retrieval.evaluation import RETRIEVAL_KEYS
from kerasadml.training import discard_backup, fit_with_backup, training_report
from kerasadml.zoo.presets import preset_recipe, weights_origin

def train_aadml_from_h5(
    preset: str,
    data: str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    init_weights: bool = False,
    verbose: int | str = "auto",
    overrides: dict | None = None,
):
    """Train ``preset`` on an HDF5 feature file, evaluate on its test split, save
    ``out_dir/model``.

    Returns:
        ``(model, report)``: the recipe, data sizes, time taken, final losses and the
        test retrieval report.

    Raises:
        ValueError: ``epochs`` or ``steps_per_epoch`` is not a positive integer,
            ``batch_size`` is below 4, or ``seed`` is not in [0, 2**32 - 1] (the message
            names the argument).
    """
    from kerasadml.data.av.dataset import make_av_dataset
    from kerasadml.data.av.features import load_av_hdf5
    from kerasadml.validation import check_int, check_seed
    from kerasadml.zoo.aadml import AADML

    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        check_int(name, value, minimum=1, allow_none=True)
    # P classes x Q >= 2 videos each, P >= 2: a batch holds at least 4 pairs
    check_int("batch_size", batch_size, minimum=4, allow_none=True)
    check_seed(seed)
    keras.utils.set_random_seed(seed)
    recipe = {"epochs": 20, "steps_per_epoch": 30, "batch_size": 64}
    recipe.update(preset_recipe(preset))
    for key, value in dict(epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size).items():
        if value is not None:
            recipe[key] = int(value)
    dataset = load_av_hdf5(data)
    config = dict(
        audio_dim=dataset.train.audio.shape[1],
        visual_dim=dataset.train.visual.shape[1],
        num_classes=dataset.num_classes,
    )
    config.update(overrides or {})
    model = AADML.from_preset(preset, load_weights=init_weights, **config)
    origin = weights_origin(preset) if init_weights else None
    model.adapt(dataset.train)
    batch = min(recipe["batch_size"], len(dataset.train.labels))
    train_ds = make_av_dataset(dataset.train, batch_size=batch, seed=seed)
    model.compile(optimizer="auto")
    start = time.time()
    history = fit_with_backup(
        model,
        train_ds,
        epochs=recipe["epochs"],
        steps_per_epoch=recipe["steps_per_epoch"],
        out_dir=out_dir,
        verbose=verbose,
    
        keep_backup=True,
    )
    seconds = time.time() - start
    test = model.evaluate(dataset.test)
    report = training_report(
        history,
        preset=preset,
        data=os.fspath(data),
        recipe={**recipe, "batch_size": batch},
        seed=seed,
        seconds=seconds,
        sizes={
            "train_pairs": int(len(dataset.train.labels)),
            "test_pairs": int(len(dataset.test.labels)),
            "classes": int(dataset.num_classes),
        },
        test={k: float(test[k]) for k in RETRIEVAL_KEYS},
        init_weights=origin,
    )
    model.save_to_preset(Path(out_dir) / "model", info={"training": report})
    discard_backup(out_dir)  # only now: a kill before the save resumes from the last epoch
    return model, report
