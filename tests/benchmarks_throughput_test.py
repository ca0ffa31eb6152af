"""benchmarks/throughput.py: its batch builders and option parsing, and a ``--quick`` run
on the active backend (in a subprocess) that prints a table with training throughput
and the detector latency."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import throughput


def test_adml_batches_are_keywords_times_clips():
    config = {"num_keywords": 50, "keep_stress": False}
    arrays = throughput.adml_arrays(config, batch=8, clips_per_keyword=2)
    n = throughput.DISTINCT_BATCHES
    assert arrays["audio"].shape == (n, 8, throughput.AUDIO_WIDTH) and arrays["audio"].dtype == np.float32
    assert arrays["phonemes"].shape == (n, 8, throughput.PHONEME_WIDTH)
    for b in range(n):
        labels, lengths = arrays["label"][b], arrays["audio_length"][b]
        assert np.all(labels[0::2] == labels[1::2]) and len(set(labels[0::2])) == 4
        assert np.all((lengths >= 16000) & (lengths <= throughput.AUDIO_WIDTH))
        assert np.all(arrays["audio"][b][np.arange(throughput.AUDIO_WIDTH)[None] >= lengths[:, None]] == 0)
        assert np.array_equal(arrays["phonemes"][b][0::2], arrays["phonemes"][b][1::2])  # one text per keyword
        assert np.all((arrays["phonemes"][b] > 0).sum(axis=1) >= 3)
    with pytest.raises(ValueError, match="multiple"):
        throughput.adml_arrays(config, batch=7, clips_per_keyword=2)


def test_aadml_batches_hold_every_class_in_each_half():
    arrays = throughput.aadml_arrays({"num_classes": 10, "audio_dim": 6, "visual_dim": 9}, batch=40)
    assert arrays["audio"].shape == (throughput.DISTINCT_BATCHES, 40, 6) and arrays["visual"].shape[-1] == 9
    for half in (arrays["label"][0][:20], arrays["label"][0][20:]):
        assert set(half.tolist()) == set(range(10))


def test_peak_rss_sees_an_allocation():
    with throughput.PeakRSS(interval=0.005) as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
        time.sleep(0.05)
        del block
    assert memory.start > 0 and memory.peak - memory.start > 40, (memory.start, memory.peak)


def test_parse_batch_sizes_and_keywords():
    assert throughput.parse_batch_sizes("16,32:64,256") == ([16, 32], [64, 256])
    assert throughput.parse_batch_sizes("8") == ([8], [8])
    with pytest.raises(Exception, match="batch-sizes"):
        throughput.parse_batch_sizes("1:2:3")
    words = throughput.make_keywords(50)
    assert len(set(words)) == 50


@pytest.mark.slow
def test_quick_run_prints_throughput_and_latency(tmp_path):
    backend = keras.backend.backend()
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    out = tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--quick", "--backends", backend,
         "--no-flops", "--out", str(out)],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text()
    assert text.strip() in done.stdout
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")][1:]
    train = [r for r in rows if "train" in r[0] and r[1].strip() == backend]
    assert train and all(float(r[5].replace(",", "")) > 0 for r in train), train
    assert any(r[3].strip() == "2" for r in train)  # the 2-device row ran
    assert all(re.match(r"\s*[\d,]+ \(\+-?[\d,]+\)", r[13]) for r in train), train  # peak RSS column
    detect = [r for r in rows if "KeywordDetector.scores" in r[0]]
    assert detect and re.match(r"\s*\d+\.\d+ / \d+\.\d+", detect[0][6]), detect
