"""Numeric arguments of the Python training API (issue 13): a bad value is a ValueError
naming the argument, raised before any work (``epochs=0`` used to save an untrained model
as trained, ``steps_per_epoch=0`` hung)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasadml.validation import check_float, check_int, check_seed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
H5 = str(FIXTURES / "av" / "layout_a.h5")
CSV = str(sorted((FIXTURES / "libriphrase").glob("*.csv"))[0])

ADML_CASES = [
    ("epochs", 0), ("epochs", -1), ("epochs", 1.5), ("epochs", "3"), ("epochs", True),
    ("steps_per_epoch", 0), ("keywords_per_batch", 0), ("clips_per_keyword", -1), ("seed", -1), ("seed", 2**32),
]


@pytest.mark.parametrize("name, value", ADML_CASES, ids=[f"{n}={v!r}" for n, v in ADML_CASES])
def test_train_adml_from_csv_rejects(tmp_path, name, value):
    from kerasadml.kws.training import train_adml_from_csv

    with pytest.raises(ValueError, match=name):
        train_adml_from_csv("adml_tiny", CSV, out_dir=tmp_path / "run", **{name: value})
    assert not (tmp_path / "run").exists()


AADML_CASES = [("epochs", 0), ("steps_per_epoch", -2), ("batch_size", 2), ("batch_size", 0), ("seed", -3)]


@pytest.mark.parametrize("name, value", AADML_CASES, ids=[f"{n}={v!r}" for n, v in AADML_CASES])
def test_train_aadml_from_h5_rejects(tmp_path, name, value):
    from kerasadml.retrieval.training import train_aadml_from_h5

    with pytest.raises(ValueError, match=name):
        train_aadml_from_h5("aadml_avdigits", H5, out_dir=tmp_path / "run", **{name: value})
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("epochs, steps", [(0, 1), (1, 0), (None, 1)])
def test_fit_with_backup_rejects(tmp_path, epochs, steps):
    from kerasadml.training import fit_with_backup

    with pytest.raises(ValueError, match="epochs" if epochs != 1 else "steps_per_epoch"):
        fit_with_backup(None, None, epochs=epochs, steps_per_epoch=steps, out_dir=tmp_path)


def test_checks():
    assert check_int("n", 3.0, minimum=1) == 3 and check_int("n", None, allow_none=True) is None
    assert check_seed(0) == 0 and check_float("t", 0.5, -1, 1) == 0.5
    for bad in (float("nan"), float("inf"), "0.5", 2.0):
        with pytest.raises(ValueError, match="threshold"):
            check_float("threshold", bad, -1, 1)
