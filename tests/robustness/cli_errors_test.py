"""The `kerasadml` command on bad input (issue 13): every case ends with a clean error
naming the thing at fault (exit 2 for bad input, 1 for the system, 130 for Ctrl-C) and no
traceback. In process, with ``main([...])``; nothing here trains or builds a data set."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

import kerasadml.cli as cli
from kerasadml.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
H5 = str(FIXTURES / "av" / "layout_a.h5")
CSVS = sorted(str(p) for p in (FIXTURES / "libriphrase").glob("*.csv"))
CSV = CSVS[0]
A_WAV = str(next((FIXTURES / "libriphrase" / "wav").rglob("*.wav")))


# ------------------------------------------------------------------ set-ups: tmp -> files
def _a_file(tmp):
    (tmp / "afile").write_text("not a folder")


def _latin1_csv(tmp):
    lines = Path(CSV).read_text(encoding="utf-8").splitlines(True)
    lines[2] = lines[2].replace(",", ",caf\xe9 ", 1)
    (tmp / "latin1.csv").write_bytes("".join(lines).encode("latin-1"))


def _huge_field_csv(tmp):
    text = Path(CSV).read_text(encoding="utf-8").splitlines(True)
    text[1] = "x" * 140_000 + text[1]
    (tmp / "huge.csv").write_text("".join(text), encoding="utf-8")


def _synth_dir(tmp):
    (tmp / "synth").mkdir()
    for split in ("train", "test"):
        shutil.copy(CSV, tmp / "synth" / f"synthphrase_{split}.csv")


def _random_keras(tmp):
    (tmp / "random.keras").write_bytes(bytes(range(256)) * 40)


def _sequential_keras(tmp):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(tmp / "plain.keras")


def _config(content):
    def make(tmp):
        (tmp / "preset").mkdir()
        (tmp / "preset" / "config.json").write_text(content)

    return make


def _empty_preset_dir(tmp):
    (tmp / "preset").mkdir()


def _model_is_a_file(tmp):
    (tmp / "run").mkdir()
    (tmp / "run" / "model").write_text("not a preset")


# id, argv ({tmp}, {h5}, {csv}, {csvs}, {wav} substituted), set-up, exit status, texts in stderr
CASES = [
    # numeric flags of every subcommand
    ("train --epochs 0", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--epochs", "0"], None, 2, ["--epochs", ">= 1"]),
    ("train --epochs -1", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--epochs", "-1"], None, 2, ["--epochs"]),
    ("train --epochs 1.5", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--epochs", "1.5"], None, 2, ["--epochs", "integer"]),
    ("train --steps-per-epoch 0", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--steps-per-epoch", "0"], None, 2, ["--steps-per-epoch"]),
    ("train --keywords-per-batch 0", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--keywords-per-batch", "0"], None, 2, ["--keywords-per-batch"]),
    ("train --clips-per-keyword -2", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--clips-per-keyword", "-2"], None, 2, ["--clips-per-keyword"]),
    ("train --batch-size 2", ["train", "--preset", "aadml_avdigits", "--data", "{h5}", "--out", "{tmp}/r", "--batch-size", "2"], None, 2, ["--batch-size", ">= 4"]),
    ("train --seed -1", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--seed", "-1"], None, 2, ["--seed"]),
    ("train --seed 2**32", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--seed", "4294967296"], None, 2, ["--seed"]),
    ("demo --epochs 0", ["demo", "--out", "{tmp}/d", "--epochs", "0"], None, 2, ["--epochs"]),
    ("demo --steps-per-epoch -3", ["demo", "--out", "{tmp}/d", "--steps-per-epoch", "-3"], None, 2, ["--steps-per-epoch"]),
    ("demo --size huge", ["demo", "--out", "{tmp}/d", "--size", "huge"], None, 2, ["--size", "huge"]),
    ("demo --seed x", ["demo", "--out", "{tmp}/d", "--seed", "x"], None, 2, ["--seed"]),
    ("synth --seed -5", ["synth", "--out", "{tmp}/s", "--seed", "-5"], None, 2, ["--seed"]),
    ("synth --size huge", ["synth", "--out", "{tmp}/s", "--size", "huge"], None, 2, ["--size"]),
    ("synth-av --train-per-class 0", ["synth-av", "--out", "{tmp}/a.h5", "--train-per-class", "0"], None, 2, ["--train-per-class"]),
    ("detect --threshold nan", ["detect", "adml_tiny", "--keywords", "stop", "--threshold", "nan", "{wav}"], None, 2, ["--threshold"]),
    ("detect --threshold inf", ["detect", "adml_tiny", "--keywords", "stop", "--threshold", "inf", "{wav}"], None, 2, ["--threshold"]),
    ("detect --threshold 2", ["detect", "adml_tiny", "--keywords", "stop", "--threshold", "2", "{wav}"], None, 2, ["--threshold"]),
    ("detect --keywords empty", ["detect", "adml_tiny", "--keywords", " , ", "{wav}"], None, 2, ["--keywords is empty"]),
    ("unknown flag", ["presets", "--bogus"], None, 2, ["--bogus"]),
    # outputs of the wrong kind, checked before any work
    ("train --out is a file", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/afile"], _a_file, 2, ["{tmp}/afile", "not a folder"]),
    ("train --out below a file", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/afile/run"], _a_file, 2, ["{tmp}/afile/run", "is a file"]),
    ("train OUT/model is a file", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/run"], _model_is_a_file, 2, ["{tmp}/run/model", "not a folder"]),
    ("synth --out is a file", ["synth", "--out", "{tmp}/afile", "--size", "tiny"], _a_file, 2, ["{tmp}/afile", "not a folder"]),
    ("synth-av --out is a folder", ["synth-av", "--out", "{tmp}"], None, 2, ["--out {tmp}", "is a folder"]),
    ("demo --out is a file", ["demo", "--out", "{tmp}/afile"], _a_file, 2, ["{tmp}/afile"]),
    ("evaluate --json is a folder", ["evaluate", "adml_tiny", "--data", "{csv}", "--json", "{tmp}"], None, 2, ["--json {tmp}", "is a folder"]),
    # inputs: missing, malformed, of the wrong kind
    ("evaluate missing CSV", ["evaluate", "adml_tiny", "--data", "{tmp}/nope.csv"], None, 2, ["{tmp}/nope.csv"]),
    ("evaluate folder without CSV", ["evaluate", "adml_tiny", "--data", "{tmp}"], None, 2, ["synthphrase_test.csv"]),
    ("evaluate latin-1 CSV", ["evaluate", "adml_tiny", "--data", "{tmp}/latin1.csv"], _latin1_csv, 2, ["{tmp}/latin1.csv, line 3", "UTF-8"]),
    ("evaluate CSV field over 131,072 chars", ["evaluate", "adml_tiny", "--data", "{tmp}/huge.csv"], _huge_field_csv, 2, ["{tmp}/huge.csv, line 2", "field limit"]),
    ("train latin-1 CSV", ["train", "--preset", "adml_tiny", "--data", "{tmp}/latin1.csv", "--out", "{tmp}/r"], _latin1_csv, 2, ["{tmp}/latin1.csv, line 3"]),
    ("evaluate --audio-root missing", ["evaluate", "adml_tiny", "--data", "{csv}", "--audio-root", "{tmp}/nowhere"], None, 2, ["--audio-root {tmp}/nowhere"]),
    ("evaluate ADML on AV features", ["evaluate", "adml_tiny", "--data", "{h5}"], None, 2, ["adml_tiny is an ADML", "needs an AADML"]),
    ("evaluate AADML on keyword data", ["evaluate", "aadml_avdigits", "--data", "{tmp}/synth"], _synth_dir, 2, ["aadml_avdigits is an AADML", "needs an ADML"]),
    ("detect with an AADML", ["detect", "aadml_avdigits", "--keywords", "stop", "{wav}"], None, 2, ["aadml_avdigits is an AADML", "detect needs an ADML"]),
    ("train ADML preset on AV features", ["train", "--preset", "adml_tiny", "--data", "{h5}", "--out", "{tmp}/r"], None, 2, ["--preset adml_tiny", "audio-visual"]),
    ("train AADML preset on keyword data", ["train", "--preset", "aadml_avdigits", "--data", "{tmp}/synth", "--out", "{tmp}/r"], _synth_dir, 2, ["--preset aadml_avdigits", "{tmp}/synth"]),
    ("train AADML with --keywords-per-batch", ["train", "--preset", "aadml_avdigits", "--data", "{h5}", "--out", "{tmp}/r", "--keywords-per-batch", "4"], None, 2, ["--keywords-per-batch does not apply"]),
    ("train ADML with --batch-size", ["train", "--preset", "adml_tiny", "--data", "{csv}", "--out", "{tmp}/r", "--batch-size", "8"], None, 2, ["--batch-size does not apply"]),
    ("train missing .h5", ["train", "--preset", "aadml_avdigits", "--data", "{tmp}/none.h5", "--out", "{tmp}/r"], None, 2, ["{tmp}/none.h5"]),
    ("train unknown preset", ["train", "--preset", "no_such", "--data", "{csv}", "--out", "{tmp}/r"], None, 2, ["no_such", "known presets"]),
    ("evaluate .keras of random bytes", ["evaluate", "{tmp}/random.keras", "--data", "{csv}"], _random_keras, 2, ["{tmp}/random.keras is not a valid .keras file"]),
    ("evaluate missing .keras", ["evaluate", "{tmp}/missing.keras", "--data", "{csv}"], None, 2, ["no such model file", "{tmp}/missing.keras"]),
    ("detect plain Keras model", ["detect", "{tmp}/plain.keras", "--keywords", "stop", "{wav}"], _sequential_keras, 2, ["{tmp}/plain.keras holds a Sequential", "not a kerasadml model"]),
    ("config.json with only class_name", ["evaluate", "{tmp}/preset", "--data", "{csv}"], _config('{"class_name": "ADML"}'), 2, ["{tmp}/preset/config.json", "'config'"]),
    ("config.json not JSON", ["evaluate", "{tmp}/preset", "--data", "{csv}"], _config("{oops"), 2, ["{tmp}/preset/config.json"]),
    ("config.json of another class", ["detect", "{tmp}/preset", "--keywords", "a", "{wav}"], _config('{"class_name": "Dense", "config": {}}'), 2, ["{tmp}/preset/config.json", "Dense", "not a kerasadml model"]),
    ("preset folder without config.json", ["evaluate", "{tmp}/preset", "--data", "{csv}"], _empty_preset_dir, 2, ["{tmp}/preset", "config.json"]),
]


def _fill(value: str, tmp: Path) -> str:
    return value.format(tmp=tmp, h5=H5, csv=CSV, csvs=",".join(CSVS), wav=A_WAV)


@pytest.mark.parametrize("name, argv, setup, status, texts", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clean_error(tmp_path, capsys, name, argv, setup, status, texts):
    if setup is not None:
        setup(tmp_path)
    assert main([_fill(a, tmp_path) for a in argv]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in texts:
        assert _fill(text, tmp_path) in err, err
    assert err.rstrip().splitlines()[-1].startswith(("kerasadml", "usage")), err  # the error is the last line


# ------------------------------------------------------------------ the system, interrupts, bugs
def _read_only(monkeypatch, tmp):
    import tempfile

    def mkstemp(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return ["synth", "--out", f"{tmp}/s", "--size", "tiny"]


def _nearly_full(monkeypatch, tmp):
    import collections

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    return ["synth", "--out", f"{tmp}/s", "--size", "small"]


def _disk_fills_during_synth(monkeypatch, tmp):
    import kerasadml.data.speech.synthphrase as synthphrase

    def build(out, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", f"{out}/train/x.wav")

    monkeypatch.setattr(synthphrase, "build_synthphrase", build)
    return ["synth", "--out", f"{tmp}/s", "--size", "tiny"]


def _ctrl_c_in_train(monkeypatch, tmp):
    import kerasadml.retrieval.training as training

    def train(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_aadml_from_h5", train)
    return ["train", "--preset", "aadml_avdigits", "--data", H5, "--out", f"{tmp}/r"]


def _ctrl_c_in_synth_av(monkeypatch, tmp):
    import kerasadml.data.av.digits as av_digits

    def build(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(av_digits, "build_av_digits", build)
    return ["synth-av", "--out", f"{tmp}/a.h5"]


def _stale_backup(monkeypatch, tmp):
    import kerasadml.retrieval.training as training
    from kerasadml.callbacks import BackupError

    def train(*args, **kwargs):
        raise BackupError(f"{tmp}/r/backup holds the backup of another run; delete {tmp}/r/backup "
                          "(or run `kerasadml train` with --fresh) to start training from scratch")

    monkeypatch.setattr(training, "train_aadml_from_h5", train)
    return ["train", "--preset", "aadml_avdigits", "--data", H5, "--out", f"{tmp}/r"]


def _bug(monkeypatch, tmp):
    def broken(args):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(cli, "cmd_presets", broken)
    return ["presets"]


SYSTEM_CASES = [
    ("read-only --out", _read_only, 1, ["--out {tmp}/s is not writable", "Read-only file system"]),
    ("too little free space", _nearly_full, 1, ["--out {tmp}/s", "MB free", "MB needed"]),
    ("disk fills during the build", _disk_fills_during_synth, 1, ["No space left on device: {tmp}/s/train/x.wav", "free some space"]),
    ("Ctrl-C during train", _ctrl_c_in_train, 130, ["interrupted; resume with the same command"]),
    ("Ctrl-C during synth-av", _ctrl_c_in_synth_av, 130, ["kerasadml synth-av: interrupted"]),
    ("stale backup", _stale_backup, 2, ["{tmp}/r/backup", "--fresh"]),
    ("internal error", _bug, 1, ["internal error: TypeError", "KERASADML_DEBUG=1"]),
]


@pytest.mark.parametrize("name, inject, status, texts", SYSTEM_CASES, ids=[c[0] for c in SYSTEM_CASES])
def test_system_failures_interrupts_and_bugs_are_one_line(tmp_path, capsys, monkeypatch, name, inject, status, texts):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    argv = inject(monkeypatch, tmp_path)
    assert main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in texts:
        assert _fill(text, tmp_path) in err, err


def test_debug_env_shows_the_traceback(monkeypatch, tmp_path):
    _bug(monkeypatch, tmp_path)
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(TypeError):
        main(["presets"])


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "kerasadml" in capsys.readouterr().out
