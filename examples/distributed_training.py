"""Data-parallel training of ADML or AADML with ``kerasadml.distribute``, on TensorFlow or JAX.

    python examples/distributed_training.py                        # ADML on SynthPhrase tiny, every GPU (else CPU)
    python examples/distributed_training.py --model aadml --per-replica-batch 32 --epochs 10
    python examples/distributed_training.py --virtual-cpu-devices 2       # try it on a laptop: 2 CPU replicas
    KERAS_BACKEND=jax python examples/distributed_training.py --model aadml --virtual-cpu-devices 4
    python examples/distributed_training.py --mixed-precision mixed_bfloat16 --data train.csv --test test.csv
    python examples/distributed_training.py --model adml --virtual-cpu-devices 2 --epochs 1 --steps 2  # smallest

The engine follows the Keras backend (``kerasadml.distribute.data_parallel``):
TensorFlow uses ``tf.distribute.MirroredStrategy`` (``MultiWorkerMirroredStrategy`` when
``TF_CONFIG`` is set), JAX ``keras.distribution.DataParallel``. The model is built and
compiled inside ``with data_parallel() as parallel:`` and ``fit`` gets batches of
``parallel.global_batch_size(per_replica)`` rows, which the engine splits over the
replicas. The learning rate is not rescaled.

Batches. TensorFlow computes each replica's in-batch losses on its own slice of the
global batch (replica ``i`` gets the ``i``-th slice), so each slice must be
class-balanced: ADML batches hold ``keywords x clips`` rows grouped by keyword, so a
global batch of ``replicas x per-replica keywords`` keywords slices into per-replica
batches of whole keywords; AADML's global batches are ``replica_batches`` of
class-balanced per-replica batches. JAX computes the losses once over the whole global
batch, which is class-balanced too.

Several GPUs on one machine: nothing to set, every visible GPU is a replica
(``CUDA_VISIBLE_DEVICES`` chooses which); ``--per-replica-batch`` is per GPU.

Several machines, TensorFlow: set ``TF_CONFIG`` in every worker and start the same
command on each (worker 0 is the chief)::

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}' \\
        python examples/distributed_training.py --model aadml            # on host0; index 1 on host1

Several processes, JAX: set in every process (one per host, or per GPU)::

    KERAS_DISTRIBUTION_NUM_PROCESSES=2 \\
    KERAS_DISTRIBUTION_JOB_ADDRESSES=host0:1234,host1:1234 \\
    KERAS_DISTRIBUTION_PROCESS_ID=0 \\
    KERAS_BACKEND=jax python examples/distributed_training.py            # PROCESS_ID=1 on host1

(the first address is the coordinator; ``keras.distribution.initialize()`` is called
for you). In both cases every worker runs the same command with the same flags and builds
the same global batches; the engine gives each worker its slice of them, and
``--per-replica-batch`` stays per device.

Devices are fixed when TensorFlow runs its first operation and when JAX is imported:
``--virtual-cpu-devices`` therefore acts before Keras is imported (TensorFlow: logical
CPU devices; JAX: ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).
"""

from __future__ import annotations

import argparse
import math
import os
import time

MODELS = {"adml": "adml_tiny", "aadml": "aadml_avdigits"}
DEFAULT_PER_REPLICA = {"adml": 16, "aadml": 30}


def setup_devices(virtual_cpu_devices: int | None) -> None:
    """Split the CPU into ``n`` devices, for TensorFlow and for JAX: call before importing Keras."""
    if not virtual_cpu_devices:
        return
    flag = f"--xla_force_host_platform_device_count={virtual_cpu_devices}"
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform")]
    os.environ["XLA_FLAGS"] = " ".join(flags + [flag])
    import tensorflow as tf  # the data pipelines use tf.data on either backend

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * virtual_cpu_devices)
    except RuntimeError as error:  # TensorFlow already ran an operation in this process
        raise SystemExit(f"--virtual-cpu-devices: {error}") from error


