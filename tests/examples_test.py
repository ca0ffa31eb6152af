"""Each example script runs end to end with its smallest settings (in a subprocess)."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args, tmp_path):
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend(), TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_train_aadml_example(tmp_path):
    out = _run("train_aadml.py", "--epochs", "1", "--steps", "3", "--train-per-class", "6", "--out", "run", tmp_path=tmp_path)
    assert "MAP" in out and "audio query 0" in out


@pytest.mark.slow
def test_train_adml_example(tmp_path):
    out = _run("train_adml.py", "--size", "tiny", "--epochs", "1", "--steps", "2", "--keywords-per-batch", "4", "--out", "run", tmp_path=tmp_path)
    assert "LP_E" in out and "model preset written" in out


@pytest.mark.slow
def test_enroll_and_detect_example(tmp_path):
    out = _run("enroll_and_detect.py", "--out", "run", tmp_path=tmp_path)
    assert "threshold at the dev EER" in out and "best-scoring keyword correct" in out


def _trial_table(out, objective):
    """(header, rows) of the trial table a tune_* example prints, rows best first."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["trial"] and objective in line.split())
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return lines[start].split(), rows


def _check_best_preset(folder, cls, objective, header, rows, direction):
    """The preset written for the best trial loads, and holds the first row's hyperparameters."""
    import json
    import math

    assert folder.is_dir(), folder
    scores = [float(r[header.index(objective)]) for r in rows]
    assert all(math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=direction == "max")  # best first
    tuning = json.loads((folder / "metadata.json").read_text())["info"]["tuning"]
    assert tuning["score"] == pytest.approx(scores[0], rel=1e-3)  # the table prints 4 digits
    model = cls.from_preset(str(folder))
    for name, value in tuning["hyperparameters"].items():
        if name != "learning_rate":  # an optimizer setting, not a model attribute
            assert getattr(model, name) == pytest.approx(value), name
    return tuning


@pytest.mark.slow
def test_tune_adml_example_random(tmp_path):
    from kerasadml.zoo import ADML

    out = _run("tune_adml.py", "--size", "tiny", "--tuner", "random", "--trials", "2", "--epochs", "1", "--steps", "2",
               "--out", "run", tmp_path=tmp_path)
    header, rows = _trial_table(out, "val_eer")
    assert len(rows) == 2 and all(r[-1] == "COMPLETED" for r in rows), out
    assert "best model preset written to" in out
    tuning = _check_best_preset(tmp_path / "run" / "best", ADML, "val_eer", header, rows, "min")
    assert tuning["tuner"] == "random" and len(tuning["hyperparameters"]) == 8


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["bayesian", "hyperband"])
def test_tune_aadml_example(tmp_path, tuner):
    from kerasadml.zoo import AADML

    # Hyperband with max_epochs=2, factor=2: two 1-epoch trials, then the better one resumes
    # from its checkpoint for a second epoch (initial_epoch=1), capped at 3 trials.
    budget = ["--trials", "2", "--epochs", "1"] if tuner == "bayesian" else ["--trials", "3", "--epochs", "2", "--factor", "2"]
    out = _run("tune_aadml.py", "--train-per-class", "6", "--tuner", tuner, *budget, "--steps", "2", "--out", "run",
               tmp_path=tmp_path)
    header, rows = _trial_table(out, "val_map")
    assert len(rows) == (2 if tuner == "bayesian" else 3) and all(r[-1] == "COMPLETED" for r in rows), out
    if tuner == "hyperband":
        resumed = [r for r in rows if r[header.index("resumes")] != "-"]
        assert len(resumed) == 1 and resumed[0][header.index("epochs")] == "2", out
    assert "MAP_A2V" in out and "best model preset written to" in out
    tuning = _check_best_preset(tmp_path / "run" / "best", AADML, "val_map", header, rows, "max")
    assert tuning["tuner"] == tuner and 0.0 <= tuning["test"]["MAP"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model", ["adml", "aadml"])
def test_distributed_training_example(tmp_path, model):
    import math
    import re

    extra = ["--epochs", "1"] if model == "adml" else ["--epochs", "2", "--train-per-class", "6"]
    out = _run("distributed_training.py", "--model", model, "--virtual-cpu-devices", "2", "--steps", "2", *extra,
               "--out", "run", tmp_path=tmp_path)
    engine = "MirroredStrategy" if keras.backend.backend() == "tensorflow" else "DataParallel"
    assert f"engine {engine}, replicas: 2" in out, out
    per_replica = 16 if model == "adml" else 30
    assert f"per-replica batch {per_replica}" in out and f"global batch {2 * per_replica}" in out, out
    losses = [float(v) for v in re.findall(r"^epoch \d+/\d+: loss (\S+)", out, flags=re.MULTILINE)]
    assert len(losses) == (1 if model == "adml" else 2) and all(math.isfinite(v) for v in losses), out
    assert ("LP_E" in out and "EER %" in out) if model == "adml" else ("MAP_A2V" in out), out


def test_distributed_training_example_rejects_a_batch_without_two_classes(tmp_path):
    for model, batch in (("adml", "3"), ("aadml", "2")):
        env = dict(os.environ, KERAS_BACKEND=keras.backend.backend(), PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "distributed_training.py"), "--model", model,
             "--per-replica-batch", batch, "--out", "run"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 2 and "--per-replica-batch" in done.stderr, done.stderr[-2000:]
        assert not (tmp_path / "run").exists()  # rejected before any data is built
