"""Kill ``kerasadml synth`` and ``kerasadml train`` with SIGKILL at random points, resume,
and check that nothing was lost (issue 13).

The first interruption of each command is a SIGINT (what Ctrl-C sends: the command must
exit 130 with ``interrupted; resume with the same command``), the others SIGKILL.

* ``synth``: a tiny SynthPhrase build is killed ``--kills`` times (the whole process
  group, synthesis processes included) at a random moment after it has written clips of
  its own, then run to the end; every file (clips, CSVs, manifest; not ``summary.json``, which holds timings)
  must be byte-identical to an uninterrupted build.
* ``train``: an AADML run on the tiny AV fixture is killed ``--kills`` times at a random
  moment after its first epoch backup; each restart must say it resumes after exactly the
  newest epoch recorded in ``OUT/backup/backup.json`` (the last complete epoch), and the
  final run must finish and save a preset that loads.

Run from the repository root (each kill costs a process start, ~5-10 s for ``train``)::

    python benchmarks/kill_resume.py --kills 10            # both commands
    python benchmarks/kill_resume.py --only synth --kills 20 --seed 3

``tests/robustness/kill_test.py`` runs the same functions with 3 kills each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AV_FIXTURE = ROOT / "tests" / "fixtures" / "av" / "layout_a.h5"
SUMMARY = "summary.json"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kerasadml.cli", *args]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _as_from_a_shell() -> None:
    """In the child before exec: Ctrl-C's SIGINT at its default, as a shell starts a
    command. An ignored SIGINT is inherited across exec (a test runner's worker may ignore
    it), and the command would then never see the Ctrl-C this harness sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_until_killed(cmd, ready, delay: float, timeout: float = 300.0, cwd=None, sig=signal.SIGKILL) -> dict:
    """Start ``cmd`` in its own process group; once ``ready()`` holds, wait ``delay`` s and
    send ``sig`` to the group (SIGKILL; SIGINT is what Ctrl-C sends). Returns
    {"killed": bool, "returncode", "stderr"}."""
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=_env(), cwd=cwd, preexec_fn=_as_from_a_shell,
    )
    started = time.monotonic()
    killed = False
    try:
        while process.poll() is None and not ready():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{cmd}: not ready after {timeout} s")
            time.sleep(0.01)
        deadline = time.monotonic() + delay
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if process.poll() is None:
            os.killpg(process.pid, sig)
            killed = True
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return {"killed": killed, "returncode": process.returncode, "stderr": stderr or ""}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != SUMMARY
    }


def _check_ctrl_c(result: dict) -> None:
    """A run stopped by SIGINT exits 130 with the one-line message, no traceback."""
    if result["killed"] and result["returncode"] != 0:
        assert result["returncode"] == 130, result["stderr"][-2000:]
        assert "interrupted; resume with the same command" in result["stderr"], result["stderr"][-2000:]


