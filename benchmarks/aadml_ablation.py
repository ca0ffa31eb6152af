"""AADML ablation on AV-Digits: plain vs anchor-aware losses, k, attention vs mean.

Runs every configuration on a low-resource split (few training pairs per class) and on the
full split, for several seeds, and prints MAP (mean of A2V and V2A, whole test gallery) as
mean ± std over seeds.

    python benchmarks/aadml_ablation.py --seeds 0,1,2 --low-resource 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

CONFIGS = [
    ("triplet", dict(loss="triplet")),
    ("AA-triplet k=3", dict(loss="aa_triplet", k=3)),
    ("contrastive", dict(loss="contrastive")),
    ("AA-contrastive k=3", dict(loss="aa_contrastive", k=3)),
    ("AA-triplet k=1", dict(loss="aa_triplet", k=1)),
    ("AA-triplet k=5", dict(loss="aa_triplet", k=5)),
    ("AA-triplet k=7", dict(loss="aa_triplet", k=7)),
    ("AA-triplet k=3 mean", dict(loss="aa_triplet", k=3, aggregation="mean")),
    ("AA-contrastive k=3 mean", dict(loss="aa_contrastive", k=3, aggregation="mean")),
]


def run_one(dataset, overrides, seed, epochs, steps, batch_size):
    import keras

    from kerasadml.data.av.dataset import make_av_dataset
    from kerasadml.zoo.aadml import AADML
    from kerasadml.zoo.catalogue import PRESET_CONFIGS

    keras.utils.set_random_seed(seed)
    model = AADML(**{**PRESET_CONFIGS["aadml_avdigits"], **overrides})
    model.adapt(dataset.train)
    batch = min(batch_size, len(dataset.train.labels))
    model.compile(optimizer="auto")
    model.fit(make_av_dataset(dataset.train, batch_size=batch, seed=seed), epochs=epochs, steps_per_epoch=steps, verbose=0)
    return model.evaluate(dataset.test)["MAP"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/aadml_ablation")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--low-resource", type=int, default=10, help="training pairs per class of the low-resource split")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=60)
    parser.add_argument("--configs", default=None, help="comma-separated config indices (default: all)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import keras

    from kerasadml.data.av.digits import build_av_digits
    from kerasadml.data.av.features import load_av_hdf5

    os.makedirs(args.out, exist_ok=True)
    splits = {}
    for name, per_class in (("low", args.low_resource), ("full", None)):
        path = os.path.join(args.out, f"avdigits_{name}.h5")
        if not os.path.exists(path):
            build_av_digits(path, train_per_class=per_class, seed=0, progress=False)
        splits[name] = load_av_hdf5(path)
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = [CONFIGS[int(i)] for i in args.configs.split(",")] if args.configs else CONFIGS
    rows = []
    start = time.time()
    for label, overrides in configs:
        row = {"config": label}
        for split_name, dataset in splits.items():
            maps = [run_one(dataset, overrides, s, args.epochs, args.steps_per_epoch, args.batch_size) for s in seeds]
            row[split_name] = maps
        rows.append(row)
        print(f"done: {label} ({time.time() - start:.0f} s)", flush=True)

    low_n = len(splits["low"].train.labels)
    full_n = len(splits["full"].train.labels)
    print()
    print(
        f"AADML ablation on AV-Digits (test: {len(splits['full'].test.labels)} pairs, unseen voices), MAP % "
        f"mean ± std over seeds {seeds}; {args.epochs} epochs x {args.steps_per_epoch} steps, batch "
        f"{args.batch_size}; backend {keras.backend.backend()}, {platform.machine()} {os.cpu_count()} cores"
    )
    header = f"{'config':<26}{f'low-resource ({low_n} train)':>26}{f'full ({full_n} train)':>22}"
    print(header)
    print("-" * len(header))
    for row in rows:
        low, full = np.array(row["low"]) * 100, np.array(row["full"]) * 100
        print(f"{row['config']:<26}{low.mean():>18.2f} ± {low.std():<5.2f}{full.mean():>14.2f} ± {full.std():<5.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
