"""The one place kerasadml uses private Keras API (``keras.src``, underscored names).

Everything here may break with a Keras release; nothing else in kerasadml may import
``keras.src`` or call an underscored Keras method. Each item says why it is needed and
the Keras versions it was checked against. Last checked: **Keras 3.15.1** (with
TensorFlow 2.21.0 and JAX 0.10.2); ``pyproject.toml`` allows ``keras>=3.8``. When Keras
is upgraded, run ``tests/layers/log_mel_test.py``, ``tests/layers/spec_augment_test.py``
and ``tests/distribute_multiworker_test.py`` on both backends.
"""

from __future__ import annotations

from typing import Any

import keras

# 1. ``DataLayer``: the base of ``keras.layers.MelSpectrogram`` and the other
#    preprocessing layers. A layer derived from it computes with TensorFlow ops inside a
#    ``tf.data`` map whatever the Keras backend (``self.backend`` switches to
#    "tensorflow" there) and with the active backend inside a model. LogMelSpectrogram
#    and SpecAugment need exactly that, and Keras exports no public base class for it.
#    Checked against Keras 3.15.1 (``keras.src.layers.preprocessing.data_layer``); the
#    fallback for Keras 3.8 / 3.9, where it is ``tf_data_layer.TFDataLayer``, is kept from
#    before and was not re-checked here.
try:  # Keras >= 3.10
    from keras.src.layers.preprocessing.data_layer import DataLayer
except ImportError:  # Keras 3.8 / 3.9
    from keras.src.layers.preprocessing.tf_data_layer import TFDataLayer as DataLayer


def data_layer_seed_generator(layer: Any) -> Any:
    """2. The ``SeedGenerator`` a random ``DataLayer`` must draw from in this call.

    Inside ``tf.data`` under the JAX backend the layer's own ``keras.random.SeedGenerator``
    holds a JAX variable that TensorFlow ops cannot use; ``DataLayer._get_seed_generator``
    returns (and caches) a generator for the backend the layer computes with now,
    ``layer.backend._backend`` (``DynamicBackend``'s private name of that backend; Keras'
    own ``DataLayer`` example does the same). The layer must set ``seed`` and
    ``generator`` in ``__init__``. Checked against Keras 3.15.1
    (``DataLayer._get_seed_generator(backend)``, ``DynamicBackend._backend``).
    """
    return layer._get_seed_generator(layer.backend._backend)


class LocalReplicaSymbolicBuildMixin:
    """3. Builds a Keras model under ``MultiWorkerMirroredStrategy`` from its first local
    replica's batch (a mixin for a ``keras.Model`` subclass, before ``keras.Model``).

    Keras' TensorFlow trainer builds the model symbolically, before the first step, in
    the private hook ``Trainer._maybe_symbolic_build(iterator, data_batch)``, from
    ``strategy.reduce("MEAN", batch)``; ``MultiWorkerMirroredStrategy`` cannot reduce a
    dict of per-replica values (keras-team/keras#20329). Only shapes and dtypes matter for
    that build, so this override hands the hook the first local replica's batch instead.
    It relies on the hook's name and arguments, on ``self._distribute_strategy`` and on
    the TensorFlow epoch iterator yielding ``(begin_step, end_step, iterator)``.
    Other backends and no strategy: unchanged. Checked against Keras 3.15.1
    (``keras/src/backend/tensorflow/trainer.py``).
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if (
            iterator is not None
            and keras.backend.backend() == "tensorflow"
            and getattr(self, "_distribute_strategy", None)
        ):
            import tensorflow as tf

            for _, _, it in iterator:
                batch = next(it)
                data_batch = keras.tree.map_structure(
                    lambda v: self._distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v,
                    batch,
                )
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


__all__ = ["DataLayer", "LocalReplicaSymbolicBuildMixin", "data_layer_seed_generator"]
