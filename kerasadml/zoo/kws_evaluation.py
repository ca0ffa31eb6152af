"""LibriPhrase-protocol evaluation of a keyword spotter (LP_E and LP_H, docs/methods.md §1.11)."""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np

from kerasadml.data.audio_io import AudioError, load_audio
from kerasadml.metrics.detection import average_precision, eer, roc_auc

log = logging.getLogger(__name__)

#: Pair kinds in each LibriPhrase subset.
SUBSETS = {"LP_E": ("positive", "easyneg"), "LP_H": ("positive", "hardneg")}


def _load_pairs(data, audio_root):
    from kerasadml.data.libriphrase import PairSet, evaluation_pairs, read_libriphrase_csv

    if isinstance(data, PairSet):
        return data
    paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    return evaluation_pairs(read_libriphrase_csv(paths), audio_root=audio_root)


def score_pairs(model, pairs, batch_size: int = 32, progress: bool = True):
    """Scores ``cos(ea, et)`` of every pair whose audio loads.

    Each distinct clip and text is embedded once. Clips that fail to load are skipped
    and counted (logged once with their number and the first file).

    Returns:
        ``(scores, keep, skipped_clips)``: scores of the kept pairs, a boolean mask of kept
        pairs over ``pairs``, and the number of clips skipped.
    """
    from tqdm.auto import tqdm

    waves, loaded = [], np.zeros(len(pairs.audio_paths), bool)
    failures: list[str] = []
    for i, path in enumerate(tqdm(pairs.audio_paths, desc="load audio", disable=not progress, unit="clip")):
        try:
            waves.append(load_audio(path))
            loaded[i] = True
        except AudioError as error:
            failures.append(str(error))
    if failures:
        log.warning("skipped %d unreadable clips (first: %s)", len(failures), failures[0])
    audio_emb = np.zeros((len(pairs.audio_paths), model.embedding_dim), "float32")
    if waves:
        audio_emb[loaded] = model.embed_audio(waves, batch_size=batch_size)
    text_emb = model.embed_text(list(pairs.texts))
    audio_index = np.asarray(pairs.audio_index)
    text_index = np.asarray(pairs.text_index)
    keep = loaded[audio_index]
    scores = np.sum(audio_emb[audio_index[keep]] * text_emb[text_index[keep]], axis=-1)
    return scores, keep, len(failures)


def evaluate_libriphrase(
    model,
    data,
    audio_root: str | os.PathLike | None = None,
    batch_size: int = 32,
    progress: bool = True,
    return_scores: bool = False,
) -> dict:
    """EER, AUC and AP on LP_E and LP_H over the whole set (never averaged per batch).

    Args:
        model: an ``ADML`` model (anything with ``embed_audio``/``embed_text``).
        data: LibriPhrase-format CSV path(s) or a ``PairSet``.
        audio_root: folder the CSV's audio paths are relative to (default: the CSV's folder).
        batch_size: clips per embedding batch.
        progress: show progress bars.
        return_scores: also return ``"scores"``, ``"targets"`` and ``"kinds"`` arrays.

    Returns:
        ``{"LP_E": {"EER", "AUC", "AP", "pairs"}, "LP_H": {...}, "pairs": n, "skipped": s}``
        where ``pairs`` counts scored pairs and ``skipped`` the pairs dropped because
        their clip could not be read.
    """
    pairs = _load_pairs(data, audio_root)
    scores, keep, _ = score_pairs(model, pairs, batch_size=batch_size, progress=progress)
    targets = np.asarray(pairs.target)[keep].astype(int)
    kinds = np.asarray(pairs.kind)[keep]
    result: dict = {"pairs": int(keep.sum()), "skipped": int((~keep).sum())}
    for name, members in SUBSETS.items():
        sel = np.isin(kinds, members)
        if sel.sum() == 0 or len(np.unique(targets[sel])) < 2:
            log.warning("subset %s has no pairs of both classes; skipped", name)
            continue
        result[name] = {
            "EER": eer(targets[sel], scores[sel]),
            "AUC": roc_auc(targets[sel], scores[sel]),
            "AP": average_precision(targets[sel], scores[sel]),
            "pairs": int(sel.sum()),
        }
    if return_scores:
        result.update(scores=scores, targets=targets, kinds=kinds)
    return result


def format_table(result: dict, title: str = "") -> str:
    """A plain-text table of an ``evaluate_libriphrase`` result (percentages)."""
    lines = [title] if title else []
    lines.append(f"{'subset':<8}{'pairs':>8}{'EER %':>9}{'AUC %':>9}{'AP %':>9}")
    for name in SUBSETS:
        if name in result:
            r = result[name]
            lines.append(
                f"{name:<8}{r['pairs']:>8}{100 * r['EER']:>9.2f}{100 * r['AUC']:>9.2f}{100 * r['AP']:>9.2f}"
            )
    lines.append(f"pairs scored: {result['pairs']}, skipped (unreadable audio): {result['skipped']}")
    return "\n".join(lines)


def subset_scores(result: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets, scores) of one subset from a result made with ``return_scores=True``."""
    sel = np.isin(result["kinds"], SUBSETS[name])
    return result["targets"][sel], result["scores"][sel]


__all__: Sequence[str] = ["evaluate_libriphrase", "score_pairs", "format_table", "subset_scores", "SUBSETS"]
