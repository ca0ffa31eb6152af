"""Triplet loss with batch-hard or all-triplet mining, and its anchor-aware variant
(AADML, docs/methods.md §2.3.1)."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.layers.anchor_aware_proxy import AnchorAwareProxy
from kerasadml.losses.base import (
    MetricLoss,
    cosine_similarity_matrix,
    masked_mean,
    validate_embeddings,
)

_MINING = ("batch_hard", "all")
_DISTANCES = ("cosine", "euclidean")


def resolve_references(name, embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask):
    """Check the inputs of a pair-based loss and fill in its references.

    Returns ``(embeddings, labels, refs, ref_labels, ref_mask, same_set)``: without
    ``ref_embeddings`` the embeddings are their own references (``same_set`` True; the
    reference mask then defaults to ``mask``). Labels come back flattened to (N,).
    """
    embeddings = ops.convert_to_tensor(embeddings)
    validate_embeddings(f"{name}: embeddings", embeddings)
    labels = ops.reshape(labels, (-1,))
    same_set = ref_embeddings is None
    if same_set:
        if ref_labels is not None:
            raise ValueError(f"{name}: ref_labels given without ref_embeddings")
        return embeddings, labels, embeddings, labels, mask if ref_mask is None else ref_mask, True
    if ref_labels is None:
        raise ValueError(f"{name}: ref_embeddings need ref_labels")
    refs = ops.convert_to_tensor(ref_embeddings)
    validate_embeddings(f"{name}: ref_embeddings", refs)
    d_a, d_r = embeddings.shape[-1], refs.shape[-1]
    if d_a is not None and d_r is not None and d_a != d_r:
        raise ValueError(
            f"{name}: embeddings and ref_embeddings must have the same width, got {d_a} and {d_r}"
        )
    return embeddings, labels, refs, ops.reshape(ref_labels, (-1,)), ref_mask, False


def pair_masks(labels, ref_labels, mask=None, ref_mask=None, exclude_self=False):
    """(N,) valid anchors and (N, M) positive / negative pair masks.

    Positive: same label and a valid reference (and, with ``exclude_self``, not the
    anchor's own item, i.e. ``i != j``); negative: other label and a valid reference.
    """
    n, m = ops.shape(labels)[0], ops.shape(ref_labels)[0]
    valid_anchor = (
        ops.ones((n,), "bool") if mask is None else ops.reshape(ops.cast(mask, "bool"), (-1,))
    )
    valid_ref = (
        ops.ones((m,), "bool")
        if ref_mask is None
        else ops.reshape(ops.cast(ref_mask, "bool"), (-1,))
    )
    same = ops.equal(labels[:, None], ops.cast(ref_labels, labels.dtype)[None, :])
    positive = ops.logical_and(same, valid_ref[None, :])
    negative = ops.logical_and(ops.logical_not(same), valid_ref[None, :])
    if exclude_self:
        ids = ops.arange(n)
        positive = ops.logical_and(positive, ops.not_equal(ids[:, None], ops.arange(m)[None, :]))
    return valid_anchor, positive, negative


@keras.saving.register_keras_serializable(package="kerasadml")
class Triplet(MetricLoss):
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
        self.supports_masking = True  # ``mask`` is a call argument; outputs carry none

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

    def call(
        self, embeddings, labels, ref_embeddings=None, ref_labels=None, mask=None, ref_mask=None
    ):
        embeddings, labels, refs, ref_labels, ref_mask, same_set = resolve_references(
            type(self).__name__, embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask
        )
        return self.triplet_loss(embeddings, labels, refs, ref_labels, mask, ref_mask, same_set)

    def compute_mask(self, *args, **kwargs):
        return None

    def compute_output_shape(self, embeddings_shape, *args, **kwargs):
        return (embeddings_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "mining": self.mining, "distance": self.distance})
        return config


class AnchorAwareMixin:
    """Shared part of the anchor-aware losses: owns ``self.proxy``, an
    :class:`AnchorAwareProxy` that turns the anchors into AA proxies."""

    def _init_proxy(self, k, num_heads, key_dim, residual, normalize, aggregation):
        self.proxy = AnchorAwareProxy(
            k=k,
            num_heads=num_heads,
            key_dim=key_dim,
            residual=residual,
            normalize=normalize,
            aggregation=aggregation,
            name="proxy",
            dtype=self.dtype_policy,  # part of the loss: float32 under mixed precision too
        )
        self.k = self.proxy.k
        self.num_heads = self.proxy.num_heads
        self.key_dim = self.proxy.key_dim
        self.residual = self.proxy.residual
        self.normalize = self.proxy.normalize
        self.aggregation = self.proxy.aggregation

    def build(self, input_shape):
        """``build((None, D))`` builds the proxy's attention weights."""
        if not self.proxy.built:
            self.proxy.build(tuple(input_shape))
        self.built = True

    def compute_output_spec(self, embeddings, *args, return_scores=False, **kwargs):
        n = embeddings.shape[0]
        loss = keras.KerasTensor((n,), dtype=self.compute_dtype)
        if return_scores:
            return loss, keras.KerasTensor((n, self.k + 1), dtype=self.compute_dtype)
        return loss

    def _proxy_config(self):
        return {
            "k": self.k,
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "residual": self.residual,
            "normalize": self.normalize,
            "aggregation": self.aggregation,
        }


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

    def call(
        self,
        embeddings,
        labels,
        ref_embeddings=None,
        ref_labels=None,
        mask=None,
        ref_mask=None,
        return_scores=False,
        training=None,
    ):
        embeddings, labels, refs, ref_labels, ref_mask, same_set = resolve_references(
            "AATriplet", embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask
        )
        proxies, scores = self.proxy(embeddings, mask=mask, training=training)
        loss = self.triplet_loss(proxies, labels, refs, ref_labels, mask, ref_mask, same_set)
        return (loss, scores) if return_scores else loss

    def get_config(self):
        config = super().get_config()
        config.update(self._proxy_config())
        return config
