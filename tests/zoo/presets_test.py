"""kerasadml.zoo.presets.preset_config: a preset's constructor arguments, checked."""

import json

import pytest

from kerasadml.zoo.presets import PresetError, preset_config


def test_preset_config_leaves_out_policy_name_and_dropped_keys():
    config = preset_config("adml_tiny", "ADML", drop=("num_keywords",))
    assert {"name", "trainable", "dtype", "num_keywords"}.isdisjoint(config)
    assert config["embedding_dim"] == 128 and config["audio_channels"] == 64
    assert preset_config("aadml_vegas")["visual_dim"] == 1024


def test_preset_config_errors(tmp_path):
    with pytest.raises(PresetError, match="not a AADML"):
        preset_config("adml_tiny", "AADML")
    with pytest.raises(PresetError, match="adml_tiny"):  # the message lists the known names
        preset_config("no_such_preset")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(PresetError, match="corrupt"):
        preset_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"class_name": "ADML", "config": {"embedding_dim": 8}}))
    assert preset_config(tmp_path, "ADML") == {"embedding_dim": 8}
