"""Proxy softmax (InfoNCE) loss over labelled proxies: a relative utterance objective."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasadml.losses.base import MetricLoss, cosine_similarity_matrix, validate_embeddings
from kerasadml.ops import large_negative


@keras.saving.register_keras_serializable(package="kerasadml")
class ProxyNCE(MetricLoss):
    """Softmax cross-entropy of each embedding over a set of labelled proxies (InfoNCE).

    For anchors ``x_i`` (labels ``y_i``) and proxies ``p_j`` (labels ``c_j``), with
    ``s_ij = cos(x_i, p_j)``, scale ``r`` and additive margin ``m``::

        z_ij  = r * (s_ij - m [y_i = c_j]) + log w_j
        l_i   = -log sum_{j: c_j = y_i} exp z_ij + log sum_j exp z_ij

    ``w_j = 1 / #{valid proxies with label c_j}``: proxies that share a label (the text of
    one keyword repeated for each of its clips in a batch) count as one, so the forward
    term does not depend on how many copies a batch holds. (The reverse term below is a
    mean over proxies, so a label with more copies weighs more there; with the same number
    of copies per label, as in ``K x M`` batches, that changes nothing.) Unlike AsyP's fixed threshold
    ``lambda``, every negative is pushed in proportion to how close it is *relative to the
    positive*, so a hard negative at cosine 0.44 against a positive at 0.53 still gets a
    large gradient (docs/methods.md §1.10).

    With ``symmetric=True`` the reverse direction (each proxy against the anchors, its
    positives being the anchors of its label) is added: the value of each valid anchor is
    ``(l_i + mean_j l'_j) / 2`` where the mean runs over valid proxies that have at least
    one positive anchor, so ``mean_i value_i`` is the usual symmetric (CLIP-style) loss.

    Args:
        scale: ``r``, the inverse temperature (initial value when ``learn_scale``).
        margin: ``m``, subtracted from the positive cosine (0 for plain InfoNCE).
        symmetric: add the proxy-to-anchor direction.
        learn_scale: train ``log r`` (clipped to ``[log 1, log max_scale]``).
        max_scale: largest learned scale.

    Call arguments:
        embeddings: (N, D) anchors (e.g. audio utterance embeddings).
        labels: (N,) int labels.
        ref_embeddings: (M, D) proxies (e.g. keyword text embeddings).
        ref_labels: (M,) int labels.
        mask: optional (N,) bool, valid anchors.
        ref_mask: optional (M,) bool, valid proxies.

    Returns:
        (N,) per-anchor loss, 0 for masked anchors and anchors with no valid positive.

    Example:

    >>> import numpy as np
    >>> loss = ProxyNCE(scale=10.0)
    >>> x = np.eye(3, 4, dtype="float32"); y = np.array([0, 1, 2])
    >>> loss(x, y, x, y).shape
    (3,)
    """

    def __init__(
        self,
        scale: float = 16.0,
        margin: float = 0.1,
        symmetric: bool = True,
        learn_scale: bool = False,
        max_scale: float = 64.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if float(scale) <= 0:
            raise ValueError(f"ProxyNCE: scale must be > 0, got {scale}")
        if float(max_scale) < float(scale):
            raise ValueError(f"ProxyNCE: max_scale ({max_scale}) must be >= scale ({scale})")
        self.scale = float(scale)
        self.margin = float(margin)
        self.symmetric = bool(symmetric)
        self.learn_scale = bool(learn_scale)
        self.max_scale = float(max_scale)
        self.log_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.scale)),
            trainable=self.learn_scale,
            name="log_scale",
        )
        self.built = True  # its only weight exists already (an unbuilt layer slows JAX inference)

    def current_scale(self):
        """The scale ``r`` in use (a scalar tensor)."""
        return ops.exp(ops.clip(self.log_scale, 0.0, math.log(self.max_scale)))

    def call(self, embeddings, labels, ref_embeddings=None, ref_labels=None, mask=None, ref_mask=None):
        validate_embeddings("ProxyNCE: embeddings", embeddings)
        if ref_embeddings is None:
            ref_embeddings, ref_labels, ref_mask = embeddings, labels, mask
        validate_embeddings("ProxyNCE: ref_embeddings", ref_embeddings)
        x = ops.cast(embeddings, self.compute_dtype)
        p = ops.cast(ref_embeddings, self.compute_dtype)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        ref_labels = ops.reshape(ops.cast(ref_labels, "int32"), (-1,))
        n, m = ops.shape(x)[0], ops.shape(p)[0]
        valid = ops.ones((n,), "bool") if mask is None else ops.reshape(ops.cast(mask, "bool"), (-1,))
        ref_valid = ops.ones((m,), "bool") if ref_mask is None else ops.reshape(ops.cast(ref_mask, "bool"), (-1,))

        sim = cosine_similarity_matrix(x, p)  # (N, M)
        positive = ops.equal(labels[:, None], ref_labels[None, :])
        pos_f = ops.cast(positive, sim.dtype)
        ref_f = ops.cast(ref_valid, sim.dtype)
        same = ops.cast(ops.equal(ref_labels[:, None], ref_labels[None, :]), sim.dtype)
        copies = ops.maximum(ops.matmul(same, ref_f[:, None])[:, 0], 1.0)  # (M,)
        logits = self.current_scale() * (sim - self.margin * pos_f) - ops.log(copies)[None, :]
        neg = large_negative(sim.dtype)
        usable = ref_valid[None, :]
        all_logits = ops.where(usable, logits, neg)
        pos_logits = ops.where(ops.logical_and(positive, usable), logits, neg)
        has_pos = ops.logical_and(valid, ops.any(ops.logical_and(positive, usable), axis=1))
        forward = ops.logsumexp(all_logits, axis=1) - ops.logsumexp(pos_logits, axis=1)
        values = ops.where(has_pos, forward, ops.zeros_like(forward))
        if not self.symmetric:
            return values

        # Reverse: each proxy over the valid anchors (no copy correction: anchors are distinct).
        rev_logits = self.current_scale() * (ops.transpose(sim) - self.margin * ops.transpose(pos_f))
        rows_ok = valid[None, :]
        rev_all = ops.where(rows_ok, rev_logits, neg)
        rev_pos_mask = ops.logical_and(ops.transpose(positive), rows_ok)
        rev_pos = ops.where(rev_pos_mask, rev_logits, neg)
        ref_has_pos = ops.logical_and(ref_valid, ops.any(rev_pos_mask, axis=1))
        backward = ops.logsumexp(rev_all, axis=1) - ops.logsumexp(rev_pos, axis=1)
        ref_w = ops.cast(ref_has_pos, sim.dtype)
        backward_mean = ops.sum(ops.where(ref_has_pos, backward, ops.zeros_like(backward))) / ops.maximum(
            ops.sum(ref_w), 1.0
        )
        return ops.where(has_pos, 0.5 * (forward + backward_mean), ops.zeros_like(forward))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "scale": self.scale,
                "margin": self.margin,
                "symmetric": self.symmetric,
                "learn_scale": self.learn_scale,
                "max_scale": self.max_scale,
            }
        )
        return config
