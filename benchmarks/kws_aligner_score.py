"""Would a phoneme-level score from the aligner help the utterance cosine on hard negatives?

Issue #11's optional item: a second score from the cross-attention aligner, fused with
the utterance cosine ``cos(ea, et)`` at detection time, kept only if it lowers the LP_H
EER. For a sample of a SynthPhrase (or LibriPhrase-format) test CSV's evaluation pairs
this prints the EER on LP_E and LP_H of

- ``utt``: the utterance cosine (what ``KeywordDetector`` and ``evaluate`` score);
- ``phn_mean`` / ``phn_min``: the mean / the minimum over the keyword's phonemes of the
  cosine between each phoneme's text vector and the audio the aligner attends to for it
  (``aligned``, docs/methods.md §1.4);
- ``(1 - w) utt + w phn_mean`` and ``(1 - w) utt + w phn_min`` for w in 0.25, 0.5, 0.75.

Each pair runs through the whole model (both towers and the aligner; pairs sorted by
clip length, batches of 64). Run from the repository root:

    KERAS_BACKEND=tensorflow python benchmarks/kws_aligner_score.py adml_small \
        --csv sp_large/synthphrase_test.csv --per-kind 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEIGHTS = (0.25, 0.5, 0.75)


def sample_pairs(pairs, per_kind: int, seed: int = 0):
    """Up to ``per_kind`` random pairs of each kind (positive, easy and hard negative)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for kind in ("positive", "easyneg", "hardneg"):
        index = np.flatnonzero(pairs.kind == kind)
        chosen.append(rng.choice(index, min(per_kind, len(index)), replace=False))
    keep = np.zeros(len(pairs), bool)
    keep[np.concatenate(chosen)] = True
    return pairs.subset(keep)


def unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-9)


def pair_scores(model, pairs, batch_size: int = 64) -> np.ndarray:
    """(N, 3): utterance cosine, mean and min phoneme-level aligner cosine of each pair."""
    from keras import ops

    from kerasadml.data.audio_io import load_audio

    audio_index, text_index = np.asarray(pairs.audio_index), np.asarray(pairs.text_index)
    # only the clips and texts of these pairs (a subset keeps the whole lists)
    waves = {a: load_audio(pairs.audio_paths[a]) for a in np.unique(audio_index)}
    ids = {t: model.encode_text(pairs.texts[t]) for t in np.unique(text_index)}
    order = np.argsort([len(waves[a]) for a in audio_index], kind="stable")
    out = np.zeros((len(pairs), 3), "float32")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        clips = [waves[audio_index[i]] for i in rows]
        phones = [ids[text_index[i]] for i in rows]
        width = int(np.ceil(max(map(len, clips)) / 4000) * 4000)
        depth = int(np.ceil(max(map(len, phones)) / 8) * 8)
        audio = np.zeros((len(rows), width), "float32")
        phonemes = np.zeros((len(rows), depth), "int32")
        for j, (clip, phone) in enumerate(zip(clips, phones)):
            audio[j, : len(clip)] = clip
            phonemes[j, : len(phone)] = phone
        lengths = np.array([len(c) for c in clips], "int32")
        result = model({"audio": audio, "audio_length": lengths, "phonemes": phonemes}, training=False)
        ea = unit(ops.convert_to_numpy(result["audio_embedding"]))
        et = unit(ops.convert_to_numpy(result["text_embedding"]))
        aligned = unit(ops.convert_to_numpy(result["aligned"]))
        text = unit(ops.convert_to_numpy(result["text_sequence"]))
        mask = ops.convert_to_numpy(result["text_mask"]).astype(bool)
        per_phoneme = np.sum(aligned * text, axis=-1)
        out[rows, 0] = np.sum(ea * et, axis=-1)
        out[rows, 1] = np.where(mask, per_phoneme, 0.0).sum(-1) / mask.sum(-1)
        out[rows, 2] = np.where(mask, per_phoneme, np.inf).min(-1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="trained ADML preset (name or folder)")
    parser.add_argument("--csv", required=True, help="LibriPhrase-format test CSV")
    parser.add_argument("--per-kind", type=int, default=3000, help="pairs sampled per kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from kerasadml.data.speech.libriphrase import (
        PROTOCOL_SUBSETS,
        evaluation_pairs,
        read_libriphrase_csv,
    )
    from kerasadml.metrics.detection import eer
    from kerasadml.zoo import ADML

    model = ADML.from_preset(args.preset)
    pairs = sample_pairs(evaluation_pairs(read_libriphrase_csv([args.csv])), args.per_kind, args.seed)
    start = time.time()
    scores = pair_scores(model, pairs)
    columns = {"utt": scores[:, 0], "phn_mean": scores[:, 1], "phn_min": scores[:, 2]}
    for w in WEIGHTS:
        columns[f"{1 - w:g} utt + {w:g} phn_mean"] = (1 - w) * scores[:, 0] + w * scores[:, 1]
        columns[f"{1 - w:g} utt + {w:g} phn_min"] = (1 - w) * scores[:, 0] + w * scores[:, 2]
    print(f"{args.preset} on {args.csv}: {len(pairs):,} pairs ({args.per_kind:,} per kind, seed {args.seed}), "
          f"scored in {time.time() - start:.0f} s")
    print("| score | LP_E EER % | LP_H EER % |\n|---|---|---|")
    for name, values in columns.items():
        cells = []
        for subset in ("LP_E", "LP_H"):
            keep = np.isin(pairs.kind, PROTOCOL_SUBSETS[subset])
            cells.append(f"{100 * eer(pairs.target[keep], values[keep]):.2f}")
        print(f"| {name} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
