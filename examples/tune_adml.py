"""Hyperparameter search for ADML with keras-tuner, on LibriPhrase-format CSVs or SynthPhrase.

    python examples/tune_adml.py                                     # SynthPhrase small, random search
    python examples/tune_adml.py --tuner bayesian --trials 30 --epochs 5 --steps 100
    python examples/tune_adml.py --tuner hyperband --epochs 9 --factor 3     # up to 9 epochs per model
    python examples/tune_adml.py --data train_100h.csv --valid libriphrase_diffspk_all_1word.csv \\
        --audio-root LibriPhrase/ --preset adml_base --tune lambda_adv,lambda_phn,learning_rate
    python examples/tune_adml.py --size tiny --trials 2 --epochs 1 --steps 2   # smallest run

Searched (``kerasadml.tuning.ADMLHyperModel``; ranges in ``ADML_SEARCH_SPACE``): the
reversal strength ``lambda_adv``, the phoneme-loss weight ``lambda_phn``, SphereFace2's
margin and scale, the AdaMS initial values and the learning rate; everything else comes
from ``--preset``. Every trial trains on the training CSV and is scored by the EER of
``cos(ea, et)`` on the validation pairs (``val_eer``, mean of LP_E and LP_H, lower is
better). SynthPhrase has no development split: its test CSV (unseen keywords) is then the
validation set, so report final numbers on data the search did not see.

The tuner's state lives in ``<out>/tuner/adml_<tuner>``: running the same command again
resumes the search (finished trials are kept); ``--overwrite`` starts afresh. At the end
the trials are listed best first and the best model is written as a preset folder,
``<out>/best``, loadable with ``ADML.from_preset("<out>/best")``.
"""

from __future__ import annotations

import argparse
import math
import os

TUNERS = ("random", "bayesian", "hyperband")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:.4g}"


def trial_table(tuner, objective: str) -> str:
    """Every trial of ``tuner`` (id, hyperparameter values, objective, status), best first."""
    direction = tuner.oracle.objective.direction
    trials = list(tuner.oracle.trials.values())

    def order(trial):
        score = trial.score
        if trial.status != "COMPLETED" or score is None or not math.isfinite(score):
            return (1, 0.0, trial.trial_id)
        return (0, score if direction == "min" else -score, trial.trial_id)

    trials.sort(key=order)
    names: list[str] = []
    for trial in trials:
        for name in trial.hyperparameters.values:
            # Hyperband's bookkeeping: show the epochs trained and the trial resumed from.
            if name.startswith("tuner/") and name not in ("tuner/epochs", "tuner/trial_id"):
                continue
            if name not in names:
                names.append(name)
    header = ["trial"] + [n.replace("tuner/trial_id", "resumes").replace("tuner/", "") for n in names]
    header += [objective, "status"]
    rows = []
    for trial in trials:
        values = trial.hyperparameters.values
        score = trial.metrics.get_last_value(objective) if trial.metrics.exists(objective) else None
        rows.append([trial.trial_id] + [_fmt(values.get(n)) for n in names] + [_fmt(score), trial.status])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def make_tuner(kind: str, hypermodel, objective, *, trials: int, epochs: int, factor: int, seed: int,
               directory: str, project_name: str, overwrite: bool):
    """A keras-tuner tuner; ``trials`` caps Hyperband's trials too (its brackets decide the rest)."""
    import keras_tuner

    common = {"objective": objective, "seed": seed, "directory": directory, "project_name": project_name,
              "overwrite": overwrite}
    if kind == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=trials, **common)
    if kind == "bayesian":
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=trials, **common)
    tuner = keras_tuner.Hyperband(hypermodel, max_epochs=epochs, factor=factor, **common)
    tuner.oracle.max_trials = trials  # the Oracle stops creating trials past max_trials
    return tuner


def parse_tune(parser: argparse.ArgumentParser, text: str | None, space) -> list[str] | None:
    """``--tune a,b``: the names to search (``None``: all of ``space``); unknown names are an error."""
    if not text:
        return None
    tune = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(tune) - set(space))
    if unknown:
        parser.error(f"--tune: unknown hyperparameters {unknown}; known: {sorted(space)}")
    return tune


def report_best(tuner, objective):
    """Print the trial table (best first) and the best trial; ``(trial, values, model)`` of
    the best trial, or ``None`` (printed) when no trial completed."""
    print(f"\ntrials ({objective.name}, {objective.direction}), best first:")
    print(trial_table(tuner, objective.name))
    best_trials = tuner.oracle.get_best_trials(1)
    if not best_trials or best_trials[0].score is None:
        print("no trial completed: nothing to save")
        return None
    best = best_trials[0]
    values = {k: v for k, v in best.hyperparameters.values.items() if not k.startswith("tuner/")}
    print(f"\nbest trial {best.trial_id}: {objective.name} = {best.score:.4f}")
    for name, value in values.items():
        print(f"  {name} = {_fmt(value)}")
    return best, values, tuner.load_model(best)


def tuning_info(args, best, objective, values, **extra) -> dict:
    """What a best-model preset records about the search that chose it (``metadata.json``)."""
    import keras

    return {
        "tuner": args.tuner,
        "trial_id": best.trial_id,
        "objective": objective.name,
        "score": float(best.score),
        "hyperparameters": values,
        "preset": str(args.preset),
        "epochs": args.epochs,
        "steps_per_epoch": args.steps,
        "backend": keras.backend.backend(),
        **extra,
    }


