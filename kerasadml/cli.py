"""The ``kerasadml`` command: demo, synth, synth-av, train, evaluate, detect, presets.

Errors a user can cause (a bad flag, a missing or malformed file, a model of the wrong
kind, an output that cannot be written, a full disk) end with one line
``kerasadml COMMAND: error: ...`` naming the thing at fault and exit status 2 (bad input)
or 1 (the system: disk full, read-only folder); Ctrl-C exits with 130 (``train``,
``synth`` and ``demo`` resume when the same command is run again). Anything else is a bug:
one line too, and ``KERASADML_DEBUG=1`` shows its traceback.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

#: Exit statuses.
EXIT_BAD_INPUT = 2
EXIT_SYSTEM = 1
EXIT_INTERRUPTED = 130
DEBUG_ENV = "KERASADML_DEBUG"

def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide TensorFlow's C++ start-up noise (CUDA probes)


def _write_json(path: str | os.PathLike, payload: dict) -> None:
    from kerasadml.atomic import atomic_write_json

    atomic_write_json(path, payload, sort_keys=True, default=float)


def _is_h5(path: str) -> bool:
    return str(path).lower().endswith((".h5", ".hdf5"))


# ---------------------------------------------------------------- flag types
def _int_flag(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum] (a clean usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _float_flag(minimum: float, maximum: float):
    """An argparse type: a finite number in [minimum, maximum] (no NaN, no infinity)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be a number between {minimum} and {maximum}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


_POSITIVE = _int_flag(1)
_SEED = _int_flag(0, 2**32 - 1)


# ---------------------------------------------------------------- checks before long work
def _probe_writable(folder: Path, flag: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".kerasadml-write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OSError(error.errno, f"{flag} {folder} is not writable ({error.strerror or error})") from None


def _check_free_space(folder: Path, flag: str, need_bytes: int) -> None:
    if need_bytes <= 0:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need_bytes:
        raise OSError(
            errno.ENOSPC,
            f"{flag} {folder}: only {free / 1e6:.0f} MB free, about {need_bytes / 1e6:.0f} MB needed; "
            "free some space or choose another location",
        )


def _check_output_dir(path: str, flag: str = "--out", need_bytes: int = 0) -> Path:
    """``path`` is (or can be made) a writable folder with ``need_bytes`` free."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {folder} exists and is not a folder; give a folder (new or existing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"{flag} {folder}: a part of this path is a file, not a folder") from None
    except NotADirectoryError:
        raise ValueError(f"{flag} {folder}: a part of this path is a file, not a folder") from None
    except OSError as error:
        raise OSError(error.errno, f"{flag} {folder} cannot be created ({error.strerror or error})") from None
    _probe_writable(folder, flag)
    _check_free_space(folder, flag, need_bytes)
    return folder


def _check_output_file(path: str, flag: str, need_bytes: int = 0) -> Path:
    """``path`` is a file that can be written (not a folder; its folder writable)."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{flag} {target} is a folder; give a file name")
    _check_output_dir(str(target.parent) if str(target.parent) else ".", f"the folder of {flag}", need_bytes)
    return target


