"""kerasadml's ECAPA-TDNN against SpeechBrain's, side by side on the CPU.

Measures kerasadml's :class:`~kerasadml.encoders.ECAPATDNN` (the audio encoder of ADML)
on TensorFlow and on JAX, and the reference, SpeechBrain's
``speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`` on PyTorch, all on the CPU, with the
same widths: C = 256 channels, Res2Net scale 8, dilations 2, 3, 4, SE and attention
bottlenecks 128, a 256-d utterance embedding, and a multi-layer feature aggregation
(MFA) of 768 channels (SpeechBrain: ``channels=[256, 256, 256, 256, 768]``,
``lin_neurons=256``). A second kerasadml row per backend uses MFA 512, the width of
``adml_base``'s audio encoder. For each row:

- **train clips/s**: batches of ``--batch`` (64) clips x ``--frames`` (150) frames x 40
  log-mel bins (random), one training step = forward + backward + Adam (learning rate
  1e-3) on a 1,000-way softmax cross-entropy (a Dense layer on the utterance embedding);
  kerasadml: ``model.fit`` on an in-memory, repeated ``tf.data`` dataset, each round one
  epoch of ``--steps`` steps timed from ``on_epoch_begin`` to a device sync at
  ``on_epoch_end`` (``benchmarks/throughput.py``'s timer); SpeechBrain: a plain PyTorch
  loop (``zero_grad``, forward, ``backward``, ``step``) on in-memory tensors;
- **inference clips/s**: the encoder's forward to the embedding at the same batch
  (kerasadml: ``jax.jit`` of ``stateless_call`` / ``tf.function``; PyTorch: ``eval()``
  under ``torch.inference_mode()``);
- **latency ms**: the median forward of one clip of ``--latency-frames`` (100) frames;
- **GFLOP per clip** (train / inference): kerasadml: XLA's cost analysis of the compiled
  JAX training step (``model.train_step``, incl. loss and Adam update) and forward, per
  clip (TensorFlow rows show the JAX count of the same model; without a JAX row, '-');
  PyTorch: ``torch.utils.flop_counter.FlopCounterMode`` over forward + backward and over
  the forward ('-' where unavailable). The counts differ in kind: XLA counts every
  operation (elementwise, normalisation, optimizer), FlopCounterMode only matmuls and
  convolutions; both count a multiply-add as 2 FLOPs;
- **achieved GFLOP/s** = GFLOP per clip x clips/s, and its fraction of a **matmul
  ceiling** measured in the same run (numpy float32 matmul of 2048 x 2048, best of 5, in
  the parent process, once per round; the best round is used);
- **params**: trainable parameters of the encoder (without the softmax head; BatchNorm's
  moving statistics are not counted, as in PyTorch's ``parameters()``);
- **peak RSS MB** of the row's worker process over its whole life (imports, build,
  compilation, every round), and in brackets what the model added after the imports
  (``benchmarks/throughput.py``'s sampler).

Every row runs in a worker process of its own (``KERAS_BACKEND`` set per worker,
``JAX_PLATFORMS=cpu``, no CUDA device visible); the workers start and warm up
(compilation, untimed steps and calls) together, then stay alive, idle, while the parent
asks each in turn for one measurement **round** (nothing else runs meanwhile),
``--rounds`` (3) times, so that other work on the machine slows every row alike. Each
cell is the median over the rounds; the "÷ reference" ratio (train clips/s over
SpeechBrain's) is taken within each round, then its median reported. Differences the
table does not hide: kerasadml's encoder also has a frame-level "sequence" projection
(MFA x 256, about 197 k parameters in the MFA 768 row, counted in its params; nothing
reads its output here, so XLA drops it and TensorFlow's graph optimizer may) and masks
every frame (masked BatchNorm statistics); SpeechBrain's convolutions pad by reflection,
kerasadml's with zeros.

Run it on an otherwise idle machine: besides the usual distortions, PyTorch's OpenMP threads
slow down by an order of magnitude when another process takes a share of their cores
(on a 2-core machine under load, one 100-frame forward took 1.4 s with 2 threads and
90 ms with ``--torch-threads 1``), while TensorFlow's and XLA's thread pools degrade
gracefully: the reference would look far slower than it is.

Without PyTorch and SpeechBrain the reference row is skipped (a line says so and how to
install them) and the kerasadml rows still run. Install the reference with the ``peers``
extra (PyTorch from PyPI; on a CPU-only machine the CPU wheel index
``--extra-index-url https://download.pytorch.org/whl/cpu`` avoids the CUDA wheels):

    pip install -e ".[jax,peers]"

Run from the repository root, on an otherwise idle machine:

    python benchmarks/peers.py --json peers.json          # ~15 min on 2 CPU cores
    python benchmarks/peers.py --quick                    # smoke test: tiny batch, 1 round
    python benchmarks/peers.py --backends jax --rounds 5 --batch 32 --frames 200
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import (  # after the sys.path line
    PeakRSS,
    _error_text,
    _flops,
    _load,
    _loops,
    _make_timer,
    _memory_cell,
    _rss_mb,
    describe_machine,
    format_number,
    percentile,
)

MARK = "PEERS_JSON "  # prefix of the workers' result lines on stdout
INPUT_DIM = 40  # log-mel bins
CLASSES = 1000  # the training head: a 1,000-way softmax on the utterance embedding
WIDTHS = {"channels": 256, "embedding_dim": 256, "dilations": (2, 3, 4), "scale": 8, "se_channels": 128,
          "attention_channels": 128}
REFERENCE_MFA = 768
KERAS_MFAS = (768, 512)  # the reference's width, and adml_base's audio encoder
DISTINCT_BATCHES = 2  # in-memory training batches, repeated
INSTALL_HINT = 'pip install -e ".[peers]" (PyTorch + SpeechBrain; kerasadml never needs them)'
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


# ============================================================================ helpers
def matmul_ceiling(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` numpy float32 ``n x n`` matmuls (after one warm-up)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def reference_missing() -> str | None:
    """Why the SpeechBrain reference cannot run here (None: the packages are installed;
    whether they import is the reference worker's to find out)."""
    missing = [name for name in ("torch", "speechbrain") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed"
    return None


def skip_line(reason: str) -> str:
    return f"Reference row (SpeechBrain ECAPA-TDNN, PyTorch) skipped: {reason}. Install it with: {INSTALL_HINT}"


def _emit(record: dict) -> None:
    print(MARK + json.dumps(record, default=float), flush=True)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ============================================================================ workers
class KerasBench:
    """kerasadml's ECAPATDNN + a Dense softmax head on the active Keras backend."""

    def __init__(self, spec: dict):
        self.spec = spec

    def setup(self) -> dict:
        import keras
        import numpy as np
        import tensorflow as tf

        from kerasadml.encoders import ECAPATDNN

        spec = self.spec
        keras.utils.set_random_seed(0)
        self.encoder = ECAPATDNN(input_dim=INPUT_DIM, mfa_channels=spec["mfa"], name="ecapa", **WIDTHS)
        features = keras.Input((None, INPUT_DIM), name="features")
        mask = keras.Input((None,), dtype="bool", name="mask")
        embedding = self.encoder({"features": features, "mask": mask})["embedding"]
        logits = keras.layers.Dense(CLASSES, name="classifier")(embedding)
        self.model = keras.Model({"features": features, "mask": mask}, logits, name="ecapa_softmax")
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(0)
        b, t = spec["batch"], spec["frames"]
        x = {"features": rng.standard_normal((DISTINCT_BATCHES, b, t, INPUT_DIM), dtype=np.float32),
             "mask": np.ones((DISTINCT_BATCHES, b, t), bool)}
        y = rng.integers(0, CLASSES, (DISTINCT_BATCHES, b)).astype(np.int32)
        self.dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().prefetch(2)
        self.batch = {"features": x["features"][0], "mask": x["mask"][0]}
        self.clip = {"features": rng.standard_normal((1, spec["latency_frames"], INPUT_DIM), dtype=np.float32),
                     "mask": np.ones((1, spec["latency_frames"]), bool)}
        warm = _make_timer()
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=spec["warmup_steps"], verbose=0, callbacks=[warm])
        # trainable parameters, as PyTorch's parameters() (BatchNorm's moving statistics are buffers there)
        info = {"params": _trainable_count(self.encoder),
                "sequence_params": _trainable_count(self.encoder.get_layer("sequence")),
                "compile_s": warm.seconds[0]}
        if keras.backend.backend() == "tensorflow":
            info["jit_compile"] = bool(self.model.jit_compile)
        self._make_forward()
        for _ in range(spec["warmup_calls"]):
            self.forward(self.batch)
            self.forward(self.clip)
        if keras.backend.backend() == "jax" and spec["flops"]:
            info.update(self._count_flops(x, y))
        return info

    def _make_forward(self) -> None:
        """A compiled forward of the encoder to the utterance embedding (the inference)."""
        import keras

        encoder = self.encoder
        if keras.backend.backend() == "jax":
            import jax

            # copies: the JAX trainer donates (deletes) the variables' arrays it replaces
            trainable = [jax.numpy.array(v.value, copy=True) for v in encoder.trainable_variables]
            non_trainable = [jax.numpy.array(v.value, copy=True) for v in encoder.non_trainable_variables]

            @jax.jit
            def forward(trainable, non_trainable, inputs):
                out, _ = encoder.stateless_call(trainable, non_trainable, inputs, training=False)
                return out["embedding"]

            self._jitted = lambda inputs: forward.lower(trainable, non_trainable, inputs).compile()
            self.forward = lambda inputs: forward(trainable, non_trainable, inputs).block_until_ready()
            return
        import tensorflow as tf

        @tf.function(jit_compile=bool(self.model.jit_compile), reduce_retracing=True)
        def forward(inputs):
            return encoder(inputs, training=False)["embedding"]

        self.forward = lambda inputs: forward(inputs).numpy()

    def _count_flops(self, x, y) -> dict:
        """XLA cost analysis (JAX): the training step and the forward, per clip."""
        import jax

        model = self.model
        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables],
            [v.value for v in model.metrics_variables],
        )
        data = ({key: jax.numpy.asarray(value[0]) for key, value in x.items()}, jax.numpy.asarray(y[0]))
        compiled = jax.jit(model.train_step).lower(state, data).compile()
        b = self.spec["batch"]
        return {"train_flops_per_clip": _flops(compiled) / b, "loops": _loops(compiled),
                "infer_flops_per_clip": _flops(self._jitted(self.batch)) / b}

    def measure(self) -> dict:
        spec = self.spec
        timer = _make_timer()
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=spec["steps"], verbose=0, callbacks=[timer])
        train = spec["batch"] * spec["steps"] / timer.seconds[0]
        cores = timer.cpu_seconds[0] / timer.seconds[0]
        return {"train_clips_per_s": train, "train_cores": cores, "loss": timer.logs[0].get("loss"),
                **_time_inference(self.forward, self.batch, self.clip, spec)}


