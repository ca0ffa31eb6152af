"""Data-parallel training in one call, on the TensorFlow and the JAX backend.

:func:`data_parallel` picks the engine that the active Keras backend uses:

=========================  ==================================================================
backend                    engine
=========================  ==================================================================
TensorFlow, one machine    ``tf.distribute.MirroredStrategy`` over the given devices (default:
                           every GPU, else every logical CPU device)
TensorFlow, ``TF_CONFIG``  ``tf.distribute.MultiWorkerMirroredStrategy`` (``TF_CONFIG`` names
set                        the cluster and this worker's task, as TensorFlow documents)
JAX                        ``keras.distribution.DataParallel(devices=...)`` set with
                           ``keras.distribution.set_distribution`` (default: every device)
JAX, several processes     the same, after ``keras.distribution.initialize()`` (which calls
                           ``jax.distributed.initialize``) when
                           ``KERAS_DISTRIBUTION_NUM_PROCESSES`` > 1; set also
                           ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (``host:port`` of each
                           process, the first is the coordinator) and
                           ``KERAS_DISTRIBUTION_PROCESS_ID`` in every process
=========================  ==================================================================

Build, compile and fit the model inside the ``with`` block; give ``fit`` batches of the
**global** batch size (:func:`global_batch_size`), which the engine splits over the
replicas. The learning rate is not rescaled.

What a replica sees differs between the engines, and it matters for in-batch metric
losses (batch-hard triplets, AA proxies' neighbours, proxy/relational terms):

- ``MirroredStrategy`` runs the step on every replica with ``global / n`` rows and
  averages the gradients: each in-batch loss is computed inside a replica's rows (the
  same as gradient accumulation over the ``n`` sub-batches on one device). Batches must
  therefore be class-balanced per replica: with
  ``kerasadml.data.av.dataset.make_av_dataset`` / ``make_kws_training_dataset``, make
  each global batch by concatenating ``n`` class-balanced per-replica batches, or use a
  per-replica batch that holds at least 2 classes x 2 rows in order.
- ``DataParallel`` (JAX) compiles one program over the sharded global batch: in-batch
  losses see the whole global batch, exactly as on one device.

TensorFlow allows one ``data_parallel()`` block per process: a second
``MirroredStrategy`` in the same process fails in its collectives ("Shape mismatch in the
collective instance"); run separate jobs in separate processes.

Example:

>>> from kerasadml.distribute import data_parallel, global_batch_size
>>> with data_parallel() as parallel:  # doctest: +SKIP
...     model = AADML(**config)
...     model.compile(optimizer="auto")
...     model.fit(make_av_dataset(train, batch_size=global_batch_size(32)), epochs=10, steps_per_epoch=100)
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Sequence

import keras
import numpy as np

from kerasadml._keras_compat import LocalReplicaSymbolicBuildMixin

log = logging.getLogger(__name__)

_JAX_INITIALIZED = False


def _backend() -> str:
    return keras.backend.backend()


def _tf_default_devices() -> list[str]:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    return [d.name for d in devices]


def _maybe_initialize_jax_processes() -> None:
    """``keras.distribution.initialize()`` once, when the environment asks for several processes."""
    global _JAX_INITIALIZED
    processes = int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1") or 1)
    if processes > 1 and not _JAX_INITIALIZED:
        log.info("initialising %d JAX processes (KERAS_DISTRIBUTION_* variables)", processes)
        keras.distribution.initialize()
        _JAX_INITIALIZED = True


class DataParallelContext(contextlib.AbstractContextManager):
    """What :func:`data_parallel` returns: a context manager over the chosen engine.

    Attributes:
        backend: ``"tensorflow"`` or ``"jax"``.
        engine: ``"MirroredStrategy"``, ``"MultiWorkerMirroredStrategy"`` or ``"DataParallel"``.
        strategy: the ``tf.distribute`` strategy (TensorFlow), else ``None``.
        distribution: the ``keras.distribution.DataParallel`` (JAX), else ``None``.
        num_replicas: replicas a global batch is split over.
    """

    def __init__(self, devices: Sequence[Any] | None = None):
        self.backend = _backend()
        self.strategy = None
        self.distribution = None
        self._scope = None
        self._previous = None
        if self.backend == "tensorflow":
            import tensorflow as tf

            if os.environ.get("TF_CONFIG"):
                if devices is not None:
                    raise ValueError("data_parallel: devices cannot be given with TF_CONFIG (multi-worker)")
                self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
                self.engine = "MultiWorkerMirroredStrategy"
            else:
                names = list(devices) if devices is not None else _tf_default_devices()
                if not names:
                    raise ValueError("data_parallel: no devices given or found")
                self.strategy = tf.distribute.MirroredStrategy(devices=names)
                self.engine = "MirroredStrategy"
            self.num_replicas = int(self.strategy.num_replicas_in_sync)
        elif self.backend == "jax":
            _maybe_initialize_jax_processes()
            devices = list(devices) if devices is not None else keras.distribution.list_devices()
            if not devices:
                raise ValueError("data_parallel: no devices given or found")
            self.distribution = keras.distribution.DataParallel(devices=devices)
            self.engine = "DataParallel"
            self.num_replicas = int(self.distribution.device_mesh.devices.size)
        else:
            raise ValueError(f"data_parallel supports the tensorflow and jax backends, not {self.backend!r}")

    def global_batch_size(self, per_replica: int) -> int:
        return global_batch_size(per_replica, self.num_replicas)

    def __enter__(self) -> DataParallelContext:
        if self.strategy is not None:
            self._scope = self.strategy.scope()
            self._scope.__enter__()
        else:
            self._previous = keras.distribution.distribution()
            keras.distribution.set_distribution(self.distribution)
        return self

    def __exit__(self, *exc) -> None:
        if self._scope is not None:
            self._scope.__exit__(*exc)
            self._scope = None
        elif self.distribution is not None:
            keras.distribution.set_distribution(self._previous)
        return None

    def __repr__(self) -> str:
        return f"DataParallelContext(backend={self.backend!r}, engine={self.engine!r}, num_replicas={self.num_replicas})"


def data_parallel(devices: Sequence[Any] | None = None) -> DataParallelContext:
    """Data-parallel training on the active backend's engine, as a context manager.

    Args:
        devices: TensorFlow device names (``"/cpu:0"``, ``"/gpu:1"``) or JAX devices /
            Keras device strings (``"cpu:0"``); ``None``: every accelerator, else every
            CPU device. Not allowed with ``TF_CONFIG`` (the cluster decides).

    Returns:
        A :class:`DataParallelContext`; inside ``with`` it is active (TensorFlow: the
        strategy's scope; JAX: the global distribution, restored on exit).

    Raises:
        ValueError: an unsupported backend, no devices, or ``devices`` with ``TF_CONFIG``.
    """
    return DataParallelContext(devices)


#: The same call under the name TensorFlow users look for.
strategy_scope = data_parallel


def num_replicas() -> int:
    """Replicas of the active data-parallel setup (1 outside any).

    TensorFlow: ``num_replicas_in_sync`` of the current ``tf.distribute`` strategy (inside
    its scope or a replica context). JAX: the size of the batch axis of the current
    ``keras.distribution`` (its device mesh).
    """
    backend = _backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return int(tf.distribute.get_strategy().num_replicas_in_sync)
    if backend == "jax":
        distribution = keras.distribution.distribution()
        if distribution is None:
            return 1
        mesh = distribution.device_mesh
        batch_axis = getattr(distribution, "batch_dim_name", None)
        if batch_axis in tuple(mesh.axis_names):
            return int(mesh.shape[tuple(mesh.axis_names).index(batch_axis)])
        return int(np.prod(mesh.shape))
    return 1


def global_batch_size(per_replica: int, num_replicas_: int | None = None) -> int:
    """``per_replica * num_replicas`` (the batch size to give ``fit``).

    Args:
        per_replica: rows each replica processes per step (>= 1).
        num_replicas_: replicas; ``None`` takes :func:`num_replicas` (so call it inside
            the ``data_parallel`` block).
    """
    if int(per_replica) < 1:
        raise ValueError(f"global_batch_size: per_replica must be >= 1, got {per_replica}")
    n = num_replicas() if num_replicas_ is None else int(num_replicas_)
    if n < 1:
        raise ValueError(f"global_batch_size: num_replicas must be >= 1, got {num_replicas_}")
    return int(per_replica) * n


def scale_loss_for_replicas(loss):
    """``loss / num_replicas`` inside a TensorFlow ``tf.distribute`` replica context, else ``loss``.

    A model that overrides ``compute_loss`` must return this: ``MirroredStrategy`` sums
    the replicas' gradients, and Keras' TensorFlow train step multiplies the loss back by
    the number of replicas before logging it (Keras' own ``compute_loss`` does the same
    scaling through ``keras.losses.Loss``). JAX computes one global loss: no scaling.
    """
    if _backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        loss = loss * keras.ops.cast(1.0 / replicas, loss.dtype)
    return loss


def replica_batches(dataset, num_replicas_: int):
    """Global batches made of ``num_replicas_`` consecutive per-replica batches.

    ``MirroredStrategy`` hands replica ``i`` the ``i``-th slice of each global batch, so
    concatenating class-balanced per-replica batches (e.g. from ``make_av_dataset(split,
    batch_size=per_replica)``) keeps every replica's batch class-balanced. On JAX the
    global batch is one batch; it stays class-balanced too.

    Args:
        dataset: a ``tf.data.Dataset`` of dict batches with a fixed batch size.
        num_replicas_: replicas (``DataParallelContext.num_replicas``).
    """
    if int(num_replicas_) < 1:
        raise ValueError(f"replica_batches: num_replicas must be >= 1, got {num_replicas_}")
    if int(num_replicas_) == 1:
        return dataset
    spec = next(iter(dataset.element_spec.values())) if isinstance(dataset.element_spec, dict) else dataset.element_spec
    rows = spec.shape[0]
    if rows is None:
        raise ValueError("replica_batches: the dataset's batch size must be static (drop_remainder / fixed batches)")
    return dataset.unbatch().batch(int(rows) * int(num_replicas_), drop_remainder=True)


class MultiWorkerDictInputsMixin(LocalReplicaSymbolicBuildMixin):
    """Lets a Keras model with dict inputs ``fit`` under ``MultiWorkerMirroredStrategy``.

    Keras' TensorFlow trainer builds the model symbolically from the first distributed
    batch by ``strategy.reduce("MEAN", batch)``, which ``MultiWorkerMirroredStrategy``
    cannot do for a dict of per-replica values (keras-team/keras#20329: "Attempt to
    convert a value ({'audio': PerReplica...}) with an unsupported type"). Only the
    batch's shapes and dtypes matter for that build, so this mixin builds from the first
    local replica's batch instead (:class:`kerasadml._keras_compat.LocalReplicaSymbolicBuildMixin`,
    which overrides a private Keras hook). Other backends and strategies are unchanged.

    The same engine then reduces each step's logs with ``strategy.reduce("MEAN", v,
    axis=0)``, which fails on Keras' scalar logs ("Invalid reduction dimension 0 for
    input with 0 dimensions", tensorflow/tensorflow#72388); under
    ``MultiWorkerMirroredStrategy`` this mixin returns each log as a 1-element vector, so
    the reduction yields the mean over replicas, a scalar, as on one device.
    """

    def _multi_worker(self) -> bool:
        if _backend() != "tensorflow":
            return False
        import tensorflow as tf

        return isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)

    def _vector_logs(self, logs):
        if not self._multi_worker():
            return logs
        return {k: keras.ops.reshape(v, (1,)) if len(keras.ops.shape(v)) == 0 else v for k, v in logs.items()}

    def train_step(self, *args, **kwargs):
        return self._vector_logs(super().train_step(*args, **kwargs))

    def test_step(self, *args, **kwargs):
        return self._vector_logs(super().test_step(*args, **kwargs))


__all__ = [
    "DataParallelContext",
    "MultiWorkerDictInputsMixin",
    "data_parallel",
    "global_batch_size",
    "num_replicas",
    "replica_batches",
    "scale_loss_for_replicas",
    "strategy_scope",
]
