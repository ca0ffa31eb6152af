"""Presets are written all or nothing (issue 13): a full disk or an interruption while
saving over an existing preset leaves it untouched and no temporary files; a bad
``config.json`` is an error naming the file and what is wrong."""

from __future__ import annotations

import errno
import json
import os

import keras
import numpy as np
import pytest

from kerasadml.zoo import AADML, PresetError
from kerasadml.zoo.presets import load_preset, preset_config
from tests.helpers import AADML_TINY as TINY


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = AADML(**TINY)
    model.build_for_preset()
    return model


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _siblings(folder):
    return sorted(p.name for p in folder.parent.iterdir())


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "model"
    _model(0).save_to_preset(folder, info={"run": 1})
    (folder / "README.md").write_text("model card\n")
    return folder


def test_save_over_an_existing_preset_replaces_it_and_keeps_other_files(saved):
    new = _model(1)
    new.save_to_preset(saved, info={"run": 2})
    assert _siblings(saved) == ["model"]  # no temporary folder left
    assert (saved / "README.md").read_text() == "model card\n"
    loaded = AADML.from_preset(saved)
    assert loaded.preset_metadata["info"] == {"run": 2}
    for a, b in zip(loaded.get_weights(), new.get_weights()):
        np.testing.assert_array_equal(a, b)


def _fail_weights_write(monkeypatch):
    def partial_then_enospc(self, filepath, overwrite=True, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
        raise OSError(errno.ENOSPC, "No space left on device", str(filepath))

    monkeypatch.setattr(AADML, "save_weights", partial_then_enospc)


def _fail_swap(monkeypatch):
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old preset is renamed away; putting the new one in fails
            raise OSError(errno.EIO, "Input/output error", str(src))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)


def _interrupt_metadata(monkeypatch):
    import kerasadml.zoo.presets as presets

    real = presets._atomic_write_text

    def write(path, text):
        if str(path).endswith("metadata.json"):
            raise KeyboardInterrupt
        return real(path, text)

    monkeypatch.setattr(presets, "_atomic_write_text", write)


FAILURES = [
    ("full disk while writing the weights", _fail_weights_write, OSError),
    ("rename of the new preset fails", _fail_swap, OSError),
    ("Ctrl-C while writing the metadata", _interrupt_metadata, KeyboardInterrupt),
]


@pytest.mark.parametrize("name, inject, error", FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failed_save_leaves_the_old_preset_untouched(saved, monkeypatch, name, inject, error):
    before = _snapshot(saved)
    inject(monkeypatch)
    with pytest.raises(error):
        _model(1).save_to_preset(saved, info={"run": 2})
    monkeypatch.undo()
    assert _snapshot(saved) == before
    assert _siblings(saved) == ["model"], "temporary files left behind"
    assert AADML.from_preset(saved).preset_metadata["info"] == {"run": 1}


def test_temporary_folders_of_a_killed_save_are_removed_by_the_next(saved):
    (saved.parent / ".model.abc123.tmp").mkdir()
    (saved.parent / ".model.abc123.tmp" / "model.weights.h5").write_bytes(b"partial")
    (saved.parent / ".model.def456.old").mkdir()
    _model(1).save_to_preset(saved)
    assert _siblings(saved) == ["model"]


@pytest.mark.parametrize("kind", ["a file", "a folder that is not a preset"])
def test_never_replaces_what_is_not_a_preset(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "a file":
        target.write_text("keep me")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("keep me")
    with pytest.raises(PresetError, match="target"):
        _model(0).save_to_preset(target)
    assert (target.read_text() if kind == "a file" else (target / "notes.txt").read_text()) == "keep me"


BAD_CONFIGS = [
    ("only class_name", json.dumps({"class_name": "AADML"}), "missing key 'config'"),
    ("no class_name", json.dumps({"config": {}}), "missing key 'class_name'"),
    ("a list", "[1, 2]", "expected a JSON object"),
    ("not JSON", "{not json", "corrupt"),
    ("latin-1 bytes", b"{\"class_name\": \"caf\xe9\"}", "corrupt"),
    ("config not an object", json.dumps({"class_name": "AADML", "config": 3}), "'config' must be a JSON object"),
    ("unknown argument", json.dumps({"class_name": "AADML", "config": {"no_such_argument": 1}}), "cannot build"),
    ("another class", json.dumps({"class_name": "ADML", "config": {}}), "not a AADML"),
]


@pytest.mark.parametrize("name, content, message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_json_names_the_file_and_the_problem(tmp_path, name, content, message):
    folder = tmp_path / "preset"
    folder.mkdir()
    path = folder / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PresetError, match=message) as raised:
        load_preset(AADML, folder)
    assert str(path) in str(raised.value)
    if name not in ("unknown argument", "another class"):
        with pytest.raises(PresetError, match=message):
            preset_config(folder)