def _check_input_dir(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_dir():
        raise FileNotFoundError(f"{flag} {path}: no such folder")


def _check_csv_text(paths) -> None:
    """Every CSV is UTF-8 text that the csv module can split: errors name the file and line."""
    for path in paths:
        raw = Path(path).read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
            raise ValueError(
                f"{path}, line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column {column}); "
                "save the file as UTF-8"
            ) from None
        reader = csv.reader(text.splitlines(keepends=True))
        try:
            for _ in reader:
                pass
        except csv.Error as error:
            raise ValueError(f"{path}, line {reader.line_num}: not a valid CSV row ({error})") from None


# ---------------------------------------------------------------- models
_KIND_OF = {
    "ADML": "an ADML keyword spotter",
    "AADML": "an AADML audio-visual retrieval model",
}


def _preset_class(spec: str) -> str:
    """The zoo class ("ADML"/"AADML") of a catalogue preset or preset folder."""
    from kerasadml.zoo.presets import CONFIG_FILE, PRESETS, PresetError, read_preset_config, resolve_preset

    if spec in PRESETS:
        return PRESETS[spec]["class"]
    class_name = read_preset_config(spec)["class_name"]
    if class_name not in _KIND_OF:
        raise PresetError(
            f"{resolve_preset(spec) / CONFIG_FILE} describes a {class_name}, not a kerasadml model (ADML or AADML)"
        )
    return class_name


def _load_keras_file(spec: str):
    import zipfile

    import keras

    from kerasadml.zoo import AADML, ADML

    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {spec}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{spec} is not a valid .keras file (not a zip archive)")
    try:
        model = keras.saving.load_model(spec, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{spec}: cannot load this .keras file ({type(error).__name__}: {error})") from None
    if not isinstance(model, (ADML, AADML)):
        raise ValueError(f"{spec} holds a {type(model).__name__}, not a kerasadml model (ADML or AADML)")
    return model


def _load_model(spec: str, wanted: str | None = None, reason: str = ""):
    """A preset name, a preset folder or a ``.keras`` file -> model; with ``wanted``
    ("ADML"/"AADML"), a model of another kind is an error (checked before loading a preset)."""
    from kerasadml.zoo import AADML, ADML

    if str(spec).endswith(".keras"):
        model = _load_keras_file(spec)
        if wanted:
            _require(_model_class(model), wanted, spec, reason)
        return model
    class_name = _preset_class(spec)
    if wanted:
        _require(class_name, wanted, spec, reason)
    return (ADML if class_name == "ADML" else AADML).from_preset(spec)


def _model_class(model) -> str:
    from kerasadml.zoo import ADML

    return "ADML" if isinstance(model, ADML) else "AADML"


def _require(class_name: str, wanted: str, spec: str, reason: str) -> None:
    if class_name != wanted:
        raise ValueError(f"{spec} is {_KIND_OF[class_name]}; {reason} needs {_KIND_OF[wanted]}")


# ---------------------------------------------------------------- commands
def cmd_presets(args) -> int:
    from kerasadml.zoo.presets import list_presets

    for name, description in list_presets().items():
        print(f"{name:<16} {description}")
    return 0


#: Rough disk needs, checked before a build starts (a 16-bit clip of ~1.2 s is ~40 kB).
_SYNTH_BYTES = {"tiny": 96 * 40_000, "small": 3_000 * 40_000, "medium": 12_000 * 40_000, "large": 36_000 * 40_000}
_TRAIN_BYTES = 16_000_000


def _synth_need(out: Path, size: str) -> int:
    existing = sum(p.stat().st_size for split in ("train", "test") for p in (out / split).glob("*.wav"))
    return max(0, _SYNTH_BYTES.get(size, 0) - existing)


def cmd_synth(args) -> int:
    from kerasadml.data.speech.synthphrase import build_synthphrase

    out = _check_output_dir(args.out)
    _check_free_space(out, "--out", _synth_need(out, args.size))
    summary = build_synthphrase(out, size=args.size, seed=args.seed, progress=not args.quiet)
    print(json.dumps(summary, indent=2, default=float))
    return 0


def cmd_synth_av(args) -> int:
    from kerasadml.data.av.digits import build_av_digits

    _check_output_file(args.out, "--out", need_bytes=_TRAIN_BYTES)
    summary = build_av_digits(
        args.out, train_per_class=args.train_per_class, seed=args.seed, progress=not args.quiet
    )
    print(json.dumps(summary, indent=2, default=float))
    return 0


def _check_preset_target(folder: Path) -> None:
    """``OUT/model`` can receive a preset (checked before training, not after)."""
    from kerasadml.zoo.presets import CONFIG_FILE

    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} exists and is not a folder: the trained model cannot be saved there")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG_FILE).is_file():
        raise ValueError(f"{folder} is a non-empty folder that is not a preset: the trained model would replace it")


def cmd_train(args) -> int:
    from kerasadml.kws.training import resolve_kws_csvs

    class_name = _preset_class(args.preset)
    h5 = _is_h5(args.data)
    if class_name == "ADML" and h5:
        raise ValueError(
            f"--preset {args.preset} is {_KIND_OF['ADML']}; --data {args.data} is audio-visual features "
            "(train an AADML preset on it, e.g. aadml_avdigits)"
        )
    if class_name == "AADML" and not h5:
        raise ValueError(
            f"--preset {args.preset} is {_KIND_OF['AADML']}; it trains on an .h5 feature file, "
            f"not on {args.data} (keyword-spotting data: train an ADML preset on it, e.g. adml_tiny)"
        )
    misplaced = (
        ["--batch-size"] * (args.batch_size is not None)
        if class_name == "ADML"
        else [
            flag for flag, value in (
                ("--keywords-per-batch", args.keywords_per_batch),
                ("--clips-per-keyword", args.clips_per_keyword),
                ("--audio-root", args.audio_root),
                ("--augment", args.augment or None),
                ("--learning-rate", args.learning_rate),
            ) if value is not None
        ]
    )
    if misplaced:
        raise ValueError(f"{', '.join(misplaced)} does not apply to {_KIND_OF[class_name]} (--preset {args.preset})")
    if not h5:
        _check_input_dir(args.audio_root, "--audio-root")
        _check_csv_text(resolve_kws_csvs(args.data, "train"))
    elif not Path(args.data).is_file():
        raise FileNotFoundError(f"--data {args.data}: no such feature file")
    out = _check_output_dir(args.out, need_bytes=_TRAIN_BYTES)
    _check_preset_target(out / "model")
    backup = out / "backup"
    if args.fresh and backup.exists():
        shutil.rmtree(backup)
        logging.getLogger(__name__).warning("--fresh: deleted the previous run's backup %s", backup)
    if class_name == "AADML":
        from kerasadml.retrieval.training import train_aadml_from_h5

        model, report = train_aadml_from_h5(
            args.preset,
            args.data,
            out_dir=out,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            batch_size=args.batch_size,
            seed=args.seed,
            init_weights=args.init_weights,
        )
        print(json.dumps(report, indent=2, default=float))
        return 0
    from kerasadml.kws.training import train_adml_from_csv

    model, report = train_adml_from_csv(
        args.preset,
        args.data,
        out_dir=out,
        audio_root=args.audio_root,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        keywords_per_batch=args.keywords_per_batch,
        clips_per_keyword=args.clips_per_keyword,
        seed=args.seed,
        init_weights=args.init_weights,
        recipe=args.recipe,
        recipe_overrides={"family_size": args.family_size, "learning_rate": args.learning_rate},
        allow_outside_root=args.allow_outside_root,
        augment=args.augment,
    )
    print(json.dumps(report, indent=2, default=float))
    return 0


def cmd_evaluate(args) -> int:
    if not str(args.model).endswith(".keras"):
        _preset_class(args.model)  # an unknown preset or a bad config.json first (cheap)
    if args.json:
        _check_output_file(args.json, "--json")
    h5 = _is_h5(args.data)
    if not h5:
        from kerasadml.kws.training import resolve_kws_csvs

        _check_input_dir(args.audio_root, "--audio-root")
        csvs = resolve_kws_csvs(args.data, split="test")
        _check_csv_text(csvs)
    if h5:
        model = _load_model(args.model, "AADML", f"--data {args.data} (audio-visual features)")
        from kerasadml.data.av.features import load_av_hdf5
        from kerasadml.retrieval.evaluation import format_table as format_retrieval_table

        dataset = load_av_hdf5(args.data, audio_dim=model.audio_dim, visual_dim=model.visual_dim)
        result = model.evaluate(dataset.test)
        print(format_retrieval_table(result))
    else:
        model = _load_model(args.model, "ADML", f"--data {args.data} (keyword-spotting CSVs)")
        from kerasadml.kws.evaluation import evaluate_libriphrase, format_table

        result = evaluate_libriphrase(
            model,
            csvs,
            audio_root=args.audio_root,
            progress=not args.quiet,
            allow_outside_root=args.allow_outside_root,
        )
        print(format_table(result, title=f"{args.model} on {', '.join(csvs)}"))
    if args.json:
        _write_json(args.json, result)
    return 0


def _split_model_and_audio(items: list[str]) -> tuple[str, list[str]]:
    """``[MODEL] AUDIO...``: the first item is the model when it names a preset, a preset
    folder or a ``.keras`` file (and is not an audio file); otherwise the default preset."""
    from kerasadml.zoo.presets import DEFAULT_KWS_PRESET, PRESETS

    first = items[0]
    path = Path(first)
    is_model = first in PRESETS or first.endswith(".keras") or (path.is_dir() and (path / "config.json").is_file())
    if (is_model and not path.is_file()) or first.endswith(".keras"):
        if len(items) < 2:
            raise ValueError(f"detect: no audio files after the model {first!r}")
        return first, items[1:]
    return DEFAULT_KWS_PRESET, items


def cmd_detect(args) -> int:
    from kerasadml.data.audio_io import AudioError, load_audio

    keywords = [k.strip() for k in args.keywords.split(",") if k.strip()]
    if not keywords:
        raise ValueError("--keywords is empty; give comma-separated keywords, e.g. \"turn on,stop\"")
    model_name, audio = _split_model_and_audio(args.audio)
    args.audio = audio
    model = _load_model(model_name, "ADML", "detect")
    detector = model.keyword_detector(keywords, threshold=args.threshold)
    status = 0
    for path in args.audio:
        try:
            wave = load_audio(path)
        except AudioError as error:
            print(f"{path}: ERROR {error}", file=sys.stderr)
            status = 1
            continue
        result = detector.detect([wave])[0]
        scores = ", ".join(f"{k}={s:.3f}" for k, s in result["scores"].items())
        detected = ", ".join(result["detected"]) or "-"
        print(f"{path}: detected [{detected}]  scores: {scores}")
    return status


def cmd_demo(args) -> int:
    from kerasadml.kws.demo import run_demo

    out = _check_output_dir(args.out, need_bytes=_SYNTH_BYTES.get(args.size, 0) + _TRAIN_BYTES)
    run_demo(
        out_dir=out,
        size=args.size,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        seed=args.seed,
        progress=not args.quiet,
        shipped=not args.no_shipped,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasadml", description="Cross-modal deep metric learning: ADML keyword spotting, AADML retrieval."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build SynthPhrase, train adml_tiny, evaluate, plot (minutes on a CPU)")
    p.add_argument("--out", default="kerasadml_demo", help="output folder (data, model, plots, results.json)")
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium", "large"], help="SynthPhrase size")
    p.add_argument("--epochs", type=_POSITIVE, default=None, help="training epochs (default: the preset recipe)")
    p.add_argument("--steps-per-epoch", type=_POSITIVE, default=None)
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-shipped", action="store_true",
                   help="do not also score the shipped trained preset on the same test pairs")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="build a SynthPhrase dataset (LibriPhrase format)")
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium", "large"])
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("synth-av", help="build the AV-Digits dataset (VEGAS HDF5 layout)")
    p.add_argument("--out", required=True, help="the .h5 file to write")
    p.add_argument(
        "--train-per-class", type=_POSITIVE, default=None, help="low-resource split: training pairs per class"
    )
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth_av)

    p = sub.add_parser("train", help="train a preset on LibriPhrase-format CSVs or an AV HDF5 file")
    p.add_argument("--preset", required=True, help="preset name or folder (see `kerasadml presets`)")
    p.add_argument("--data", required=True, help="SynthPhrase folder, CSV(s) (comma-separated) or .h5 file")
    p.add_argument("--out", required=True, help="output folder (the trained preset goes to OUT/model)")
    p.add_argument("--audio-root", default=None, help="folder the CSV audio paths are relative to")
    p.add_argument("--epochs", type=_POSITIVE, default=None)
    p.add_argument("--steps-per-epoch", type=_POSITIVE, default=None)
    p.add_argument("--keywords-per-batch", type=_POSITIVE, default=None)
    p.add_argument("--clips-per-keyword", type=_POSITIVE, default=None)
    p.add_argument("--batch-size", type=_int_flag(4), default=None, help="AADML batch size (>= 4)")
    p.add_argument(
        "--recipe", choices=["default", "paper"], default="default",
        help="ADML recipe: the package's default, or the paper's configuration (docs/methods.md §1.10)",
    )
    p.add_argument("--family-size", type=_POSITIVE, default=None,
                   help="ADML: keywords per family in a batch (a keyword and its hard negatives)")
    p.add_argument("--init-weights", action="store_true", help="start from the preset's weights")
    p.add_argument("--learning-rate", type=_float_flag(1e-8, 1.0), default=None,
                   help="ADML: peak learning rate of the recipe (default recipe: 2e-3; e.g. 1e-3 to fine-tune "
                   "with --init-weights)")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="ADML: read CSV rows whose audio is absolute or outside --audio-root (refused by default)")
    p.add_argument("--augment", action="store_true",
                   help="ADML: augment the training clips on the fly (rooms, noise, telephone band, speed, "
                   "formants; for corpora that are not augmented already, e.g. LibriPhrase)")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument(
        "--fresh", action="store_true",
        help="delete OUT/backup first (an interrupted run otherwise resumes from it)",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model (LP_E/LP_H, or retrieval MAP)")
    p.add_argument("model", help="preset name, preset folder or .keras file")
    p.add_argument("--data", required=True, help="LibriPhrase-format CSV(s)/SynthPhrase folder, or .h5")
    p.add_argument("--audio-root", default=None)
    p.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="with --audio-root, also read CSV rows whose audio path is absolute or leaves the root "
        "with '..' (refused by default)",
    )
    p.add_argument("--json", default=None, help="also write the result as JSON")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "detect", help="detect enrolled keywords in audio files",
        description="kerasadml detect [MODEL] --keywords K1,K2 AUDIO...: MODEL (a preset name, preset folder "
        "or .keras file) may be left out; the default is the best shipped keyword spotter.",
    )
    p.add_argument("audio", nargs="+", metavar="[MODEL] AUDIO",
                   help="optional model (preset name, preset folder or .keras file), then audio files")
    p.add_argument("--keywords", required=True, help='comma-separated keywords, e.g. "turn on,stop"')
    p.add_argument("--threshold", type=_float_flag(-1.0, 1.0), default=0.5, help="cosine score threshold, -1..1")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("presets", help="list the preset catalogue")
    p.set_defaults(func=cmd_presets)
    return parser


