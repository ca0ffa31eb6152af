"""LibriPhrase-protocol evaluation of a keyword spotter (LP_E and LP_H, docs/methods.md §1.11)."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Sequence

import numpy as np

from kerasadml.data.audio_io import AudioError, TruncatedAudioWarning, load_audio
from kerasadml.data.speech.phonemizer import PhonemizerError, UnvoicedTextWarning
from kerasadml.metrics.detection import average_precision, eer, roc_auc

log = logging.getLogger(__name__)

#: Pair kinds in each LibriPhrase subset.
SUBSETS = {"LP_E": ("positive", "easyneg"), "LP_H": ("positive", "hardneg")}


def _load_pairs(data, audio_root, allow_outside_root: bool = False):
    from kerasadml.data.speech.libriphrase import PairSet, evaluation_pairs, read_libriphrase_csv

    if isinstance(data, PairSet):
        return data
    paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    return evaluation_pairs(
        read_libriphrase_csv(paths), audio_root=audio_root, allow_outside_root=allow_outside_root
    )


def _voiceable(model, text: str) -> str | None:
    """``None`` when every part of ``text`` gives phonemes, else why not."""
    phonemize = getattr(model, "encode_text", None) or model.phonemizer.phonemize
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnvoicedTextWarning)
        try:
            phonemize(text)
        except (PhonemizerError, UnvoicedTextWarning, TypeError) as error:
            return str(error)
    return None


def score_pairs(model, pairs, batch_size: int = 32, progress: bool = True, details: bool = False):
    """Scores ``cos(ea, et)`` of every pair whose audio loads and whose text is voiced.

    Each distinct clip and text is embedded once. Clips that fail to load are skipped
    and counted (logged once with their number and the first file); so are texts of which
    a part gives no phonemes (other scripts, symbols: a keyword the model would hear
    only partly). Truncated clips (a wav shorter than its header says) are scored as
    far as they go and counted.

    Returns:
        ``(scores, keep, skipped_clips)``: scores of the kept pairs, a boolean mask of kept
        pairs over ``pairs``, and the number of clips skipped; with ``details=True`` a
        fourth item, ``{"audio_ok", "text_ok", "truncated_clips", "skipped_texts"}``
        (masks over pairs, counts).
    """
    from tqdm.auto import tqdm

    waves, loaded = [], np.zeros(len(pairs.audio_paths), bool)
    failures: list[str] = []
    truncated: list[str] = []
    for i, path in enumerate(tqdm(pairs.audio_paths, desc="load audio", disable=not progress, unit="clip")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncatedAudioWarning)
            try:
                waves.append(load_audio(path))
                loaded[i] = True
            except AudioError as error:
                failures.append(str(error))
        for warning in caught:
            if issubclass(warning.category, TruncatedAudioWarning):
                truncated.append(str(warning.message))
            else:
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
    if failures:
        log.warning("skipped %d unreadable clips (first: %s)", len(failures), failures[0])
    if truncated:
        log.warning(
            "%d clips are truncated (shorter than their header says) and were scored as far as "
            "they go (first: %s)",
            len(truncated),
            truncated[0],
        )
    texts = list(pairs.texts)
    text_problems = [_voiceable(model, t) for t in texts]
    voiced = np.array([p is None for p in text_problems], bool)
    bad_texts = [p for p in text_problems if p is not None]
    if bad_texts:
        log.warning(
            "skipped the pairs of %d texts that cannot be fully phonemized (first: %s)",
            len(bad_texts),
            bad_texts[0],
        )
    audio_emb = np.zeros((len(pairs.audio_paths), model.embedding_dim), "float32")
    if waves:
        audio_emb[loaded] = model.embed_audio(waves, batch_size=batch_size)
    text_emb = np.zeros((len(texts), model.embedding_dim), "float32")
    if voiced.any():
        text_emb[voiced] = model.embed_text([t for t, ok in zip(texts, voiced) if ok])
    audio_index = np.asarray(pairs.audio_index)
    text_index = np.asarray(pairs.text_index)
    audio_ok = loaded[audio_index]
    text_ok = voiced[text_index]
    keep = audio_ok & text_ok
    scores = np.sum(audio_emb[audio_index[keep]] * text_emb[text_index[keep]], axis=-1)
    if details:
        info = {
            "audio_ok": audio_ok,
            "text_ok": text_ok,
            "truncated_clips": len(truncated),
            "skipped_texts": len(bad_texts),
        }
        return scores, keep, len(failures), info
    return scores, keep, len(failures)


def evaluate_libriphrase(
    model,
    data,
    audio_root: str | os.PathLike | None = None,
    batch_size: int = 32,
    progress: bool = True,
    return_scores: bool = False,
    allow_outside_root: bool = False,
) -> dict:
    """EER, AUC and AP on LP_E and LP_H over the whole set (never averaged per batch).

    Args:
        model: an ``ADML`` model (anything with ``embed_audio``/``embed_text``).
        data: LibriPhrase-format CSV path(s) or a ``PairSet``.
        audio_root: folder the CSV's audio paths are relative to (default: the CSV's folder).
        batch_size: clips per embedding batch.
        progress: show progress bars.
        return_scores: also return ``"scores"``, ``"targets"`` and ``"kinds"`` arrays.
        allow_outside_root: with ``audio_root``, read rows whose audio path is absolute
            or leaves the root with ``..`` (default: such a row is an error naming it).

    Returns:
        ``{"LP_E": {"EER", "AUC", "AP", "pairs"}, "LP_H": {...}, "pairs": n, "skipped": s,
        "skipped_text": t, "truncated": c}`` where ``pairs`` counts scored pairs,
        ``skipped`` the pairs dropped because their clip could not be read,
        ``skipped_text`` the other pairs dropped because their text cannot be
        phonemized in full (``pairs + skipped + skipped_text`` is every pair), and
        ``truncated`` the clips scored although shorter than their header says.

    Raises:
        OutsideAudioRootError: a CSV row's audio outside ``audio_root`` (see above).
    """
    pairs = _load_pairs(data, audio_root, allow_outside_root)
    scores, keep, _, info = score_pairs(
        model, pairs, batch_size=batch_size, progress=progress, details=True
    )
    targets = np.asarray(pairs.target)[keep].astype(int)
    kinds = np.asarray(pairs.kind)[keep]
    result: dict = {
        "pairs": int(keep.sum()),
        "skipped": int((~info["audio_ok"]).sum()),
        "skipped_text": int((info["audio_ok"] & ~info["text_ok"]).sum()),
        "truncated": int(info["truncated_clips"]),
    }
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


def evaluate_alignment(
    model,
    data,
    audio_root: str | os.PathLike | None = None,
    max_clips: int = 100,
    allow_outside_root: bool = False,
) -> dict:
    """How well the aligner aligns: its attention on positive pairs (clip, its own text).

    For up to ``max_clips`` positive pairs (in CSV order, readable clips only) the affinity
    matrix of the aligner is taken and summarised with
    :func:`kerasadml.metrics.alignment.monotonic_fraction` (share of phoneme-to-next steps
    whose attention peak does not move back in time) and
    :func:`~kerasadml.metrics.alignment.peak_spread` (how far the peaks sweep across the
    clip: near 0 when the attention collapses onto a few frames, near 1 for a diagonal).

    Returns:
        ``{"monotonic": float, "spread": float, "clips": n}``.
    """
    from kerasadml.metrics.alignment import monotonic_fraction, peak_spread

    if int(max_clips) < 1:
        raise ValueError(f"evaluate_alignment: max_clips must be >= 1, got {max_clips}")
    pairs = _load_pairs(data, audio_root, allow_outside_root)
    matrices = []
    target = np.asarray(pairs.target)
    for i in np.flatnonzero(target == 1):
        if len(matrices) >= int(max_clips):
            break
        path = pairs.audio_paths[pairs.audio_index[i]]
        text = pairs.texts[pairs.text_index[i]]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TruncatedAudioWarning)
                wave = load_audio(path)
            matrices.append(model.affinity(wave, text))
        except (AudioError, PhonemizerError):
            continue
    return {
        "monotonic": monotonic_fraction(matrices),
        "spread": peak_spread(matrices),
        "clips": len(matrices),
    }


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
    line = f"pairs scored: {result['pairs']}, skipped (unreadable audio): {result['skipped']}"
    if result.get("skipped_text"):
        line += f", skipped (text without phonemes): {result['skipped_text']}"
    if result.get("truncated"):
        line += f"; truncated clips (scored as far as they go): {result['truncated']}"
    lines.append(line)
    return "\n".join(lines)


def subset_scores(result: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(targets, scores) of one subset from a result made with ``return_scores=True``."""
    sel = np.isin(result["kinds"], SUBSETS[name])
    return result["targets"][sel], result["scores"][sel]


__all__: Sequence[str] = ["evaluate_libriphrase", "score_pairs", "format_table", "subset_scores", "SUBSETS"]
