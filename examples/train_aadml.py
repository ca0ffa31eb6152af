"""Train AADML on VEGAS/AVE features (HDF5), or on AV-Digits when no file is given.

    python examples/train_aadml.py                                  # builds AV-Digits, trains, evaluates
    python examples/train_aadml.py --data vegas_feature.h5 --preset aadml_vegas --loss aa_contrastive
    python examples/train_aadml.py --epochs 1 --steps 3             # smallest run
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="VEGAS/AVE-layout HDF5 file (default: build AV-Digits)")
    parser.add_argument("--preset", default="aadml_avdigits")
    parser.add_argument("--loss", default="aa_triplet", choices=["aa_triplet", "aa_contrastive", "triplet", "contrastive"])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--train-per-class", type=int, default=None, help="AV-Digits low-resource split")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=60)
    parser.add_argument("--out", default="runs/train_aadml")
    args = parser.parse_args(argv)

    from kerasadml.retrieval.evaluation import format_table as format_retrieval_table
    from kerasadml.retrieval.training import train_aadml_from_h5

    data = args.data
    if data is None:
        from kerasadml.data.av.digits import build_av_digits

        data = os.path.join(args.out, "avdigits.h5")
        if not os.path.exists(data):
            build_av_digits(data, train_per_class=args.train_per_class, seed=0)
    model, report = train_aadml_from_h5(
        args.preset,
        data,
        out_dir=args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        batch_size=args.batch_size,
        overrides={"loss": args.loss, "k": args.k},
    )
    print(format_retrieval_table(report["test"], title=f"{args.preset} ({args.loss}, k={args.k}) on {data}"))
    # Retrieval for a user: the 5 visual items closest to the first 3 audio queries.
    from kerasadml.data.av.features import load_av_hdf5

    test = load_av_hdf5(data).test
    indices, scores = model.retrieve(test.audio[:3], test.visual, top_k=5)
    for q, (idx, sc) in enumerate(zip(indices, scores)):
        print(f"audio query {q} (label {test.labels[q]}): visual {idx.tolist()} labels {test.labels[idx].tolist()}")
    print(f"model preset written to {os.path.join(args.out, 'model')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
