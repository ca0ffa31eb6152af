"""Building a SynthPhrase folder: :func:`build_synthphrase` (plan, synthesis through
:class:`kerasadml.data.espeak.PristinePool`, pairs, CSVs, summary), the manifest that a
resumed build verifies, and :func:`build_provenance` (see the package docstring,
"Deterministic for a seed" and "Interruptions and failures").
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kerasadml.atomic import atomic_write_text as _atomic_write_text, sha256_file
from kerasadml.data.speech.synthphrase.clips import _run_unit, _unit_results, _warm_up
from kerasadml.data.speech.synthphrase.config import (
    _SPLIT_CODE,
    _SPLITS,
    _STREAM_CANDIDATES,
    _STREAM_CLIP,
    _STREAM_PAIRS,
    _STREAM_PROSODY,
    CONFIG_JSON,
    FORMAT_VERSION,
    MANIFEST_JSONL,
    MIN_SPEAKERS,
    SAMPLE_RATE,
    SUMMARY_JSON,
    TEST_CSV,
    TRAIN_CSV,
    _resolve_config,
)
from kerasadml.data.speech.synthphrase.pairs import _make_pairs
from kerasadml.data.speech.synthphrase.vocabulary import (
    _cmudict_version,
    _plan_vocabulary,
)
from kerasadml.data.speech.synthphrase.voices import (
    _babble_plan,
    _plan_voices,
    _prosody,
    _speaker_key,
    _voice_bin,
)

logger = logging.getLogger(__name__)


class _Manifest:
    """``synthphrase_manifest.jsonl``: what was written, to verify what a resume keeps."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, dict] = {}
        if path.is_file():
            with open(path, "rb") as handle:
                for line in handle:
                    try:  # a line torn by a kill is ignored (its clip is re-made)
                        record = json.loads(line)
                        self.records[str(record["path"])] = {
                            "samples": int(record["samples"]), "sha256": str(record["sha256"]),
                        }
                    except (ValueError, KeyError, TypeError):
                        continue
        self.mismatched: list[str] = []

    def verified_samples(self, relpath: str, path: str) -> int | None:
        """The clip's length when ``path`` holds exactly the recorded clip, else ``None``."""
        if not os.path.isfile(path):
            return None
        record = self.records.get(relpath)
        if record is None:  # written but not recorded (interrupted), or an older build
            self.mismatched.append(relpath)
            return None
        try:
            digest = sha256_file(path)
        except OSError:
            digest = None
        if digest != record["sha256"]:
            self.mismatched.append(relpath)
            return None
        return record["samples"]

    def append(self, entries: list[tuple[str, int, str]]) -> None:
        """Record written clips (one ``write`` of whole lines, in append mode)."""
        if not entries:
            return
        text = "".join(
            json.dumps({"path": relpath, "samples": int(samples), "sha256": digest}, sort_keys=True) + "\n"
            for relpath, samples, digest in entries
        )
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
        for relpath, samples, digest in entries:
            self.records[relpath] = {"samples": int(samples), "sha256": digest}

    def compact(self, keep: set[str]) -> None:
        """Rewrite the manifest atomically with one line per clip of ``keep``."""
        lines = [
            json.dumps({"path": p, **self.records[p]}, sort_keys=True) + "\n" for p in sorted(keep) if p in self.records
        ]
        _atomic_write_text(self.path, "".join(lines))



