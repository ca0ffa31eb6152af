"""The shared base of kerasadml's metric losses and the helpers they share.

Every metric loss of kerasadml is a ``keras.layers.Layer`` (see :class:`MetricLoss`),
so that it can own trainable weights (proxies, per-class margins, a bias) that are
trained, saved and restored with the model that owns it.

The pair machinery of the pair-based losses lives here too: :func:`resolve_references`
(anchors vs references, or a set against itself), :func:`pair_masks` (valid anchors,
positive and negative pairs) and :func:`log1p_sum_exp` (the stable soft maximum of the
Multi-Similarity family). Generic helpers (L2 normalisation, the masked mean, rank
checks, label and mask shapes, label range checks) are in :mod:`kerasadml.ops`;
:func:`~kerasadml.ops.masked_mean` and :func:`~kerasadml.ops.validate_embeddings` can also
be imported from here. Loss modules import from here and from ``kerasadml.ops``, never
from each other's private names.
"""

from __future__ import annotations

import keras
from keras import ops

# masked_mean and validate_embeddings are re-exported: their home is kerasadml.ops (layers
# use them too), and they stay importable from here and from kerasadml.losses.
from kerasadml.ops import l2_normalize, masked_mean, validate_embeddings  # noqa: F401


def cosine_similarity_matrix(a, b, epsilon: float = 1e-12):
    """Cosine similarities between the rows of ``a`` (N, D) and ``b`` (M, D): (N, M).

    Rows are L2-normalised as ``x / sqrt(max(sum x^2, epsilon))``
    (:func:`kerasadml.ops.l2_normalize`: a zero row gives zeros, never NaN), then
    multiplied.
    """
    a = ops.convert_to_tensor(a)
    b = ops.cast(ops.convert_to_tensor(b), a.dtype)
    return ops.matmul(l2_normalize(a, epsilon=epsilon), ops.transpose(l2_normalize(b, epsilon=epsilon)))


def reduce_loss(values, mask=None, sample_weight=None):
    """Scalar weighted mean of per-sample loss ``values`` over the valid entries.

    ``sum(w * v * m) / sum(w * m)`` with ``w = sample_weight`` (ones if None) and
    ``m = mask`` (all True if None); 0 when no entry is valid or all weights are zero.

    Args:
        values: per-sample loss values, e.g. the ``(N,)`` output of a metric loss.
        mask: optional bool (or 0/1) mask broadcastable to ``values``, True = valid.
        sample_weight: optional weights broadcastable to ``values``.

    Returns:
        A scalar tensor.

    Example:

    >>> from keras import ops
    >>> float(ops.convert_to_numpy(reduce_loss([1.0, 2.0, 4.0], mask=[True, True, False])))
    1.5
    >>> float(ops.convert_to_numpy(reduce_loss([1.0, 3.0], sample_weight=[3.0, 1.0])))
    1.5
    """
    values = ops.convert_to_tensor(values)
    weights = ops.ones_like(values)
    if sample_weight is not None:
        weights = weights * ops.cast(sample_weight, values.dtype)
    if mask is not None:
        valid = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(values))
        weights = ops.where(valid, weights, ops.zeros_like(weights))
    used = weights != 0
    total = ops.sum(ops.where(used, weights * values, ops.zeros_like(values)))
    denom = ops.sum(weights)
    safe = ops.where(denom != 0, denom, ops.ones_like(denom))
    return ops.where(denom != 0, total / safe, ops.zeros_like(total))


def log1p_sum_exp(x, mask, axis: int = -1):
    """``log(1 + sum_{mask} exp(x))`` along ``axis``, computed stably.

    Equals ``logsumexp([0, x_masked...])``: the shift ``m = max(0, max x_masked)`` is
    taken out before exponentiating, and masked entries are replaced by zeros before
    ``exp`` so that neither their values nor their gradients can overflow. An empty
    mask gives exactly 0.
    """
    mask = ops.cast(mask, "bool")
    x_safe = ops.where(mask, x, ops.zeros_like(x))
    shift = ops.stop_gradient(ops.max(x_safe, axis=axis, keepdims=True))  # >= 0
    terms = ops.where(mask, ops.exp(x_safe - shift), ops.zeros_like(x))
    total = ops.exp(-shift) + ops.sum(terms, axis=axis, keepdims=True)  # >= 1
    return ops.squeeze(shift + ops.log(total), axis=axis)


