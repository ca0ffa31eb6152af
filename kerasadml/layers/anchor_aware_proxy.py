"""Anchor-aware (AA) proxies (AADML, docs/methods.md §2.2): each anchor attends to its nearest
same-modality neighbours in the batch and is replaced by the attention output."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.ops import l2_normalize

_AGGREGATIONS = ("attention", "mean")


@keras.saving.register_keras_serializable(package="kerasadml")
class AnchorAwareProxy(keras.layers.Layer):
    """Anchor-aware proxies: attention of every anchor over its k nearest neighbours.

    For the embeddings ``z`` (N, D) of one modality in a batch, ``S = cos(z, z)``; for
    every anchor ``i`` its ``k`` nearest neighbours ``N_k(i)`` by ``S`` (self excluded) are
    found with ``top_k``. With ``aggregation="attention"`` the proxy is

        p_i = MHA(query=z_i, key=[z_i; z_N(i)], value=[z_i; z_N(i)])  (+ z_i if residual)

    L2-normalised if ``normalize``. The attention weights averaged over heads are the "AA
    scores" (N, k+1); column 0 is the anchor itself, columns 1..k its neighbours from the
    nearest to the farthest. ``aggregation="mean"`` (the ablation baseline, no attention,
    no weights) gives ``p_i = mean([z_i; z_N(i)])`` (normalised if ``normalize``; the
    residual is not added since the mean already contains ``z_i``) with uniform scores.

    Neighbour selection is not differentiable (indices); gradients flow through the
    gathered embeddings and the attention.

    Args:
        k: number of neighbours (>= 1, and < the batch size).
        num_heads: attention heads.
        key_dim: width of each head's queries and keys (and values).
        residual: add ``z_i`` to the attention output.
        normalize: L2-normalise the proxies.
        aggregation: ``"attention"`` (the paper) or ``"mean"`` (ablation baseline).

    Call arguments:
        z: (N, D) float embeddings of one modality.
        mask: optional (N,) boolean, True = valid. Invalid items are never chosen as
            neighbours while enough valid ones exist, and an invalid item that does fill
            a neighbour slot (fewer than k valid others) gets zero weight; so padding
            never changes the proxy of a valid anchor. Proxies of invalid anchors are computed but meaningless.
        training: passed to the attention layer.

    Returns:
        ``(proxies, scores)``: (N, D) proxies and (N, k+1) AA scores (rows sum to 1).

    Example:

    >>> import numpy as np
    >>> layer = AnchorAwareProxy(k=2, num_heads=2, key_dim=8)
    >>> proxies, scores = layer(np.random.randn(6, 16).astype("float32"))
    >>> tuple(proxies.shape), tuple(scores.shape)
    ((6, 16), (6, 3))

    Paper: "Anchor-aware Deep Metric Learning for Audio-visual Retrieval" (AADML,
    Zeng et al., ICMR 2024); multi-head attention from Vaswani et al. 2017.
    """

    def __init__(
        self,
        k: int = 3,
        num_heads: int = 4,
        key_dim: int = 32,
        residual: bool = True,
        normalize: bool = True,
        aggregation: str = "attention",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(k) < 1:
            raise ValueError(f"AnchorAwareProxy: k must be >= 1, got k={k}")
        if aggregation not in _AGGREGATIONS:
            raise ValueError(
                f"AnchorAwareProxy: aggregation must be one of {_AGGREGATIONS}, got {aggregation!r}"
            )
        if int(num_heads) < 1 or int(key_dim) < 1:
            raise ValueError(
                f"AnchorAwareProxy: num_heads and key_dim must be >= 1, got {num_heads}, {key_dim}"
            )
        self.k = int(k)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.residual = bool(residual)
        self.normalize = bool(normalize)
        self.aggregation = aggregation
        self.supports_masking = True  # an (N,) mask is a call argument; outputs carry none
        self.attention = None
        if aggregation == "attention":
            # output_shape=None projects back to the query width D.
            self.attention = keras.layers.MultiHeadAttention(
                num_heads=self.num_heads, key_dim=self.key_dim, name="attention", dtype=self.dtype_policy
            )

    def _check_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(
                f"AnchorAwareProxy expects embeddings of rank 2 (N, D), got shape {tuple(shape)}"
            )
        n = shape[0]
        if n is not None and not isinstance(n, int):
            n = None
        if n is not None and self.k >= n:
            raise ValueError(
                f"AnchorAwareProxy: k={self.k} neighbours need a batch size larger than k, "
                f"got batch size {n}"
            )
        if shape[-1] is None:
            raise ValueError("AnchorAwareProxy: the embedding width D must be known")

    def build(self, input_shape):
        self._check_shape(input_shape)
        dim = int(input_shape[-1])
        if self.attention is not None and not self.attention.built:
            self.attention.build((None, 1, dim), (None, self.k + 1, dim), (None, self.k + 1, dim))
        self.built = True

    def neighbor_indices(self, z, mask=None):
        """Indices (N, k) of each item's k nearest neighbours by cosine, self excluded,
        nearest first; invalid items (``mask`` False) rank below every valid one."""
        z = ops.convert_to_tensor(z)
        self._check_shape(z.shape)
        zn = l2_normalize(ops.stop_gradient(z))
        sim = ops.matmul(zn, ops.transpose(zn))
        n = ops.shape(sim)[0]
        ids = ops.arange(n)
        eye = ops.equal(ids[:, None], ids[None, :])
        # cos is in [-1, 1]: invalid columns go to -3 and self to -5, so self is never
        # picked (an invalid item fills a slot instead and gets zero attention weight).
        if mask is not None:
            valid = ops.cast(mask, "bool")[None, :]
            sim = ops.where(valid, sim, ops.cast(-3.0, sim.dtype))
        sim = ops.where(eye, ops.cast(-5.0, sim.dtype), sim)
        _, indices = ops.top_k(sim, k=self.k, sorted=True)
        return indices

    def call(self, z, mask=None, training=None):
        self._check_shape(z.shape)
        indices = self.neighbor_indices(z, mask=mask)
        neighbours = ops.take(z, indices, axis=0)  # (N, k, D)
        group = ops.concatenate([z[:, None, :], neighbours], axis=1)  # (N, k+1, D)
        n = ops.shape(z)[0]
        slot_valid = None
        if mask is not None:
            valid = ops.cast(mask, "bool")
            slot_valid = ops.concatenate(
                [ops.ones((n, 1), "bool"), ops.take(valid, indices, axis=0)], axis=1
            )  # (N, k+1): self always attended
        if self.aggregation == "attention":
            attention_mask = None if slot_valid is None else slot_valid[:, None, :]
            out, scores = self.attention(
                query=z[:, None, :],
                value=group,
                key=group,
                attention_mask=attention_mask,
                return_attention_scores=True,
                training=training,
            )
            proxies = out[:, 0, :]
            scores = ops.mean(scores[:, :, 0, :], axis=1)  # (N, heads, 1, k+1) -> (N, k+1)
            if self.residual:
                proxies = proxies + z
        else:
            if slot_valid is None:
                weights = ops.ones((n, self.k + 1), z.dtype)
            else:
                weights = ops.cast(slot_valid, z.dtype)
            scores = weights / ops.sum(weights, axis=1, keepdims=True)
            proxies = ops.sum(group * scores[:, :, None], axis=1)
        if self.normalize:
            proxies = l2_normalize(proxies)
        return proxies, ops.cast(scores, proxies.dtype)

    def compute_output_shape(self, input_shape):
        return (tuple(input_shape), (input_shape[0], self.k + 1))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "k": self.k,
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "residual": self.residual,
                "normalize": self.normalize,
                "aggregation": self.aggregation,
            }
        )
        return config
