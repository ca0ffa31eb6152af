"""The default keyword spotter: `kerasadml detect` without a model, `kerasadml.zoo.keyword_detector`."""

import pytest

from kerasadml.cli import _options_first, _split_model_and_audio
from kerasadml.zoo import keyword_detector
from kerasadml.zoo.presets import DEFAULT_KWS_PRESET, PRESETS, preset_is_trained


def test_default_preset_is_a_trained_keyword_spotter():
    assert PRESETS[DEFAULT_KWS_PRESET]["class"] == "ADML"
    assert preset_is_trained(DEFAULT_KWS_PRESET)
    assert not preset_is_trained("adml_base")
    assert not preset_is_trained("no_such_preset")


def test_detect_takes_an_optional_model_before_the_audio(tmp_path):
    clip = tmp_path / "a.wav"
    clip.write_bytes(b"")
    assert _split_model_and_audio([str(clip)]) == (DEFAULT_KWS_PRESET, [str(clip)])
    assert _split_model_and_audio(["adml_tiny", str(clip)]) == ("adml_tiny", [str(clip)])
    assert _split_model_and_audio(["m.keras", str(clip)]) == ("m.keras", [str(clip)])
    with pytest.raises(ValueError, match="no audio files after the model"):
        _split_model_and_audio(["adml_tiny"])


def test_detect_options_may_come_anywhere():
    argv = ["detect", "adml_tiny", "--keywords", "a,b", "x.wav", "--threshold", "0.4", "y.wav"]
    assert _options_first(argv) == ["detect", "--keywords", "a,b", "--threshold", "0.4", "adml_tiny", "x.wav", "y.wav"]
    assert _options_first(["evaluate", "adml_tiny", "--data", "d"]) == ["evaluate", "adml_tiny", "--data", "d"]
    assert _options_first(["detect", "--threshold=-0.5", "x.wav", "--keywords", "a"]) == [
        "detect", "--threshold=-0.5", "--keywords", "a", "x.wav"
    ]


def test_keyword_detector_uses_the_named_or_default_preset():
    detector = keyword_detector("window", preset="adml_tiny")
    assert detector.keywords == ["window"]
