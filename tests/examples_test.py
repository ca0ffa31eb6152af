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
