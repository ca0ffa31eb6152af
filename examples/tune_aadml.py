"""Hyperparameter search for AADML with keras-tuner, on VEGAS/AVE features (HDF5) or AV-Digits.

    python examples/tune_aadml.py                                    # AV-Digits, random search
    python examples/tune_aadml.py --tuner bayesian --trials 30 --epochs 10 --steps 30
    python examples/tune_aadml.py --tuner hyperband --epochs 27 --factor 3   # up to 27 epochs per model
    python examples/tune_aadml.py --data vegas_feature.h5 --preset aadml_vegas --loss aa_contrastive
    python examples/tune_aadml.py --train-per-class 6 --trials 2 --epochs 1 --steps 2   # smallest run

Searched (``kerasadml.tuning.AADMLHyperModel``; ranges in ``AADML_SEARCH_SPACE``): the
AA proxy's ``k`` and attention heads, the triplet margin (``*triplet`` losses) or the
contrastive temperature (``*contrastive``), and the learning rate; everything else comes
from ``--preset`` (feature widths and classes from the data). Each trial trains on the
training split minus a class-stratified hold-out (``--val-fraction``) and is scored by the
whole-gallery MAP on that hold-out (``val_map``, higher is better); the test split is used
once, to evaluate the best model.

The tuner's state lives in ``<out>/tuner/aadml_<tuner>``: running the same command again
resumes the search; ``--overwrite`` starts afresh. At the end the trials are listed best
first and the best model is written as a preset folder, ``<out>/best``, loadable with
``AADML.from_preset("<out>/best")``.
"""

from __future__ import annotations

import argparse
import os

from tune_adml import (
    TUNERS,
    check_common_args,
    make_tuner,
    parse_tune,
    report_best,
    tuning_info,
)

LOSSES = ("aa_triplet", "aa_contrastive", "triplet", "contrastive")