class TorchBench:
    """SpeechBrain's ECAPA_TDNN + a Linear softmax head, PyTorch on the CPU."""

    def __init__(self, spec: dict):
        self.spec = spec

    def setup(self) -> dict:
        import torch
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

        spec = self.spec
        torch.manual_seed(0)
        c, mfa = WIDTHS["channels"], spec["mfa"]
        self.encoder = ECAPA_TDNN(
            INPUT_DIM, device="cpu", lin_neurons=WIDTHS["embedding_dim"], channels=[c, c, c, c, mfa],
            kernel_sizes=[5, 3, 3, 3, 1], dilations=[1, *WIDTHS["dilations"], 1],
            attention_channels=WIDTHS["attention_channels"], res2net_scale=WIDTHS["scale"],
            se_channels=WIDTHS["se_channels"], global_context=True,
        )
        self.head = torch.nn.Linear(WIDTHS["embedding_dim"], CLASSES)
        self.optimizer = torch.optim.Adam([*self.encoder.parameters(), *self.head.parameters()], lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        g = torch.Generator().manual_seed(0)
        b, t = spec["batch"], spec["frames"]
        self.x = [torch.randn(b, t, INPUT_DIM, generator=g) for _ in range(DISTINCT_BATCHES)]
        self.y = [torch.randint(0, CLASSES, (b,), generator=g) for _ in range(DISTINCT_BATCHES)]
        self.batch = self.x[0]
        self.clip = torch.randn(1, spec["latency_frames"], INPUT_DIM, generator=g)
        self.step = 0
        start = time.perf_counter()
        for _ in range(spec["warmup_steps"]):
            self.train_step()
        info = {"params": sum(p.numel() for p in self.encoder.parameters() if p.requires_grad), "compile_s": 0.0,
                "warmup_s": time.perf_counter() - start, "threads": torch.get_num_threads()}
        for _ in range(spec["warmup_calls"]):
            self.forward(self.batch)
            self.forward(self.clip)
        if spec["flops"]:
            info.update(self._count_flops())
        return info

    def train_step(self) -> float:
        self.encoder.train()
        i = self.step % DISTINCT_BATCHES
        self.step += 1
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.head(self.encoder(self.x[i]).squeeze(1))
        loss = self.loss(logits, self.y[i])
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def forward(self, x):
        import torch

        self.encoder.eval()
        with torch.inference_mode():
            return self.encoder(x).numpy()

    def _count_flops(self) -> dict:
        """FlopCounterMode (matmuls and convolutions) over forward + backward, and the forward."""
        try:
            from torch.utils.flop_counter import FlopCounterMode
        except ImportError:
            return {}
        b = self.spec["batch"]
        with FlopCounterMode(display=False) as counter:
            self.encoder.train()
            self.optimizer.zero_grad(set_to_none=True)
            self.loss(self.head(self.encoder(self.batch).squeeze(1)), self.y[0]).backward()
        train = counter.get_total_flops() / b
        self.optimizer.zero_grad(set_to_none=True)
        with FlopCounterMode(display=False) as counter:
            self.forward(self.batch)
        return {"train_flops_per_clip": train, "infer_flops_per_clip": counter.get_total_flops() / b}

    def measure(self) -> dict:
        spec = self.spec
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(spec["steps"]):
            loss = self.train_step()
        seconds = time.perf_counter() - start
        return {"train_clips_per_s": spec["batch"] * spec["steps"] / seconds,
                "train_cores": (time.process_time() - cpu) / seconds, "loss": loss,
                **_time_inference(self.forward, self.batch, self.clip, spec)}


def _trainable_count(layer) -> int:
    import math

    return sum(math.prod(w.shape) for w in layer.trainable_weights)


def _time_inference(forward, batch, clip, spec: dict) -> dict:
    """Inference clips/s at the training batch, and the single-clip latency (median ms)."""
    start = time.perf_counter()
    for _ in range(spec["infer_calls"]):
        forward(batch)
    infer = spec["batch"] * spec["infer_calls"] / (time.perf_counter() - start)
    latencies = []
    for _ in range(spec["latency_calls"]):
        start = time.perf_counter()
        forward(clip)
        latencies.append(1000 * (time.perf_counter() - start))
    return {"infer_clips_per_s": infer, "latency_ms": percentile(latencies, 50), "latency_p90_ms": percentile(latencies, 90)}


def _torch_environment(threads: int | None) -> dict:
    import platform

    import speechbrain
    import torch

    if threads:
        torch.set_num_threads(threads)

    return {"backend": "torch", "python": platform.python_version(), "torch": torch.__version__,
            "speechbrain": speechbrain.__version__, "devices": [f"cpu ({torch.get_num_threads()} threads)"]}


def worker_main(spec: dict) -> int:
    """Build and warm up one row, report ``ready``, then one ``round`` record per line read."""
    with PeakRSS() as memory:
        try:
            if spec["backend"] == "torch":
                try:
                    environment = _torch_environment(spec.get("torch_threads"))
                    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN  # noqa: F401
                except Exception as error:  # noqa: BLE001  (torchaudio / CUDA libraries, ...)
                    _emit({"kind": "unavailable", "error": _error_text(error)})
                    return 0
                bench = TorchBench(spec)
            else:
                import tensorflow as tf

                from benchmarks.throughput import _environment

                tf.config.set_visible_devices([], "GPU")
                environment = _environment()
                bench = KerasBench(spec)
            imported_mb = _rss_mb()
            _emit({"kind": "environment", **environment})
            start = time.perf_counter()
            info = bench.setup()
            _emit({"kind": "ready", "setup_s": time.perf_counter() - start, "start_mb": imported_mb,
                   "peak_mb": memory.peak, **info})
        except Exception as error:  # noqa: BLE001  (reported in the table)
            import traceback

            traceback.print_exc()
            _emit({"kind": "error", "error": _error_text(error)})
            return 1
        for line in sys.stdin:
            command = line.strip()
            if command != "round":
                break
            try:
                record = {"kind": "round", **bench.measure(), "load": _load()}
            except Exception as error:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                record = {"kind": "error", "error": _error_text(error)}
            record["peak_mb"] = max(memory.peak, _rss_mb())
            _emit(record)
    return 0


# ============================================================================ parent
class Worker:
    """One row's worker process; ``ask`` sends a command and waits for its answer."""

    def __init__(self, row: dict, spec: dict):
        self.row = row
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        if spec["backend"] != "torch":
            env["KERAS_BACKEND"] = spec["backend"]
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in close())
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True, start_new_session=True)
        self.records: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith(MARK):
                try:
                    self.records.put(json.loads(line[len(MARK):]))
                except json.JSONDecodeError:
                    pass
        self.records.put(None)  # end of output

    def ask(self, command: str | None, kinds: tuple[str, ...], timeout: float) -> list[dict]:
        """Send ``command`` (if any); the records up to the first one of ``kinds`` (or an
        ``error`` / ``unavailable`` record). Raises RuntimeError on exit or timeout."""
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        out = []
        while True:
            try:
                record = self.records.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"worker timed out after {timeout:.0f} s") from None
            if record is None:
                self.process.wait()
                raise RuntimeError(f"worker exited with {self.process.returncode}: {self._last_error()}")
            out.append(record)
            if record["kind"] in (*kinds, "error", "unavailable"):
                return out

    def _last_error(self) -> str:
        self.errors.seek(0)
        tail = [line for line in self.errors.read().strip().splitlines() if line.strip()]
        return (tail[-1] if tail else "")[:300].replace("|", "/")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.errors.close()

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, 9)
        except OSError:
            pass
        self.process.wait()


