"""The figures of a trained ADML preset's model card, from one command.

Prints, for a trained preset (name or folder) and the SynthPhrase build it was trained on:

1. the LibriPhrase-protocol table (LP_E / LP_H: EER, AUC, AP) on the build's **test** split
   (keywords and voices never heard in training) and on the first ``--train-rows`` rows of
   its **training** CSV (how well it fits what it was trained on; the gap between the two
   is the generalisation gap);
2. the aligner's attention on test clips (``evaluate_alignment``: monotonic fraction, peak
   spread);
3. the "window" check: the word "window" spoken by every eSpeak NG voice variant of the
   test split (voices never heard in training, read from the test CSV's speakers) in three
   accents, scored against "window", "widow", "winter", "hello computer" with
   ``ADML.keyword_detector``; how often "window" scores highest, and where the misses go;
4. the share of the training gradient that each loss term sends to the audio and text
   encoders on a few training batches (``kerasadml.diagnostics.term_gradient_norms``).

Everything is written to ``--json`` too. Run from the repository root, e.g.:

    KERAS_BACKEND=tensorflow python benchmarks/kws_preset_card.py adml_small --data sp_large \
        --json card.json
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECK_WORD = "window"
CHECK_KEYWORDS = ("window", "widow", "winter", "hello computer")
CHECK_ACCENTS = ("en-us", "en", "en-gb-scotland")


def first_rows(csv_path: Path, rows: int, out_dir: Path) -> Path:
    """The header and the first ``rows`` rows of a CSV, written next to nothing the user
    owns (a temporary folder); audio paths stay relative to the build folder."""
    target = out_dir / f"first_{rows}_{csv_path.name}"
    with open(csv_path, newline="", encoding="utf-8") as src, open(target, "w", newline="", encoding="utf-8") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        for i, row in enumerate(reader):
            if i > rows:
                break
            writer.writerow(row)
    return target


def test_variants(test_csv: Path) -> list[str]:
    """The eSpeak NG voice variants of a SynthPhrase test split, from its speaker ids
    (``<accent>_<variant>``, ``default`` for the accent's own voice)."""
    variants = set()
    with open(test_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for column in ("anchor_spk", "comparison_spk"):
                speaker = row.get(column) or ""
                if "_" in speaker:
                    variant = speaker.split("_", 1)[1]
                    variants.add("" if variant == "default" else variant)
    return sorted(variants)


def window_check(model, variants: list[str]) -> dict:
    import numpy as np
    import soxr

    from kerasadml.data.espeak import ESpeak, Voice

    tts = ESpeak()
    detector = model.keyword_detector(list(CHECK_KEYWORDS), threshold=0.5)
    rows, winners = [], collections.Counter()
    for variant in variants:
        for accent in CHECK_ACCENTS:
            wave = tts.synthesize(CHECK_WORD, Voice(accent=accent, variant=variant), seed=0)
            wave = soxr.resample(wave, tts.sample_rate, 16000).astype(np.float32)
            scores = detector.detect([wave])[0]["scores"]
            best = max(scores, key=scores.get)
            winners[best] += 1
            rows.append({"variant": variant or "default", "accent": accent, "best": best,
                         "scores": {k: round(float(v), 3) for k, v in scores.items()}})
    return {"clips": len(rows), "right": winners[CHECK_WORD], "winners": dict(winners), "rows": rows}


def gradient_shares(model, data: Path, batches: int, seed: int, keywords_per_batch: int = 32) -> dict:
    import numpy as np

    from kerasadml.diagnostics import gradient_shares as shares_of, term_gradient_norms
    from kerasadml.kws.training import kws_training_data, resolve_kws_csvs

    dataset, _, _ = kws_training_data(resolve_kws_csvs(data, "train"), model.encode_text, family_size=4,
                                      keywords_per_batch=keywords_per_batch, clips_per_keyword=2, seed=seed)
    norms = collections.defaultdict(lambda: collections.defaultdict(list))
    for batch in dataset.take(batches).as_numpy_iterator():
        for group, terms in term_gradient_norms(model, batch).items():
            for term, value in terms.items():
                norms[group][term].append(float(value))
    mean = {group: {term: float(np.mean(v)) for term, v in terms.items()} for group, terms in norms.items()}
    return {"mean_norms": mean, "shares": shares_of(mean), "batches": batches}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", help="trained ADML preset: name or folder")
    parser.add_argument("--data", required=True, help="the SynthPhrase folder it was trained on")
    parser.add_argument("--train-rows", type=int, default=30000, help="training CSV rows to score")
    parser.add_argument("--alignment-clips", type=int, default=100)
    parser.add_argument("--gradient-batches", type=int, default=4, help="0: skip the gradient shares")
    parser.add_argument("--gradient-keywords", type=int, default=32, help="keywords per gradient batch")
    parser.add_argument("--json", default=None, help="also write everything here")
    args = parser.parse_args(argv)

    from kerasadml.kws.evaluation import evaluate_alignment, evaluate_libriphrase, format_table
    from kerasadml.zoo.adml import ADML

    data = Path(args.data)
    started = time.time()
    model = ADML.from_preset(args.preset)
    out: dict = {"preset": str(args.preset), "data": str(data)}
    with tempfile.TemporaryDirectory() as tmp:
        splits = {"test": data / "synthphrase_test.csv",
                  "train": first_rows(data / "synthphrase_train.csv", args.train_rows, Path(tmp))}
        for split, csv_path in splits.items():
            result = evaluate_libriphrase(model, csv_path, audio_root=data, progress=False)
            out[split] = {k: v for k, v in result.items() if k not in ("scores", "targets", "kinds")}
            title = "test split (keywords and voices unseen in training)" if split == "test" else \
                f"training split (first {args.train_rows:,} CSV rows)"
            print(format_table(result, title=f"{args.preset} on SynthPhrase {data.name}, {title}"), flush=True)
    out["alignment"] = evaluate_alignment(model, data / "synthphrase_test.csv", max_clips=args.alignment_clips)
    print("aligner on {clips} test clips: monotonic attention {monotonic:.2f}, peak spread {spread:.2f}".format(
        **out["alignment"]), flush=True)
    variants = test_variants(data / "synthphrase_test.csv")
    check = window_check(model, variants)
    out["window_check"] = check
    misses = {k: v for k, v in check["winners"].items() if k != CHECK_WORD}
    print(f'"{CHECK_WORD}" by {len(variants)} held-out eSpeak NG variants x {len(CHECK_ACCENTS)} accents: scored '
          f'highest on {check["right"]}/{check["clips"]} clips; misses: {misses or "none"}', flush=True)
    if args.gradient_batches > 0:
        grads = gradient_shares(model, data, args.gradient_batches, seed=1, keywords_per_batch=args.gradient_keywords)
        out["gradients"] = grads
        print("gradient share per loss term (of the norm each sends to the encoders, mean over "
              f"{grads['batches']} training batches):", flush=True)
        for group, terms in sorted(grads["shares"].items()):
            print(f"  {group}: " + ", ".join(f"{term} {100 * share:.1f} %" for term, share in terms.items()), flush=True)
    out["seconds"] = round(time.time() - started, 1)
    print(f"({out['seconds']:.0f} s)")
    if args.json:
        from kerasadml.atomic import atomic_write_json

        atomic_write_json(args.json, out, default=float)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