# ---------------------------------------------------------------- errors
_RESUMABLE = {"train", "synth", "demo"}
_OS_HINTS = {
    errno.ENOSPC: "free some space",
    errno.EROFS: "choose a writable location",
    errno.EACCES: "check the permissions or choose another location",
    errno.EPERM: "check the permissions or choose another location",
    errno.EFBIG: "the file size limit was reached",
    getattr(errno, "EDQUOT", -1): "the disk quota is exhausted",
}


def _describe_os_error(error: OSError) -> str:
    if error.strerror and error.filename is None and error.errno is not None and len(error.args) == 2:
        text = error.strerror  # our own messages: OSError(errno, "what failed; what to do")
    elif error.strerror:
        names = " -> ".join(str(n) for n in (error.filename, error.filename2) if n is not None)
        text = f"{error.strerror}: {names}" if names else error.strerror
    else:
        text = str(error) or type(error).__name__
    hint = _OS_HINTS.get(error.errno)
    if hint and "run the same command again" not in text and hint not in text:
        text = f"{text} ({hint})"
    return text


def _classify(error: BaseException) -> tuple[int, str]:
    """(exit status, one-line message) of an error a user can cause, else (0, "")."""
    from kerasadml.data.espeak import ESpeakError

    if isinstance(error, (FileNotFoundError, NotADirectoryError, IsADirectoryError)) and not error.strerror:
        return EXIT_BAD_INPUT, str(error)
    if isinstance(error, FileNotFoundError):
        return EXIT_BAD_INPUT, _describe_os_error(error)
    if isinstance(error, OSError):
        return EXIT_SYSTEM, _describe_os_error(error)
    if isinstance(error, (ValueError, csv.Error)):
        return EXIT_BAD_INPUT, str(error)
    if isinstance(error, ESpeakError):
        return EXIT_SYSTEM, str(error)
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        first = (str(error).strip().splitlines() or [""])[0][:200]
        return EXIT_SYSTEM, f"out of memory ({first}); use a smaller batch"
    return 0, ""


