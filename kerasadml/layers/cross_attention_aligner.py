"""Cross-modal attention that aligns audio frames to text phonemes (ADML, docs/methods.md §1.2)."""

from __future__ import annotations

import math

import keras
from keras import ops

from kerasadml.ops import l2_normalize, large_negative


def _check_mask(name: str, mask, data_name: str, data_shape) -> None:
    """Raise ``ValueError`` unless ``mask`` is ``(batch, time)`` of ``data``."""
    mask_shape = tuple(mask.shape)
    if len(mask_shape) != 2:
        raise ValueError(
            f"CrossAttentionAligner: {name} must have shape (batch, time) of {data_name} "
            f"{tuple(data_shape)[:2]}, got rank {len(mask_shape)} with shape {mask_shape}"
        )
    for axis, label in ((0, "batch"), (1, "time")):
        m, d = mask_shape[axis], data_shape[axis]
        if m is not None and d is not None and m != d:
            raise ValueError(
                f"CrossAttentionAligner: {name} {label} size {m} does not match {data_name}: "
                f"{name}.shape={mask_shape}, {data_name}.shape={tuple(data_shape)}"
            )


@keras.saving.register_keras_serializable(package="kerasadml")
class CrossAttentionAligner(keras.layers.Layer):
    """Text-queries-audio attention: one aligned audio vector per phoneme, plus the affinity.

    With text phoneme embeddings ``Et`` (B, Tt, Dt) and audio frame embeddings ``Ea``
    (B, Ta, Da), per head ``h``::

        Q_h = Et Wq_h,  K_h = Ea Wk_h,  V_h = Ea Wv_h
        A_h = softmax_over_Ta(Q_h K_hᵀ / sqrt(d_k))      (B, Tt, Ta), audio padding masked
        aligned = A V                                    (num_heads == 1, no output_dim)
        aligned = concat_h(A_h V_h) Wo                   (num_heads > 1 or output_dim given)
        affinity = mean_h A_h

    Masking: padded audio frames get a large negative logit (not ``-inf``, so that a fully
    padded audio row cannot produce NaN) and the weights are then multiplied by the audio
    mask, so every valid text row of ``affinity`` sums to 1 over the valid audio frames
    and is exactly zero on padded audio columns; a text row with no valid audio frame is
    all zeros. Padded text rows of ``affinity`` and of ``aligned`` are zero. Padding never
    changes the values at valid positions.

    Dropout (training only) is applied to the attention weights that multiply ``V``; the
    returned ``affinity`` is the weights before dropout (as ``keras.layers.MultiHeadAttention``
    returns its scores), so it can be plotted and penalised (e.g. by a monotonic alignment
    loss).

    Args:
        units: per-head key/query width ``d_k``. Defaults to ``Dt // num_heads``.
        num_heads: number of attention heads.
        output_dim: width of ``aligned``. Defaults to the audio feature width ``Da``.
        use_bias: whether the projections ``Wq, Wk, Wv, Wo`` have biases.
        dropout: dropout rate on the attention weights (training only).
        similarity: ``"dot"`` (scaled dot product ``q·k / sqrt(d_k)``, the paper's) or
            ``"cosine"`` (``r · cos(q, k)`` with a trained scale ``r``, initialised at
            ``scale`` and kept in ``[1, 100]``). Cosine attention cannot be dominated by a
            few audio frames of large norm, which made dot-product attention collapse onto
            one or two frames (docs/methods.md §1.10).
        scale: initial ``r`` of cosine attention.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Weights: with one head and no ``output_dim``, ``Wv`` maps ``Da -> Da`` and there is no
    ``Wo``; otherwise each head's value has width ``d_k`` (``Wv: Da -> num_heads * d_k``) and
    ``Wo: num_heads * d_k -> output_dim``.

    Call arguments:
        text: float tensor (B, Tt, Dt), the queries (phoneme-level text embeddings).
        audio: float tensor (B, Ta, Da), the keys and values (frame-level audio embeddings).
        text_mask: optional bool tensor (B, Tt), True = valid phoneme.
        audio_mask: optional bool tensor (B, Ta), True = valid frame.
        training: whether dropout is active.

    Returns:
        A tuple ``(aligned, affinity)``: ``aligned`` (B, Tt, output_dim) and ``affinity``
        (B, Tt, Ta).

    Example:

    >>> import numpy as np
    >>> layer = CrossAttentionAligner(num_heads=2)
    >>> text = np.random.rand(2, 5, 8).astype("float32")
    >>> audio = np.random.rand(2, 11, 6).astype("float32")
    >>> audio_mask = np.arange(11)[None, :] < np.array([[11], [7]])
    >>> aligned, affinity = layer(text, audio, audio_mask=audio_mask)
    >>> tuple(aligned.shape), tuple(affinity.shape)
    ((2, 5, 6), (2, 5, 11))

    Paper: ADML (arXiv 2505.16735), phoneme-level alignment of audio to text; attention of
    Vaswani et al. 2017 ("Attention is all you need").
    """

    def __init__(
        self,
        units: int | None = None,
        num_heads: int = 1,
        output_dim: int | None = None,
        use_bias: bool = False,
        dropout: float = 0.0,
        similarity: str = "dot",
        scale: float = 10.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if similarity not in ("dot", "cosine"):
            raise ValueError(
                f"CrossAttentionAligner: similarity must be 'dot' or 'cosine', got {similarity!r}"
            )
        if not 1.0 <= float(scale) <= 100.0:
            raise ValueError(f"CrossAttentionAligner: scale must be in [1, 100], got {scale}")
        if units is not None and int(units) <= 0:
            raise ValueError(
                f"CrossAttentionAligner: units must be a positive int or None, got {units}"
            )
        if int(num_heads) <= 0:
            raise ValueError(
                f"CrossAttentionAligner: num_heads must be a positive int, got {num_heads}"
            )
        if output_dim is not None and int(output_dim) <= 0:
            raise ValueError(
                f"CrossAttentionAligner: output_dim must be a positive int or None, got {output_dim}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"CrossAttentionAligner: dropout must be in [0, 1), got {dropout}")
        self.units = None if units is None else int(units)
        self.num_heads = int(num_heads)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.use_bias = bool(use_bias)
        self.dropout = float(dropout)
        self.similarity = similarity
        self.scale = float(scale)
        self.log_scale = None
        self.has_output_projection = self.num_heads > 1 or self.output_dim is not None
        # Masks are explicit call arguments; inputs that carry a Keras mask are fine.
        self.supports_masking = True
        self.dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        # Filled in build():
        self.key_dim = None
        self.value_dim = None
        self.query_dense = self.key_dense = self.value_dense = self.output_dense = None

    def compute_mask(self, inputs, mask=None):
        return None

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_inputs(text_shape, audio_shape):
        text_shape, audio_shape = tuple(text_shape), tuple(audio_shape)
        for name, shape in (("text", text_shape), ("audio", audio_shape)):
            if len(shape) != 3:
                raise ValueError(
                    f"CrossAttentionAligner: {name} must have rank 3 (batch, time, features), "
                    f"got shape {shape}"
                )
            if shape[-1] is None:
                raise ValueError(
                    f"CrossAttentionAligner: the feature size of {name} must be known, got shape {shape}"
                )
        if (
            text_shape[0] is not None
            and audio_shape[0] is not None
            and text_shape[0] != audio_shape[0]
        ):
            raise ValueError(
                "CrossAttentionAligner: text and audio must have the same batch size, got "
                f"text.shape={text_shape} and audio.shape={audio_shape}"
            )

    # ------------------------------------------------------------------ build
    def build(self, text_shape, audio_shape):
        self._check_inputs(text_shape, audio_shape)
        text_dim, audio_dim = int(text_shape[-1]), int(audio_shape[-1])
        if self.units is None:
            key_dim = text_dim // self.num_heads
            if key_dim < 1:
                raise ValueError(
                    f"CrossAttentionAligner: the default units = text features // num_heads = "
                    f"{text_dim} // {self.num_heads} is 0; pass units explicitly"
                )
        else:
            key_dim = self.units
        self.key_dim = key_dim
        out_dim = self.output_dim if self.output_dim is not None else audio_dim
        self.value_dim = key_dim if self.has_output_projection else out_dim

        def dense(width, name):
            return keras.layers.Dense(
                width, use_bias=self.use_bias, name=name, dtype=self.dtype_policy
            )

        self.query_dense = dense(self.num_heads * key_dim, "query")
        self.key_dense = dense(self.num_heads * key_dim, "key")
        self.value_dense = dense(self.num_heads * self.value_dim, "value")
        self.query_dense.build(tuple(text_shape))
        self.key_dense.build(tuple(audio_shape))
        self.value_dense.build(tuple(audio_shape))
        if self.similarity == "cosine":
            self.log_scale = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(math.log(self.scale)),
                name="log_scale",
                dtype="float32",
            )
        if self.has_output_projection:
            self.output_dense = dense(out_dim, "output")
            self.output_dense.build(tuple(text_shape[:-1]) + (self.num_heads * self.value_dim,))

    # ------------------------------------------------------------------ call
    def _split_heads(self, x, width):
        # (B, T, H * width) -> (B, H, T, width)
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], self.num_heads, width))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, text, audio, text_mask=None, audio_mask=None, training=None):
        self._check_inputs(text.shape, audio.shape)
        if text_mask is not None:
            _check_mask("text_mask", text_mask, "text", text.shape)
        if audio_mask is not None:
            _check_mask("audio_mask", audio_mask, "audio", audio.shape)

        q = self._split_heads(self.query_dense(text), self.key_dim)  # (B, H, Tt, dk)
        k = self._split_heads(self.key_dense(audio), self.key_dim)  # (B, H, Ta, dk)
        v = self._split_heads(self.value_dense(audio), self.value_dim)  # (B, H, Ta, dv)

        # The softmax runs in at least float32 (mixed precision), then returns to v's dtype.
        softmax_dtype = keras.backend.standardize_dtype(q.dtype)
        if softmax_dtype in ("float16", "bfloat16"):
            softmax_dtype = "float32"
        if self.similarity == "cosine":
            q = ops.cast(q, softmax_dtype)
            k = ops.cast(k, softmax_dtype)
            q = l2_normalize(q)
            k = l2_normalize(k)
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # (B, H, Tt, Ta)
            scores = scores * ops.exp(ops.clip(ops.cast(self.log_scale, softmax_dtype), 0.0, math.log(100.0)))
        else:
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # (B, H, Tt, Ta)
            scores = ops.cast(scores, softmax_dtype) * (1.0 / math.sqrt(self.key_dim))
        if audio_mask is not None:
            valid_audio = ops.cast(audio_mask, "bool")[:, None, None, :]
            scores = ops.where(valid_audio, scores, large_negative(scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        if audio_mask is not None:
            # A fully padded audio row gave a uniform softmax over padding: zero it.
            weights = weights * ops.cast(valid_audio, weights.dtype)
        if text_mask is not None:
            valid_text = ops.cast(text_mask, weights.dtype)
            weights = weights * valid_text[:, None, :, None]
        weights = ops.cast(weights, v.dtype)

        attended = self.dropout_layer(weights, training=training) if self.dropout_layer else weights
        context = ops.matmul(attended, v)  # (B, H, Tt, dv)
        context = ops.transpose(context, (0, 2, 1, 3))
        shape = ops.shape(context)
        aligned = ops.reshape(context, (shape[0], shape[1], self.num_heads * self.value_dim))
        if self.output_dense is not None:
            aligned = self.output_dense(aligned)
            if text_mask is not None:
                aligned = aligned * ops.cast(text_mask, aligned.dtype)[:, :, None]
        affinity = weights[:, 0] if self.num_heads == 1 else ops.mean(weights, axis=1)
        return aligned, affinity

    def compute_output_shape(self, text_shape, audio_shape):
        self._check_inputs(text_shape, audio_shape)
        out_dim = self.output_dim if self.output_dim is not None else audio_shape[-1]
        batch, tt, ta = text_shape[0], text_shape[1], audio_shape[1]
        return (batch, tt, out_dim), (batch, tt, ta)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_heads": self.num_heads,
                "output_dim": self.output_dim,
                "use_bias": self.use_bias,
                "dropout": self.dropout,
                "similarity": self.similarity,
                "scale": self.scale,
            }
        )
        return config
