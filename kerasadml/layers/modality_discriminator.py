"""Modality adversarial learning (MAL): a modality discriminator behind gradient reversal.

The discriminator is a head with weights of its own that returns ``(loss, accuracy)``,
not a metric loss; it used to live in ``kerasadml.losses.modality_adversarial``, and
``kerasadml.losses.ModalityAdversarial`` still names it (docs/methods.md §1.8.2).
"""

from __future__ import annotations

import keras
from keras import ops

from kerasadml.layers.gradient_reversal import GradientReversal
from kerasadml.ops import masked_mean, validate_embeddings


# Registered as "kerasadml>ModalityAdversarial", as before the move: saved configs load.
@keras.saving.register_keras_serializable(package="kerasadml")
class ModalityAdversarial(keras.layers.Layer):
    """Modality discriminator (audio = 1, text = 0) behind a gradient reversal layer.

    ``GradientReversal(lambda_, schedule_steps) -> Dense(hidden_units, relu) -> Dense(1)``
    gives one logit per vector. The loss is the binary cross-entropy over all valid
    audio and text vectors (one masked mean over both sets), the accuracy the fraction
    of valid vectors classified correctly (``sigmoid(logit) > 0.5`` means audio).

    The classifier's weights **minimise** the loss; the reversed gradient, scaled by
    ``lambda``, makes the encoders that produced the vectors **maximise** it, so they
    learn modality-invariant embeddings. Accuracy near 50% means the modalities are
    confused (the goal); near 100% means the adversary is winning or the reversal is
    broken. ADML uses it on utterance embeddings (``ea``, ``et``) and on phoneme-level
    vectors (``Ẽa``, ``Et``), ``L_adv = BCE_utt + BCE_phn``; the caller flattens the
    phoneme-level sequences to (N, D) vectors with a mask.

    Note: with ``schedule_steps`` the reversal counts its calls with ``training=True``;
    one instance called twice per training step (utterance and phoneme level) advances
    twice per step, so set ``schedule_steps`` to twice the number of steps, or use one
    instance per level.

    Build: the owner calls ``layer.build((None, D))`` for feature width ``D`` (or the
    first call builds it from ``audio``'s shape).

    Like the metric losses it trains beside, it computes in float32 by default
    (``dtype="float32"``, whatever the global mixed-precision policy), and the masks are
    call arguments: it attaches no Keras mask to its outputs.

    Args:
        hidden_units: width of the hidden layer (default 256).
        lambda_: gradient reversal strength (ADML's ``lambda_adv``, default 0.1).
        schedule_steps: optional length of the DANN ramp of ``lambda``.

    Call arguments:
        audio: (N, D) audio vectors (label 1).
        text: (M, D) text vectors (label 0).
        audio_mask: optional (N,) bool, True = valid.
        text_mask: optional (M,) bool, True = valid.
        training: whether this is a training step (advances the schedule).

    Returns:
        ``(loss, accuracy)``: two scalars; no gradient flows through the accuracy.

    Example:

    >>> import numpy as np
    >>> adv = ModalityAdversarial(hidden_units=16)
    >>> adv.build((None, 8))
    >>> loss, acc = adv(np.ones((3, 8), "float32"), np.zeros((2, 8), "float32"))
    >>> tuple(loss.shape), tuple(acc.shape)
    ((), ())

    Paper: Ganin & Lempitsky 2015 (gradient reversal); modality adversarial learning as
    in ADML (arXiv 2505.16735); docs/methods.md §1.8.2.
    """

    def __init__(
        self,
        hidden_units: int = 256,
        lambda_: float = 0.1,
        schedule_steps: int | None = None,
        **kwargs,
    ):
        # float32 even under a mixed-precision policy, as kerasadml.losses.base.MetricLoss
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # Masks are explicit call arguments, not Keras mask propagation (as MetricLoss).
        self.supports_masking = True
        if int(hidden_units) < 1:
            raise ValueError(f"ModalityAdversarial: hidden_units must be >= 1, got {hidden_units}")
        self.hidden_units = int(hidden_units)
        self.lambda_ = float(lambda_)
        self.schedule_steps = None if schedule_steps is None else int(schedule_steps)
        policy = self.dtype_policy
        self.reversal = GradientReversal(self.lambda_, self.schedule_steps, name="reversal", dtype=policy)
        self.hidden = keras.layers.Dense(self.hidden_units, activation="relu", name="hidden", dtype=policy)
        self.classifier = keras.layers.Dense(1, name="logit", dtype=policy)

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.reversal.build(input_shape)
        self.hidden.build(input_shape)
        self.classifier.build(input_shape[:-1] + (self.hidden_units,))
        self.built = True

    def logits(self, x, training=None):
        """(N,) modality logits of vectors ``x`` (N, D), through the reversal."""
        h = self.reversal(x, training=training)
        return ops.squeeze(self.classifier(self.hidden(h)), axis=-1)

    def call(self, audio, text, audio_mask=None, text_mask=None, training=None):
        validate_embeddings("audio", audio)
        validate_embeddings("text", text)
        n, m = ops.shape(audio)[0], ops.shape(text)[0]
        x = ops.concatenate([audio, ops.cast(text, audio.dtype)], axis=0)
        targets = ops.concatenate([ops.ones((n,), "float32"), ops.zeros((m,), "float32")], axis=0)
        audio_mask = ops.ones((n,), "bool") if audio_mask is None else ops.cast(audio_mask, "bool")
        text_mask = ops.ones((m,), "bool") if text_mask is None else ops.cast(text_mask, "bool")
        mask = ops.concatenate([audio_mask, text_mask], axis=0)
        z = ops.cast(self.logits(x, training=training), "float32")
        # Stable binary cross-entropy with logits.
        bce = ops.maximum(z, 0.0) - z * targets + ops.log1p(ops.exp(-ops.abs(z)))
        loss = masked_mean(bce, mask)
        correct = ops.cast(ops.equal(z > 0.0, targets > 0.5), "float32")
        accuracy = ops.stop_gradient(masked_mean(correct, mask))
        return loss, accuracy

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": self.hidden_units,
                "lambda_": self.lambda_,
                "schedule_steps": self.schedule_steps,
            }
        )
        return config
