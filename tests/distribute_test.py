"""kerasadml.distribute: a data-parallel fit on 2 CPU devices follows the equivalent
single-device run, on each backend, in a subprocess (device settings must precede
the first TensorFlow op / the JAX import).

TensorFlow: 2 logical CPU devices, MirroredStrategy. Each replica computes AADML's
in-batch losses on its half of the global batch and the gradients are averaged, so
the equivalent single-device run is SGD with ``gradient_accumulation_steps=2`` over
the same half-batches. JAX: ``--xla_force_host_platform_device_count=2``,
DataParallel; the step is one program over the sharded global batch, so the
equivalent is the plain single-device run on the same global batch.

Run as ``python -m tests.distribute_test`` it is the worker: prints one JSON line.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3
PER_REPLICA = 6
LEARNING_RATE = 0.05


def _worker() -> dict:
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasadml.data.av.dataset import make_av_dataset
    from kerasadml.distribute import data_parallel, global_batch_size, num_replicas, replica_batches
    from kerasadml.zoo import AADML
    from tests.helpers import AADML_TINY as TINY
    from tests.helpers import av_split

    split = av_split()
    config = {**TINY, "dropout": 0.0}  # no randomness in the step
    # Materialised once: every pass over a make_av_dataset draws new batches.
    batches = list(make_av_dataset(split, batch_size=PER_REPLICA, seed=0).take(2 * STEPS).as_numpy_iterator())
    arrays = {key: np.stack([b[key] for b in batches]) for key in batches[0]}
    halves = tf.data.Dataset.from_tensor_slices(arrays)  # per-replica batches, in order

    class StepLosses(keras.callbacks.Callback):
        """Per-step values from Keras' running means (the logs are epoch means so far)."""

        def __init__(self):
            super().__init__()
            self.means = {"loss": [], "loss_metric": [], "loss_label": []}

        def on_train_batch_end(self, batch, logs=None):
            for key in self.means:
                self.means[key].append(float(logs[key]))

        def steps(self):
            out = {}
            for key, means in self.means.items():
                out[key] = [(k + 1) * m - k * (means[k - 1] if k else 0.0) for k, m in enumerate(means)]
            return out

    def run(dataset, steps, accumulate=None):
        keras.utils.set_random_seed(0)
        model = AADML(**config)
        model.adapt(split)
        model.build()
        optimizer = keras.optimizers.SGD(LEARNING_RATE, gradient_accumulation_steps=accumulate)
        model.compile(optimizer=optimizer)
        initial = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
        recorder = StepLosses()
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[recorder])
        final = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
        placement["devices"] = variable_devices(model.trainable_weights[0])
        placement["embed_rows"] = model.embed(split.audio[:5], "audio").shape[0]
        placement["retrieved"] = int(np.max(model.retrieve(split.audio[:3], split.visual[:7], top_k=7)[0]))
        return recorder.steps(), initial, final

    placement = {}

    def variable_devices(variable) -> int:
        """Devices holding a copy of ``variable`` (2 when replicated over both)."""
        value = variable.value
        if backend == "jax":
            return len(value.sharding.device_set)
        return len(getattr(value, "values", [value]))

    outside = num_replicas()
    with data_parallel() as parallel:
        inside = num_replicas()
        batch = global_batch_size(PER_REPLICA)
        dist_losses, dist_init, dist_final = run(replica_batches(halves, parallel.num_replicas), STEPS)
        dist_devices = placement["devices"]
        dist_embed = [placement["embed_rows"], placement["retrieved"]]
    after = num_replicas()
    if backend == "tensorflow":  # per-replica losses, averaged gradients
        ref_losses, ref_init, ref_final = run(halves, 2 * STEPS, accumulate=2)
        ref_losses = {k: list(np.mean(np.reshape(v, (STEPS, 2)), axis=1)) for k, v in ref_losses.items()}
    else:  # one program over the global batch
        ref_losses, ref_init, ref_final = run(replica_batches(halves, 2), STEPS)
    return {
        "engine": parallel.engine,
        "num_replicas": [outside, inside, after, parallel.num_replicas],
        "global_batch": batch,
        "embed_rows_and_max_index": dist_embed,
        "variable_devices": [dist_devices, placement["devices"]],
        "dist": dist_losses,
        "ref": ref_losses,
        "init_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(dist_init, ref_init)),
        "final_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(dist_final, ref_final)),
        "moved": max(float(np.max(np.abs(a - b))) for a, b in zip(dist_final, dist_init)),
    }


def _run_worker(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.pop("TF_CONFIG", None)
    if backend == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
        env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
        [sys.executable, "-m", "tests.distribute_test"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_data_parallel_fit_follows_the_single_device_run(backend):
    import keras

    if keras.backend.backend() != backend:
        pytest.skip(f"runs under KERAS_BACKEND={backend}")
    result = _run_worker(backend)
    expected_engine = "MirroredStrategy" if backend == "tensorflow" else "DataParallel"
    assert result["engine"] == expected_engine
    assert result["num_replicas"] == [1, 2, 1, 2]
    assert result["global_batch"] == 2 * PER_REPLICA
    # embedding / retrieval inside the strategy: one row per input, gallery indices in range
    assert result["embed_rows_and_max_index"] == [5, 6]
    assert result["variable_devices"] == [2, 1]  # replicated over 2 devices, then 1 device
    assert result["init_diff"] == 0.0  # same seed, same initial weights
    assert result["moved"] > 1e-3  # training did something
    for key in ("loss", "loss_metric", "loss_label"):
        assert len(result["dist"][key]) == STEPS
        assert result["dist"][key] == pytest.approx(result["ref"][key], rel=1e-3, abs=1e-4), key
    assert result["final_diff"] < 1e-4


def test_global_batch_size_and_errors():
    from kerasadml.distribute import global_batch_size, num_replicas

    assert num_replicas() == 1
    assert global_batch_size(32) == 32
    assert global_batch_size(32, 4) == 128
    with pytest.raises(ValueError, match="per_replica"):
        global_batch_size(0, 2)
    with pytest.raises(ValueError, match="num_replicas"):
        global_batch_size(8, 0)


if __name__ == "__main__":
    print(json.dumps(_worker()))
