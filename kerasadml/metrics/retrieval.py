"""Cross-modal retrieval metrics: MAP, Recall@K, Precision@K (docs/methods.md §3.2).

Every query ranks the **whole** gallery by cosine similarity; a gallery item is relevant
when it has the query's label. For one query with ``R`` relevant items::

    AP = (1 / R) * sum over the ranks r of relevant items of (hits in the top r) / r

and MAP is the mean AP over queries. (Some published code instead averages the running
precision at *every* rank; that inflates MAP and is not what this module computes.)

Conventions:

- **Ties** in similarity are broken by gallery index, stably: of two gallery items with
  the same similarity, the one that comes first in the gallery ranks first. (This differs
  from ``sklearn.metrics.average_precision_score``, which merges tied scores into one
  threshold; on tie-free data both agree.)
- **Queries without any relevant gallery item** have no AP; they are left out of MAP,
  Recall@K and Precision@K, and counted (a ``UserWarning`` from the functions below, the
  ``"excluded_*"`` entries of ``retrieval_report``).
- **Memory**: queries are processed in chunks of ``chunk_size``; only a
  ``chunk_size x G`` block of similarities (and its ranking) exists at a time, never the
  full ``Q x G`` matrix.
- ``k`` larger than the gallery is treated as the gallery size.
- A zero embedding has cosine similarity 0 with everything.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from kerasadml.ops import l2_normalize_np


def _validate(query_emb, query_labels, gallery_emb, gallery_labels, chunk_size):
    query_emb = np.asarray(query_emb)
    gallery_emb = np.asarray(gallery_emb)
    query_labels = np.asarray(query_labels)
    gallery_labels = np.asarray(gallery_labels)
    for name, emb in (("query_emb", query_emb), ("gallery_emb", gallery_emb)):
        if emb.ndim != 2:
            raise ValueError(f"{name} must be 2-D (items, features), got shape {emb.shape}")
        if not np.issubdtype(emb.dtype, np.number) or np.issubdtype(emb.dtype, np.complexfloating):
            raise ValueError(f"{name} must hold real numbers, got dtype {emb.dtype}")
        if not np.all(np.isfinite(emb)):
            raise ValueError(f"{name} must be finite, got NaN or infinite values")
    if query_emb.shape[1] != gallery_emb.shape[1]:
        raise ValueError(
            "query_emb and gallery_emb must have the same feature size, got "
            f"{query_emb.shape} and {gallery_emb.shape}"
        )
    for name, labels, emb_name, emb in (
        ("query_labels", query_labels, "query_emb", query_emb),
        ("gallery_labels", gallery_labels, "gallery_emb", gallery_emb),
    ):
        if labels.ndim != 1 or labels.shape[0] != emb.shape[0]:
            raise ValueError(
                f"{name} must be 1-D with one label per row of {emb_name} ({emb.shape[0]}), "
                f"got shape {labels.shape}"
            )
    if query_emb.shape[0] == 0:
        raise ValueError("query_emb is empty")
    if gallery_emb.shape[0] == 0:
        raise ValueError("gallery_emb is empty")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}")
    dtype = np.float64 if np.float64 in (query_emb.dtype, gallery_emb.dtype) else np.float32
    # Labels as small integer codes: equality is all that matters, and the (chunk, G)
    # gathered labels stay 4 bytes an item whatever the label type (ints, strings).
    _, codes = np.unique(np.concatenate([query_labels, gallery_labels]), return_inverse=True)
    codes = codes.reshape(-1).astype(np.int32)
    # the smallest epsilon: cosines stay scale-free down to the tiniest norms
    eps = np.finfo(dtype).tiny
    return (
        l2_normalize_np(query_emb.astype(dtype), axis=1, epsilon=eps),
        codes[: query_labels.shape[0]],
        l2_normalize_np(gallery_emb.astype(dtype), axis=1, epsilon=eps),
        codes[query_labels.shape[0] :],
        int(chunk_size),
    )


def _validate_ks(ks: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive ints, got {ks}")
    return ks


def _rank_statistics(query_emb, query_labels, gallery_emb, gallery_labels, ks, chunk_size):
    """Per-query AP (NaN for queries without a relevant item) and, for each k, the number of
    relevant items in the top k; one pass over the queries, ``chunk_size`` at a time."""
    num_queries, gallery_size = query_emb.shape[0], gallery_emb.shape[0]
    ap = np.full(num_queries, np.nan)
    hits_at = {k: np.zeros(num_queries, np.int64) for k in ks}
    ranks = np.arange(1, gallery_size + 1, dtype=np.float64)
    for start in range(0, num_queries, chunk_size):
        stop = min(start + chunk_size, num_queries)
        sims = query_emb[start:stop] @ gallery_emb.T  # (chunk, G)
        order = np.argsort(-sims, axis=1, kind="stable")  # ties: lower gallery index first
        del sims
        relevant = gallery_labels[order] == query_labels[start:stop, None]  # (chunk, G)
        del order
        hits = np.cumsum(relevant, axis=1, dtype=np.int32)
        num_relevant = hits[:, -1]
        precision_sum = np.sum(np.where(relevant, hits / ranks, 0.0), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ap[start:stop] = np.where(num_relevant > 0, precision_sum / num_relevant, np.nan)
        for k in ks:
            hits_at[k][start:stop] = hits[:, min(k, gallery_size) - 1]
    return ap, hits_at


def _summaries(ap, hits_at, gallery_size):
    """MAP, Recall@K, Precision@K and the number of excluded queries from rank statistics."""
    valid = ~np.isnan(ap)
    excluded = int(np.sum(~valid))
    if not np.any(valid):
        raise ValueError("no query has a relevant item in the gallery: the metrics are undefined")
    mean_ap = float(np.mean(ap[valid]))
    recall = {k: float(np.mean(h[valid] > 0)) for k, h in hits_at.items()}
    precision = {k: float(np.mean(h[valid] / min(k, gallery_size))) for k, h in hits_at.items()}
    return mean_ap, recall, precision, excluded


def _ranked_summaries(
    query_emb, query_labels, gallery_emb, gallery_labels, ks: tuple[int, ...], chunk_size: int
) -> tuple[float, dict[int, float], dict[int, float], int]:
    """Validate, rank the whole gallery for every query, summarise, and warn about excluded
    queries: the sequence every metric below shares.

    Args:
        query_emb, query_labels, gallery_emb, gallery_labels, chunk_size: as in
            ``retrieval_map`` (validated here).
        ks: the cut-offs ``k``, already validated by ``_validate_ks`` (``()`` for MAP only).

    Returns:
        ``(mean_ap, recall, precision, excluded)`` as from ``_summaries``.
    """
    q, ql, g, gl, chunk = _validate(
        query_emb, query_labels, gallery_emb, gallery_labels, chunk_size
    )
    ap, hits_at = _rank_statistics(q, ql, g, gl, ks, chunk)
    mean_ap, recall, precision, excluded = _summaries(ap, hits_at, g.shape[0])
    if excluded:
        warnings.warn(
            f"{excluded} of {q.shape[0]} queries have no relevant item in the gallery; they "
            "are left out of the retrieval metrics",
            UserWarning,
            stacklevel=3,  # the caller of the public metric function
        )
    return mean_ap, recall, precision, excluded


def average_precision_per_query(
    query_emb, query_labels, gallery_emb, gallery_labels, *, chunk_size: int = 1024
) -> np.ndarray:
    """AP of every query (NaN for a query without any relevant gallery item).

    Same arguments, ranking, tie-breaking and memory bound as ``retrieval_map``.

    Returns:
        (Q,) float64 array of APs.

    Example:

    >>> q = [[1.0, 0.0], [0.0, 1.0]]
    >>> g = [[1.0, 0.1], [0.1, 1.0], [0.9, 0.0]]
    >>> average_precision_per_query(q, [0, 1], g, [0, 1, 1]).round(4).tolist()
    [0.5, 0.8333]
    """
    q, ql, g, gl, chunk = _validate(
        query_emb, query_labels, gallery_emb, gallery_labels, chunk_size
    )
    return _rank_statistics(q, ql, g, gl, (), chunk)[0]


def retrieval_map(
    query_emb, query_labels, gallery_emb, gallery_labels, *, chunk_size: int = 1024
) -> float:
    """Mean average precision of ranking the whole gallery for every query.

    ``AP = sum over hits of (hits so far / rank) / (number of relevant items)``; relevance is
    label equality; queries with no relevant item are left out (with a warning that counts
    them). Queries are processed ``chunk_size`` at a time, so memory is ``chunk_size x G``.

    Args:
        query_emb: (Q, D) query embeddings (any scale: compared by cosine).
        query_labels: (Q,) class labels of the queries.
        gallery_emb: (G, D) gallery embeddings.
        gallery_labels: (G,) class labels of the gallery.
        chunk_size: queries per block of similarities.

    Returns:
        MAP, a fraction in [0, 1].

    Example:

    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> g = np.array([[1.0, 0.1], [0.1, 1.0], [0.9, 0.0]])
    >>> # query 0 (label 0) ranks g2, g0, g1: its one hit at rank 2, AP = 1/2;
    >>> # query 1 (label 1) ranks g1, g0, g2: hits at ranks 1 and 3, AP = (1 + 2/3) / 2
    >>> round(retrieval_map(q, [0, 1], g, [0, 1, 1]), 4)
    0.6667
    """
    mean_ap, _, _, _ = _ranked_summaries(
        query_emb, query_labels, gallery_emb, gallery_labels, (), chunk_size
    )
    return mean_ap


def recall_at_k(
    query_emb,
    query_labels,
    gallery_emb,
    gallery_labels,
    ks: Iterable[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[int, float]:
    """Recall@K: the fraction of queries with at least one relevant item in their top ``k``.

    Args:
        query_emb, query_labels, gallery_emb, gallery_labels, chunk_size: as in
            ``retrieval_map``.
        ks: the cut-offs ``k``.

    Returns:
        ``{k: recall}`` for every ``k`` in ``ks`` (fractions in [0, 1]).

    Example:

    >>> q = [[1.0, 0.0], [0.0, 1.0]]
    >>> g = [[1.0, 0.1], [0.1, 1.0], [0.9, 0.0]]
    >>> recall_at_k(q, [0, 1], g, [0, 1, 1], ks=(1, 2))  # query 0's hit is 2nd
    {1: 0.5, 2: 1.0}
    """
    ks = _validate_ks(ks)
    _, recall, _, _ = _ranked_summaries(
        query_emb, query_labels, gallery_emb, gallery_labels, ks, chunk_size
    )
    return recall


def precision_at_k(
    query_emb,
    query_labels,
    gallery_emb,
    gallery_labels,
    ks: Iterable[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[int, float]:
    """Precision@K: the mean over queries of (relevant items in the top ``k``) / ``k``.

    Args:
        query_emb, query_labels, gallery_emb, gallery_labels, chunk_size: as in
            ``retrieval_map``.
        ks: the cut-offs ``k`` (a ``k`` beyond the gallery size counts as the gallery size).

    Returns:
        ``{k: precision}`` for every ``k`` in ``ks`` (fractions in [0, 1]).

    Example:

    >>> q = [[1.0, 0.0], [0.0, 1.0]]
    >>> g = [[1.0, 0.1], [0.1, 1.0], [0.9, 0.0]]
    >>> precision_at_k(q, [0, 1], g, [0, 1, 1], ks=(1, 2))
    {1: 0.5, 2: 0.5}
    """
    ks = _validate_ks(ks)
    _, _, precision, _ = _ranked_summaries(
        query_emb, query_labels, gallery_emb, gallery_labels, ks, chunk_size
    )
    return precision


def retrieval_report(
    audio_emb,
    visual_emb,
    labels_a,
    labels_v,
    ks: Iterable[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict:
    """Audio-visual retrieval in both directions (the AADML protocol, docs/methods.md §2.4).

    Audio queries rank the whole visual set (A2V) and visual queries rank the whole audio
    set (V2A).

    Returns:
        ``"MAP_A2V"``, ``"MAP_V2A"``, ``"MAP"`` (their mean); for each ``k``: ``"R@k"`` and
        ``"P@k"``, each the mean of the two directions, plus the per-direction
        ``"R@k_A2V"``, ``"R@k_V2A"``, ``"P@k_A2V"``, ``"P@k_V2A"``; and
        ``"excluded_A2V"``, ``"excluded_V2A"``: queries left out for having no relevant item.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(3), 4)
    >>> audio = np.eye(3)[labels] + 0.1 * rng.normal(size=(12, 3))
    >>> visual = np.eye(3)[labels] + 0.1 * rng.normal(size=(12, 3))
    >>> retrieval_report(audio, visual, labels, labels)["MAP"]
    1.0
    """
    ks = _validate_ks(ks)
    report: dict = {}
    directions = (
        ("A2V", audio_emb, labels_a, visual_emb, labels_v),
        ("V2A", visual_emb, labels_v, audio_emb, labels_a),
    )
    for tag, q_emb, q_lab, g_emb, g_lab in directions:
        mean_ap, recall, precision, excluded = _ranked_summaries(
            q_emb, q_lab, g_emb, g_lab, ks, chunk_size
        )
        report[f"MAP_{tag}"] = mean_ap
        report[f"excluded_{tag}"] = excluded
        for k in ks:
            report[f"R@{k}_{tag}"] = recall[k]
            report[f"P@{k}_{tag}"] = precision[k]
    report["MAP"] = (report["MAP_A2V"] + report["MAP_V2A"]) / 2.0
    for k in ks:
        report[f"R@{k}"] = (report[f"R@{k}_A2V"] + report[f"R@{k}_V2A"]) / 2.0
        report[f"P@{k}"] = (report[f"P@{k}_A2V"] + report[f"P@{k}_V2A"]) / 2.0
    return report
