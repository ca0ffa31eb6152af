"""The anchor-aware (AA) part shared by AADML's AA losses (docs/methods.md §2.3).

:class:`AnchorAwareMixin` turns a pair-based loss (``Triplet``, ``SupervisedContrastive``)
into its anchor-aware variant (``AATriplet``, ``AAContrastive``): it owns an
:class:`~kerasadml.layers.AnchorAwareProxy`, replaces every anchor by its AA proxy and
then applies the host loss's per-anchor method.
"""

from __future__ import annotations

import keras

from kerasadml.layers.anchor_aware_proxy import AnchorAwareProxy
from kerasadml.losses.base import resolve_references

#: the constructor arguments an AA loss passes on to its AnchorAwareProxy
_PROXY_ARGS = ("k", "num_heads", "key_dim", "residual", "normalize", "aggregation")


class AnchorAwareMixin:
    """Shared part of the anchor-aware losses: owns ``self.proxy``, an
    :class:`AnchorAwareProxy` that turns the anchors into AA proxies.

    A subclass lists the mixin before its host loss, a
    :class:`~kerasadml.losses.base.PairLoss` (``class AATriplet(AnchorAwareMixin,
    Triplet)``), and calls ``self._init_proxy(...)`` in ``__init__`` after the host's
    ``__init__``. The mixin supplies ``build``, ``call`` (the host's per-anchor method,
    named by its ``_per_anchor_loss``, applied to the proxies), ``compute_output_spec``
    and ``get_config`` (the host's config plus the proxy's arguments).
    """

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
        for arg in _PROXY_ARGS:  # as the proxy validated and stored them
            setattr(self, arg, getattr(self.proxy, arg))

    def build(self, input_shape):
        """``build((None, D))`` builds the proxy's attention weights."""
        if not self.proxy.built:
            self.proxy.build(tuple(input_shape))
        self.built = True

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
        """The host loss with each anchor replaced by its AA proxy; ``(loss, scores)``
        with ``return_scores``. Without ``ref_embeddings`` the proxies are compared with
        the raw embeddings (own item excluded)."""
        embeddings, labels, refs, ref_labels, ref_mask, same_set = resolve_references(
            type(self).__name__, embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask
        )
        proxies, scores = self.proxy(embeddings, mask=mask, training=training)
        per_anchor = getattr(self, self._per_anchor_loss)
        loss = per_anchor(proxies, labels, refs, ref_labels, mask, ref_mask, same_set)
        return (loss, scores) if return_scores else loss

    def compute_output_spec(self, embeddings, *args, return_scores=False, **kwargs):
        n = embeddings.shape[0]
        loss = keras.KerasTensor((n,), dtype=self.compute_dtype)
        if return_scores:
            return loss, keras.KerasTensor((n, self.k + 1), dtype=self.compute_dtype)
        return loss

    def _proxy_config(self):
        return {arg: getattr(self, arg) for arg in _PROXY_ARGS}

    def get_config(self):
        config = super().get_config()
        config.update(self._proxy_config())
        return config
