"""The `kerasadml` command: every subcommand on tiny data, in process."""

import json
from pathlib import Path

import pytest

from kerasadml.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_presets_lists_the_catalogue(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("adml_tiny", "adml_base", "aadml_vegas", "aadml_ave", "aadml_avdigits"):
        assert name in out


def test_unknown_preset_is_a_clear_error(capsys, tmp_path):
    status = main(["evaluate", "no_such_model", "--data", str(tmp_path)])
    assert status == 2
    assert "known presets" in capsys.readouterr().err


def test_evaluate_shipped_preset_on_libriphrase_fixture_writes_json(tmp_path, capsys):
    csvs = ",".join(sorted(str(p) for p in (FIXTURES / "libriphrase").glob("*.csv")))
    out = tmp_path / "result.json"
    assert main(["evaluate", "adml_tiny", "--data", csvs, "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert set(result) >= {"LP_E", "LP_H", "pairs", "skipped"}
    assert set(result["LP_E"]) >= {"EER", "AUC", "AP"}
    assert result["skipped"] > 0  # the fixture has a missing and a corrupt clip
    assert "LP_H" in capsys.readouterr().out


def test_detect_reports_scores_and_unreadable_files(tmp_path, capsys):
    wav = next((FIXTURES / "libriphrase" / "wav").rglob("*.wav"))
    status = main(["detect", "adml_tiny", "--keywords", "friend,river", str(wav), str(tmp_path / "nope.wav")])
    captured = capsys.readouterr()
    assert status == 1  # one file could not be read
    assert "friend=" in captured.out and "river=" in captured.out
    assert "nope.wav" in captured.err


@pytest.mark.slow
def test_synth_train_evaluate_roundtrip(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--size", "tiny", "--quiet"]) == 0
    run = tmp_path / "run"
    status = main(
        [
            "train", "--preset", "adml_tiny", "--data", str(data), "--out", str(run),
            "--epochs", "1", "--steps-per-epoch", "2", "--keywords-per-batch", "4", "--augment",
        ]
    )
    assert status == 0
    assert (run / "model" / "model.weights.h5").is_file()
    training = json.loads((run / "model" / "metadata.json").read_text())["info"]["training"]
    assert training["recipe"]["augment"]["reverb_prob"] > 0  # augmented on the fly, and recorded
    assert training["synthphrase"] == {"format_version": 3, "seed": 0, "train_keywords": 16, "test_keywords": 8}
    assert main(["evaluate", str(run / "model"), "--data", str(data), "--json", str(tmp_path / "r.json"), "--quiet"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["pairs"] > 0 and result["skipped"] == 0


@pytest.mark.slow
def test_synth_av_train_evaluate(tmp_path):
    h5 = tmp_path / "avdigits.h5"
    assert main(["synth-av", "--out", str(h5), "--train-per-class", "6", "--quiet"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--preset", "aadml_avdigits", "--data", str(h5), "--out", str(run), "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "20"]) == 0
    assert main(["evaluate", str(run / "model"), "--data", str(h5), "--json", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert 0.0 <= result["MAP"] <= 1.0 and "R@1" in result


def test_numeric_flags_are_usage_errors_not_hangs(tmp_path, capsys):
    h5 = str(FIXTURES / "av" / "layout_a.h5")
    for flags in (["--epochs", "0"], ["--epochs", "-1"], ["--steps-per-epoch", "0"], ["--batch-size", "1"]):
        argv = ["train", "--preset", "aadml_avdigits", "--data", h5, "--out", str(tmp_path / "run"), *flags]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert flags[0] in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.slow
def test_train_refuses_a_stale_backup_and_fresh_starts_over(tmp_path, capsys):
    h5 = str(FIXTURES / "av" / "layout_a.h5")
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    stale = {"format": 1, "fingerprint": {"class": "AADML", "parameters": 12, "digest": "another-run"},
             "checkpoints": [{"epoch": 3, "weights": "epoch00003.weights.h5", "bytes": 1, "sha256": "0"}]}
    (run / "backup" / "backup.json").write_text(json.dumps(stale))
    argv = ["train", "--preset", "aadml_avdigits", "--data", h5, "--out", str(run),
            "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "6"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(run / "backup") in err and "--fresh" in err and "Traceback" not in err
    assert main(argv + ["--fresh"]) == 0
    assert (run / "model" / "model.weights.h5").is_file() and not (run / "backup").exists()


def test_train_flags_for_recipe_family_and_outside_root_parse():
    from kerasadml.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--preset", "adml_tiny", "--data", "d", "--out", "o", "--recipe", "paper",
         "--family-size", "3", "--allow-outside-root", "--learning-rate", "5e-4"]
    )
    assert (args.recipe, args.family_size, args.allow_outside_root) == ("paper", 3, True)
    assert args.learning_rate == 5e-4
    defaults = build_parser().parse_args(["train", "--preset", "adml_tiny", "--data", "d", "--out", "o"])
    assert (defaults.recipe, defaults.family_size, defaults.allow_outside_root) == ("default", None, False)
    assert defaults.augment is False and defaults.learning_rate is None
    for bad in ("0", "-1e-3", "nan", "2"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", "--preset", "adml_tiny", "--data", "d", "--out", "o",
                                       "--learning-rate", bad])


@pytest.mark.parametrize("flag", [["--augment"], ["--learning-rate", "1e-3"]])
def test_keyword_spotting_flags_are_refused_for_audio_visual_presets(tmp_path, capsys, flag):
    h5 = str(FIXTURES / "av" / "layout_a.h5")
    argv = ["train", "--preset", "aadml_avdigits", "--data", h5, "--out", str(tmp_path / "run"), *flag]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag[0] in err and "Traceback" not in err