def resolve_references(name, embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask):
    """Check the inputs of a pair-based loss and fill in its references.

    Returns ``(embeddings, labels, refs, ref_labels, ref_mask, same_set)``: without
    ``ref_embeddings`` the embeddings are their own references (``same_set`` True; the
    reference mask then defaults to ``mask``). Labels come back flattened to (N,).
    Raises ``ValueError`` naming ``name`` for ``ref_labels`` without ``ref_embeddings``
    (or the reverse), a rank other than 2, or different widths.
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
    The anchor's own validity is returned separately (``valid_anchor``), not folded into
    the pairs; AND it in (``positive & valid_anchor[:, None]``) where masked anchors must
    have no pairs at all.
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


class MetricLoss(keras.layers.Layer):
    """Base class of kerasadml's metric losses: a Keras layer that returns per-sample losses.

    A metric loss is a layer rather than a ``keras.losses.Loss`` because it may own
    trainable weights (per-class margins, proxies, a bias) that the optimiser trains and
    ``model.save`` stores. Following pytorch-metric-learning, one loss serves both
    same-modality and cross-modal use: it takes ``embeddings`` and ``labels`` (the
    anchors) and optionally ``ref_embeddings`` and ``ref_labels`` (what the anchors are
    compared with, e.g. the other modality or a set of proxies; by default the
    embeddings themselves).

    Conventions every subclass follows:

    - ``call`` returns **per-sample** loss values (one per anchor, shape ``(N,)``) or, where
      documented, a tuple of scalars; reduction is the caller's (see :func:`reduce_loss`).
    - Masks are boolean, True = valid. Masked anchors get a loss of exactly 0 and masked
      references never enter a sum, so padding never changes a result.
    - Only ``keras.ops`` is used: the loss runs under every backend and inside ``jit``.
    - Every constructor argument is an attribute and appears in ``get_config``.
    - Weights are created in ``__init__`` or ``build`` so they exist before ``fit``.
    - The default dtype policy is ``"float32"`` (not the global one): under mixed
      precision the inputs are cast up and the loss is computed in float32.

    Helpers for subclasses: :func:`cosine_similarity_matrix`, :func:`masked_mean`,
    :func:`validate_embeddings`, :func:`reduce_loss`, :func:`resolve_references`,
    :func:`pair_masks`, :func:`log1p_sum_exp`, and :mod:`kerasadml.ops`; pair-based
    losses derive from :class:`PairLoss`.
    """

    def __init__(self, **kwargs):
        # Losses compute in float32 even under a mixed-precision policy (as Keras losses do).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # Masks are explicit call arguments here, not Keras mask propagation: accept a
        # ``mask=`` argument without Keras' "destroys the mask" warning, attach none.
        self.supports_masking = True

    def compute_mask(self, inputs, previous_mask=None):
        return None


class PairLoss(MetricLoss):
    """Base of the pair-based losses (``Triplet``, ``SupervisedContrastive``): anchors
    compared with references, cross-modal or within one set.

    ``call(embeddings, labels, ref_embeddings=None, ref_labels=None, mask=None,
    ref_mask=None)`` checks the inputs and fills in the references
    (:func:`resolve_references`), then returns the per-anchor values of the method named
    by ``_per_anchor_loss``: ``(anchors, labels, refs, ref_labels, mask, ref_mask,
    exclude_self) -> (N,)``, ``exclude_self`` being True when the embeddings are their
    own references.
    """

    #: the name of the subclass's per-anchor method (e.g. ``"triplet_loss"``)
    _per_anchor_loss: str

    def call(
        self, embeddings, labels, ref_embeddings=None, ref_labels=None, mask=None, ref_mask=None
    ):
        embeddings, labels, refs, ref_labels, ref_mask, same_set = resolve_references(
            type(self).__name__, embeddings, labels, ref_embeddings, ref_labels, mask, ref_mask
        )
        per_anchor = getattr(self, self._per_anchor_loss)
        return per_anchor(embeddings, labels, refs, ref_labels, mask, ref_mask, same_set)

    def compute_mask(self, *args, **kwargs):
        return None

    def compute_output_shape(self, embeddings_shape, *args, **kwargs):
        return (embeddings_shape[0],)
