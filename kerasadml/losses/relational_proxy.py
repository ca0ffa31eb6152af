"""Relational proxy loss: AsyP point term + RKD relational term (docs/methods.md §1.5, L_utt)."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.losses.asyp_adams import asyp_per_sample
from kerasadml.losses.base import MetricLoss, cosine_similarity_matrix, masked_mean, validate_embeddings
from kerasadml.ops import bool_mask, flat_labels, l2_normalize

_EPS = 1e-12  # floor of squared distances and of their means


def _huber(x):
    """Smooth L1 (Huber with delta 1), elementwise."""
    ax = ops.abs(x)
    return ops.where(ax < 1.0, 0.5 * ops.square(x), ax - 0.5)


def _pairwise_distances(x):
    """(K, K) euclidean distances; ``sqrt(max(d^2, eps))`` keeps the gradient finite."""
    sq = ops.sum(ops.square(x), axis=-1)
    d2 = ops.expand_dims(sq, 1) + ops.expand_dims(sq, 0) - 2.0 * ops.matmul(x, ops.transpose(x))
    return ops.sqrt(ops.maximum(d2, _EPS))


def _triplet_cosines(x):
    """(K, K, K) ``c[i, j, k] = <e_ij, e_kj>`` with ``e_ij = normalise(x_i - x_j)``: the
    cosine of the angle at ``j`` between ``i`` and ``k`` (RKD angle potential)."""
    e = l2_normalize(ops.expand_dims(x, 1) - ops.expand_dims(x, 0))  # e[i, j] = x_i - x_j
    return ops.einsum("ijd,kjd->ijk", e, e)


@keras.saving.register_keras_serializable(package="kerasadml")
class RelationalProxy(MetricLoss):
    """Relational proxy loss ``L_utt``: AsyP point term plus an RKD relational term.

    **(reconstruction** of Jung et al. 2024, docs/methods.md §1.5.) Per valid audio sample ``b``:

    ``value_b = asyp_b + L_rel``

    - ``asyp_b``: the per-sample AsyP value (non-adaptive, see
      :class:`~kerasadml.losses.asyp_adams.AsyPAdaMS`) with the audio utterance
      embeddings as data and the ``K`` text embeddings of the batch as proxies, so the
      mean over valid samples is the AsyP loss. Text rows sharing a label are separate
      proxies here.
    - ``L_rel`` (scalar, added to every valid sample so the mean is ``AsyP + L_rel``):
      Relational Knowledge Distillation (Park et al. 2019) with the text side as the
      teacher under ``stop_gradient``. For every keyword present on both sides,
      ``a_k`` is the mean audio embedding of its clips and ``t_k`` the mean of its text
      rows (one-hot/segment matrices, no Python loops):
      ``L_rel = distance_weight * smoothL1(psi_D(a), psi_D(t)) +
      angle_weight * smoothL1(psi_A(a), psi_A(t))``. ``psi_D`` are pairwise euclidean
      distances divided by their mean over the off-diagonal pairs; ``psi_A[i, j, k] =
      <e_ij, e_kj>``, ``e_ij = normalise(x_i - x_j)``, the cosine of the angle at ``j``.
      Smooth L1 is Huber with delta 1, averaged over the off-diagonal keyword pairs and
      over the triplets of pairwise distinct keywords (RKD's code also averages over the
      degenerate entries, whose difference is always 0; leaving them out only rescales).

    The angle term is O(K^3) in memory: it uses only the first ``max_angle_keywords``
    keywords (in order of first appearance in ``text``; ``None`` = all), and
    ``angle_weight=0`` skips it. With fewer than 2 keywords (3 for angles) a term is 0.

    Reconstruction choice: with ``normalize=True`` (default) every audio and text row
    is L2-normalised before the per-keyword means, so the relational term sees the same
    cosine geometry as the point term and the scoring.

    Args:
        alpha, beta, lambda_: AsyP parameters (defaults 2, 50, 0.5).
        distance_weight: weight of the distance term (RKD's lambda_D; default 1).
        angle_weight: weight of the angle term (RKD's lambda_A; default 2).
        max_angle_keywords: bound on the keywords entering the angle term (default 64).
        normalize: L2-normalise rows before the relational term (default True).
        positive_proxies_only: as in ``AsyPAdaMS`` (default True).

    Call arguments:
        audio: (B, D) utterance embeddings (data).
        audio_labels: (B,) keyword ids.
        text: (K, D) text embeddings of the batch (proxies and teacher).
        text_labels: (K,) their keyword ids; several rows may share one.
        audio_mask: optional (B,) bool, True = valid; masked samples get 0.
        text_mask: optional (K,) bool, True = valid text row.

    Returns:
        (B,) per-sample values.

    Example:

    >>> import numpy as np
    >>> loss = RelationalProxy()
    >>> audio = np.random.randn(6, 8).astype("float32")
    >>> text = np.random.randn(3, 8).astype("float32")
    >>> tuple(loss(audio, np.array([0, 0, 1, 1, 2, 2]), text, np.array([0, 1, 2])).shape)
    (6,)

    Papers: Jung et al. 2024 (relational proxy loss), Park et al., "Relational Knowledge
    Distillation", CVPR 2019; used as ``L_utt`` in ADML (arXiv 2505.16735).
    """

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        lambda_: float = 0.5,
        distance_weight: float = 1.0,
        angle_weight: float = 2.0,
        max_angle_keywords: int | None = 64,
        normalize: bool = True,
        positive_proxies_only: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if alpha <= 0 or beta <= 0:
            raise ValueError(f"RelationalProxy: alpha and beta must be > 0, got alpha={alpha}, beta={beta}")
        if distance_weight < 0 or angle_weight < 0:
            raise ValueError(
                "RelationalProxy: distance_weight and angle_weight must be >= 0, got "
                f"{distance_weight}, {angle_weight}"
            )
        if max_angle_keywords is not None and int(max_angle_keywords) < 3:
            raise ValueError(
                f"RelationalProxy: max_angle_keywords must be >= 3 or None, got {max_angle_keywords}"
            )
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.lambda_ = float(lambda_)
        self.distance_weight = float(distance_weight)
        self.angle_weight = float(angle_weight)
        self.max_angle_keywords = None if max_angle_keywords is None else int(max_angle_keywords)
        self.normalize = bool(normalize)
        self.positive_proxies_only = bool(positive_proxies_only)
        self.built = True

    def keyword_means(self, audio, audio_labels, text, text_labels, audio_mask=None, text_mask=None):
        """Per-keyword means ``(a, t, valid)``, one slot per text row.

        Slot ``k`` stands for the keyword of text row ``k``; it is valid when row ``k``
        is the first valid row of that keyword and at least one valid audio sample has
        it. ``a[k]`` is the mean audio embedding of the keyword, ``t[k]`` the mean of its
        valid text rows (L2-normalised first when ``normalize``).
        """
        audio_labels = flat_labels("audio_labels", audio_labels)
        text_labels = ops.cast(flat_labels("text_labels", text_labels), audio_labels.dtype)
        audio_mask = bool_mask(audio_mask, audio_labels)
        text_mask = bool_mask(text_mask, text_labels)
        audio = ops.convert_to_tensor(audio)
        text = ops.cast(text, audio.dtype)
        if self.normalize:
            audio, text = l2_normalize(audio), l2_normalize(text)
        k = ops.shape(text_labels)[0]
        same_tt = ops.logical_and(
            ops.equal(ops.expand_dims(text_labels, 1), ops.expand_dims(text_labels, 0)),
            ops.logical_and(ops.expand_dims(text_mask, 1), ops.expand_dims(text_mask, 0)),
        )
        idx = ops.arange(k)
        earlier = ops.expand_dims(idx, 0) < ops.expand_dims(idx, 1)  # [k, j]: j < k
        first = ops.logical_and(
            text_mask, ops.logical_not(ops.any(ops.logical_and(same_tt, earlier), axis=1))
        )
        same_ta = ops.logical_and(
            ops.equal(ops.expand_dims(text_labels, 1), ops.expand_dims(audio_labels, 0)),
            ops.expand_dims(audio_mask, 0),
        )
        seg_t = ops.cast(same_tt, audio.dtype)
        seg_a = ops.cast(same_ta, audio.dtype)
        count_t = ops.sum(seg_t, axis=1, keepdims=True)
        count_a = ops.sum(seg_a, axis=1, keepdims=True)
        t_means = ops.matmul(seg_t, text) / ops.maximum(count_t, 1.0)
        a_means = ops.matmul(seg_a, audio) / ops.maximum(count_a, 1.0)
        valid = ops.logical_and(first, ops.squeeze(count_a, 1) > 0)
        return a_means, t_means, valid

    def relational_term(self, audio_means, text_means, valid=None):
        """The scalar RKD term between per-keyword audio means (student) and text means
        (teacher, under ``stop_gradient``); ``valid`` (K,) bool marks the keywords used."""
        audio_means = ops.convert_to_tensor(audio_means)
        text_means = ops.stop_gradient(ops.cast(text_means, audio_means.dtype))
        k = ops.shape(audio_means)[0]
        if valid is None:
            valid = ops.ones((k,), dtype="bool")
        valid = ops.cast(valid, "bool")
        # Move the valid keywords to the front, keeping their order.
        idx = ops.arange(k)
        order = ops.argsort(ops.where(valid, idx, idx + k))
        # A permutation matmul rather than a gather: dense gradients on every backend.
        perm = ops.one_hot(order, k, dtype=audio_means.dtype)
        a = ops.matmul(perm, audio_means)
        t = ops.matmul(perm, text_means)
        v = ops.take(valid, order, axis=0)
        total = ops.zeros((), dtype=a.dtype)
        if self.distance_weight > 0:
            total = total + self.distance_weight * self._distance_term(a, t, v)
        if self.angle_weight > 0:
            m = self.max_angle_keywords
            if m is not None:
                a, t, v = a[:m], t[:m], v[:m]
            total = total + self.angle_weight * self._angle_term(a, t, v)
        return total

    @staticmethod
    def _distance_term(a, t, v):
        n = ops.shape(v)[0]
        pairs = ops.logical_and(
            ops.logical_and(ops.expand_dims(v, 1), ops.expand_dims(v, 0)),
            ops.logical_not(ops.cast(ops.eye(n), "bool")),
        )
        d_a = _pairwise_distances(a)
        d_t = _pairwise_distances(t)
        d_a = d_a / ops.maximum(masked_mean(d_a, pairs), _EPS)
        d_t = d_t / ops.maximum(masked_mean(d_t, pairs), _EPS)
        return masked_mean(_huber(d_a - d_t), pairs)

    @staticmethod
    def _angle_term(a, t, v):
        n = ops.shape(v)[0]
        distinct = ops.logical_not(ops.cast(ops.eye(n), "bool"))
        triplets = ops.logical_and(
            ops.logical_and(ops.expand_dims(distinct, 2), ops.expand_dims(distinct, 0)),  # i!=j, j!=k
            ops.expand_dims(distinct, 1),  # i != k
        )
        valid3 = ops.logical_and(ops.logical_and(v[:, None, None], v[None, :, None]), v[None, None, :])
        triplets = ops.logical_and(triplets, valid3)
        return masked_mean(_huber(_triplet_cosines(a) - _triplet_cosines(t)), triplets)

    def call(self, audio, audio_labels, text, text_labels, audio_mask=None, text_mask=None):
        validate_embeddings("audio", audio)
        validate_embeddings("text", text)
        audio_labels = flat_labels("audio_labels", audio_labels)
        text_labels = flat_labels("text_labels", text_labels)
        audio_mask = bool_mask(audio_mask, audio_labels)
        text_mask = bool_mask(text_mask, text_labels)
        sim = ops.cast(cosine_similarity_matrix(audio, text), "float32")
        point = asyp_per_sample(
            sim,
            audio_labels,
            text_labels,
            audio_mask,
            text_mask,
            alpha_p=self.alpha,
            lambda_p=self.lambda_,
            beta_x=self.beta,
            lambda_x=self.lambda_,
            positive_proxies_only=self.positive_proxies_only,
        )
        if self.distance_weight == 0 and self.angle_weight == 0:
            return point
        a_means, t_means, valid = self.keyword_means(
            ops.cast(audio, "float32"),
            audio_labels,
            ops.cast(text, "float32"),
            text_labels,
            audio_mask,
            text_mask,
        )
        rel = self.relational_term(a_means, t_means, valid)
        return ops.where(audio_mask, point + rel, ops.zeros_like(point))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "alpha": self.alpha,
                "beta": self.beta,
                "lambda_": self.lambda_,
                "distance_weight": self.distance_weight,
                "angle_weight": self.angle_weight,
                "max_angle_keywords": self.max_angle_keywords,
                "normalize": self.normalize,
                "positive_proxies_only": self.positive_proxies_only,
            }
        )
        return config