def hold_out(split, fraction: float, seed: int):
    """``(train, valid)``: ``fraction`` of each class of ``split`` (at least one item) held out.

    Raises:
        ValueError: a class would keep fewer than 2 training items.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    valid = []
    for label in np.unique(split.labels):
        members = rng.permutation(np.flatnonzero(split.labels == label))
        n_valid = max(1, round(len(members) * fraction))
        if len(members) - n_valid < 2:
            raise ValueError(
                f"class {int(label)} has {len(members)} training items: holding out {n_valid} leaves fewer "
                "than 2 (use a smaller --val-fraction or more training data)"
            )
        valid.extend(members[:n_valid].tolist())
    valid = np.sort(np.asarray(valid))
    train = np.setdiff1d(np.arange(len(split.labels)), valid)
    return split.subset(train), split.subset(valid)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="VEGAS/AVE-layout HDF5 file (default: build AV-Digits)")
    parser.add_argument("--train-per-class", type=int, default=None, help="AV-Digits low-resource split")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="fraction of each training class held out for validation")
    parser.add_argument("--tuner", default="random", choices=TUNERS)
    parser.add_argument("--trials", type=int, default=10, help="trials to run (an upper bound for Hyperband)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial (Hyperband: the most per model)")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband's reduction factor")
    parser.add_argument("--steps", type=int, default=20, help="training steps per epoch")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="class-balanced training batch (default: the preset's recipe, at most the split)")
    parser.add_argument("--preset", default="aadml_avdigits", help="the fixed configuration (catalogue name or folder)")
    parser.add_argument("--loss", default=None, choices=LOSSES, help="metric loss (default: the preset's)")
    parser.add_argument("--tune", default=None,
                        help="hyperparameters to search, comma-separated (default: all of AADML_SEARCH_SPACE)")
    parser.add_argument("--out", default="runs/tune_aadml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="discard a previous search in --out")
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="keras-tuner / fit verbosity")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if not 0.0 < args.val_fraction < 1.0:
        parser.error(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    if args.batch_size is not None and args.batch_size < 4:
        parser.error(f"--batch-size must be >= 4 (2 classes x 2 items), got {args.batch_size}")
    if args.train_per_class is not None and args.train_per_class < 3:
        parser.error(f"--train-per-class must be >= 3 (2 to train on, 1 to validate), got {args.train_per_class}")

    import keras
    import keras_tuner

    from kerasadml.data.av.dataset import make_av_dataset
    from kerasadml.data.av.features import load_av_hdf5
    from kerasadml.tuning import AADML_SEARCH_SPACE, AADMLHyperModel
    from kerasadml.retrieval.evaluation import format_table as format_retrieval_table
    from kerasadml.zoo.presets import preset_config, preset_recipe

    tune = parse_tune(parser, args.tune, AADML_SEARCH_SPACE)
    searched = tune or list(AADML_SEARCH_SPACE)
    try:
        config = preset_config(args.preset, "AADML", drop=searched)
    except ValueError as error:
        parser.error(f"--preset: {error}")

    data = args.data
    if data is None:
        from kerasadml.data.av.digits import build_av_digits

        per_class = "all" if args.train_per_class is None else args.train_per_class
        data = os.path.join(args.out, f"avdigits_{per_class}.h5")
        if not os.path.exists(data):
            build_av_digits(data, train_per_class=args.train_per_class, seed=0)
    dataset = load_av_hdf5(data)
    try:
        train, valid = hold_out(dataset.train, args.val_fraction, args.seed)
    except ValueError as error:
        parser.error(str(error))

    recipe = {"batch_size": 64, **preset_recipe(args.preset)}
    batch_size = args.batch_size or min(recipe["batch_size"], len(train))
    keras.utils.set_random_seed(args.seed)
    try:
        train_ds = make_av_dataset(train, batch_size=batch_size, seed=args.seed)
    except ValueError as error:
        parser.error(f"--batch-size {batch_size}: {error}")

    config.update(audio_dim=dataset.audio_dim, visual_dim=dataset.visual_dim, num_classes=dataset.num_classes)
    if args.loss:
        config["loss"] = args.loss
    hypermodel = AADMLHyperModel(
        valid, config=config, adapt_split=train, max_k=min(8, batch_size - 1), tune=tune
    )
    print(
        f"AADML {args.preset} ({config.get('loss', 'aa_triplet')}): {len(train)} training / {len(valid)} "
        f"validation / {len(dataset.test)} test pairs, {dataset.num_classes} classes, batches of {batch_size}; "
        f"data {data}; backend {keras.backend.backend()}"
    )

    objective = keras_tuner.Objective("val_map", "max")
    project = f"aadml_{args.tuner}"
    tuner = make_tuner(
        args.tuner, hypermodel, objective, trials=args.trials, epochs=args.epochs, factor=args.factor,
        seed=args.seed, directory=os.path.join(args.out, "tuner"), project_name=project, overwrite=args.overwrite,
    )
    print(f"{type(tuner).__name__}: up to {args.trials} trials, {args.epochs} epoch(s) x {args.steps} steps, "
          f"in {os.path.join(args.out, 'tuner', project)}")
    tuner.search(train_ds, epochs=args.epochs, steps_per_epoch=args.steps, shuffle=False, verbose=args.verbose)

    found = report_best(tuner, objective)
    if found is None:
        return 1
    best, values, model = found
    test = model.evaluate(dataset.test)
    print(format_retrieval_table(test, title=f"best model on the test split ({len(dataset.test)} pairs)"))
    folder = model.save_to_preset(
        os.path.join(args.out, "best"),
        info={
            "tuning": tuning_info(
                args, best, objective, values,
                data=os.fspath(data), val_fraction=args.val_fraction, batch_size=batch_size,
                test={k: float(test[k]) for k in ("MAP_A2V", "MAP_V2A", "MAP", "R@1", "R@5", "R@10")},
            )
        },
    )
    print(f"best model preset written to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