def single_device_copy(model):
    """The trained weights in a model built outside any ``tf.distribute`` strategy.

    Keras' TensorFlow ``predict_on_batch`` on a model built under ``MirroredStrategy``
    runs the whole batch on every replica (the zoo models keep one copy of the output),
    so evaluating a single-device copy gives the same numbers for ``1 / replicas`` of the
    work."""
    copy = type(model).from_config(model.get_config())
    copy.build_for_preset()
    copy.set_weights(model.get_weights())
    return copy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="adml", choices=sorted(MODELS))
    parser.add_argument("--data", default=None,
                        help="ADML: training CSV(s) or a SynthPhrase folder (default: build SynthPhrase); "
                             "AADML: a VEGAS/AVE-layout HDF5 file (default: build AV-Digits)")
    parser.add_argument("--test", default=None, help="ADML: test CSV(s) (default: the SynthPhrase folder's)")
    parser.add_argument("--audio-root", default=None, help="ADML: folder the CSVs' audio paths are relative to")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small"], help="SynthPhrase size when no --data")
    parser.add_argument("--train-per-class", type=int, default=None, help="AADML: AV-Digits low-resource split")
    parser.add_argument("--preset", default=None, help="architecture (default: adml_tiny / aadml_avdigits), untrained")
    parser.add_argument("--per-replica-batch", type=int, default=None,
                        help="rows per replica and step (default: ADML 16 = 8 keywords x 2 clips, AADML 30)")
    parser.add_argument("--clips-per-keyword", type=int, default=2, help="ADML: clips of each keyword in a batch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--virtual-cpu-devices", type=int, default=None, metavar="N",
                        help="run on N CPU devices (to try data parallelism without accelerators)")
    parser.add_argument("--mixed-precision", default="none", choices=["none", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--save", action="store_true", help="write the trained model as a preset, <out>/model")
    parser.add_argument("--out", default="runs/distributed_training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    per_replica = args.per_replica_batch or DEFAULT_PER_REPLICA[args.model]
    for name in ("epochs", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.virtual_cpu_devices is not None and args.virtual_cpu_devices < 1:
        parser.error(f"--virtual-cpu-devices must be >= 1, got {args.virtual_cpu_devices}")
    if args.model == "adml":
        if args.clips_per_keyword < 2:
            parser.error(f"--clips-per-keyword must be >= 2 (each anchor needs a positive), got {args.clips_per_keyword}")
        if per_replica % args.clips_per_keyword or per_replica // args.clips_per_keyword < 2:
            parser.error(
                f"--per-replica-batch {per_replica}: an ADML replica batch is keywords x clips, with at least "
                f"2 keywords x {args.clips_per_keyword} clips; use a multiple of {args.clips_per_keyword} "
                f">= {2 * args.clips_per_keyword}"
            )
    elif per_replica < 4:
        parser.error(f"--per-replica-batch {per_replica}: an AADML replica batch needs at least 2 classes x 2 rows")

    # Devices first: before TensorFlow runs an operation and before JAX is imported (by Keras).
    setup_devices(args.virtual_cpu_devices)

    import keras

    from kerasadml.distribute import data_parallel, replica_batches
    from kerasadml.zoo.presets import preset_config

    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        parser.error(f"data parallelism needs KERAS_BACKEND=tensorflow or jax, not {backend}")
    if args.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    keras.utils.set_random_seed(args.seed)

    devices = None
    if args.virtual_cpu_devices:
        if backend == "tensorflow":
            import tensorflow as tf

            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        else:
            devices = [f"cpu:{i}" for i in range(args.virtual_cpu_devices)]
    parallel = data_parallel(devices)
    replicas = parallel.num_replicas
    global_batch = parallel.global_batch_size(per_replica)
    preset = args.preset or MODELS[args.model]
    try:
        config = preset_config(preset, args.model.upper())
    except ValueError as error:
        parser.error(f"--preset: {error}")

    # ------------------------------------------------------------------ data
    if args.model == "adml":
        from kerasadml.data.speech.libriphrase import read_libriphrase_csv, training_items
        from kerasadml.kws.training import kws_training_data, resolve_kws_csvs

        data, test = args.data, args.test
        if data is None:
            from kerasadml.data.speech.synthphrase import build_synthphrase

            data = os.path.join(args.out, f"synthphrase_{args.size}")
            build_synthphrase(data, size=args.size, seed=0, progress=False)
        if test is None and os.path.isdir(data):
            test = data
        train_csvs = resolve_kws_csvs(data, "train")
        test_csvs = resolve_kws_csvs(test, "test") if test else []
        num_keywords = training_items(read_libriphrase_csv(train_csvs), audio_root=args.audio_root).num_classes
        keywords = (per_replica // args.clips_per_keyword) * replicas
        if keywords > num_keywords:
            parser.error(
                f"{replicas} replicas x {per_replica // args.clips_per_keyword} keywords per replica = {keywords} "
                f"keywords per batch, but the training data have {num_keywords}: use a smaller --per-replica-batch "
                "or more data (e.g. --size small)"
            )
        from kerasadml.data.speech.phonemizer import PhonemeVocabulary, Phonemizer

        keep_stress = bool(config.get("keep_stress", False))
        vocabulary, phonemizer = PhonemeVocabulary(keep_stress=keep_stress), Phonemizer(keep_stress=keep_stress)
        # Rows are grouped by keyword: replica i's slice holds whole keywords (class-balanced).
        # One audio length (2 s, longer clips cropped): one batch shape, one compilation.
        dataset, _, items = kws_training_data(
            train_csvs,
            lambda text: vocabulary.encode(phonemizer.phonemize(text)),
            audio_root=args.audio_root,
            keywords_per_batch=keywords,
            clips_per_keyword=args.clips_per_keyword,
            seed=args.seed,
            audio_buckets=(32000,),
        )
        batch_text = (
            f"per-replica batch {per_replica} ({per_replica // args.clips_per_keyword} keywords x "
            f"{args.clips_per_keyword} clips), global batch {global_batch} ({keywords} keywords)"
        )
        data_text = f"{len(items)} clips of {items.num_classes} keywords from {', '.join(train_csvs)}"
    else:
        from kerasadml.data.av.dataset import make_av_dataset
        from kerasadml.data.av.features import load_av_hdf5

        data = args.data
        if data is None:
            from kerasadml.data.av.digits import build_av_digits

            per_class = "all" if args.train_per_class is None else args.train_per_class
            data = os.path.join(args.out, f"avdigits_{per_class}.h5")
            if not os.path.exists(data):
                build_av_digits(data, train_per_class=args.train_per_class, seed=0, progress=False)
        av = load_av_hdf5(data)
        try:
            per_replica_ds = make_av_dataset(av.train, batch_size=per_replica, seed=args.seed)
        except ValueError as error:
            parser.error(f"--per-replica-batch {per_replica}: {error}")
        dataset = replica_batches(per_replica_ds, replicas)
        config.update(audio_dim=av.audio_dim, visual_dim=av.visual_dim, num_classes=av.num_classes)
        batch_text = f"per-replica batch {per_replica} (class-balanced), global batch {global_batch}"
        data_text = f"{len(av.train)} training / {len(av.test)} test pairs, {av.num_classes} classes, from {data}"

    print(f"backend {backend}, engine {parallel.engine}, replicas: {replicas}")
    print(f"data: {data_text}")
    print(batch_text)
    print(f"model {args.model} ({preset} architecture, untrained), dtype policy {keras.mixed_precision.global_policy().name}")

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            parts = "  ".join(f"{k} {float(v):.4f}" for k, v in logs.items() if k != "loss")
            print(f"epoch {epoch + 1}/{args.epochs}: loss {float(logs['loss']):.4f}  ({parts})  "
                  f"{time.time() - self.start:.1f} s", flush=True)

    # --------------------------------------------------- build, compile, fit
    with parallel:
        if args.model == "adml":
            from kerasadml.zoo import ADML

            config["num_keywords"] = num_keywords
            model = ADML(**config)
            model.build()
        else:
            from kerasadml.zoo import AADML

            model = AADML(**config)
            model.adapt(av.train)
            model.build()
        model.compile(optimizer="auto")
        history = model.fit(dataset, epochs=args.epochs, steps_per_epoch=args.steps, verbose=0,
                            shuffle=False, callbacks=[EpochLog()])
    losses = [float(v) for v in history.history["loss"]]
    if not all(math.isfinite(v) for v in losses):
        print(f"training diverged: losses {losses}")
        return 1

    # ------------------------------------------------------------ evaluation
    if parallel.strategy is not None:  # TensorFlow: evaluate (and save) a single-device copy
        model = single_device_copy(model)
    if args.model == "adml":
        if test_csvs:
            from kerasadml.kws.evaluation import evaluate_libriphrase, format_table

            result = evaluate_libriphrase(model, test_csvs, audio_root=args.audio_root, progress=False)
            print(format_table(result, title=f"test: {', '.join(test_csvs)}"))
        else:
            print("no --test CSV: evaluation skipped")
    else:
        from kerasadml.retrieval.evaluation import format_table as format_retrieval_table

        report = model.evaluate(av.test)
        print(format_retrieval_table(report, title=f"test retrieval ({len(av.test)} pairs)"))
    if args.save:
        folder = model.save_to_preset(
            os.path.join(args.out, "model"),
            info={"training": {"engine": parallel.engine, "replicas": replicas, "per_replica_batch": per_replica,
                               "global_batch": global_batch, "epochs": args.epochs, "steps_per_epoch": args.steps,
                               "mixed_precision": args.mixed_precision, "losses": losses}},
        )
        print(f"model preset written to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