def kill_resume_synth(workdir: Path, kills: int, rng: random.Random, size: str = "tiny",
                      reference: Path | None = None, max_delay: float = 0.4) -> dict:
    """Interrupt a SynthPhrase build ``kills`` times (the first with Ctrl-C's SIGINT, the
    others with SIGKILL), finish it, compare with ``reference`` (built uninterrupted here
    when not given). Returns a report; raises AssertionError when the result differs."""
    workdir = Path(workdir)
    if reference is None:
        reference = workdir / "reference"
        subprocess.run(_command("synth", "--out", str(reference), "--size", size, "--quiet"),
                       check=True, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = workdir / "interrupted"
    shutil.rmtree(out, ignore_errors=True)
    cmd = _command("synth", "--out", str(out), "--size", size, "--quiet")
    manifest = out / "synthphrase_manifest.jsonl"

    def recorded() -> int:
        try:
            return manifest.read_bytes().count(b"\n")
        except OSError:
            return 0

    delays, killed = [], 0
    for attempt in range(kills):
        delay = rng.uniform(0.0, max_delay)
        before = recorded()  # kill once this run has written clips of its own
        sig = signal.SIGINT if attempt == 0 else signal.SIGKILL
        result = _run_until_killed(cmd, lambda: recorded() > before, delay, sig=sig)
        assert "Traceback" not in result["stderr"], result["stderr"]
        if sig == signal.SIGINT:
            _check_ctrl_c(result)
        delays.append(round(delay, 3))
        killed += result["killed"]
        if result["returncode"] == 0:  # finished before the kill
            break
    final = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    assert final.returncode == 0, final.stderr
    summary = json.loads((out / SUMMARY).read_text())
    expected, got = _files(reference), _files(out)
    differing = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
    assert not differing, f"files differ from the uninterrupted build: {differing[:5]}"
    return {"command": "synth", "kills": killed, "delays_s": delays, "files": len(got),
            "remade_on_resume": summary.get("remade"), "written_by_last_run": summary["written"],
            "identical": True}


_RESUMED = re.compile(r"resuming training from (.+?) after epoch (\d+)")


def _newest_epoch(backup: Path) -> int | None:
    try:
        return int(json.loads((backup / "backup.json").read_text())["checkpoints"][0]["epoch"])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def kill_resume_train(workdir: Path, kills: int, rng: random.Random, epochs: int = 40,
                      max_delay: float = 0.8) -> dict:
    """Interrupt an AADML training run ``kills`` times (the first with Ctrl-C's SIGINT,
    the others with SIGKILL) a random delay after a new backup; every restart must resume
    after the newest recorded epoch; the last one finishes."""
    workdir = Path(workdir)
    out = workdir / "run"
    shutil.rmtree(out, ignore_errors=True)
    backup = out / "backup"
    cmd = _command(
        "train", "--preset", "aadml_avdigits", "--data", str(AV_FIXTURE), "--out", str(out),
        "--epochs", str(epochs), "--steps-per-epoch", "2", "--batch-size", "6",
    )
    resumed_at, killed, expected = [], 0, None
    for attempt in range(kills):
        before = _newest_epoch(backup) or 0
        sig = signal.SIGINT if attempt == 0 else signal.SIGKILL
        result = _run_until_killed(cmd, lambda: (_newest_epoch(backup) or 0) > before, rng.uniform(0.0, max_delay),
                                   sig=sig)
        assert "Traceback" not in result["stderr"], result["stderr"]
        if sig == signal.SIGINT:
            _check_ctrl_c(result)
        match = _RESUMED.search(result["stderr"])
        if expected:
            assert match and int(match.group(2)) == expected, (expected, result["stderr"][-2000:])
            resumed_at.append(expected)
        killed += result["killed"]
        if result["returncode"] == 0:  # finished before the kill: nothing more to test
            break
        expected = _newest_epoch(backup)
    final = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    assert final.returncode == 0, final.stderr[-3000:]
    match = _RESUMED.search(final.stderr)
    if expected:
        assert match and int(match.group(2)) == expected, (expected, final.stderr[-2000:])
        resumed_at.append(expected)
    report = json.loads(final.stdout[final.stdout.index("{"):])
    from kerasadml.zoo import AADML

    model = AADML.from_preset(out / "model")
    assert model.preset_metadata["info"]["training"]["recipe"]["epochs"] == epochs
    assert not backup.exists(), "the backup is deleted after a finished run"
    return {"command": "train", "kills": killed, "resumed_after_epochs": resumed_at,
            "final_keys": sorted(report["final"]), "model_loads": True}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10, help="kills per command (default 10)")
    parser.add_argument("--only", choices=["synth", "train"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args(argv)
    import tempfile

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kill_resume_") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        reports = []
        if args.only in (None, "synth"):
            reports.append(kill_resume_synth(workdir / "synth", args.kills, rng))
        if args.only in (None, "train"):
            reports.append(kill_resume_train(workdir / "train", args.kills, rng))
    for report in reports:
        print(json.dumps(report))
    done = ", ".join(f"{r['command']} killed {r['kills']} times" for r in reports)
    print(f"OK: {done}; nothing lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
