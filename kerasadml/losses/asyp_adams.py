"""Asymmetric proxy loss (AsyP) with adaptive per-class margins (AdaMS), docs/methods.md §1.3.3."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasadml.losses.base import (
    MetricLoss,
    cosine_similarity_matrix,
    log1p_sum_exp,
    masked_mean,
    pair_masks,
    validate_embeddings,
)
from kerasadml.ops import bool_mask, class_ids, flat_labels


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def asyp_per_sample(
    sim,
    labels,
    proxy_labels,
    mask,
    proxy_mask,
    alpha_p,
    lambda_p,
    beta_x,
    lambda_x,
    positive_proxies_only: bool = True,
):
    """Per-data-point AsyP values whose mean over valid data points is the AsyP loss.

    Args:
        sim: (N, P) cosine similarities data x proxies.
        labels, proxy_labels: (N,), (P,) labels.
        mask, proxy_mask: (N,), (P,) bool.
        alpha_p, lambda_p: (P,) (or scalars) the parameters of each proxy's class, used
            by the positive term (anchored at the proxies).
        beta_x, lambda_x: (N,) (or scalars) the parameters of each data point's class,
            used by the negative term (anchored at the data points).
        positive_proxies_only: average the positive term over the valid proxies that
            have at least one valid positive data point (as Proxy-Anchor does); else over
            all valid proxies (a proxy without positives then contributes 0).

    Returns:
        (N,) ``neg_x + mean_p pos_p`` for valid ``x``, 0 for masked ones.
    """
    dtype = sim.dtype
    alpha_p = ops.cast(alpha_p, dtype)
    lambda_p = ops.cast(lambda_p, dtype)
    beta_x = ops.cast(beta_x, dtype)
    lambda_x = ops.cast(lambda_x, dtype)
    _, positive, negative = pair_masks(labels, proxy_labels, mask, proxy_mask)
    # pairs of valid data points only (both terms reduce over them)
    positive = ops.logical_and(positive, ops.expand_dims(mask, 1))
    negative = ops.logical_and(negative, ops.expand_dims(mask, 1))

    # Positive term, one value per proxy p: reduce over the data axis.
    pos_p = log1p_sum_exp(-alpha_p * (sim - lambda_p), positive, axis=0) / alpha_p
    used = proxy_mask
    if positive_proxies_only:
        used = ops.logical_and(used, ops.any(positive, axis=0))
    pos_mean = masked_mean(pos_p, used)

    # Negative term, one value per data point x: reduce over the proxy axis.
    beta_col = ops.expand_dims(beta_x, -1) if len(beta_x.shape) else beta_x
    lambda_col = ops.expand_dims(lambda_x, -1) if len(lambda_x.shape) else lambda_x
    neg_x = log1p_sum_exp(beta_col * (sim - lambda_col), negative, axis=1) / beta_x

    values = neg_x + pos_mean
    return ops.where(mask, values, ops.zeros_like(values))


@keras.saving.register_keras_serializable(package="kerasadml")
class AsyPAdaMS(MetricLoss):
    """Asymmetric proxy loss with (optionally) learnable per-class alpha, beta, lambda.

    **AsyP** (Jung & Kim 2022, **reconstruction**, docs/methods.md §1.3.3): the positive term
    is anchored at the proxies, the negative term at the data points,

    ``L = mean_p (1/alpha_{c_p}) log(1 + sum_{x in X_p+} e^{-alpha_{c_p}(S(x,p) - lambda_{c_p})})
    + mean_x (1/beta_{c_x}) log(1 + sum_{p in P_x-} e^{beta_{c_x}(S(x,p) - lambda_{c_x})})``

    with ``S`` cosine similarity, ``X_p+`` the valid data points of proxy ``p``'s label and
    ``P_x-`` the valid proxies of other labels. Choice of this reconstruction: the
    positive term uses the **proxy's** class parameters, the negative term the **data
    point's** (each term uses the class of its anchor). ``mean_p`` runs over the valid
    proxies that have at least one positive (``positive_proxies_only=True``, as
    Proxy-Anchor) or over all valid proxies.

    **AdaMS** (Jung & Kim 2023, **reconstruction**): with ``adaptive=True`` the layer owns
    trainable weights ``a, b, l`` of shape ``(num_classes,)`` (``alpha_raw``,
    ``beta_raw``, ``lambda_raw``) and uses ``alpha_c = softplus(a_c)``,
    ``beta_c = softplus(b_c)``, ``lambda_c = tanh(l_c)``, initialised (inverse softplus,
    atanh) so that they start at ``alpha``, ``beta``, ``lambda_``. They are created in
    ``__init__``, so they exist before ``fit`` and are saved with the owning model.
    With ``adaptive=False`` the parameters are constants and there are no weights.

    Per-sample output: the call returns, for each data point ``x``,
    ``value_x = neg_x + mean_p pos_p`` (the proxy term is shared by all data points), so
    that the **mean over the valid data points equals L**. Masked data points get 0.

    Labels outside ``[0, num_classes)`` raise ``ValueError`` when the labels are concrete
    (numpy arrays, eager tensors); inside ``jit``/``tf.function`` they cannot be checked
    and are clipped into range for the parameter lookup.

    Args:
        num_classes: number of classes (e.g. phoneme inventory size).
        alpha: positive scale, initial value (METHODS default 2).
        beta: negative scale, initial value (default 50).
        lambda_: margin, initial value (default 0.5; in (-1, 1) when adaptive).
        adaptive: learn per-class parameters (AdaMS) or keep them constant (AsyP).
        positive_proxies_only: see above (default True).

    Call arguments:
        embeddings: (N, D) data points (e.g. aligned audio vectors).
        labels: (N,) integer classes of the data points.
        ref_embeddings: (P, D) proxies (e.g. text phoneme embeddings).
        ref_labels: (P,) integer classes of the proxies.
        mask: optional (N,) bool, True = valid data point.
        ref_mask: optional (P,) bool, True = valid proxy.

    Returns:
        (N,) per-data-point values (see above).

    Example:

    >>> import numpy as np
    >>> loss = AsyPAdaMS(num_classes=3)
    >>> x = np.random.randn(5, 8).astype("float32")
    >>> p = np.random.randn(3, 8).astype("float32")
    >>> values = loss(x, np.array([0, 1, 2, 0, 1]), p, np.array([0, 1, 2]))
    >>> tuple(values.shape), tuple(loss.alphas().shape)
    ((5,), (3,))

    Papers: Jung & Kim, "AsyP" (2022) and "AdaMS" (2023), as used by ADML
    (arXiv 2505.16735) for the phoneme-level loss.
    """

    def __init__(
        self,
        num_classes: int,
        alpha: float = 2.0,
        beta: float = 50.0,
        lambda_: float = 0.5,
        adaptive: bool = True,
        positive_proxies_only: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError(f"AsyPAdaMS: num_classes must be >= 1, got {num_classes}")
        if alpha <= 0 or beta <= 0:
            raise ValueError(f"AsyPAdaMS: alpha and beta must be > 0, got alpha={alpha}, beta={beta}")
        if adaptive and not -1.0 < lambda_ < 1.0:
            raise ValueError(f"AsyPAdaMS: with adaptive=True lambda_ must lie in (-1, 1), got {lambda_}")
        self.num_classes = int(num_classes)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.lambda_ = float(lambda_)
        self.adaptive = bool(adaptive)
        self.positive_proxies_only = bool(positive_proxies_only)
        self.alpha_raw = self.beta_raw = self.lambda_raw = None
        if self.adaptive:
            shape = (self.num_classes,)
            self.alpha_raw = self.add_weight(
                shape=shape,
                initializer=keras.initializers.Constant(_inverse_softplus(self.alpha)),
                name="alpha_raw",
            )
            self.beta_raw = self.add_weight(
                shape=shape,
                initializer=keras.initializers.Constant(_inverse_softplus(self.beta)),
                name="beta_raw",
            )
            self.lambda_raw = self.add_weight(
                shape=shape,
                initializer=keras.initializers.Constant(math.atanh(self.lambda_)),
                name="lambda_raw",
            )
        self.built = True

    def alphas(self):
        """(num_classes,) positive scales ``softplus(a)`` (or the constant ``alpha``)."""
        if not self.adaptive:
            return ops.full((self.num_classes,), self.alpha, dtype="float32")
        return ops.softplus(self.alpha_raw)

    def betas(self):
        """(num_classes,) negative scales ``softplus(b)`` (or the constant ``beta``)."""
        if not self.adaptive:
            return ops.full((self.num_classes,), self.beta, dtype="float32")
        return ops.softplus(self.beta_raw)

    def lambdas(self):
        """(num_classes,) margins ``tanh(l)`` (or the constant ``lambda_``)."""
        if not self.adaptive:
            return ops.full((self.num_classes,), self.lambda_, dtype="float32")
        return ops.tanh(self.lambda_raw)

    def call(self, embeddings, labels, ref_embeddings, ref_labels, mask=None, ref_mask=None):
        # the one loss signature (kerasadml.losses.base): the references are the proxies
        proxies, proxy_labels, proxy_mask = ref_embeddings, ref_labels, ref_mask
        validate_embeddings("embeddings", embeddings)
        validate_embeddings("proxies", proxies)
        labels = flat_labels("labels", labels)
        proxy_labels = flat_labels("proxy_labels", proxy_labels)
        mask = bool_mask(mask, labels)
        proxy_mask = bool_mask(proxy_mask, proxy_labels)
        data_idx = class_ids("labels", labels, self.num_classes, mask)
        proxy_idx = class_ids("proxy_labels", proxy_labels, self.num_classes, proxy_mask)
        alphas, betas, lambdas = self.alphas(), self.betas(), self.lambdas()
        sim = ops.cast(cosine_similarity_matrix(embeddings, proxies), "float32")
        return asyp_per_sample(
            sim,
            labels,
            proxy_labels,
            mask,
            proxy_mask,
            alpha_p=ops.take(alphas, proxy_idx),
            lambda_p=ops.take(lambdas, proxy_idx),
            beta_x=ops.take(betas, data_idx),
            lambda_x=ops.take(lambdas, data_idx),
            positive_proxies_only=self.positive_proxies_only,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "alpha": self.alpha,
                "beta": self.beta,
                "lambda_": self.lambda_,
                "adaptive": self.adaptive,
                "positive_proxies_only": self.positive_proxies_only,
            }
        )
        return config
