"""Speed of the keyword-spotting data path, stage by stage, on CPU.

Builds a SynthPhrase set in a temporary folder (or uses ``--data-dir``), then measures:

* synthesis: ``build_synthphrase`` (eSpeak NG, resampling, augmentation, wav writing);
* decode: ``load_audio`` one clip at a time, and with a thread pool;
* decode + features: ``load_audio`` then ``LogMelSpectrogram`` on padded batches
  (active Keras backend);
* training pipeline: iterating ``make_kws_training_dataset`` batches (in-memory cache,
  and decoding on the fly), after the cache is filled.

Every row gives clips/s and the ratio ``pipeline / training step``, where the training
step's consumption is measured in the same run by training ``adml_tiny`` for
``--train-steps`` steps on the same batches (or given with ``--train-step-clips-per-sec``):
the issue asks for at least 5, so that the pipeline is never the bottleneck.

Run from the repository root:

    KERAS_BACKEND=jax python benchmarks/data_pipeline.py    # small set, ~2-3 min on 2 cores
    python benchmarks/data_pipeline.py --size tiny          # seconds
    python benchmarks/data_pipeline.py --train-step-clips-per-sec 850 --out results.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from kerasadml.data.speech.dataset import DEFAULT_TRAINING_AUDIO_BUCKETS


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def measure_synthesis(out_dir: Path, size: str, workers: int, seed: int) -> dict:
    from kerasadml.data.speech.synthphrase import build_synthphrase

    started = time.perf_counter()
    summary = build_synthphrase(out_dir, size=size, seed=seed, progress=False, workers=workers)
    seconds = time.perf_counter() - started
    clips = summary["written"] + summary["reused"]
    audio_s = summary["hours"]["total"] * 3600
    return {"stage": f"synthesis ({size}, {workers} proc)", "clips": clips, "seconds": seconds,
            "audio_s": audio_s, "note": "reused existing clips" if summary["reused"] else ""}


def measure_decode(paths: list[str], threads: int) -> dict:
    from kerasadml.data.audio_io import load_audio

    started = time.perf_counter()
    if threads <= 1:
        waves = [load_audio(p) for p in paths]
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            waves = list(pool.map(load_audio, paths))
    seconds = time.perf_counter() - started
    audio_s = sum(w.shape[0] for w in waves) / 16000
    return {"stage": f"decode load_audio ({threads} thread{'s' if threads > 1 else ''})", "clips": len(paths),
            "seconds": seconds, "audio_s": audio_s, "note": ""}


def measure_features(paths: list[str], batch_size: int) -> dict:
    import keras

    from kerasadml.data.audio_io import load_audio
    from kerasadml.data.speech.dataset import DEFAULT_AUDIO_BUCKETS, _pad_audio

    try:
        from kerasadml.layers.log_mel import LogMelSpectrogram
    except ImportError as error:  # pragma: no cover - the layer ships with the package
        return {"stage": "decode + log-mel", "clips": 0, "seconds": 0.0, "audio_s": 0.0,
                "note": f"skipped: {error}"}
    layer = LogMelSpectrogram()
    warm, lengths = _pad_audio([np.zeros(16000, np.float32)] * batch_size, DEFAULT_AUDIO_BUCKETS, "crop")
    keras.ops.convert_to_numpy(layer(warm, lengths=lengths))  # build / trace once
    started = time.perf_counter()
    audio_s = 0.0
    for start in range(0, len(paths), batch_size):
        waves = [load_audio(p) for p in paths[start : start + batch_size]]
        audio_s += sum(w.shape[0] for w in waves) / 16000
        audio, lengths = _pad_audio(waves, DEFAULT_AUDIO_BUCKETS, "crop")
        keras.ops.convert_to_numpy(layer(audio, lengths=lengths))
    seconds = time.perf_counter() - started
    return {"stage": f"decode + log-mel ({keras.backend.backend()}, batch {batch_size})", "clips": len(paths),
            "seconds": seconds, "audio_s": audio_s, "note": ""}


#: The batching of the first version (independent keywords, 1 s / 2 s widths) and today's
#: default (keyword families, batches grouped by length, seven widths).
PIPELINES = {
    "v1 (independent keywords, 2 widths)": dict(
        family_size=1, group_by_length=False, audio_buckets=(16000, 32000), phoneme_buckets=(32,)
    ),
    "default (families, grouped by length)": dict(
        family_size=4, group_by_length=True, audio_buckets=DEFAULT_TRAINING_AUDIO_BUCKETS, phoneme_buckets=(16, 32)
    ),
}


def measure_pipeline(items, encode, cache_audio: bool, batches: int, k: int, m: int, hard_negatives=None,
                     pipeline: str = "default (families, grouped by length)") -> list[dict]:
    from kerasadml.data.speech.dataset import make_kws_training_dataset

    options = dict(PIPELINES[pipeline])
    started = time.perf_counter()
    dataset, info = make_kws_training_dataset(
        items.paths, items.texts, items.labels, encode_text=encode, keywords_per_batch=k,
        clips_per_keyword=m, cache_audio=cache_audio, hard_negatives=hard_negatives, **options,
    )
    setup = time.perf_counter() - started
    iterator = iter(dataset)
    next(iterator)  # start the pipeline (threads, first batch)
    started = time.perf_counter()
    audio_s = 0.0
    padded = 0
    for _ in range(batches):
        batch = next(iterator)
        audio_s += float(np.sum(batch["audio_length"])) / 16000
        padded += int(np.prod(batch["audio"].shape))
    seconds = time.perf_counter() - started
    mode = "cached" if info.cached else "on-the-fly decode"
    padding = 1.0 - audio_s * 16000 / max(padded, 1)
    rows = []
    if cache_audio:
        rows.append({"stage": "pipeline set-up (decode all into cache)", "clips": info.num_clips,
                     "seconds": setup, "audio_s": 0.0, "note": f"{info.cache_mb:.0f} MB"})
    rows.append({"stage": f"training batches, {pipeline} ({mode}, {k}x{m})", "clips": batches * info.batch_size,
                 "seconds": seconds, "audio_s": audio_s,
                 "note": f"padding {100 * padding:.1f} % of samples; skipped {info.skipped}"})
    return rows


def measure_train_step(items, encode, k: int, m: int, steps: int, warmup: int = 10, hard_negatives=None) -> float:
    """Clips/s that adml_tiny's training step consumes on this machine and backend
    (the pipeline must outrun it). Warm-up steps (compilation) are not timed."""
    import keras

    from kerasadml.data.speech.dataset import make_kws_training_dataset
    from kerasadml.zoo.adml import ADML
    from kerasadml.zoo.catalogue import PRESET_CONFIGS

    dataset, info = make_kws_training_dataset(
        items.paths, items.texts, items.labels, encode_text=encode, keywords_per_batch=k,
        clips_per_keyword=m, hard_negatives=hard_negatives, **PIPELINES["default (families, grouped by length)"],
    )
    model = ADML(**{**PRESET_CONFIGS["adml_tiny"], "num_keywords": items.num_classes})
    model.compile()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup, verbose=0)
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - started
    print(f"train step ({keras.backend.backend()}): {steps * info.batch_size / seconds:.1f} clips/s", flush=True)
    return steps * info.batch_size / seconds


def format_table(rows: list[dict], train_rate: float | None) -> str:
    header = ["stage", "clips", "seconds", "clips/s", "x real time"]
    if train_rate:
        header.append(f"/ train step ({train_rate:g} clips/s)")
    header.append("note")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        rate = _rate(row["clips"], row["seconds"])
        cells = [row["stage"], str(row["clips"]), f"{row['seconds']:.2f}", f"{rate:,.0f}",
                 f"{row['audio_s'] / row['seconds']:,.0f}" if row["audio_s"] and row["seconds"] else "-"]
        if train_rate:
            cells.append(f"{rate / train_rate:.2f}" if not row["stage"].startswith("pipeline set-up") else "-")
        cells.append(row.get("note", ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "large"],
                        help="SynthPhrase size to build and measure (default: small)")
    parser.add_argument("--data-dir", default=None,
                        help="build into (or reuse) this folder instead of a temporary one")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="synthesis processes (default: min(4, CPUs))")
    parser.add_argument("--decode-clips", type=int, default=1000, help="clips for the decode rows")
    parser.add_argument("--threads", type=int, default=min(32, 2 * (os.cpu_count() or 1)),
                        help="threads for the parallel decode row")
    parser.add_argument("--batches", type=int, default=50, help="training batches to time")
    parser.add_argument("--keywords-per-batch", type=int, default=16)
    parser.add_argument("--clips-per-keyword", type=int, default=2)
    parser.add_argument("--train-step-clips-per-sec", type=float, default=None,
                        help="clips/s one training step consumes; adds the pipeline / train-step ratio")
    parser.add_argument("--train-steps", type=int, default=20,
                        help="adml_tiny training steps to time for the ratio (0: skip; needs no --train-step-clips-per-sec)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)

    from kerasadml.data.speech.libriphrase import hard_negative_map, read_libriphrase_csv, training_items
    from kerasadml.data.speech.phonemizer import PhonemeVocabulary, Phonemizer

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.data_dir) if args.data_dir else Path(tmp) / f"synthphrase_{args.size}"
        rows = [measure_synthesis(out_dir, args.size, args.workers, args.seed)]
        csv_rows = read_libriphrase_csv(out_dir / "synthphrase_train.csv")
        items = training_items(csv_rows)
        hard_negatives = hard_negative_map(csv_rows)
        rng = np.random.default_rng(0)
        sample = [items.paths[i] for i in rng.permutation(len(items))[: args.decode_clips]]
        rows.append(measure_decode(sample, 1))
        rows.append(measure_decode(sample, args.threads))
        rows.append(measure_features(sample, 32))
        phonemizer, vocabulary = Phonemizer(), PhonemeVocabulary()

        def encode(text):
            return vocabulary.encode(phonemizer.phonemize(text))

        k = min(args.keywords_per_batch, items.num_classes)
        for cache_audio in (True, False):
            for pipeline in PIPELINES:
                rows.extend(measure_pipeline(items, encode, cache_audio, args.batches, k, args.clips_per_keyword,
                                             hard_negatives, pipeline))

        train_rate = args.train_step_clips_per_sec
        if train_rate is None and args.train_steps > 0:
            train_rate = measure_train_step(items, encode, k, args.clips_per_keyword, args.train_steps,
                                            hard_negatives=hard_negatives)

    table = format_table(rows, train_rate)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
