"""benchmarks/peers.py: the table built from per-round records (ratios within a round,
a skipped reference), and a ``--quick`` run on the active backend (in a subprocess) that
prints the kerasadml rows, and the reference row or the line saying why it is skipped."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import peers


def _rows(train, reference_train):
    """The reference and one kerasadml row, with per-round train clips/s as given."""

    def rounds(rates):
        return [{"round": i, "train_clips_per_s": r, "infer_clips_per_s": 2 * r, "latency_ms": 5.0 + i,
                 "train_cores": 1.8, "peak_mb": 900.0 + i, "load": 0.5} for i, r in enumerate(rates)]

    ready = {"setup_s": 3.0, "start_mb": 500.0, "params": 1000}
    return [
        {"key": "reference", "model": "SpeechBrain", "backend": "torch", "mfa": 768, "rounds": rounds(reference_train),
         "ready": {**ready, "threads": 2, "train_flops_per_clip": 2e9, "infer_flops_per_clip": 0.5e9}},
        {"key": "jax:768", "model": "kerasadml", "backend": "jax", "mfa": 768, "rounds": rounds(train),
         "ready": {**ready, "sequence_params": 10, "train_flops_per_clip": 3e9, "infer_flops_per_clip": 1e9}},
        {"key": "tensorflow:768", "model": "kerasadml", "backend": "tensorflow", "mfa": 768, "rounds": rounds(train),
         "ready": {**ready, "sequence_params": 10, "jit_compile": False}},
    ]


def test_ratios_are_taken_within_rounds_and_flops_shared_by_width():
    # round ratios 2, 1, 0.5 -> median 1 (the ratio of the medians would be 10 / 20)
    rows = _rows([10, 20, 10], [5, 20, 20])
    peers.summarize(rows, ceiling=100.0)
    jax, tf = rows[1]["summary"], rows[2]["summary"]
    assert jax["train_vs_reference"] == 1.0 and jax["train_clips_per_s"] == 10
    assert jax["latency_ms"] == 6.0 and jax["peak_mb"] == 902.0
    assert jax["train_gflop_per_clip"] == 3.0 and jax["train_gflop_per_s"] == 30.0 and jax["train_of_ceiling"] == 0.3
    assert tf["train_gflop_per_clip"] == 3.0  # the JAX count of the same width
    assert rows[0]["summary"]["train_gflop_per_clip"] == 2.0  # the reference keeps its own count
    table, failed = peers.build_table(rows)
    assert not failed
    lines = [line.split("|")[1:-1] for line in table.splitlines()[2:]]
    assert [cell.strip() for cell in lines[1][:6]] == ["kerasadml", "JAX", "1,000", "10.0", "1.00", "20.0"]
    assert lines[1][9].strip() == "30% / 20%"
    assert lines[0][4].strip() == "1"


def test_a_skipped_reference_is_no_failure_but_an_error_is():
    rows = _rows([10], [10])
    rows[0] = {**rows[0], "rounds": [], "skipped": "torch and speechbrain not installed"}
    peers.summarize(rows, ceiling=None)
    assert "train_vs_reference" not in rows[1]["summary"]
    table, failed = peers.build_table(rows)
    assert not failed and "skipped: torch and speechbrain not installed" in table
    assert 'pip install -e ".[peers]"' in peers.skip_line("torch not installed")
    rows[2] = {**rows[2], "rounds": [], "error": "worker timed out after 5 s"}
    _, failed = peers.build_table(rows)
    assert failed


def test_plan_and_matmul_ceiling():
    import argparse

    rows = peers.plan(argparse.Namespace(backends=["jax"]))
    assert [(r["backend"], r["mfa"]) for r in rows] == [("torch", 768), ("jax", 768), ("jax", 512)]
    assert peers.matmul_ceiling(64, repeats=1) > 0


@pytest.mark.slow
def test_quick_run_prints_the_kerasadml_rows(tmp_path):
    backend = keras.backend.backend()
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    out = tmp_path / "peers.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--backends", backend, "--json", str(out)],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in done.stdout.splitlines()
            if line.startswith("| ")][1:]
    ours = [r for r in rows if r[0].startswith("kerasadml")]
    assert [r[0][-7:] for r in ours] == ["MFA 768", "MFA 512"], rows
    for r in ours:
        assert r[1] == peers.BACKEND_NAMES[backend]
        assert float(r[3].replace(",", "")) > 0 and float(r[5].replace(",", "")) > 0 and float(r[6]) > 0, r
        if backend == "jax":  # XLA's FLOP count
            assert float(r[7].split("/")[0]) > 0, r
    reference = [r for r in rows if r[0].startswith("SpeechBrain")]
    assert len(reference) == 1
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("speechbrain") is None:
        assert "Reference row (SpeechBrain ECAPA-TDNN, PyTorch) skipped" in done.stdout
        assert 'pip install -e ".[peers]"' in done.stdout
        assert "skipped" in reference[0][-1]
    else:
        assert float(reference[0][3].replace(",", "")) > 0, reference
        assert all(float(r[4]) > 0 for r in ours), ours  # ÷ reference
    payload = json.loads(out.read_text())
    assert len(payload["rows"]) == 3 and payload["ceilings_gflop_per_s"][0] > 0
