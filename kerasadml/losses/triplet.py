"""Triplet loss with batch-hard or all-triplet mining, and its anchor-aware variant
(AADML, docs/methods.md §2.3.1)."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.losses.anchor_aware import AnchorAwareMixin
from kerasadml.losses.base import (
    PairLoss,
    cosine_similarity_matrix,
    masked_mean,
    pair_masks,
)

_MINING = ("batch_hard", "all")
_DISTANCES = ("cosine", "euclidean")


@keras.saving.register_keras_serializable(package="kerasadml")
class Triplet(PairLoss):
    """Triplet loss between anchors and references, cross-modal or within one set.

    With ``d`` the distance (``1 - cos`` for ``distance="cosine"``; the Euclidean
    distance ``sqrt(2 - 2 cos)`` between L2-normalised vectors for ``"euclidean"``),
    positives ``P(i)`` the references with the anchor's label and negatives ``N(i)`` the
    others:

        batch_hard:  loss_i = [max_{p in P(i)} d(a_i, r_p) - min_{n in N(i)} d(a_i, r_n) + m]_+
        all:         loss_i = mean_{p in P(i), n in N(i)} [d(a_i, r_p) - d(a_i, r_n) + m]_+

    ``"all"`` averages over **all** (positive, negative) pairs, inactive (zero) ones
    included, not only over the active ones. An anchor without a positive or without a
    negative gets 0. Cross-modal use (AADML): anchors of one modality, references of the
    other. Without ``ref_embeddings`` the embeddings are compared with each other and an
    anchor is never its own positive.

    Args:
        margin: ``m`` (AADML: 0.4).
        mining: ``"batch_hard"`` or ``"all"``.
        distance: ``"cosine"`` or ``"euclidean"``.

    Call arguments:
        embeddings: (N, D) anchors.
        labels: (N,) int anchor labels.
        ref_embeddings: optional (M, D) references (default: the embeddings).
        ref_labels: (M,) int labels of the references (needed with ``ref_embeddings``).
        mask: optional (N,) bool; masked anchors get exactly 0.
        ref_mask: optional (M,) bool; masked references are neither positives nor
            negatives (default: ``mask`` in the same-set case, all valid otherwise).

    Returns:
        (N,) per-anchor losses.

    Example:

    >>> import numpy as np
    >>> audio, video = np.random.randn(6, 8), np.random.randn(6, 8)
    >>> labels = np.array([0, 0, 1, 1, 2, 2])
    >>> tuple(Triplet(margin=0.4)(audio, labels, video, labels).shape)
    (6,)

    Paper: Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015 (triplet loss);
    Hermans, Beyer, Leibe, "In Defense of the Triplet Loss", 2017 (batch-hard mining);
    the baseline of AADML (arXiv 2404.13789).
    """

    _per_anchor_loss = "triplet_loss"

    def __init__(
        self, margin: float = 0.4, mining: str = "batch_hard", distance: str = "cosine", **kwargs
    ):
        super().__init__(**kwargs)
        if mining not in _MINING:
            raise ValueError(
                f"{type(self).__name__}: mining must be one of {_MINING}, got {mining!r}"
            )
        if distance not in _DISTANCES:
            raise ValueError(
                f"{type(self).__name__}: distance must be one of {_DISTANCES}, got {distance!r}"
            )
        self.margin = float(margin)
        self.mining = mining
        self.distance = distance

    def distances(self, embeddings, ref_embeddings):
        """(N, M) distances between anchors and references."""
        cos = cosine_similarity_matrix(embeddings, ref_embeddings)
        if self.distance == "cosine":
            return 1.0 - cos
        return ops.sqrt(ops.maximum(2.0 - 2.0 * cos, 1e-12))

    def triplet_loss(
        self, anchors, labels, refs, ref_labels, mask=None, ref_mask=None, exclude_self=False
    ):
        """Per-anchor loss of ``anchors`` (N, D) against ``refs`` (M, D)."""
        valid_anchor, positive, negative = pair_masks(
            labels, ref_labels, mask, ref_mask, exclude_self
        )
        d = self.distances(anchors, refs)
        has_pos = ops.any(positive, axis=1)
        has_neg = ops.any(negative, axis=1)
        if self.mining == "batch_hard":
            # distances lie in [0, 2]: -1 / 3 are below / above every real one
            hardest_pos = ops.max(ops.where(positive, d, ops.full_like(d, -1.0)), axis=1)
            hardest_neg = ops.min(ops.where(negative, d, ops.full_like(d, 3.0)), axis=1)
            loss = ops.relu(hardest_pos - hardest_neg + self.margin)
        else:
            hinge = ops.relu(d[:, :, None] - d[:, None, :] + self.margin)  # (N, P, Q)
            pairs = ops.logical_and(positive[:, :, None], negative[:, None, :])
            loss = masked_mean(hinge, pairs, axis=(1, 2))
        valid = ops.logical_and(valid_anchor, ops.logical_and(has_pos, has_neg))
        return ops.where(valid, loss, ops.zeros_like(loss))

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "mining": self.mining, "distance": self.distance})
        return config


@keras.saving.register_keras_serializable(package="kerasadml")
class AATriplet(AnchorAwareMixin, Triplet):
    """AA+triplet (AADML): the triplet loss with each anchor replaced by its AA proxy.

    ``p_i = AnchorAwareProxy(embeddings)_i`` (attention over the anchor's ``k`` nearest
    same-modality neighbours, see :class:`~kerasadml.layers.AnchorAwareProxy`), then

        loss_i = Triplet(p_i vs references)   e.g. [d(p_i, r_pos) - d(p_i, r_neg) + m]_+

    The loss owns its proxy layer (``self.proxy``), whose attention weights are trained
    and saved with the model. A retrieval model uses two instances: audio anchors against
    visual references and the reverse.

    Args:
        margin, mining, distance: as :class:`Triplet`.
        k, num_heads, key_dim, residual, normalize, aggregation: as
            :class:`~kerasadml.layers.AnchorAwareProxy`.

    Call arguments:
        embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask: as
            :class:`Triplet`; the proxies are computed from ``embeddings`` (the anchor
            modality; ``mask`` keeps padding out of the neighbourhoods). Without
            ``ref_embeddings`` the proxies are compared with the raw embeddings.
        return_scores: also return the (N, k+1) AA scores.
        training: passed to the proxy layer.

    Returns:
        (N,) per-anchor losses, or ``(losses, scores)`` with ``return_scores=True``.

    Example:

    >>> import numpy as np
    >>> audio, video = np.random.randn(6, 8), np.random.randn(6, 8)
    >>> labels = np.array([0, 0, 1, 1, 2, 2])
    >>> loss, scores = AATriplet(k=2, num_heads=2, key_dim=4)(
    ...     audio, labels, video, labels, return_scores=True)
    >>> tuple(loss.shape), tuple(scores.shape)
    ((6,), (6, 3))

    Paper: Zeng, Wang, Ikeda, Yu, "Anchor-aware Deep Metric Learning for Audio-visual
    Retrieval", ICMR 2024 (arXiv 2404.13789).
    """

    def __init__(
        self,
        margin: float = 0.4,
        mining: str = "batch_hard",
        distance: str = "cosine",
        k: int = 3,
        num_heads: int = 4,
        key_dim: int = 32,
        residual: bool = True,
        normalize: bool = True,
        aggregation: str = "attention",
        **kwargs,
    ):
        super().__init__(margin=margin, mining=mining, distance=distance, **kwargs)
        self._init_proxy(k, num_heads, key_dim, residual, normalize, aggregation)