def plan(args) -> list[dict]:
    """The table's rows: the reference first, then kerasadml per backend and MFA width."""
    rows = [{"key": "reference", "model": f"SpeechBrain ECAPA_TDNN C={WIDTHS['channels']} MFA {REFERENCE_MFA}",
             "backend": "torch", "mfa": REFERENCE_MFA}]
    for backend in args.backends:
        for mfa in KERAS_MFAS:
            rows.append({"key": f"{backend}:{mfa}", "model": f"kerasadml ECAPATDNN C={WIDTHS['channels']} MFA {mfa}",
                         "backend": backend, "mfa": mfa})
    return rows


def run_rows(args, rows: list[dict], log) -> list[float]:
    """Start and warm up each row's worker, then ``args.rounds`` interleaved rounds;
    fills each row's ``ready``, ``rounds`` and ``error`` / ``skipped``. Returns the matmul
    ceilings (GFLOP/s) measured once per round."""
    settings = {"batch": args.batch, "frames": args.frames, "latency_frames": args.latency_frames,
                "steps": args.steps, "warmup_steps": args.warmup_steps, "infer_calls": args.infer_calls,
                "latency_calls": args.latency_calls, "warmup_calls": 1 if args.quick else 2, "flops": not args.no_flops,
                "torch_threads": args.torch_threads}
    workers, started = [], []
    try:
        # set-up (imports, build, compilation, warm-up) in parallel; the rounds one at a time
        for row in rows:
            row["rounds"] = []
            if row.get("skipped"):
                continue
            log(f"{row['model']} ({BACKEND_NAMES[row['backend']]}): starting, warming up")
            started.append(Worker(row, {**settings, "backend": row["backend"], "mfa": row["mfa"]}))
        for worker in started:
            row = worker.row
            try:
                records = worker.ask(None, ("ready",), args.worker_timeout)
            except RuntimeError as error:
                row["error"] = str(error)
                worker.kill()
                continue
            for record in records:
                if record["kind"] == "environment":
                    row["environment"] = record
            last = records[-1]
            if last["kind"] != "ready":
                row["skipped" if last["kind"] == "unavailable" else "error"] = last["error"]
                worker.close()
                continue
            row["ready"] = last
            log(f"{row['model']} ({BACKEND_NAMES[row['backend']]}): ready in {last['setup_s']:.0f} s")
            workers.append(worker)
        ceilings = []
        for round_index in range(args.rounds):
            ceilings.append(matmul_ceiling(args.matmul_size))
            log(f"round {round_index + 1}/{args.rounds}: matmul ceiling {ceilings[-1]:,.0f} GFLOP/s")
            shift = round_index % max(1, len(workers))  # rotate the order from round to round
            for worker in workers[shift:] + workers[:shift]:
                row = worker.row
                if row.get("error"):
                    continue
                try:
                    record = worker.ask("round", ("round",), args.worker_timeout)[-1]
                except RuntimeError as error:
                    row["error"] = str(error)
                    continue
                if record["kind"] == "error":
                    row["error"] = record["error"]
                    continue
                record["round"] = round_index
                row["rounds"].append(record)
                log(f"  {row['model']} ({BACKEND_NAMES[row['backend']]}): train {record['train_clips_per_s']:.1f}, "
                    f"inference {record['infer_clips_per_s']:.1f} clips/s, latency {record['latency_ms']:.1f} ms")
        return ceilings
    finally:
        for worker in started:
            worker.close()


