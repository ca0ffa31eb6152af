"""Multi-Similarity loss (Wang et al. 2019) and its proxy form (docs/methods.md §1.3.1, §1.3.2)."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.losses.base import (
    MetricLoss,
    cosine_similarity_matrix,
    log1p_sum_exp,
    pair_masks,
    validate_embeddings,
)
from kerasadml.ops import bool_mask, flat_labels


def multi_similarity_from_sims(sim, positive, negative, alpha: float, beta: float, lambda_: float):
    """Per-row MS loss for similarities ``sim`` (N, M) and boolean pair masks (N, M):
    ``(1/alpha) log(1 + sum_pos e^{-alpha (S - lambda)}) + (1/beta) log(1 + sum_neg e^{beta (S - lambda)})``.
    """
    pos = log1p_sum_exp(-alpha * (sim - lambda_), positive) / alpha
    neg = log1p_sum_exp(beta * (sim - lambda_), negative) / beta
    return pos + neg


@keras.saving.register_keras_serializable(package="kerasadml")
class MultiSimilarity(MetricLoss):
    """Multi-Similarity loss, one value per anchor.

    For anchor ``i`` with cosine similarities ``S_ij`` to the references ``j``:

    ``L_i = (1/alpha) log(1 + sum_{j in P_i} e^{-alpha (S_ij - lambda)})
    + (1/beta) log(1 + sum_{j in N_i} e^{beta (S_ij - lambda)})``

    with ``P_i`` the valid references of the anchor's label and ``N_i`` the others.
    Both logs are computed as a log-sum-exp with a zero (``log(1 + sum e^x) =
    logsumexp([0, x...])``), so large ``beta`` does not overflow. The pair mining step of
    the original paper is not applied here (every pair enters; mining is a separate,
    swappable part, as in pytorch-metric-learning).

    Without ``ref_embeddings`` the anchors are compared with each other and the
    self-pair ``i = i`` is excluded. With ``ref_embeddings`` (e.g. the other modality)
    every valid reference is used, including one that happens to be the same vector.

    Args:
        alpha: positive scale (default 2, docs/methods.md §1.3.1).
        beta: negative scale (default 50).
        lambda_: similarity margin (default 0.5).

    Call arguments:
        embeddings: (N, D) anchors.
        labels: (N,) integer labels.
        ref_embeddings: optional (M, D) references; default ``embeddings``.
        ref_labels: (M,) labels of the references; required with ``ref_embeddings``.
        mask: optional (N,) bool, True = valid anchor. Masked anchors get 0 and, when
            the references default to the embeddings, are not references either.
        ref_mask: optional (M,) bool, True = valid reference.

    Returns:
        (N,) per-anchor losses; reduce them with ``kerasadml.losses.base.reduce_loss``.

    Example:

    >>> import numpy as np
    >>> loss = MultiSimilarity()
    >>> x = np.random.randn(6, 8).astype("float32")
    >>> y = np.array([0, 0, 1, 1, 2, 2])
    >>> tuple(loss(x, y).shape)
    (6,)

    Paper: Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep
    Metric Learning", CVPR 2019.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, lambda_: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if alpha <= 0 or beta <= 0:
            raise ValueError(
                f"{type(self).__name__}: alpha and beta must be > 0, got alpha={alpha}, beta={beta}"
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.lambda_ = float(lambda_)
        self.built = True

    def call(self, embeddings, labels, ref_embeddings=None, ref_labels=None, mask=None, ref_mask=None):
        validate_embeddings("embeddings", embeddings)
        labels = flat_labels("labels", labels)
        mask = bool_mask(mask, labels)
        exclude_self = ref_embeddings is None
        if exclude_self:
            if ref_labels is not None or ref_mask is not None:
                raise ValueError(f"{type(self).__name__}: ref_labels/ref_mask given without ref_embeddings")
            ref_embeddings, ref_labels, ref_mask = embeddings, labels, mask
        else:
            validate_embeddings("ref_embeddings", ref_embeddings)
            if ref_labels is None:
                raise ValueError(f"{type(self).__name__}: ref_labels is required with ref_embeddings")
            ref_labels = flat_labels("ref_labels", ref_labels)
            ref_mask = bool_mask(ref_mask, ref_labels)
        sim = cosine_similarity_matrix(embeddings, ref_embeddings)
        _, positive, negative = pair_masks(labels, ref_labels, mask, ref_mask, exclude_self)
        # a masked anchor has no pairs at all (its row of the loss is exactly 0)
        positive = ops.logical_and(positive, mask[:, None])
        negative = ops.logical_and(negative, mask[:, None])
        values = multi_similarity_from_sims(sim, positive, negative, self.alpha, self.beta, self.lambda_)
        return ops.where(mask, values, ops.zeros_like(values))

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "beta": self.beta, "lambda_": self.lambda_})
        return config


@keras.saving.register_keras_serializable(package="kerasadml")
class ProxyMS(MultiSimilarity):
    """Proxy Multi-Similarity: MS between data points (anchors) and proxies (references).

    In ADML the **text** embeddings are the proxies (one per keyword, or per phoneme
    position at the phoneme level) and the **audio** embeddings are the data: each audio
    anchor is pulled toward the text proxies of its label and pushed from the others.
    The formula is :class:`MultiSimilarity`'s with ``ref_embeddings`` = proxies, which
    are required; there is no self-exclusion (a data point is never its own proxy).

    Args:
        alpha, beta, lambda_: as in :class:`MultiSimilarity` (defaults 2, 50, 0.5).

    Call arguments:
        embeddings: (N, D) data points (audio).
        labels: (N,) their labels.
        ref_embeddings: (P, D) proxies (text), required.
        ref_labels: (P,) proxy labels, required.
        mask: optional (N,) bool for the data points; masked ones get 0.
        ref_mask: optional (P,) bool for the proxies.

    Returns:
        (N,) per-data-point losses.

    Example:

    >>> import numpy as np
    >>> audio = np.random.randn(4, 8).astype("float32")
    >>> text = np.random.randn(2, 8).astype("float32")
    >>> tuple(ProxyMS()(audio, np.array([0, 1, 1, 0]), text, np.array([0, 1])).shape)
    (4,)

    Paper: Wang et al. 2019 (MS); proxy form as in ADML (arXiv 2505.16735).
    """

    def call(self, embeddings, labels, ref_embeddings=None, ref_labels=None, mask=None, ref_mask=None):
        if ref_embeddings is None or ref_labels is None:
            raise ValueError("ProxyMS: ref_embeddings (the proxies) and ref_labels are required")
        return super().call(embeddings, labels, ref_embeddings, ref_labels, mask=mask, ref_mask=ref_mask)
