"""Training diagnostics: how much gradient each loss term sends to each encoder.

A model whose training loss is a weighted sum of terms (``ADML.loss_terms``) can be
balanced only if one can see which term drives the encoders. :func:`term_gradient_norms`
measures, on one batch, the L2 norm of the gradient of every weighted term with respect
to the variables of each encoder; :class:`LossGradientMonitor` logs it during ``fit``
(off unless added to the callbacks).

Example:

>>> norms = term_gradient_norms(model, batch)          # doctest: +SKIP
>>> norms["audio"]["key"] / norms["audio"]["utt"]     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np


def _default_groups(model) -> dict[str, list]:
    return {
        "audio": list(model.audio_encoder.trainable_variables),
        "text": list(model.text_encoder.trainable_variables),
    }


def _global_norm(grads) -> float:
    total = 0.0
    for g in grads:
        if g is not None:
            g = np.asarray(g, dtype=np.float64)
            total += float(np.sum(g * g))
    return float(np.sqrt(total))


def term_gradient_norms(
    model, batch: Mapping, groups: Mapping[str, Sequence] | None = None
) -> dict[str, dict[str, float]]:
    """Gradient norm of each weighted loss term with respect to each variable group.

    The forward pass runs in training mode (SpecAugment, batch statistics) and every
    variable the pass would update (BatchNorm statistics, counters, memories) is left as
    it was: the call has no side effect on the model.

    Args:
        model: a model with ``loss_terms(x, y_pred, training)`` returning
            ``{"weighted": {term: scalar}}`` (e.g. :class:`kerasadml.zoo.ADML`).
        batch: one training batch (dict of arrays).
        groups: ``{group name: variables}``; default the audio and text encoders'
            trainable variables.

    Returns:
        ``{group: {term: norm}}``.
    """
    groups = dict(groups) if groups is not None else _default_groups(model)
    backend = keras.backend.backend()
    batch = {k: np.asarray(v) for k, v in batch.items()}
    if backend == "tensorflow":
        import tensorflow as tf

        saved = [(v, np.array(v.numpy())) for v in model.non_trainable_variables]
        try:
            with tf.GradientTape(persistent=True) as tape:
                y_pred = model(batch, training=True)
                terms = model.loss_terms(batch, y_pred, training=False)["weighted"]
            out = {
                group: {
                    name: _global_norm(
                        [None if g is None else tf.convert_to_tensor(g) for g in tape.gradient(value, list(variables))]
                    )
                    for name, value in terms.items()
                }
                for group, variables in groups.items()
            }
            del tape
        finally:
            for v, value in saved:
                v.assign(value)
        return out
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = list(model.trainable_variables)
        frozen = [(v, v.value) for v in model.non_trainable_variables]
        index = {id(v): i for i, v in enumerate(trainable)}
        values = [v.value for v in trainable]
        names = list(getattr(model, "WEIGHTED_TERMS", ()))
        if not names:
            with keras.StatelessScope(state_mapping=list(zip(trainable, values)) + frozen):
                names = list(model.loss_terms(batch, model(batch, training=False), training=False)["weighted"])
        members = {group: [index[id(v)] for v in variables if id(v) in index] for group, variables in groups.items()}

        def all_terms(current):
            mapping = list(zip(trainable, current)) + frozen
            with keras.StatelessScope(state_mapping=mapping):
                y_pred = model(batch, training=True)
                weighted = model.loss_terms(batch, y_pred, training=False)["weighted"]
            return jnp.stack([jnp.asarray(weighted[name], "float32") for name in names])

        def norms(current):
            # one compiled function: the forward pass once, one backward pass per term
            jacobian = jax.jacrev(all_terms)(current)
            return {
                group: jnp.sqrt(
                    sum(jnp.sum(jnp.square(jacobian[i]).reshape(len(names), -1), axis=1) for i in idx)
                    if idx else jnp.zeros((len(names),))
                )
                for group, idx in members.items()
            }

        result = jax.jit(norms)(values)
        return {
            group: {name: float(np.asarray(result[group])[k]) for k, name in enumerate(names)} for group in groups
        }
    raise NotImplementedError(f"term_gradient_norms supports the tensorflow and jax backends, not {backend}")


def gradient_shares(norms: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Each term's share of the summed gradient norms of its group (``{group: {term: share}}``)."""
    shares = {}
    for group, values in norms.items():
        total = sum(values.values())
        shares[group] = {name: (value / total if total > 0 else 0.0) for name, value in values.items()}
    return shares


class LossGradientMonitor(keras.callbacks.Callback):
    """Logs :func:`term_gradient_norms` on a fixed batch every ``every`` epochs.

    The values are added to the epoch logs as ``grad_<group>_<term>`` (so they appear in
    the history and in CSV/TensorBoard loggers) and kept in ``self.history``. Off by
    default: add it to ``fit``'s callbacks to balance a recipe.

    Args:
        batch: the training batch to measure on (a dict of arrays).
        every: measure every this many epochs (and before the first).

    Example:

    >>> batch = next(iter(dataset))                                          # doctest: +SKIP
    >>> model.fit(dataset, epochs=5, callbacks=[LossGradientMonitor(batch)])  # doctest: +SKIP
    """

    def __init__(self, batch: Mapping, every: int = 1):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"LossGradientMonitor: every must be >= 1, got {every}")
        self.batch = {k: np.asarray(v) for k, v in batch.items()}
        self.every = int(every)
        self.history: list[dict] = []

    def _measure(self, epoch: int) -> dict:
        norms = term_gradient_norms(self.model, self.batch)
        self.history.append({"epoch": epoch, "norms": norms, "shares": gradient_shares(norms)})
        return {f"grad_{group}_{term}": value for group, terms in norms.items() for term, value in terms.items()}

    def on_train_begin(self, logs=None):
        self._measure(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            values = self._measure(epoch + 1)
            if logs is not None:
                logs.update(values)
