"""The shared base of the margin-based keyword classification losses (SphereFace2,
AAM-softmax; docs/methods.md §1.7): class weights and the cosines to them."""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.losses.base import MetricLoss, validate_embeddings
from kerasadml.ops import class_ids, l2_normalize


class CosineClassifierLoss(MetricLoss):
    """Base of the losses that classify an embedding by its cosines to C class weights.

    Owns ``kernel`` (D, C), created in ``build((None, D))`` (or on the first call);
    :meth:`cosine` gives ``cos(e, w_c)`` with both the embedding and each class weight
    L2-normalised inside the graph (:func:`kerasadml.ops.l2_normalize`). Subclasses
    implement ``call(embeddings, labels, mask=None)`` with :meth:`class_ids` and
    :meth:`mask_loss`, and add their own arguments to ``get_config``.

    Args:
        num_classes: number of classes C (>= 2).
        scale: the logit scale.
        margin: the margin (its meaning is the subclass's).
        kernel_initializer: initialiser of the (D, C) class weights.
    """

    def __init__(
        self,
        num_classes: int,
        scale: float,
        margin: float,
        kernel_initializer="glorot_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_classes) < 2:
            raise ValueError(f"{type(self).__name__}: num_classes must be >= 2, got {num_classes}")
        self.num_classes = int(num_classes)
        self.scale = float(scale)
        self.margin = float(margin)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel = None

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__}: embeddings must have rank 2 (batch, D) with D known, "
                f"got shape {tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            shape=(int(input_shape[-1]), self.num_classes),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.built = True

    def cosine(self, embeddings):
        """(B, C) cosines between the embeddings and the class weights."""
        embeddings = ops.convert_to_tensor(embeddings)
        validate_embeddings(f"{self.name}: embeddings", embeddings)
        if not self.built:
            self.build(tuple(embeddings.shape))
        e = l2_normalize(ops.cast(embeddings, self.kernel.dtype), axis=-1)
        w = l2_normalize(ops.convert_to_tensor(self.kernel), axis=0)
        return ops.matmul(e, w)

    def class_ids(self, labels, mask=None):
        """(B,) int32 class ids: ``ValueError`` for out-of-range concrete labels, clipped
        into range inside ``jit`` (see :func:`kerasadml.ops.class_ids`)."""
        return class_ids(f"{self.name}: labels", labels, self.num_classes, mask)

    @staticmethod
    def mask_loss(loss, mask=None):
        """``loss`` with the entries where ``mask`` (B,) is False set to exactly 0."""
        if mask is None:
            return loss
        valid = ops.reshape(ops.cast(mask, "bool"), (-1,))
        return ops.where(valid, loss, ops.zeros_like(loss))

    def compute_mask(self, *args, **kwargs):
        return None

    def compute_output_shape(self, embeddings_shape, labels_shape=None, mask_shape=None):
        return (embeddings_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "scale": self.scale,
                "margin": self.margin,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
