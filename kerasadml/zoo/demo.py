"""``kerasadml demo``: build SynthPhrase, train adml_tiny, evaluate on unseen keywords and
voices, print the LP_E/LP_H table, and write a ROC/DET plot and an affinity plot."""

from __future__ import annotations

import os
import time
from pathlib import Path



def _say(message: str) -> None:
    print(message, flush=True)


def run_demo(
    out_dir: str | os.PathLike = "kerasadml_demo",
    size: str = "small",
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Run the main job; returns the evaluation result (also written to ``results.json``)."""
    import keras

    from kerasadml.atomic import atomic_write_json
    from kerasadml.data.audio_io import load_audio
    from kerasadml.data.synthphrase import build_synthphrase
    from kerasadml.plots import plot_affinity, plot_roc_det
    from kerasadml.zoo.kws_evaluation import evaluate_alignment, evaluate_libriphrase, format_table, subset_scores
    from kerasadml.zoo.kws_training import train_adml_from_csv
    from kerasadml.zoo.training import resolve_kws_csvs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    _say(f"[1/4] Building SynthPhrase ({size}) in {out / 'data'} (eSpeak NG, offline) ...")
    summary = build_synthphrase(out / "data", size=size, seed=seed, progress=progress)
    _say(
        "      train: {} clips, {} keywords, {} voices | test: {} clips, {} keywords, {} voices".format(
            summary["clips"]["train"],
            summary["keywords"]["train"],
            summary["voices"]["train"],
            summary["clips"]["test"],
            summary["keywords"]["test"],
            summary["voices"]["test"],
        )
    )
    _say(f"[2/4] Training adml_tiny on the {keras.backend.backend()} backend ...")
    model, report = train_adml_from_csv(
        "adml_tiny",
        out / "data",
        out_dir=out,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        seed=seed,
        verbose=1 if progress else 0,
    )
    _say(f"      {report['parameters']:,} parameters, trained in {report['train_seconds']:.0f} s")
    _say("[3/4] Evaluating on unseen keywords spoken by unseen voices ...")
    test_csvs = resolve_kws_csvs(out / "data", "test")
    result = evaluate_libriphrase(model, test_csvs, progress=progress, return_scores=True)
    table = format_table(result, title="SynthPhrase test (keywords and voices unseen in training)")
    _say(table)
    alignment = evaluate_alignment(model, test_csvs, max_clips=60)
    _say(
        "aligner on {clips} test clips: monotonic attention {monotonic:.2f}, peak spread {spread:.2f}".format(
            **alignment
        )
    )

    _say("[4/4] Writing plots ...")
    curves = {name: subset_scores(result, name) for name in ("LP_E", "LP_H") if name in result}
    roc_path = plot_roc_det(curves, out / "roc_det.png", title="adml_tiny on SynthPhrase test")
    from kerasadml.data.libriphrase import read_libriphrase_csv

    rows, seen = [], set()
    for row in read_libriphrase_csv(test_csvs):  # three different positive anchors
        if int(row.target) == 1 and row.anchor_text not in seen and len(rows) < 3:
            rows.append(row)
            seen.add(row.anchor_text)
    matrices, phones, titles = [], [], []
    for row in rows:
        wave = load_audio(Path(test_csvs[0]).parent / row.anchor)
        matrices.append(model.affinity(wave, row.anchor_text))
        phones.append(model.phonemizer.phonemize(row.anchor_text))
        titles.append(f'"{row.anchor_text}" ({row.anchor_spk})')
    affinity_path = plot_affinity(matrices, phones, titles, out / "affinity.png")
    payload = {
        k: v for k, v in result.items() if k not in ("scores", "targets", "kinds")
    }
    payload.update(training=report, data=summary, alignment=alignment, seconds_total=round(time.time() - start, 1))
    atomic_write_json(out / "results.json", payload, default=float)
    _say(f"Wrote {roc_path}, {affinity_path}, {out / 'results.json'}; model preset in {out / 'model'}")
    _say(f"Total time {time.time() - start:.0f} s.")
    return payload
