"""The ADML paper's ablation on SynthPhrase, same training budget per row.

Rows, each a recipe (``train_adml_from_csv(recipe=...)``) and constructor switches: the
paper's configuration (relational proxy ``L_utt``, mean text pooling, dot-product aligner,
SphereFace2 at full weight; docs/methods.md §1.9) as the utterance-only baseline and as the
full ADML; then the package's default recipe (proxy softmax over all keyword texts,
keyword-family batches, attentive text pooling, cosine aligner, warm-ups; §1.10) with the
paper's terms added one by one. Prints EER/AUC on LP_E and LP_H of the test split (unseen
keywords and voices), LP_H EER on the training split (does the objective separate close
keywords it was trained on?) and the aligner's monotonic attention, per row and seed.

    python benchmarks/adml_ablation.py --size small --epochs 30 --steps-per-epoch 100 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

TERMS_OFF = dict(phoneme_loss="none", mal="none", keyword_loss="none")
ROWS = [
    ("paper: utt RP only", "paper", dict(TERMS_OFF, mm_weight=0.0)),
    ("paper: full ADML", "paper", {}),
    ("default: utt only", "default", dict(TERMS_OFF)),
    ("default: + phn AsyP+AdaMS", "default", dict(mal="none", keyword_loss="none")),
    ("default: + MAL both", "default", dict(keyword_loss="none")),
    ("default: full ADML", "default", {}),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--data", default=None, help="existing SynthPhrase folder (default: build one)")
    parser.add_argument("--preset", default="adml_tiny")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (each row runs once per seed)")
    parser.add_argument("--seed", type=int, default=0, help="SynthPhrase build seed")
    parser.add_argument("--rows", default=None, help="comma-separated row indices to run (default: all)")
    parser.add_argument("--out", default="runs/adml_ablation")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import keras

    from kerasadml.data.speech.synthphrase import build_synthphrase
    from kerasadml.kws.evaluation import evaluate_alignment, evaluate_libriphrase
    from kerasadml.kws.training import resolve_kws_csvs, train_adml_from_csv

    data = args.data or os.path.join(args.out, "data")
    if not args.data:
        build_synthphrase(data, size=args.size, seed=args.seed, progress=False)
    test_csvs = resolve_kws_csvs(data, "test")
    train_csvs = resolve_kws_csvs(data, "train")
    chosen = [ROWS[int(i)] for i in args.rows.split(",")] if args.rows else ROWS
    seeds = [int(x) for x in args.seeds.split(",")]
    results = []
    for name, recipe, overrides in chosen:
        for seed in seeds:
            start = time.time()
            model, report = train_adml_from_csv(
                args.preset,
                data,
                out_dir=os.path.join(args.out, f"{name.replace(' ', '_').replace('+', 'p').replace(':', '')}_s{seed}"),
                epochs=args.epochs,
                steps_per_epoch=args.steps_per_epoch,
                seed=seed,
                verbose=0,
                overrides=overrides,
                recipe=recipe,
            )
            result = evaluate_libriphrase(model, test_csvs, progress=False)
            train_result = evaluate_libriphrase(model, train_csvs, progress=False)
            alignment = evaluate_alignment(model, test_csvs, max_clips=60)
            results.append({"row": name, "seed": seed, "train_seconds": report["train_seconds"],
                            "train_LP_H": train_result["LP_H"], "alignment": alignment, **result})
            print(f"done: {name} seed {seed} in {time.time() - start:.0f} s", flush=True)

    print()
    print(
        f"ADML ablation on SynthPhrase {args.size} ({args.preset}, {args.epochs} epochs x "
        f"{args.steps_per_epoch} steps, seeds {args.seeds}, backend {keras.backend.backend()}, "
        f"{platform.machine()} {os.cpu_count()} cores)"
    )
    header = (f"{'row':<28}{'seed':>5}{'LP_E EER%':>10}{'LP_E AUC%':>10}{'LP_H EER%':>10}{'LP_H AUC%':>10}"
              f"{'train LP_H%':>12}{'monotonic':>10}{'train s':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['row']:<28}{r['seed']:>5}{100 * r['LP_E']['EER']:>10.2f}{100 * r['LP_E']['AUC']:>10.2f}"
            f"{100 * r['LP_H']['EER']:>10.2f}{100 * r['LP_H']['AUC']:>10.2f}{100 * r['train_LP_H']['EER']:>12.2f}"
            f"{r['alignment']['monotonic']:>10.2f}{r['train_seconds']:>9.0f}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
