"""Supervised contrastive (InfoNCE) loss across modalities, and its anchor-aware variant
(AADML, docs/methods.md §2.3.2)."""

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
from kerasadml.ops import large_negative


@keras.saving.register_keras_serializable(package="kerasadml")
class SupervisedContrastive(PairLoss):
    """Supervised InfoNCE between anchors and references, cross-modal or within one set.

    For anchor ``a_i`` with positives ``P(i)`` (references with its label) over the valid
    references ``r_k``:

        loss_i = -mean_{j in P(i)} log( exp(cos(a_i, r_j) / tau) / sum_k exp(cos(a_i, r_k) / tau) )

    An anchor without a positive gets 0. Cross-modal use (AADML): anchors of one
    modality, references of the other; call it in both directions. Without
    ``ref_embeddings`` the embeddings are compared with each other and the anchor's own
    item is left out of both the positives and the denominator (SupCon, Khosla et al.).

    Args:
        temperature: ``tau`` (> 0; AADML: 0.1).

    Call arguments:
        embeddings: (N, D) anchors.
        labels: (N,) int anchor labels.
        ref_embeddings: optional (M, D) references (default: the embeddings).
        ref_labels: (M,) int reference labels (needed with ``ref_embeddings``).
        mask: optional (N,) bool; masked anchors get exactly 0.
        ref_mask: optional (M,) bool; masked references enter neither the positives nor
            the denominator (default: ``mask`` in the same-set case, all valid otherwise).

    Returns:
        (N,) per-anchor losses.

    Example:

    >>> import numpy as np
    >>> audio, video = np.random.randn(6, 8), np.random.randn(6, 8)
    >>> labels = np.array([0, 0, 1, 1, 2, 2])
    >>> tuple(SupervisedContrastive(0.1)(audio, labels, video, labels).shape)
    (6,)

    Paper: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020; van den Oord
    et al., "Representation Learning with Contrastive Predictive Coding" (InfoNCE), 2018;
    the contrastive baseline of AADML (arXiv 2404.13789).
    """

    _per_anchor_loss = "contrastive_loss"

    def __init__(self, temperature: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"{type(self).__name__}: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def contrastive_loss(
        self, anchors, labels, refs, ref_labels, mask=None, ref_mask=None, exclude_self=False
    ):
        """Per-anchor loss of ``anchors`` (N, D) against ``refs`` (M, D)."""
        valid_anchor, positive, negative = pair_masks(
            labels, ref_labels, mask, ref_mask, exclude_self
        )
        logits = cosine_similarity_matrix(anchors, refs) / self.temperature
        # every valid reference but the anchor's own item (excluded from ``positive``)
        in_denominator = ops.logical_or(positive, negative)
        # finite stand-in for -inf: exp underflows to exactly 0, and no NaN can appear
        neg = ops.full_like(logits, large_negative(logits.dtype))
        masked_logits = ops.where(in_denominator, logits, neg)
        log_prob = logits - ops.logsumexp(masked_logits, axis=1, keepdims=True)
        loss = -masked_mean(log_prob, positive, axis=1)
        valid = ops.logical_and(valid_anchor, ops.any(positive, axis=1))
        return ops.where(valid, loss, ops.zeros_like(loss))

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config


@keras.saving.register_keras_serializable(package="kerasadml")
class AAContrastive(AnchorAwareMixin, SupervisedContrastive):
    """AA+contrastive (AADML): supervised InfoNCE with each anchor replaced by its AA proxy.

        loss_i = -mean_{j in P(i)} log( exp(cos(p_i, z_j) / tau) / sum_k exp(cos(p_i, z_k) / tau) )

    with ``p_i = AnchorAwareProxy(embeddings)_i``. The loss owns its proxy layer
    (``self.proxy``); a retrieval model uses one instance per anchor modality.

    Args:
        temperature: as :class:`SupervisedContrastive`.
        k, num_heads, key_dim, residual, normalize, aggregation: as
            :class:`~kerasadml.layers.AnchorAwareProxy`.

    Call arguments:
        embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask: as
            :class:`SupervisedContrastive`; the proxies are computed from
            ``embeddings``. Without ``ref_embeddings`` the proxies are compared with
            the raw embeddings (own item excluded).
        return_scores: also return the (N, k+1) AA scores.
        training: passed to the proxy layer.

    Returns:
        (N,) per-anchor losses, or ``(losses, scores)`` with ``return_scores=True``.

    Example:

    >>> import numpy as np
    >>> audio, video = np.random.randn(6, 8), np.random.randn(6, 8)
    >>> labels = np.array([0, 0, 1, 1, 2, 2])
    >>> tuple(AAContrastive(k=2, num_heads=2, key_dim=4)(audio, labels, video, labels).shape)
    (6,)

    Paper: Zeng, Wang, Ikeda, Yu, "Anchor-aware Deep Metric Learning for Audio-visual
    Retrieval", ICMR 2024 (arXiv 2404.13789).
    """

    def __init__(
        self,
        temperature: float = 0.1,
        k: int = 3,
        num_heads: int = 4,
        key_dim: int = 32,
        residual: bool = True,
        normalize: bool = True,
        aggregation: str = "attention",
        **kwargs,
    ):
        super().__init__(temperature=temperature, **kwargs)
        self._init_proxy(k, num_heads, key_dim, residual, normalize, aggregation)

