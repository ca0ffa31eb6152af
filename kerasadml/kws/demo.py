"""``kerasadml demo``: build SynthPhrase, train adml_tiny, evaluate on unseen keywords and
voices, print the LP_E/LP_H table, and write a ROC/DET plot and an affinity plot."""

from __future__ import annotations

import os
import time
from pathlib import Path



def _say(message: str) -> None:
    print(message, flush=True)


def shipped_preset_comparable(preset: str, data_dir: str | os.PathLike) -> tuple[bool, str]:
    """Whether the shipped ``preset`` can be scored fairly on the test split of the
    SynthPhrase build in ``data_dir``, and why (or why not).

    Fair means it never heard the test split's keywords: the preset's training report names
    a SynthPhrase build of the same format version and seed (one word split,
    :func:`kerasadml.data.speech.synthphrase.word_splits`), so its training words and this test
    split's words are disjoint, and its voices too (the voice split depends on the seed
    only).

    Args:
        preset: a preset name or folder.
        data_dir: the SynthPhrase folder whose test split would be scored.

    Returns:
        ``(comparable, reason)``.
    """
    from kerasadml.data.speech.synthphrase import build_provenance
    from kerasadml.zoo.presets import preset_is_trained, read_metadata, resolve_preset

    if not preset_is_trained(preset):
        return False, f"{preset} ships without trained weights"
    training = (read_metadata(resolve_preset(preset)).get("info") or {}).get("training") or {}
    trained_on, here = training.get("synthphrase"), build_provenance(data_dir)
    if here is None:
        return False, f"{data_dir} is not a SynthPhrase build"
    if not trained_on:
        return False, f"{preset}'s training data is not a SynthPhrase build this version can check"
    for key in ("format_version", "seed"):
        if trained_on.get(key) != here.get(key):
            return False, (
                f"{preset} was trained on SynthPhrase {key.replace('_', ' ')} {trained_on.get(key)}, this test "
                f"split is {key.replace('_', ' ')} {here.get(key)}: another word split, its training "
                "keywords could be test keywords here"
            )
    return True, (
        f"trained on SynthPhrase ({trained_on['train_keywords']:,} keywords, same seed and word split): "
        "no test keyword or voice here was in its training data"
    )


def run_demo(
    out_dir: str | os.PathLike = "kerasadml_demo",
    size: str = "small",
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    progress: bool = True,
    shipped: bool = True,
) -> dict:
    """Run the main job; returns the evaluation result (also written to ``results.json``).

    Builds SynthPhrase ``size`` in ``out_dir/data``, trains ``adml_tiny`` on its training
    split for a few minutes, scores it on the test split (keywords and voices never heard
    in training), and, with ``shipped``, scores the shipped trained preset
    (:data:`kerasadml.zoo.presets.DEFAULT_KWS_PRESET`) on the same pairs when that is fair
    (:func:`shipped_preset_comparable`), so both the short run and the long one are shown.

    Args:
        out_dir: output folder (data, model, plots, ``results.json``).
        size: SynthPhrase size (``"small"``; ``"tiny"`` for a smoke test).
        epochs, steps_per_epoch: training budget (default: ``adml_tiny``'s recipe).
        seed: data and training seed.
        progress: progress bars.
        shipped: also score the shipped preset.

    Example:
        >>> result = run_demo("kerasadml_demo")  # doctest: +SKIP
        >>> result["LP_H"]["EER"]  # doctest: +SKIP
    """
    import keras

    from kerasadml.atomic import atomic_write_json
    from kerasadml.data.audio_io import load_audio
    from kerasadml.data.speech.synthphrase import build_synthphrase
    from kerasadml.plots import plot_affinity, plot_roc_det
    from kerasadml.kws.evaluation import evaluate_alignment, evaluate_libriphrase, format_table, subset_scores
    from kerasadml.kws.training import resolve_kws_csvs, train_adml_from_csv

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

    shipped_result = None
    if shipped:
        from kerasadml.zoo.adml import ADML
        from kerasadml.zoo.presets import DEFAULT_KWS_PRESET

        comparable, why = shipped_preset_comparable(DEFAULT_KWS_PRESET, out / "data")
        if comparable:
            _say(f"      shipped preset {DEFAULT_KWS_PRESET}, {why}:")
            shipped_model = ADML.from_preset(DEFAULT_KWS_PRESET)
            shipped_result = evaluate_libriphrase(shipped_model, test_csvs, progress=progress)
            _say(format_table(shipped_result, title=f"{DEFAULT_KWS_PRESET} (shipped) on the same test pairs"))
        else:
            _say(f"      shipped preset {DEFAULT_KWS_PRESET} not scored: {why}")

    _say("[4/4] Writing plots ...")
    curves = {name: subset_scores(result, name) for name in ("LP_E", "LP_H") if name in result}
    roc_path = plot_roc_det(curves, out / "roc_det.png", title="adml_tiny on SynthPhrase test")
    from kerasadml.data.speech.libriphrase import read_libriphrase_csv

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
    if shipped_result is not None:
        payload["shipped"] = {"preset": DEFAULT_KWS_PRESET, **shipped_result}
    atomic_write_json(out / "results.json", payload, default=float)
    _say(f"Wrote {roc_path}, {affinity_path}, {out / 'results.json'}; model preset in {out / 'model'}")
    _say(f"Total time {time.time() - start:.0f} s.")
    return payload