def build_provenance(data: str | os.PathLike | Sequence) -> dict | None:
    """What a SynthPhrase build is, read from its folder: ``{"format_version", "seed",
    "train_keywords", "test_keywords"}``; ``None`` when ``data`` (a folder, or CSV paths
    inside one) is not a SynthPhrase build. Training reports record it, so that a model
    trained on one size can be scored on another size's test split only when both come
    from the same word split (same format version and seed, :func:`word_splits`).

    Args:
        data: a SynthPhrase folder, a CSV path in one, or a list of CSV paths (the first
            one's folder is read).

    Example:
        >>> build_provenance("/no/such/folder") is None
        True
    """
    if not isinstance(data, (str, os.PathLike)):
        data = list(data)
        if not data:
            return None
        data = data[0]
    folder = Path(os.fspath(data))
    if not folder.is_dir():
        folder = folder.parent
    try:
        config = json.loads((folder / CONFIG_JSON).read_text(encoding="utf-8"))
        return {
            "format_version": int(config["format_version"]),
            "seed": int(config["seed"]),
            "train_keywords": int(config["config"]["train_keywords"]),
            "test_keywords": int(config["config"]["test_keywords"]),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None



def build_synthphrase(
    out_dir,
    size="tiny",
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> dict:
    """Build (or complete) a SynthPhrase dataset in ``out_dir``.

    Args:
        out_dir: output folder; gets ``train/``, ``test/``, ``synthphrase_train.csv``,
            ``synthphrase_test.csv``, ``summary.json`` and ``synthphrase_config.json``.
        size: ``"tiny"``, ``"small"``, ``"medium"``, ``"large"`` (:data:`SYNTHPHRASE_SIZES`)
            or a :class:`SynthPhraseConfig`.
        seed: the random seed; the same seed and size give the same files, byte for byte.
        progress: show a tqdm progress bar, and print a summary (clips, keywords, voices,
            hours, clips/s, hard negatives at distance 1) to stderr at the end.
        workers: synthesis processes run in parallel (eSpeak NG is single-threaded per
            process); ``None``: two per usable CPU (each waits on its files' ``fsync``
            about half the time), at most 8. Even with ``1``, clips are made in a helper process, in children
            forked from a never-used engine, because eSpeak NG carries state from one
            synthesis to the next (see :class:`kerasadml.data.espeak.PristinePool`); the output does not
            depend on ``workers``. The helper processes are *spawned* (a fresh
            interpreter that re-imports your script): in a script, call this under
            ``if __name__ == "__main__":``, or Python stops with "An attempt has been
            made to start a new process before the current process has finished its
            bootstrapping phase".

    Returns:
        The summary written to ``summary.json``: ``clips``, ``keywords``, ``voices``
        (distinct eSpeak NG variant x accent), ``voice_variants``, ``accents``,
        ``voice_bins`` (distinct variant x accent x pitch bin x rate bin, see
        :func:`_voice_bin`), ``pairs``, ``hard_negative_distance`` (share of hard-negative
        pairs at each phoneme distance, ``"1"`` the closest) and ``hours`` per split;
        ``voices_total``; ``skipped`` (clips that failed to synthesise or came out too
        long, and keywords dropped for lack of speakers); ``written``, ``reused`` and
        ``remade`` clip counts; ``seconds`` taken and ``clips_per_second`` (clips made in
        this run / seconds).

    Raises:
        ValueError: an unknown size, a bad config, or an ``out_dir`` that holds a
            SynthPhrase built with another size, seed or format version (use another
            folder).
    """
    started = time.perf_counter()
    size_name, cfg = _resolve_config(size)
    seed = int(seed)
    if workers is None:
        try:
            workers = min(8, 2 * len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            workers = min(8, 2 * (os.cpu_count() or 1))
    workers = max(1, int(workers))
    out = Path(os.fspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = {"format_version": FORMAT_VERSION, "seed": seed, "config": dataclasses.asdict(cfg)}
    fingerprint_text = json.dumps(fingerprint, indent=2, sort_keys=True) + "\n"
    config_path = out / CONFIG_JSON
    if config_path.exists():
        try:
            previous = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        old_version = previous.get("format_version") if isinstance(previous, dict) else None
        if old_version is not None and old_version != FORMAT_VERSION:
            raise ValueError(
                f"{out} holds a SynthPhrase of format version {old_version} (see {config_path}); "
                f"this version of kerasadml builds format {FORMAT_VERSION} (other voices, vocabulary, "
                "augmentation or word split) and will not mix the two: build into another "
                "folder or delete this one"
            )
        if previous != json.loads(fingerprint_text):
            raise ValueError(
                f"{out} holds a SynthPhrase built with other settings (see {config_path}); "
                "build into another folder or delete this one"
            )
    else:
        _atomic_write_text(config_path, fingerprint_text)
    for split in _SPLITS:  # temporary files left by an interrupted build
        for stale in (out / split).glob(".*.tmp") if (out / split).is_dir() else ():
            stale.unlink(missing_ok=True)

    # ---- plan: words, keywords and voices for each split
    from kerasadml.data.espeak import PristinePool

    plan, split_words = _plan_vocabulary(cfg, seed)
    voices, split_variants = _plan_voices(cfg, seed)

    # ---- synthesis, in rounds: each keyword tries its next candidate voice until it has
    # voices_per_keyword clips or runs out of voices.
    state = {}
    for split in _SPLITS:
        for k, text in enumerate(plan[split]):
            candidates = np.random.default_rng([seed, _STREAM_CANDIDATES, _SPLIT_CODE[split], k]).permutation(
                len(voices[split])
            )
            state[(split, k)] = {"text": text, "candidates": candidates.tolist(), "next": 0, "clips": []}
    stats = {"written": 0, "reused": 0, "synthesis_failed": 0, "too_long": 0}
    failures: list[str] = []
    manifest = _Manifest(out / MANIFEST_JSONL)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=0, unit="clip", desc=f"SynthPhrase {size_name}", dynamic_ncols=True)
    try:
        with PristinePool(workers, name="SynthPhrase", warm_up=_warm_up) as pool:
            while True:
                tasks = []
                for (split, k), entry in state.items():
                    missing = cfg.voices_per_keyword - len(entry["clips"])
                    while missing > 0 and entry["next"] < len(entry["candidates"]):
                        rank = entry["next"]
                        entry["next"] += 1
                        accent, variant = voices[split][entry["candidates"][rank]]
                        speaker = _speaker_key(accent, variant)
                        relpath = f"{split}/kw{k:05d}_{speaker}.wav"
                        prosody = _prosody(
                            cfg, np.random.default_rng([seed, _STREAM_PROSODY, _SPLIT_CODE[split], k, rank])
                        )
                        tasks.append(
                            {
                                "key": (split, k),
                                "speaker": speaker,
                                "relpath": relpath,
                                "path": str(out / relpath),
                                "text": entry["text"],
                                "voice": (accent, variant) + prosody,
                                "rng_key": [seed, _STREAM_CLIP, _SPLIT_CODE[split], k, rank],
                                "min_duration": cfg.min_duration,
                                "max_duration": cfg.max_duration,
                                "augment": cfg.augment,
                            }
                        )
                        missing -= 1
                if not tasks:
                    break
                if bar is not None:
                    bar.total += len(tasks)
                    bar.refresh()
                # A unit is one voice's clips of this round, in keyword order: it is synthesised
                # from a fresh engine, so its audio depends on nothing else. Clips already on
                # disk are reused; they are still synthesised (not written) when a later clip of
                # their unit must be made, to replay the engine state exactly.
                by_voice: dict = {}
                for task in tasks:
                    by_voice.setdefault((task["key"][0], task["speaker"]), []).append(task)
                units = []
                for (split, speaker), unit in by_voice.items():
                    unit[0]["babble"] = _babble_plan(cfg, unit[0]["rng_key"], speaker, voices[split], split_words[split])
                    for task in unit:
                        samples = manifest.verified_samples(task["relpath"], task["path"])
                        task["exists"] = samples is not None
                        task["existing_samples"] = samples
                    last_new = max((i for i, t in enumerate(unit) if not t["exists"]), default=-1)
                    for task in unit[last_new + 1 :]:  # nothing to make after these: no synthesis
                        stats["reused"] += 1
                        state[task["key"]]["clips"].append((task, task["existing_samples"]))
                        if bar is not None:
                            bar.update(1)
                    if last_new >= 0:
                        units.append(unit[: last_new + 1])
                for index, outcome in pool.run(_run_unit, units):
                    results = _unit_results(units[index], outcome)
                    recorded, write_error = [], None
                    for task, (status, samples, message, extra) in zip(units[index], results):
                        if status == "reused":
                            stats["reused"] += 1
                            state[task["key"]]["clips"].append((task, task["existing_samples"]))
                        elif status == "written":
                            stats["written"] += 1
                            state[task["key"]]["clips"].append((task, samples))
                            recorded.append((task["relpath"], samples, extra))
                        elif status == "write_failed":
                            write_error = write_error or (extra, message)
                        elif status == "interrupted":
                            write_error = write_error or ("interrupted", message)
                        else:
                            stats["synthesis_failed" if status == "failed" else "too_long"] += 1
                            if len(failures) < 20:
                                failures.append(f"{task['relpath']} ({task['text']!r}): {status} {message}")
                    manifest.append(recorded)
                    if write_error is not None:
                        code, message = write_error
                        if code == "interrupted":
                            raise KeyboardInterrupt("a SynthPhrase synthesis process was interrupted")
                        # Not a bad input: every later clip would fail the same way.
                        text = (
                            f"{message}; the SynthPhrase build in {out} is incomplete: free space "
                            "(or make the folder writable) and run the same command again to resume"
                        )
                        raise OSError(code, text) if code is not None else OSError(text)
                    if bar is not None:
                        bar.update(len(results))
                        bar.set_postfix(written=stats["written"], reused=stats["reused"],
                                        skipped=stats["synthesis_failed"] + stats["too_long"], refresh=False)
    finally:
        if bar is not None:
            bar.close()

    # ---- keep keywords with enough speakers; pairs; CSVs
    summary_splits = {}
    dropped_keywords = 0
    for split in _SPLITS:
        clips = []
        for k in range(len(plan[split])):
            entry = state[(split, k)]
            if len(entry["clips"]) < MIN_SPEAKERS:
                dropped_keywords += 1
                continue
            made = sorted(entry["clips"], key=lambda item: item[0]["rng_key"][-1])
            for task, samples in made:
                clips.append({"relpath": task["relpath"], "text": task["text"], "speaker": task["speaker"],
                              "samples": samples, "voice": task["voice"]})
        rows, pair_counts, distances = _make_pairs(
            clips, cfg, np.random.default_rng([seed, _STREAM_PAIRS, _SPLIT_CODE[split]])
        )
        from kerasadml.data.speech.libriphrase import write_libriphrase_csv

        write_libriphrase_csv(out / (TRAIN_CSV if split == "train" else TEST_CSV), rows)
        summary_splits[split] = {
            "clips": len(clips),
            "keywords": len({c["text"] for c in clips}),
            "voices": len({c["speaker"] for c in clips}),
            "accents": len({c["voice"][0] for c in clips}),
            "voice_bins": len({_voice_bin(c["voice"]) for c in clips}),
            "hours": sum(c["samples"] for c in clips) / SAMPLE_RATE / 3600.0,
            "pairs": pair_counts,
            "hard_negative_distance": {
                str(d): round(n / max(1, sum(distances.values())), 4) for d, n in sorted(distances.items())
            },
        }
    manifest.compact({task["relpath"] for entry in state.values() for task, _ in entry["clips"]})
    if manifest.mismatched:
        logger.warning(
            "SynthPhrase: re-made %d clip(s) on disk that were unrecorded or did not match %s "
            "(an interrupted earlier build); first: %s",
            len(manifest.mismatched), MANIFEST_JSONL, manifest.mismatched[:3],
        )
    skipped_clips = stats["synthesis_failed"] + stats["too_long"]
    if skipped_clips or dropped_keywords:
        logger.warning(
            "SynthPhrase: %d clip(s) skipped (%d synthesis failures, %d too long), %d keyword(s) dropped; first: %s",
            skipped_clips, stats["synthesis_failed"], stats["too_long"], dropped_keywords,
            failures[:3],
        )
    summary = {
        "format": "SynthPhrase",
        "format_version": FORMAT_VERSION,
        "size": size_name,
        "seed": seed,
        "config": dataclasses.asdict(cfg),
        "clips": {s: summary_splits[s]["clips"] for s in _SPLITS},
        "keywords": {s: summary_splits[s]["keywords"] for s in _SPLITS},
        "voices": {s: summary_splits[s]["voices"] for s in _SPLITS},
        "voices_total": sum(summary_splits[s]["voices"] for s in _SPLITS),  # the splits share none
        "voice_variants": {s: len(split_variants[s]) for s in _SPLITS},
        "accents": {s: summary_splits[s]["accents"] for s in _SPLITS},
        "voice_bins": {s: summary_splits[s]["voice_bins"] for s in _SPLITS},
        "pairs": {s: summary_splits[s]["pairs"] for s in _SPLITS},
        "hard_negative_distance": {s: summary_splits[s]["hard_negative_distance"] for s in _SPLITS},
        "hours": {
            **{s: round(summary_splits[s]["hours"], 4) for s in _SPLITS},
            "total": round(sum(summary_splits[s]["hours"] for s in _SPLITS), 4),
        },
        "skipped": {
            "clips": skipped_clips,
            "synthesis_failed": stats["synthesis_failed"],
            "too_long": stats["too_long"],
            "dropped_keywords": dropped_keywords,
            "examples": failures[:5],
        },
        "written": stats["written"],
        "reused": stats["reused"],
        "remade": len(manifest.mismatched),
        "csv": {"train": TRAIN_CSV, "test": TEST_CSV},
        "cmudict_version": _cmudict_version(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    summary["clips_per_second"] = round(stats["written"] / max(summary["seconds"], 1e-9), 1)
    _atomic_write_text(out / SUMMARY_JSON, json.dumps(summary, indent=2) + "\n")
    if progress:
        import sys

        print(_summary_text(summary), file=sys.stderr, flush=True)
    return summary



def _summary_text(summary: dict) -> str:
    """What a build prints at its end."""
    clips, keywords, voices = summary["clips"], summary["keywords"], summary["voices"]
    d1 = {s: summary["hard_negative_distance"][s].get("1", 0.0) for s in _SPLITS}
    return "\n".join(
        [
            f"SynthPhrase {summary['size']} (seed {summary['seed']}): {clips['train'] + clips['test']:,} clips "
            f"(train {clips['train']:,} / test {clips['test']:,}), keywords {keywords['train']:,} / "
            f"{keywords['test']:,}, {summary['hours']['total']:.2f} h of audio",
            f"  voices (eSpeak NG variant x accent): {summary['voices_total']} (train {voices['train']} / test "
            f"{voices['test']}, disjoint; {summary['voice_variants']['train']} / {summary['voice_variants']['test']} "
            f"variants x {max(summary['accents'].values())} accents); variant x accent x pitch bin x rate bin: "
            f"{summary['voice_bins']['train'] + summary['voice_bins']['test']:,}",
            f"  hard negatives at phoneme distance 1: train {100 * d1['train']:.1f} %, test {100 * d1['test']:.1f} %",
            f"  {summary['written']:,} clips made, {summary['reused']:,} reused, {summary['skipped']['clips']} "
            f"skipped in {summary['seconds']:.0f} s: {summary['clips_per_second']:.1f} clips/s",
        ]
    )
