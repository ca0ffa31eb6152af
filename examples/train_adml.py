"""Train ADML on LibriPhrase-format CSVs, or on SynthPhrase when none are given.

    python examples/train_adml.py                                       # SynthPhrase small, adml_tiny
    python examples/train_adml.py --train train_100h.csv --test libriphrase_diffspk_all_1word.csv \\
        --audio-root LibriPhrase/ --preset adml_base --epochs 50 --steps 500
    python examples/train_adml.py --size tiny --epochs 1 --steps 2      # smallest run
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=None, help="training CSV(s), comma-separated (default: build SynthPhrase)")
    parser.add_argument("--test", default=None, help="test CSV(s), comma-separated")
    parser.add_argument("--audio-root", default=None)
    parser.add_argument("--size", default="small", help="SynthPhrase size when no CSV is given")
    parser.add_argument("--preset", default="adml_tiny")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--keywords-per-batch", type=int, default=None)
    parser.add_argument("--out", default="runs/train_adml")
    args = parser.parse_args(argv)

    from kerasadml.kws.evaluation import evaluate_libriphrase, format_table
    from kerasadml.kws.training import resolve_kws_csvs, train_adml_from_csv

    train, test = args.train, args.test
    if train is None:
        from kerasadml.data.speech.synthphrase import build_synthphrase

        data = os.path.join(args.out, "data")
        build_synthphrase(data, size=args.size, seed=0)
        train, test = data, data
    model, report = train_adml_from_csv(
        args.preset,
        train,
        out_dir=args.out,
        audio_root=args.audio_root,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        keywords_per_batch=args.keywords_per_batch,
    )
    print(f"trained {report['parameters']:,} parameters in {report['train_seconds']} s")
    if test:
        result = evaluate_libriphrase(model, resolve_kws_csvs(test, "test"), audio_root=args.audio_root)
        print(format_table(result))
    print(f"model preset written to {os.path.join(args.out, 'model')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