def summarize(rows: list[dict], ceiling: float | None) -> None:
    """Medians over the rounds, within-round ratios to the reference, FLOP figures."""
    reference = next((r for r in rows if r["key"] == "reference" and r.get("rounds")), None)
    counts = {r["mfa"]: r["ready"] for r in rows if r["backend"] == "jax" and "train_flops_per_clip" in r.get("ready", {})}
    for row in rows:
        if not row.get("rounds"):
            continue
        rounds = row["rounds"]
        summary = {key: _median([r[key] for r in rounds])
                   for key in ("train_clips_per_s", "infer_clips_per_s", "latency_ms", "train_cores")}
        summary["peak_mb"] = max(r["peak_mb"] for r in rounds)
        summary["start_mb"] = row["ready"]["start_mb"]
        if reference is not None and row is not reference:
            by_round = {r["round"]: r for r in reference["rounds"]}
            summary["train_vs_reference"] = _median(
                [r["train_clips_per_s"] / by_round[r["round"]]["train_clips_per_s"] for r in rounds if r["round"] in by_round])
            summary["infer_vs_reference"] = _median(
                [r["infer_clips_per_s"] / by_round[r["round"]]["infer_clips_per_s"] for r in rounds if r["round"] in by_round])
        count = row["ready"] if "train_flops_per_clip" in row["ready"] else counts.get(row["mfa"])
        if row["backend"] == "torch":
            count = row["ready"] if "train_flops_per_clip" in row["ready"] else None
        for what in ("train", "infer"):
            flops = count.get(f"{what}_flops_per_clip") if count else None
            if flops:
                achieved = flops / 1e9 * summary[f"{what}_clips_per_s"]
                summary[f"{what}_gflop_per_clip"] = flops / 1e9
                summary[f"{what}_gflop_per_s"] = achieved
                summary[f"{what}_of_ceiling"] = achieved / ceiling if ceiling else None
        row["summary"] = summary