def check_common_args(parser: argparse.ArgumentParser, args) -> None:
    for name in ("trials", "epochs", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.factor < 2:
        parser.error(f"--factor must be >= 2, got {args.factor}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="training CSV(s), comma-separated, or a SynthPhrase folder (default: build SynthPhrase)")
    parser.add_argument("--valid", default=None,
                        help="validation CSV(s), comma-separated (default: the SynthPhrase folder's test CSV)")
    parser.add_argument("--audio-root", default=None, help="folder the CSVs' audio paths are relative to")
    parser.add_argument("--size", default="small", choices=["tiny", "small"], help="SynthPhrase size when no --data")
    parser.add_argument("--tuner", default="random", choices=TUNERS)
    parser.add_argument("--trials", type=int, default=6, help="trials to run (an upper bound for Hyperband)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per trial (Hyperband: the most per model)")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband's reduction factor")
    parser.add_argument("--steps", type=int, default=20, help="training steps per epoch")
    parser.add_argument("--keywords-per-batch", type=int, default=None,
                        help="keywords per batch (default: the preset's recipe, at most the keywords present)")
    parser.add_argument("--preset", default="adml_tiny", help="the fixed configuration (catalogue name or folder)")
    parser.add_argument("--tune", default=None,
                        help="hyperparameters to search, comma-separated (default: all of ADML_SEARCH_SPACE)")
    parser.add_argument("--out", default="runs/tune_adml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="discard a previous search in --out")
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="keras-tuner / fit verbosity")
    args = parser.parse_args(argv)
    check_common_args(parser, args)
    if args.keywords_per_batch is not None and args.keywords_per_batch < 2:
        parser.error(f"--keywords-per-batch must be >= 2 (in-batch metric losses), got {args.keywords_per_batch}")

    import keras
    import keras_tuner

    from kerasadml.data.speech.libriphrase import read_libriphrase_csv, training_items
    from kerasadml.tuning import ADML_SEARCH_SPACE, ADMLHyperModel
    from kerasadml.zoo.presets import preset_config, preset_recipe
    from kerasadml.kws.training import kws_training_data, resolve_kws_csvs

    tune = parse_tune(parser, args.tune, ADML_SEARCH_SPACE)
    searched = tune or list(ADML_SEARCH_SPACE)
    try:
        config = preset_config(args.preset, "ADML", drop=["num_keywords", *searched])
    except ValueError as error:
        parser.error(f"--preset: {error}")

    data, valid = args.data, args.valid
    if data is None:
        from kerasadml.data.speech.synthphrase import build_synthphrase

        data = os.path.join(args.out, "data")
        build_synthphrase(data, size=args.size, seed=0)
    if valid is None:
        if not os.path.isdir(data):
            parser.error("--valid is required when --data names CSV files (a SynthPhrase folder has its test CSV)")
        valid = data
    train_csvs = resolve_kws_csvs(data, "train")
    valid_csvs = resolve_kws_csvs(valid, "test")

    recipe = {"keywords_per_batch": 16, "clips_per_keyword": 2, **preset_recipe(args.preset)}
    num_keywords = training_items(read_libriphrase_csv(train_csvs), audio_root=args.audio_root).num_classes
    keywords_per_batch = args.keywords_per_batch or min(recipe["keywords_per_batch"], num_keywords)
    if keywords_per_batch > num_keywords:
        parser.error(f"--keywords-per-batch={keywords_per_batch} but the training data have {num_keywords} keywords")

    keras.utils.set_random_seed(args.seed)
    hypermodel = ADMLHyperModel(
        num_keywords=num_keywords,
        validation_data=valid_csvs,
        audio_root=args.audio_root,
        config=config,
        tune=tune,
    )
    # One audio bucket: one batch shape, so the training step compiles once per trial.
    dataset, info, items = kws_training_data(
        train_csvs,
        hypermodel.encode_text,
        audio_root=args.audio_root,
        keywords_per_batch=keywords_per_batch,
        clips_per_keyword=recipe["clips_per_keyword"],
        seed=args.seed,
        audio_buckets=(32000,),
    )
    print(
        f"ADML {args.preset}: {items.num_classes} keywords, {len(items)} training clips "
        f"({info.skipped} skipped), batches of {keywords_per_batch} x {recipe['clips_per_keyword']}; "
        f"validation: {', '.join(valid_csvs)}; backend {keras.backend.backend()}"
    )

    objective = keras_tuner.Objective("val_eer", "min")
    tuner = make_tuner(
        args.tuner, hypermodel, objective, trials=args.trials, epochs=args.epochs, factor=args.factor,
        seed=args.seed, directory=os.path.join(args.out, "tuner"), project_name=f"adml_{args.tuner}",
        overwrite=args.overwrite,
    )
    print(f"{type(tuner).__name__}: up to {args.trials} trials, {args.epochs} epoch(s) x {args.steps} steps, "
          f"in {os.path.join(args.out, 'tuner', f'adml_{args.tuner}')}")
    tuner.search(dataset, epochs=args.epochs, steps_per_epoch=args.steps, shuffle=False, verbose=args.verbose)

    found = report_best(tuner, objective)
    if found is None:
        return 1
    best, values, model = found
    folder = model.save_to_preset(
        os.path.join(args.out, "best"),
        info={
            "tuning": tuning_info(
                args, best, objective, values,
                train=train_csvs, valid=valid_csvs, keywords_per_batch=keywords_per_batch,
            )
        },
    )
    print(f"best model preset written to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
