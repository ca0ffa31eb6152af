"""Enroll keywords as text, calibrate the threshold on a dev set, and detect them in audio.

    python examples/enroll_and_detect.py                       # shipped adml_tiny on a tiny SynthPhrase build
    python examples/enroll_and_detect.py --model runs/train_adml/model --audio a.wav b.wav --keywords "hello,stop"
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="adml_tiny", help="preset name or folder")
    parser.add_argument("--keywords", default=None, help="comma-separated keywords (default: from the dev data)")
    parser.add_argument("--audio", nargs="*", default=None, help="clips to scan (default: the dev data's clips)")
    parser.add_argument("--out", default="runs/enroll_and_detect")
    args = parser.parse_args(argv)

    from kerasadml.zoo import ADML

    model = ADML.from_preset(args.model)
    if args.audio and args.keywords:
        detector = model.keyword_detector([k.strip() for k in args.keywords.split(",")])
        for result in detector.detect(args.audio):
            print(result["file"], "->", result["detected"] or "-", f"(best: {result['best']})")
        return 0

    # No input given: enroll the test keywords of a tiny SynthPhrase build (unseen in training),
    # calibrate on half of its clips, detect on the other half.
    from kerasadml.data.speech.libriphrase import read_libriphrase_csv, training_items
    from kerasadml.data.speech.synthphrase import build_synthphrase

    data = os.path.join(args.out, "data")
    build_synthphrase(data, size="tiny", seed=1, progress=False)
    items = training_items(read_libriphrase_csv(os.path.join(data, "synthphrase_test.csv")))
    detector = model.keyword_detector(items.class_texts)
    half = len(items) // 2
    threshold = detector.calibrate(items.paths[:half], items.texts[:half])
    print(f"enrolled {len(items.class_texts)} keywords; threshold at the dev EER: {threshold:.3f}")
    hits = 0
    for path, text, result in zip(items.paths[half:], items.texts[half:], detector.detect(items.paths[half:])):
        hits += result["best"] == text
        print(f"{os.path.basename(path)}: said {text!r}, detected {result['detected'] or '-'}")
    print(f"best-scoring keyword correct for {hits}/{len(items) - half} clips")
    detector.save(os.path.join(args.out, "detector"))
    print(f"detector (model + keywords + threshold) saved to {os.path.join(args.out, 'detector')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