def _pair(a, b, fmt=format_number) -> str:
    if a is None and b is None:
        return "-"
    return f"{fmt(a) if a is not None else '-'} / {fmt(b) if b is not None else '-'}"


def build_table(rows: list[dict]) -> tuple[str, bool]:
    """The markdown table, and whether a row failed (a skipped reference is no failure)."""
    header = ["model", "backend", "params", "train clips/s", "÷ reference", "inference clips/s", "latency ms",
              "GFLOP per clip (train / inference)", "achieved GFLOP/s (train / inference)",
              "of matmul ceiling (train / inference)", "peak RSS MB (+ model)", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    failed = False
    for row in rows:
        base = [row["model"], BACKEND_NAMES[row["backend"]]]
        if row.get("skipped") or row.get("error") and not row.get("rounds"):
            text = f"skipped: {row['skipped']}" if row.get("skipped") else f"FAILED: {row['error']}"
            failed = failed or not row.get("skipped")
            params = row.get("ready", {}).get("params")
            lines.append("| " + " | ".join(base + [f"{params:,}" if params else "-"] + ["-"] * 8 + [text]) + " |")
            continue
        s, ready = row["summary"], row["ready"]
        notes = []
        if row.get("error"):
            failed = True
            notes.append(f"FAILED in a round: {row['error']}")
        if "sequence_params" in ready:
            notes.append(f"params incl. {ready['sequence_params']:,} of the frame-level projection (unused here)")
        if "jit_compile" in ready:
            notes.append(f"jit_compile={ready['jit_compile']}")
        if "threads" in ready:
            notes.append(f"intra-op threads: {ready['threads']}")
        if ready.get("loops"):
            notes.append(f"{ready['loops']} loop(s) in the XLA program: FLOPs undercounted")
        notes.append(f"{len(row['rounds'])} round(s), process used {s['train_cores']:.1f} of {os.cpu_count()} cores "
                     f"in training, load {row['rounds'][-1]['load']:.1f}")
        notes.append(f"set-up (build, warm-up, FLOP count; alongside the other rows' set-up) {ready['setup_s']:.0f} s")
        ratio = s.get("train_vs_reference")
        cells = base + [
            f"{ready['params']:,}",
            format_number(s["train_clips_per_s"]),
            "1" if row["key"] == "reference" else (f"{ratio:.2f}" if ratio else "-"),
            format_number(s["infer_clips_per_s"]),
            f"{s['latency_ms']:.1f}",
            _pair(s.get("train_gflop_per_clip"), s.get("infer_gflop_per_clip")),
            _pair(s.get("train_gflop_per_s"), s.get("infer_gflop_per_s")),
            _pair(s.get("train_of_ceiling"), s.get("infer_of_ceiling"), lambda v: f"{v:.0%}"),
            _memory_cell(s),
            "; ".join(notes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax", help="kerasadml backends, comma-separated (default: both)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved measurement rounds (default 3; quick 1)")
    parser.add_argument("--batch", type=int, default=None, help="clips per batch (default 64; quick 4)")
    parser.add_argument("--frames", type=int, default=None, help="frames per training clip (default 150; quick 50)")
    parser.add_argument("--latency-frames", type=int, default=100, help="frames of the single latency clip")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per round (default 10; quick 2)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed first training steps (default 3; quick 1)")
    parser.add_argument("--infer-calls", type=int, default=None, help="timed batch forwards per round (default 10; quick 2)")
    parser.add_argument("--latency-calls", type=int, default=None, help="timed 1-clip forwards per round (default 30; quick 3)")
    parser.add_argument("--matmul-size", type=int, default=None, help="n of the n x n ceiling matmul (default 2048; quick 512)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="PyTorch intra-op threads of the reference (default: PyTorch's own, the physical cores)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP counts")
    parser.add_argument("--no-reference", action="store_true", help="kerasadml rows only")
    parser.add_argument("--quick", action="store_true", help="tiny batches, 1 round (smoke test)")
    parser.add_argument("--worker-timeout", type=float, default=None, help="seconds per worker request (default 900)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write every figure (each round) to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        return worker_main(json.loads(args.worker))

    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in args.backends:
        if backend not in ("tensorflow", "jax"):
            parser.error(f"--backends: tensorflow and/or jax, got {backend!r}")
    defaults = {"rounds": 3, "batch": 64, "frames": 150, "steps": 10, "warmup_steps": 3, "infer_calls": 10,
                "latency_calls": 30, "matmul_size": 2048, "worker_timeout": 900}
    if args.quick:
        defaults.update(rounds=1, batch=4, frames=50, steps=2, warmup_steps=1, infer_calls=2, latency_calls=3,
                        matmul_size=512)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rounds < 1 or args.batch < 1 or args.frames < 8 or args.steps < 1:
        parser.error("--rounds, --batch, --steps must be >= 1 and --frames >= 8")

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    rows = plan(args)
    reference = rows[0]
    if args.no_reference:
        reference["skipped"] = "--no-reference"
    else:
        missing = reference_missing()
        if missing:
            reference["skipped"] = missing
    load_start = _load()
    ceilings = run_rows(args, rows, log)
    ceiling = max(ceilings) if ceilings else None
    summarize(rows, ceiling)
    table, failed = build_table(rows)
    skip = None
    if reference.get("skipped") and not args.no_reference:
        reason = reference["skipped"]
        if "not installed" not in reason:
            reason = f"importing SpeechBrain's ECAPA_TDNN failed ({reason}); its ECAPA needs no compiled torchaudio " \
                     "ops, but the import can fail on torchaudio's or CUDA's libraries"
        skip = skip_line(reason)
    environments = [r["environment"] for r in rows if r.get("environment")]
    keras_envs = [e for e in environments if e["backend"] != "torch"]
    torch_env = next((e for e in environments if e["backend"] == "torch"), None)
    text = describe_machine(keras_envs, [], (load_start, _load()))
    if torch_env:
        text += f"\nReference: torch {torch_env['torch']}, speechbrain {torch_env['speechbrain']}, " \
                f"{torch_env['devices'][0]}"
    text += (f"\nSettings: batch {args.batch} x {args.frames} frames x {INPUT_DIM} mels, {CLASSES}-way softmax, "
             f"Adam; per round {args.steps} timed training steps (after {args.warmup_steps} warm-up steps), "
             f"{args.infer_calls} batch forwards, {args.latency_calls} forwards of 1 x {args.latency_frames} frames; "
             f"median of {args.rounds} interleaved round(s); matmul ceiling (numpy float32 {args.matmul_size}^2, "
             f"best of 5 per round): {format_number(ceiling)} GFLOP/s; whole run "
             f"{time.perf_counter() - started:.0f} s\n")
    if skip:
        text += "\n" + skip + "\n"
    text += ("\n" + table + "\n\n÷ reference: train clips/s over SpeechBrain's, taken within each round (> 1: "
             "kerasadml faster). GFLOP per clip: kerasadml from XLA's cost analysis of the JAX programs (every op, "
             "incl. the Adam update; TensorFlow rows use the JAX count), PyTorch from FlopCounterMode (matmuls "
             "and convolutions only).\n")
    print(text)
    if args.json:
        from kerasadml.atomic import atomic_write_text

        payload = {"settings": {k: v for k, v in vars(args).items() if k != "worker"}, "ceilings_gflop_per_s": ceilings,
                   "machine": text.split("\nSettings:")[0], "reference_skipped": skip, "rows": rows}
        atomic_write_text(args.json, json.dumps(payload, indent=1, default=float) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
