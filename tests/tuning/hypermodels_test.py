"""ADMLHyperModel / AADMLHyperModel: a 2-trial RandomSearch on tiny data records a finite
objective for each trial; search-space switches and bad arguments."""

import math

import keras_tuner
import numpy as np
import pytest

from kerasadml.data.speech.synthphrase import build_synthphrase
from kerasadml.tuning import ADML_SEARCH_SPACE, AADMLHyperModel, ADMLHyperModel
from kerasadml.kws.training import kws_training_data
from tests.helpers import ADML_TINY_SIZES, av_split
from tests.helpers import AADML_TINY as _AADML_TINY

ADML_TINY = dict(ADML_TINY_SIZES, spec_augment=False)  # the hypermodel sets num_keywords
AADML_TINY = {k: v for k, v in _AADML_TINY.items() if k != "num_heads"}  # num_heads is searched


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("tuning") / "tiny"
    summary = build_synthphrase(out, size="tiny", seed=0, progress=False)
    return out, summary


def _oracle_scores(tuner, name):
    trials = list(tuner.oracle.trials.values())
    return trials, [t.metrics.get_last_value(name) for t in trials], [t.score for t in trials]


@pytest.mark.slow
def test_adml_random_search_records_finite_val_eer(synth, tmp_path):
    out, summary = synth
    hypermodel = ADMLHyperModel(
        num_keywords=summary["keywords"]["train"],
        validation_data=str(out / "synthphrase_test.csv"),
        config=ADML_TINY,
    )
    dataset, _, items = kws_training_data(
        [str(out / "synthphrase_train.csv")],
        hypermodel.encode_text,
        keywords_per_batch=4,
        clips_per_keyword=2,
        audio_buckets=(32000,),
    )
    assert items.num_classes == hypermodel.num_keywords
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=keras_tuner.Objective("val_eer", "min"),
        max_trials=2,
        seed=0,
        directory=str(tmp_path),
        project_name="adml",
        overwrite=True,
    )
    tuner.search(dataset, epochs=1, steps_per_epoch=2, verbose=0)
    trials, values, scores = _oracle_scores(tuner, "val_eer")
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    for value, score in zip(values, scores):
        assert value is not None and math.isfinite(value) and 0.0 <= value <= 1.0
        assert score == pytest.approx(value)
    for trial in trials:
        assert set(trial.hyperparameters.values) == set(ADML_SEARCH_SPACE)
        assert math.isfinite(trial.metrics.get_last_value("val_auc"))
    # the two trials tried different hyperparameters
    assert trials[0].hyperparameters.values != trials[1].hyperparameters.values
    best = tuner.get_best_hyperparameters(1)[0].values
    assert best == min(trials, key=lambda t: t.score).hyperparameters.values


def test_aadml_random_search_records_finite_val_map(tmp_path):
    from kerasadml.data.av.dataset import make_av_dataset

    train, valid = av_split(seed=0), av_split(seed=1)
    hypermodel = AADMLHyperModel(valid, config=AADML_TINY, adapt_split=train, max_k=4)
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=keras_tuner.Objective("val_map", "max"),
        max_trials=2,
        seed=1,
        directory=str(tmp_path),
        project_name="aadml",
        overwrite=True,
    )
    tuner.search(make_av_dataset(train, batch_size=12, seed=0), epochs=1, steps_per_epoch=2, verbose=0)
    trials, values, scores = _oracle_scores(tuner, "val_map")
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    for value, score in zip(values, scores):
        assert value is not None and math.isfinite(value) and 0.0 <= value <= 1.0
        assert score == pytest.approx(value)
    for trial in trials:
        # aa_triplet: margin is searched, temperature is not
        assert set(trial.hyperparameters.values) == {"k", "num_heads", "margin", "learning_rate"}
        assert 1 <= trial.hyperparameters.values["k"] <= 4
    model = tuner.get_best_models(1)[0]
    assert model.evaluate(valid)["MAP"] == pytest.approx(max(scores), abs=1e-5)


def test_search_space_follows_the_fixed_configuration():
    hp = keras_tuner.HyperParameters()
    hypermodel = AADMLHyperModel(av_split(), config={**AADML_TINY, "loss": "contrastive"})
    hypermodel.build(hp)
    assert set(hp.values) == {"temperature", "learning_rate"}
    assert hp.values["temperature"] == pytest.approx(0.1)  # default = the paper's value


def test_bad_arguments(synth):
    out, _ = synth
    csv = str(out / "synthphrase_test.csv")
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        ADMLHyperModel(4, csv, tune=["lambda_adv", "dropout"])
    with pytest.raises(ValueError, match="lambda_adv"):
        ADMLHyperModel(4, csv, config={"lambda_adv": 0.3})
    with pytest.raises(ValueError, match="subset"):
        ADMLHyperModel(4, csv, subset="LP_X")
    with pytest.raises(ValueError, match="AVSplit"):
        AADMLHyperModel(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="'k'"):
        AADMLHyperModel(av_split(), config={**AADML_TINY, "k": 2})
    # a fixed value is fine when it is not searched
    hm = ADMLHyperModel(4, csv, config={"lambda_adv": 0.3, **ADML_TINY}, tune=["learning_rate"])
    hp = keras_tuner.HyperParameters()
    assert hm.build(hp).lambda_adv == pytest.approx(0.3) and set(hp.values) == {"learning_rate"}


def test_diverged_trial_is_reported_as_failed():
    hypermodel = AADMLHyperModel(av_split(), config=AADML_TINY)
    model = hypermodel.build(keras_tuner.HyperParameters())

    class _History:
        history = {"loss": [float("nan")]}

    model.fit = lambda *a, **k: _History()
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="diverged"):
        hypermodel.fit(None, model)
