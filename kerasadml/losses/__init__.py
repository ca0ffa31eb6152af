"""Deep metric learning losses: Keras layers returning per-sample values.

They take ``(embeddings, labels, ref_embeddings, ref_labels)`` like
pytorch-metric-learning, so one loss serves same-modality and cross-modal use, and some
own trainable weights (``SphereFace2``, ``AsyPAdaMS``) that ``fit`` trains and saving
restores. Reduce the per-sample values with :func:`reduce_loss` or a mean.

``ModalityAdversarial`` (the modality discriminator of ADML) is a layer, at home in
:mod:`kerasadml.layers`; it is re-exported here, and from
``kerasadml.losses.modality_adversarial``, so that imports written before it moved keep
working. ``masked_mean`` lives in :mod:`kerasadml.ops` and is re-exported here too.
"""

from kerasadml.layers.modality_discriminator import ModalityAdversarial  # re-exported (see above)
from kerasadml.losses.aam_softmax import AAMSoftmax
from kerasadml.losses.asyp_adams import AsyPAdaMS
from kerasadml.losses.base import MetricLoss, cosine_similarity_matrix, masked_mean, reduce_loss
from kerasadml.losses.contrastive import AAContrastive, SupervisedContrastive
from kerasadml.losses.monotonic_alignment import MonotonicAlignment
from kerasadml.losses.multi_similarity import MultiSimilarity, ProxyMS
from kerasadml.losses.proxy_nce import ProxyNCE
from kerasadml.losses.relational_proxy import RelationalProxy
from kerasadml.losses.sphereface2 import SphereFace2
from kerasadml.losses.triplet import AATriplet, Triplet

__all__ = [
    "AAContrastive",
    "AAMSoftmax",
    "AATriplet",
    "AsyPAdaMS",
    "MetricLoss",
    "ModalityAdversarial",
    "MonotonicAlignment",
    "MultiSimilarity",
    "ProxyMS",
    "ProxyNCE",
    "RelationalProxy",
    "SphereFace2",
    "SupervisedContrastive",
    "Triplet",
    "cosine_similarity_matrix",
    "masked_mean",
    "reduce_loss",
]
