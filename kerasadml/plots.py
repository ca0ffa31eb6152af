"""PNG plots a person would rather look at than read: ROC/DET curves, affinity matrices."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_roc_det(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike, title: str = "") -> Path:
    """ROC (left) and DET (right, normal-deviate axes) for each named ``(targets, scores)``.

    Args:
        curves: name -> (0/1 targets, scores), e.g. ``{"LP_E": ..., "LP_H": ...}``.
        path: the PNG to write.
        title: figure title.

    Raises:
        ValueError: a curve's targets are not 0/1 of both classes or do not match its
            scores (from :func:`kerasadml.metrics.detection.eer`); no file is written and
            no figure is left open.

    Example:
        >>> plot_roc_det({"LP_E": (targets, scores)}, "roc_det.png")  # doctest: +SKIP
    """
    from scipy.stats import norm
    from sklearn.metrics import roc_curve

    from kerasadml.metrics.detection import eer

    # every curve is checked (and its EER computed) before a figure exists
    labelled = {name: (targets, scores, f"{name} (EER {100 * eer(targets, scores):.2f}%)")
                for name, (targets, scores) in curves.items()}
    plt = _pyplot()
    fig, (ax_roc, ax_det) = plt.subplots(1, 2, figsize=(11, 4.8))
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])
    for name, (targets, scores, label) in labelled.items():
        fpr, tpr, _ = roc_curve(targets, scores)
        ax_roc.plot(fpr, tpr, label=label)
        fnr = 1 - tpr
        clip = lambda v: np.clip(v, 1e-4, 1 - 1e-4)  # noqa: E731
        ax_det.plot(norm.ppf(clip(fpr)), norm.ppf(clip(fnr)), label=label)
    ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax_roc.set(xlabel="false accept rate", ylabel="true accept rate", title="ROC")
    ax_det.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax_det.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax_det.plot(norm.ppf([1e-3, 0.95]), norm.ppf([1e-3, 0.95]), "k:", lw=0.8)
    ax_det.set(xlabel="false accept rate (%)", ylabel="false reject rate (%)", title="DET")
    for ax in (ax_roc, ax_det):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_affinity(
    matrices: Sequence[np.ndarray],
    phonemes: Sequence[Sequence[str]],
    titles: Sequence[str],
    path: str | os.PathLike,
    frame_step_s: float = 0.01,
) -> Path:
    """Cross-attention affinity matrices (phonemes x audio frames), one panel each.

    Args:
        matrices: one 2-D ``(phonemes, frames)`` array per panel (rows past the phoneme
            list, i.e. padding, are cut).
        phonemes: the phoneme labels of each panel's rows.
        titles: one title per panel.
        path: the PNG to write.
        frame_step_s: seconds per audio frame (x axis).

    Raises:
        ValueError: the three lists differ in length, are empty, or a matrix is not 2-D
            (naming which); no file is written.

    Example:
        >>> plot_affinity([model.affinity(wave, "hello")], [["HH", "AH", "L", "OW"]],
        ...               ['"hello"'], "affinity.png")  # doctest: +SKIP
    """
    if not (len(matrices) == len(phonemes) == len(titles)) or not len(matrices):
        raise ValueError(
            f"plot_affinity: need as many matrices, phoneme lists and titles (at least one), got "
            f"{len(matrices)}, {len(phonemes)}, {len(titles)}"
        )
    for i, matrix in enumerate(matrices):
        if np.ndim(matrix) != 2:
            raise ValueError(f"plot_affinity: matrices[{i}] must be 2-D (phonemes x frames), got shape {np.shape(matrix)}")
    plt = _pyplot()
    n = len(matrices)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.4 * n), squeeze=False)
    for ax, matrix, phones, title in zip(axes[:, 0], matrices, phonemes, titles):
        matrix = np.asarray(matrix)[: len(phones)]
        extent = (0, matrix.shape[1] * frame_step_s, len(phones) - 0.5, -0.5)
        image = ax.imshow(matrix, aspect="auto", cmap="viridis", extent=extent, interpolation="nearest")
        ax.set_yticks(range(len(phones)), phones, fontsize=8)
        ax.set(xlabel="time (s)", title=title)
        fig.colorbar(image, ax=ax, fraction=0.02)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
