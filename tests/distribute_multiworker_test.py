"""kerasadml.distribute across processes: two processes on this machine train AADML
together, end with the same weights, and follow a single-process run.

TensorFlow (``TF_CONFIG``, MultiWorkerMirroredStrategy): the strategy splits each global
batch of 24 rows between the workers (rows 0-11, 12-23) and averages their gradients,
which one process reproduces with ``gradient_accumulation_steps=2`` over the two halves
in turn. JAX (``KERAS_DISTRIBUTION_*`` variables, ``jax.distributed`` + DataParallel):
Keras shards each batch between the processes and the step is one program over the
global batch, so the reference is the plain single-process run.

Run as ``python -m tests.distribute_multiworker_test`` it is one worker (TF_CONFIG set by
the test): prints one JSON line.
"""

import contextlib
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3


def _worker() -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasadml.distribute import data_parallel, num_replicas
    from kerasadml.zoo import AADML
    from tests.helpers import AADML_TINY as TINY
    from tests.helpers import av_split
    from tests.zoo.aadml_test import _batch

    split = av_split()
    batch = _batch(split)  # 24 rows, 3 classes x 8
    backend = keras.backend.backend()
    distributed = bool(os.environ.get("TF_CONFIG") or os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES"))
    with data_parallel() if distributed else contextlib.nullcontext() as parallel:
        inside = num_replicas()
        keras.utils.set_random_seed(0)
        model = AADML(**{**TINY, "dropout": 0.0})
        model.adapt(split)
        model.build()
        accumulate = None if distributed or backend == "jax" else 2
        model.compile(optimizer=keras.optimizers.SGD(0.05, gradient_accumulation_steps=accumulate))
        initial = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
        if distributed or backend == "jax":  # every worker reads the same global batches; each takes its half
            dataset = tf.data.Dataset.from_tensors(batch).repeat()
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            dataset, steps = dataset.with_options(options), STEPS
        else:  # the two halves in turn, gradients accumulated over each pair
            halves = [{k: v[:12] for k, v in batch.items()}, {k: v[12:] for k, v in batch.items()}]
            dataset = tf.data.Dataset.from_tensors(halves[0]).concatenate(tf.data.Dataset.from_tensors(halves[1]))
            dataset, steps = dataset.repeat(), 2 * STEPS
        history = model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0).history
        final = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    return {
        "engine": parallel.engine if distributed else None,
        "num_replicas": [parallel.num_replicas if distributed else 1, inside],
        "loss": [float(history[k][0]) for k in ("loss", "loss_metric", "loss_label")],
        "moved": max(float(np.max(np.abs(a - b))) for a, b in zip(final, initial)),
        "checksum": [float(np.sum(w, dtype="float64")) for w in final],
    }


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_two_processes_train_in_sync_and_follow_one_process(backend):
    import keras

    if keras.backend.backend() != backend:
        pytest.skip(f"runs under KERAS_BACKEND={backend}")
    addresses = [f"localhost:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(3):  # two processes of one job, then the single-process reference
        env = dict(
            os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT),
            CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu",
        )
        for key in ("TF_CONFIG", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_JOB_ADDRESSES",
                    "KERAS_DISTRIBUTION_PROCESS_ID", "XLA_FLAGS"):
            env.pop(key, None)
        if index < 2 and backend == "tensorflow":
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
        elif index < 2:
            env["KERAS_DISTRIBUTION_NUM_PROCESSES"] = "2"
            env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] = ",".join(addresses)
            env["KERAS_DISTRIBUTION_PROCESS_ID"] = str(index)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.distribute_multiworker_test"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-4000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:  # a worker left waiting for its peer must not outlive the test
            if proc.poll() is None:
                proc.kill()
    *workers_out, single = results
    assert single["engine"] is None and single["num_replicas"] == [1, 1]
    for result in workers_out:
        assert result["engine"] == ("MultiWorkerMirroredStrategy" if backend == "tensorflow" else "DataParallel")
        assert result["num_replicas"] == [2, 2]
        assert all(math.isfinite(v) for v in result["loss"])
        assert result["moved"] > 1e-3
        # the single-process trajectory: same logged losses, same final weights
        assert result["loss"] == pytest.approx(single["loss"], rel=1e-4, abs=1e-5)
        assert result["checksum"] == pytest.approx(single["checksum"], rel=1e-4, abs=1e-4)
    # synchronous training: both workers hold the same weights at the end
    assert workers_out[0]["checksum"] == pytest.approx(workers_out[1]["checksum"], rel=1e-6, abs=1e-6)


if __name__ == "__main__":
    print(json.dumps(_worker()))
