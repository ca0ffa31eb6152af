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


def test_weights_origin_names_the_weights_and_their_training(tmp_path):
    import json

    from kerasadml.zoo.presets import read_metadata, resolve_preset, weights_origin

    origin = weights_origin("adml_small")
    metadata = read_metadata(resolve_preset("adml_small"))
    assert origin["preset"] == "adml_small"
    assert origin["weights_sha256"] == metadata["weights_sha256"] and len(origin["weights_sha256"]) == 64
    assert origin["trained"]["recipe"] == metadata["info"]["training"]["recipe"]
    # a folder whose metadata has no training report (or no metadata at all)
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"class": "ADML"}))
    assert weights_origin(folder) == {"preset": str(folder), "weights_sha256": None, "trained": {}}


def test_fine_tuning_with_another_keyword_count_loads_every_weight_that_fits(caplog):
    import logging

    import numpy as np

    from kerasadml.zoo import ADML

    shipped = ADML.from_preset("adml_tiny")
    with caplog.at_level(logging.WARNING, logger="kerasadml.zoo.presets"):
        tuned = ADML.from_preset("adml_tiny", num_keywords=16)
    assert "num_keywords overridden" in caplog.text and "start fresh" in caplog.text
    fresh = {"proxy_bank", "proxy_filled", "loss_step"}
    loaded = 0
    assert len(tuned.weights) == len(shipped.weights)
    for variable, saved in zip(tuned.weights, shipped.weights):  # same order, same model
        if "keyword_head" in variable.path or variable.path.split("/")[-1] in fresh:
            continue
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(saved), err_msg=variable.path)
        loaded += 1
    assert loaded >= len(tuned.weights) - 5
    assert tuple(tuned.keyword_head.weights[0].shape)[-1] == 16
