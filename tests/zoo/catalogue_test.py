"""kerasadml.zoo.catalogue: every preset config names constructor arguments of the class
the preset names and builds that class; the shipped ``zoo/<name>/config.json`` and its
parameter count are what the catalogue builds (the keyword count of a trained ADML preset
being its training data's); ``write_catalogue_configs`` and ``python -m
kerasadml.zoo.catalogue`` write a loadable untrained preset."""

import inspect
import json
import runpy
import sys

import keras
import pytest

from kerasadml.zoo import AADML, ADML
from kerasadml.zoo.catalogue import PRESET_CONFIGS, build_preset_model, write_catalogue_configs
from kerasadml.zoo.presets import PRESETS, catalogue_dir, load_preset
from tests.helpers import constructor_arguments

CLASSES = {"ADML": ADML, "AADML": AADML}
#: what training replaces in a preset's config: the keyword count of its data
DATA_KEYS = {"ADML": ("num_keywords",), "AADML": ()}


def _shipped(name):
    folder = catalogue_dir() / name
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    return config, metadata


def test_every_preset_has_a_config_and_a_known_class():
    assert set(PRESET_CONFIGS) == set(PRESETS)
    assert {entry["class"] for entry in PRESETS.values()} <= set(CLASSES)


@pytest.mark.parametrize("name", sorted(PRESET_CONFIGS))
def test_config_names_constructor_arguments(name):
    cls = CLASSES[PRESETS[name]["class"]]
    unknown = set(PRESET_CONFIGS[name]) - set(constructor_arguments(cls))
    assert unknown == set(), f"{name}: not arguments of {cls.__name__}: {sorted(unknown)}"
    required = {n for n, p in constructor_arguments(cls).items() if p.default is inspect.Parameter.empty}
    assert required <= set(PRESET_CONFIGS[name]), f"{name}: lacks required {sorted(required - set(PRESET_CONFIGS[name]))}"


@pytest.mark.parametrize("name", sorted(PRESET_CONFIGS))
def test_build_preset_model_builds_the_named_class(name):
    model = build_preset_model(name)
    cls = CLASSES[PRESETS[name]["class"]]
    assert type(model) is cls and model.name == name and model.built
    assert [layer.name for layer in model._flatten_layers() if not layer.built] == []
    for key, value in PRESET_CONFIGS[name].items():
        assert getattr(model, key) == value, f"{name}: {key} is {getattr(model, key)!r}, the config says {value!r}"


@pytest.mark.parametrize("name", sorted(PRESET_CONFIGS))
def test_shipped_preset_is_what_the_catalogue_builds(name):
    """zoo/<name>/config.json is the serialised catalogue model (its keyword count
    replaced by the training data's for a trained preset), and metadata.json's parameter
    count is that model's."""
    shipped, metadata = _shipped(name)
    class_name = PRESETS[name]["class"]
    assert shipped["class_name"] == class_name == metadata["class"]
    config = dict(PRESET_CONFIGS[name])
    for key in DATA_KEYS[class_name]:
        if not metadata["weights"]:
            assert shipped["config"][key] == config[key], f"untrained {name}: {key} differs"
        config[key] = shipped["config"][key]
    model = CLASSES[class_name](name=name, **config)
    model.build()
    built = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    assert built["config"] == shipped["config"]
    assert model.count_params() == metadata["parameter_count"]


@pytest.mark.parametrize("name", ["aadml_ave", "adml_tiny"])
def test_write_catalogue_configs_writes_a_loadable_untrained_preset(tmp_path, name):
    write_catalogue_configs(tmp_path, names=[name])
    folder = tmp_path / name
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metadata.json"]
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    model = build_preset_model(name)
    assert metadata["class"] == PRESETS[name]["class"] and metadata["weights"] is False
    assert metadata["info"] == {"trained": False}
    assert metadata["parameter_count"] == model.count_params()
    written = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    loaded = load_preset(CLASSES[PRESETS[name]["class"]], folder, load_weights=False)
    assert loaded.get_config() == model.get_config()


def test_module_main_writes_the_named_presets(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["catalogue", str(tmp_path), "aadml_vegas"])
    runpy.run_module("kerasadml.zoo.catalogue", run_name="__main__")
    assert [p.name for p in tmp_path.iterdir()] == ["aadml_vegas"]
    shipped, _ = _shipped("aadml_vegas")
    assert json.loads((tmp_path / "aadml_vegas" / "config.json").read_text(encoding="utf-8")) == shipped


def test_unknown_preset_is_a_key_error():
    with pytest.raises(KeyError):
        build_preset_model("adml_huge")
