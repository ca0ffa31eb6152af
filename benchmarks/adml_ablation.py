"""The ADML paper's ablation on SynthPhrase, same training budget per row.

Rows: utterance-level relational proxy loss only (baseline); + phoneme-level AsyP+AdaMS;
+ MAL at utterance level; + MAL at both levels; + SphereFace2 (full ADML).
Prints EER and AUC on LP_E and LP_H (unseen keywords, unseen voices) for each row.

    python benchmarks/adml_ablation.py --size small --epochs 6 --steps-per-epoch 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

ROWS = [
    ("utt RP only (baseline)", dict(phoneme_loss="none", mal="none", keyword_loss="none", mm_weight=0.0)),
    ("+ phn AsyP+AdaMS", dict(phoneme_loss="asyp_adams", mal="none", keyword_loss="none")),
    ("+ MAL utt", dict(phoneme_loss="asyp_adams", mal="utterance", keyword_loss="none")),
    ("+ MAL both", dict(phoneme_loss="asyp_adams", mal="both", keyword_loss="none")),
    ("+ SphereFace2 (ADML)", dict(phoneme_loss="asyp_adams", mal="both", keyword_loss="sphereface2")),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--data", default=None, help="existing SynthPhrase folder (default: build one)")
    parser.add_argument("--preset", default="adml_tiny")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps-per-epoch", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", default=None, help="comma-separated row indices to run (default: all)")
    parser.add_argument("--out", default="runs/adml_ablation")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import keras

    from kerasadml.data.synthphrase import build_synthphrase
    from kerasadml.zoo.kws_evaluation import evaluate_libriphrase
    from kerasadml.zoo.kws_training import train_adml_from_csv
    from kerasadml.zoo.training import resolve_kws_csvs

    data = args.data or os.path.join(args.out, "data")
    if not args.data:
        build_synthphrase(data, size=args.size, seed=args.seed, progress=False)
    test_csvs = resolve_kws_csvs(data, "test")
    chosen = [ROWS[int(i)] for i in args.rows.split(",")] if args.rows else ROWS
    results = []
    for name, overrides in chosen:
        start = time.time()
        model, report = train_adml_from_csv(
            args.preset,
            data,
            out_dir=os.path.join(args.out, name.replace(" ", "_").replace("+", "p")),
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            seed=args.seed,
            verbose=0,
            overrides=overrides,
        )
        result = evaluate_libriphrase(model, test_csvs, progress=False)
        results.append({"row": name, "train_seconds": report["train_seconds"], **result})
        print(f"done: {name} in {time.time() - start:.0f} s", flush=True)

    print()
    print(
        f"ADML ablation on SynthPhrase {args.size} ({args.preset}, {args.epochs} epochs x "
        f"{args.steps_per_epoch} steps, seed {args.seed}, backend {keras.backend.backend()}, "
        f"{platform.machine()} {os.cpu_count()} cores)"
    )
    header = f"{'row':<24}{'LP_E EER%':>10}{'LP_E AUC%':>10}{'LP_H EER%':>10}{'LP_H AUC%':>10}{'train s':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['row']:<24}{100 * r['LP_E']['EER']:>10.2f}{100 * r['LP_E']['AUC']:>10.2f}"
            f"{100 * r['LP_H']['EER']:>10.2f}{100 * r['LP_H']['AUC']:>10.2f}{r['train_seconds']:>9.0f}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