def _options_first(argv: list[str]) -> list[str]:
    """``detect [MODEL] AUDIO... --keywords K`` and ``detect MODEL --keywords K AUDIO...`` both
    parse: argparse cannot split one variable-length positional around options, so the
    options of ``detect`` are moved in front of its positionals."""
    head = 0
    while head < len(argv) and argv[head].startswith("-"):
        head += 1
    if head >= len(argv) or argv[head] != "detect":
        return argv
    options, positionals, rest = [], [], list(argv[head + 1 :])
    while rest:
        token = rest.pop(0)
        if token == "--":
            positionals.extend(rest)
            break
        if token.startswith("-") and len(token) > 1 and not _is_number(token):
            options.append(token)
            if "=" not in token and token not in ("-h", "--help") and rest:
                options.append(rest.pop(0))
        else:
            positionals.append(token)
    return [*argv[:head], "detect", *options, *positionals]


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(_options_first(list(sys.argv[1:] if argv is None else argv)))
    except SystemExit as exit_:  # usage errors (printed by argparse) and --help
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else EXIT_BAD_INPUT)
    _setup_logging(args.verbose)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    start = time.time()
    prefix = f"kerasadml {args.command}"
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        hint = "; resume with the same command" if args.command in _RESUMABLE else ""
        print(f"\n{prefix}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001
        if debug:
            raise
        code, message = _classify(error)
        if code:
            print(f"{prefix}: error: {message}", file=sys.stderr)
            return code
        print(
            f"{prefix}: internal error: {type(error).__name__}: {error}\n"
            f"This is a bug in kerasadml; run again with {DEBUG_ENV}=1 to see the traceback and report it.",
            file=sys.stderr,
        )
        return EXIT_SYSTEM
    logging.getLogger(__name__).info("%s finished in %.1f s", args.command, time.time() - start)
    return status


if __name__ == "__main__":
    sys.exit(main())
