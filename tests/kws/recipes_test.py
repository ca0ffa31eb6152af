"""Named ADML training recipes and the alignment evaluation, on a tiny SynthPhrase build."""

import json
import math

import pytest

from kerasadml.data.speech.synthphrase import build_synthphrase
from kerasadml.zoo.adml import ADML, PAPER_CONFIG
from kerasadml.kws.evaluation import evaluate_alignment
from kerasadml.kws.training import TRAINING_RECIPES, train_adml_from_csv


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth_tiny")
    build_synthphrase(folder, size="tiny", seed=0, progress=False)
    return folder


def test_evaluate_alignment_reports_bounded_figures(tiny_data):
    model = ADML.from_preset("adml_tiny")
    result = evaluate_alignment(model, tiny_data / "synthphrase_test.csv", max_clips=4)
    assert result["clips"] == 4
    assert 0.0 <= result["monotonic"] <= 1.0
    assert math.isnan(result["spread"]) or -1.0 <= result["spread"] <= 1.0
    with pytest.raises(ValueError, match="max_clips"):
        evaluate_alignment(model, tiny_data / "synthphrase_test.csv", max_clips=0)


def test_unknown_recipe_is_refused(tiny_data, tmp_path):
    assert set(TRAINING_RECIPES) == {"default", "paper"}
    with pytest.raises(ValueError, match="recipe must be one of"):
        train_adml_from_csv("adml_tiny", tiny_data, out_dir=tmp_path, epochs=1, steps_per_epoch=1, recipe="nope")


@pytest.mark.slow
def test_paper_recipe_trains_the_papers_configuration(tiny_data, tmp_path):
    model, report = train_adml_from_csv(
        "adml_tiny", tiny_data, out_dir=tmp_path, epochs=1, steps_per_epoch=1, keywords_per_batch=4,
        recipe="paper", verbose=0,
    )
    for key, value in PAPER_CONFIG.items():
        assert model.get_config()[key] == value
    assert report["recipe"]["name"] == "paper" and report["init_weights"] is None  # from scratch
    assert report["recipe"]["family_size"] == 1 and report["recipe"]["lr_schedule"] == "constant"
    assert (tmp_path / "model" / "model.weights.h5").is_file()
    assert not (tmp_path / "backup").exists()  # deleted only after the preset was saved
    # the demo scores a trained preset on a test split only when the word split is the same
    from kerasadml.kws.demo import shipped_preset_comparable

    assert report["synthphrase"]["seed"] == 0
    comparable, why = shipped_preset_comparable(str(tmp_path / "model"), tiny_data)
    assert comparable, why
    other = tmp_path / "other_seed"
    other.mkdir()
    config = json.loads((tiny_data / "synthphrase_config.json").read_text())
    (other / "synthphrase_config.json").write_text(json.dumps({**config, "seed": 1}))
    comparable, why = shipped_preset_comparable(str(tmp_path / "model"), other)
    assert not comparable and "seed" in why
    comparable, why = shipped_preset_comparable("adml_base", tiny_data)
    assert not comparable and "without trained weights" in why


def test_build_provenance_names_the_word_split(tiny_data, tmp_path):
    from kerasadml.data.speech.synthphrase import FORMAT_VERSION, build_provenance

    expected = {"format_version": FORMAT_VERSION, "seed": 0, "train_keywords": 16, "test_keywords": 8}
    assert build_provenance(tiny_data) == expected
    assert build_provenance(tiny_data / "synthphrase_train.csv") == expected
    assert build_provenance([str(tiny_data / "synthphrase_test.csv")]) == expected
    assert build_provenance(tmp_path) is None and build_provenance([]) is None
    (tmp_path / "synthphrase_config.json").write_text("{not json")
    assert build_provenance(tmp_path) is None


@pytest.mark.slow
def test_fine_tuning_records_its_learning_rate_and_the_weights_it_started_from(tiny_data, tmp_path):
    from kerasadml.zoo.presets import read_metadata, resolve_preset

    model, report = train_adml_from_csv(
        "adml_tiny", tiny_data, out_dir=tmp_path, epochs=1, steps_per_epoch=1, keywords_per_batch=4,
        init_weights=True, recipe_overrides={"learning_rate": 5e-4, "family_size": None}, verbose=0,
    )
    assert report["recipe"]["learning_rate"] == 5e-4
    tiny = read_metadata(resolve_preset("adml_tiny"))
    assert report["init_weights"]["preset"] == "adml_tiny"
    assert report["init_weights"]["weights_sha256"] == tiny["weights_sha256"]
    assert report["init_weights"]["trained"]["recipe"] == tiny["info"]["training"]["recipe"]
    saved = read_metadata(tmp_path / "model")["info"]["training"]
    assert saved["init_weights"] == report["init_weights"]
    assert report["recipe"]["family_size"] == TRAINING_RECIPES["default"]["family_size"]  # None: unchanged
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["initial_learning_rate"] == pytest.approx(5e-4)
