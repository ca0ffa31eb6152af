"""The ``kerasadml`` command: demo, synth, synth-av, train, evaluate, detect, presets."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide TensorFlow's C++ start-up noise (CUDA probes)


def _write_json(path: str | os.PathLike, payload: dict) -> None:
    from kerasadml.atomic import atomic_write_json

    atomic_write_json(path, payload, sort_keys=True, default=float)


def _is_h5(path: str) -> bool:
    return str(path).lower().endswith((".h5", ".hdf5"))


def _load_model(spec: str):
    """A preset name, a preset folder or a ``.keras`` file -> model."""
    import keras

    from kerasadml.zoo import AADML, ADML
    from kerasadml.zoo.presets import PRESETS, CONFIG_FILE, resolve_preset

    if str(spec).endswith(".keras"):
        if not Path(spec).is_file():
            raise FileNotFoundError(f"no such model file: {spec}")
        return keras.saving.load_model(spec, safe_mode=True)
    if spec in PRESETS:
        cls = ADML if PRESETS[spec]["class"] == "ADML" else AADML
        return cls.from_preset(spec)
    folder = resolve_preset(spec)
    class_name = json.loads((folder / CONFIG_FILE).read_text()).get("class_name")
    return (ADML if class_name == "ADML" else AADML).from_preset(folder)


# ---------------------------------------------------------------- commands
def cmd_presets(args) -> int:
    from kerasadml.zoo.presets import list_presets

    for name, description in list_presets().items():
        print(f"{name:<16} {description}")
    return 0


def cmd_synth(args) -> int:
    from kerasadml.data.synthphrase import build_synthphrase

    summary = build_synthphrase(args.out, size=args.size, seed=args.seed, progress=not args.quiet)
    print(json.dumps(summary, indent=2, default=float))
    return 0


def cmd_synth_av(args) -> int:
    from kerasadml.data.av_digits import build_av_digits

    summary = build_av_digits(
        args.out, train_per_class=args.train_per_class, seed=args.seed, progress=not args.quiet
    )
    print(json.dumps(summary, indent=2, default=float))
    return 0


def cmd_train(args) -> int:
    from kerasadml.zoo.presets import PRESETS

    out = Path(args.out)
    if PRESETS.get(args.preset, {}).get("class") == "AADML" or _is_h5(args.data):
        from kerasadml.zoo.aadml_training import train_aadml_from_h5

        model, report = train_aadml_from_h5(
            args.preset,
            args.data,
            out_dir=out,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            batch_size=args.batch_size,
            seed=args.seed,
            init_weights=args.init_weights,
        )
        print(json.dumps(report, indent=2, default=float))
        return 0
    from kerasadml.zoo.kws_training import train_adml_from_csv

    model, report = train_adml_from_csv(
        args.preset,
        args.data,
        out_dir=out,
        audio_root=args.audio_root,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        keywords_per_batch=args.keywords_per_batch,
        clips_per_keyword=args.clips_per_keyword,
        seed=args.seed,
        init_weights=args.init_weights,
    )
    print(json.dumps(report, indent=2, default=float))
    return 0


def cmd_evaluate(args) -> int:
    model = _load_model(args.model)
    if _is_h5(args.data):
        from kerasadml.data.av_features import load_av_hdf5
        from kerasadml.zoo.aadml_training import format_retrieval_table

        dataset = load_av_hdf5(args.data, audio_dim=model.audio_dim, visual_dim=model.visual_dim)
        result = model.evaluate(dataset.test)
        print(format_retrieval_table(result))
    else:
        from kerasadml.zoo.kws_evaluation import evaluate_libriphrase, format_table
        from kerasadml.zoo.training import resolve_kws_csvs

        csvs = resolve_kws_csvs(args.data, split="test")
        result = evaluate_libriphrase(model, csvs, audio_root=args.audio_root, progress=not args.quiet)
        print(format_table(result, title=f"{args.model} on {', '.join(csvs)}"))
    if args.json:
        _write_json(args.json, result)
    return 0


def cmd_detect(args) -> int:
    from kerasadml.data.audio_io import AudioError, load_audio

    model = _load_model(args.model)
    keywords = [k.strip() for k in args.keywords.split(",") if k.strip()]
    if not keywords:
        raise SystemExit("detect: --keywords is empty")
    detector = model.keyword_detector(keywords, threshold=args.threshold)
    status = 0
    for path in args.audio:
        try:
            wave = load_audio(path)
        except AudioError as error:
            print(f"{path}: ERROR {error}", file=sys.stderr)
            status = 1
            continue
        result = detector.detect([wave])[0]
        scores = ", ".join(f"{k}={s:.3f}" for k, s in result["scores"].items())
        detected = ", ".join(result["detected"]) or "-"
        print(f"{path}: detected [{detected}]  scores: {scores}")
    return status


def cmd_demo(args) -> int:
    from kerasadml.zoo.demo import run_demo

    run_demo(
        out_dir=args.out,
        size=args.size,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        seed=args.seed,
        progress=not args.quiet,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasadml", description="Cross-modal deep metric learning: ADML keyword spotting, AADML retrieval."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build SynthPhrase, train adml_tiny, evaluate, plot (minutes on a CPU)")
    p.add_argument("--out", default="kerasadml_demo", help="output folder (data, model, plots, results.json)")
    p.add_argument("--size", default="small", help="SynthPhrase size (tiny, small, large)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset recipe)")
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="build a SynthPhrase dataset (LibriPhrase format)")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="small", choices=["tiny", "small", "large"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("synth-av", help="build the AV-Digits dataset (VEGAS HDF5 layout)")
    p.add_argument("--out", required=True, help="the .h5 file to write")
    p.add_argument("--train-per-class", type=int, default=None, help="low-resource split: training pairs per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_av)

    p = sub.add_parser("train", help="train a preset on LibriPhrase-format CSVs or an AV HDF5 file")
    p.add_argument("--preset", required=True, help="preset name or folder (see `kerasadml presets`)")
    p.add_argument("--data", required=True, help="SynthPhrase folder, CSV(s) (comma-separated) or .h5 file")
    p.add_argument("--out", required=True, help="output folder (the trained preset goes to OUT/model)")
    p.add_argument("--audio-root", default=None, help="folder the CSV audio paths are relative to")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--keywords-per-batch", type=int, default=None)
    p.add_argument("--clips-per-keyword", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="AADML batch size")
    p.add_argument("--init-weights", action="store_true", help="start from the preset's weights")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model (LP_E/LP_H, or retrieval MAP)")
    p.add_argument("model", help="preset name, preset folder or .keras file")
    p.add_argument("--data", required=True, help="LibriPhrase-format CSV(s)/SynthPhrase folder, or .h5")
    p.add_argument("--audio-root", default=None)
    p.add_argument("--json", default=None, help="also write the result as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("detect", help="detect enrolled keywords in audio files")
    p.add_argument("model", help="preset name, preset folder or .keras file")
    p.add_argument("--keywords", required=True, help='comma-separated keywords, e.g. "turn on,stop"')
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("audio", nargs="+")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("presets", help="list the preset catalogue")
    p.set_defaults(func=cmd_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    start = time.time()
    try:
        status = args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"kerasadml {args.command}: error: {error}", file=sys.stderr)
        return 2
    logging.getLogger(__name__).info("%s finished in %.1f s", args.command, time.time() - start)
    return status


if __name__ == "__main__":
    sys.exit(main())
