"""kerasadml/training.py: the report builder both families' training uses (``fit_with_backup``
and ``discard_backup`` are tested in callbacks_test.py and robustness/backup_test.py)."""

import json
import os
import platform

import keras
import numpy as np
import pytest

from kerasadml.training import training_report


class _History:
    def __init__(self, history):
        self.history = history


def test_training_report_keys_values_and_order():
    history = _History({"loss": [3.0, 2.5, 2.25], "acc": [0.1, 0.5, 0.75]})
    recipe = {"epochs": 3, "batch_size": 8}
    report = training_report(
        history,
        preset=os.path.join("some", "preset"),
        data=["a.csv", "b.csv"],
        recipe=recipe,
        seed=7,
        seconds=12.349,
        sizes={"clips": 64, "keywords": 16},
        parameters=1234,
        test={"MAP": 0.5},
    )
    assert list(report) == [
        "preset", "data", "recipe", "seed", "clips", "keywords", "train_seconds", "backend",
        "machine", "final", "parameters", "test",
    ]
    assert report["preset"] == os.path.join("some", "preset")
    assert report["data"] == ["a.csv", "b.csv"]
    assert report["recipe"] == recipe
    assert report["seed"] == 7
    assert report["clips"] == 64 and report["keywords"] == 16
    assert report["train_seconds"] == 12.3
    assert report["backend"] == keras.backend.backend()
    assert report["machine"] == f"{platform.machine()} {os.cpu_count()} cores"
    assert report["final"] == {"loss": 2.25, "acc": 0.75}
    assert all(type(v) is float for v in report["final"].values())
    assert report["parameters"] == 1234 and report["test"] == {"MAP": 0.5}
    json.dumps(report)  # saved with the model as JSON


def test_training_report_from_a_real_fit():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(np.ones((4, 2)), np.zeros((4, 1)), epochs=2, verbose=0)
    report = training_report(
        history, preset="p", data="d.h5", recipe={}, seed=0, seconds=0.04, sizes={}
    )
    assert set(report["final"]) == set(history.history)
    assert report["final"]["loss"] == pytest.approx(history.history["loss"][-1])
    assert report["train_seconds"] == 0.0
    assert list(report)[-1] == "final"  # no results: "final" comes last
