"""Named ADML training recipes and the alignment evaluation, on a tiny SynthPhrase build."""

import math

import pytest

from kerasadml.data.synthphrase import build_synthphrase
from kerasadml.zoo.adml import ADML, PAPER_CONFIG
from kerasadml.zoo.kws_evaluation import evaluate_alignment
from kerasadml.zoo.kws_training import TRAINING_RECIPES, train_adml_from_csv


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
    assert report["recipe"]["name"] == "paper"
    assert report["recipe"]["family_size"] == 1 and report["recipe"]["lr_schedule"] == "constant"
    assert (tmp_path / "model" / "model.weights.h5").is_file()
    assert not (tmp_path / "backup").exists()  # deleted only after the preset was saved
