"""SynthPhrase and eSpeak NG under interruption and failure (issue 13): a Ctrl-C inside
eSpeak NG's callback raises instead of returning a truncated clip; a resumed build keeps
only clips that match the manifest and ends byte-identical to an uninterrupted one; a
build that cannot write is an error, not a skipped clip."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from kerasadml.data.speech.synthphrase import MANIFEST_JSONL, SUMMARY_JSON, build_synthphrase

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ eSpeak NG callback
@pytest.mark.parametrize(
    "raised, expected",
    [(KeyboardInterrupt, KeyboardInterrupt), (MemoryError, "ESpeakError"), (ValueError, "ESpeakError")],
    ids=["ctrl-c", "memory-error", "value-error"],
)
def test_an_exception_in_the_espeak_callback_is_raised_not_swallowed(monkeypatch, capsys, raised, expected):
    from kerasadml.data.espeak import ESpeak, ESpeakError, Voice

    tts = ESpeak()
    voice = Voice("en-us", "m3", rate=170)
    full = tts.synthesize("turn on the kitchen light please", voice, seed=1)
    real = np.ctypeslib.as_array
    calls = []

    def as_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second chunk of audio: a partial waveform exists
            raise raised()
        return real(*args, **kwargs)

    monkeypatch.setattr(np.ctypeslib, "as_array", as_array)
    with pytest.raises(KeyboardInterrupt if expected is KeyboardInterrupt else ESpeakError):
        tts.synthesize("turn on the kitchen light please", voice, seed=1)
    monkeypatch.undo()
    assert len(calls) == 2, "the synthesis went on after the exception"
    assert "Exception ignored" not in capsys.readouterr().err
    again = tts.synthesize("turn on the kitchen light please", voice, seed=1)
    assert abs(len(again) - len(full)) <= 0.02 * len(full)  # the engine is usable afterwards


# ------------------------------------------------------------------ verified resume
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_reference") / "tiny"
    build_synthphrase(out, size="tiny", seed=0, progress=False)
    return out


def _files(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != SUMMARY_JSON
    }


def _first_clip(folder: Path) -> Path:
    return sorted((folder / "train").glob("*.wav"))[0]


def _shorter_clip(folder):
    # what the swallowed Ctrl-C produced: a valid wav, shorter than it should be
    clip = _first_clip(folder)
    wave, rate = soundfile.read(clip, dtype="float32")
    soundfile.write(clip, wave[: int(len(wave) * 0.9)], rate, subtype="PCM_16")


def _cut_file(folder):
    clip = _first_clip(folder)
    clip.write_bytes(clip.read_bytes()[:1000])


def _unrecorded(folder):
    # killed after the clip's rename, before its manifest line
    rel = str(_first_clip(folder).relative_to(folder))
    manifest = folder / MANIFEST_JSONL
    lines = [line for line in manifest.read_text().splitlines(True) if json.loads(line)["path"] != rel]
    manifest.write_text("".join(lines))


def _torn_line(folder):
    with open(folder / MANIFEST_JSONL, "a") as handle:
        handle.write('{"path": "train/kw000')


def _no_manifest(folder):
    (folder / MANIFEST_JSONL).unlink()  # a build by an older version: nothing is trusted


RESUME_CASES = [
    ("clip shorter than recorded", _shorter_clip, 1),
    ("clip file cut short", _cut_file, 1),
    ("clip written but not recorded", _unrecorded, 1),
    ("torn last manifest line", _torn_line, 0),
    ("no manifest", _no_manifest, 96),
]


@pytest.mark.parametrize("name, damage, remade", RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_resume_verifies_what_it_keeps(reference, tmp_path, name, damage, remade):
    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    damage(copy)
    summary = build_synthphrase(copy, size="tiny", seed=0, progress=False)
    assert summary["remade"] == remade
    assert summary["written"] == remade and summary["reused"] == 96 - remade
    assert _files(copy) == _files(reference)  # byte-identical to the uninterrupted build


# ------------------------------------------------------------------ cannot write
def test_a_clip_that_cannot_be_written_is_a_write_failure_not_a_skip(tmp_path, monkeypatch):
    import kerasadml.atomic
    from kerasadml.data.speech.synthphrase.clips import _make_clip

    def full_disk(path, mode="w", **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kerasadml.atomic, "atomic_open", full_disk)
    task = {
        "path": str(tmp_path / "clip.wav"), "text": "river", "voice": ("en-us", "m3", 160, 50, 50),
        "rng_key": [0, 5, 0, 0, 0], "min_duration": 0.5, "max_duration": 2.0, "snr_db": (10.0, 40.0),
        "gain_db": (-6.0, 3.0),
    }
    status, samples, message, code = _make_clip(task)
    assert (status, code) == ("write_failed", errno.ENOSPC)
    assert "clip.wav" in message and not os.listdir(tmp_path)


def test_synth_into_a_full_disk_exits_with_a_clear_error(tmp_path):
    """RLIMIT_FSIZE makes every clip write fail (EFBIG), as a nearly full disk would."""
    out = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # small files (the config) pass, clips (>= 16 kB) do not; a shell sets the limit (a
    # preexec_fn would fork this multithreaded process)
    script = f'ulimit -f 10 && exec "{sys.executable}" -m kerasadml.cli synth --out "{out}" --size tiny --quiet'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "kerasadml synth: error: cannot write" in proc.stderr
    assert "File too large" in proc.stderr and "run the same command again" in proc.stderr
    assert not (out / SUMMARY_JSON).exists() and not (out / "synthphrase_train.csv").exists()
    assert not list(out.rglob("*.tmp"))
