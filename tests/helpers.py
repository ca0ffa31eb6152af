"""Helpers shared by the test-suite; every test file runs under the backend named by
``KERAS_BACKEND`` (the README's test command runs the suite once per backend)."""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np


def backend_name() -> str:
    return keras.backend.backend()


def value_and_grad(fn: Callable, *args: np.ndarray):
    """Value of ``fn(*args)`` (a scalar) and its gradients with respect to ``args``,
    computed with the active backend's own gradient machinery (``tf.GradientTape``
    or ``jax.grad``), not with ``keras.ops``.
    """
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
        return np.asarray(value), [np.asarray(g) for g in grads]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        arrays = [jnp.asarray(a) for a in args]
        value, grads = jax.value_and_grad(
            lambda *xs: fn(*xs), argnums=tuple(range(len(arrays)))
        )(*arrays)
        return np.asarray(value), [np.asarray(g) for g in grads]
    raise NotImplementedError(f"tests support tensorflow and jax, not {backend}")


def roundtrip(obj):
    """Serialise a layer/loss with ``keras.saving.serialize_keras_object`` and back."""
    config = keras.saving.serialize_keras_object(obj)
    return keras.saving.deserialize_keras_object(config)


def to_numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))
