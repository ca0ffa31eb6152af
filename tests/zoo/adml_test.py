"""ADML end to end on tiny settings: training steps, every loss term, save/load (.keras,
preset, across backends), LibriPhrase evaluation, enrollment and detection, bad input."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasadml.data.audio_io import AudioError
from kerasadml.data.speech.phonemizer import PhonemizerError
from kerasadml.zoo import ADML, PresetError
from kerasadml.zoo.adml import LOSS_TERMS
from tests.helpers import ADML_TINY as TINY

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _batch(seed=0):
    rng = np.random.RandomState(seed)
    labels = np.repeat(np.arange(4), 2).astype("int32")
    # Each keyword gets its own tone so the task is learnable.
    t = np.arange(16000) / 16000.0
    audio = np.stack([0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t) for k in labels]).astype("float32")
    audio += 0.01 * rng.randn(*audio.shape).astype("float32")
    phonemes = np.zeros((8, 8), "int32")
    for i, k in enumerate(labels):
        phonemes[i, : 3 + k] = 2 + 3 * k + np.arange(3 + k)
    return {
        "audio": audio,
        "audio_length": np.array([16000, 12000] * 4, "int32"),
        "phonemes": phonemes,
        "label": labels,
    }


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = ADML(**TINY)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(_batch(), batch_size=8, epochs=8, verbose=0).history
    return model, history


def test_fit_lowers_loss_and_logs_every_term(trained):
    _, history = trained
    for term in LOSS_TERMS:
        assert term in history and np.all(np.isfinite(history[term])), term
    assert history["loss"][-1] < history["loss"][0]
    # every active term contributes something
    for term in ("loss_utt", "loss_phn", "loss_mm", "loss_key", "loss_adv"):
        assert history[term][0] > 0, term
    for term in ("mal_acc_utt", "mal_acc_phn"):
        assert 0.0 <= history[term][-1] <= 1.0


def test_ablation_configurations_own_exactly_their_parts():
    base = ADML(**{**TINY, "phoneme_loss": "none", "mal": "none", "keyword_loss": "none"})
    assert base.phoneme_loss_layer is None and base.adversary_utt is None and base.keyword_head is None
    utt = ADML(**{**TINY, "mal": "utterance"})
    assert utt.adversary_utt is not None and utt.adversary_phn is None
    full = ADML(**TINY)
    assert full.keyword_head.__class__.__name__ == "SphereFace2"
    assert full.phoneme_loss_layer.__class__.__name__ == "AsyPAdaMS"
    assert full.adversary_phn is not None
    aam = ADML(**{**TINY, "keyword_loss": "aam_softmax"})
    assert aam.keyword_head.__class__.__name__ == "AAMSoftmax"
    with pytest.raises(ValueError, match="mal"):
        ADML(**{**TINY, "mal": "sometimes"})
    with pytest.raises(ValueError, match="num_keywords"):
        ADML(**{**TINY, "num_keywords": 1})


def test_adams_parameters_are_trained(trained):
    model, _ = trained
    alphas = keras.ops.convert_to_numpy(model.phoneme_loss_layer.alphas())
    assert not np.allclose(alphas, 2.0, atol=1e-6), "AdaMS alpha never moved"


def _scores(model):
    batch = _batch(1)
    clips = [batch["audio"][i, : batch["audio_length"][i]] for i in range(0, 8, 2)]
    return model.score(clips, ["hello world", "turn on the light", "stop"])


def test_keras_file_roundtrip_gives_same_scores(trained, tmp_path):
    model, _ = trained
    path = tmp_path / "adml.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_scores(restored), _scores(model), rtol=1e-5, atol=1e-5)


def test_preset_roundtrip_gives_same_scores_and_loss_parameters(trained, tmp_path):
    model, _ = trained
    model.save_to_preset(tmp_path / "preset", info={"note": "test"})
    for name in ("config.json", "metadata.json", "model.weights.h5"):
        assert (tmp_path / "preset" / name).is_file()
    restored = ADML.from_preset(tmp_path / "preset")
    np.testing.assert_allclose(_scores(restored), _scores(model), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.phoneme_loss_layer.alphas()),
        keras.ops.convert_to_numpy(model.phoneme_loss_layer.alphas()),
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.keyword_head.kernel), keras.ops.convert_to_numpy(model.keyword_head.kernel)
    )
    assert restored.preset_metadata["info"] == {"note": "test"}


def test_preset_saved_here_loads_and_scores_the_same_on_the_other_backend(trained, tmp_path):
    model, _ = trained
    model.save_to_preset(tmp_path / "preset")
    np.save(tmp_path / "expected.npy", _scores(model))
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    code = (
        "import numpy as np, sys; sys.path.insert(0, sys.argv[3]);"
        "from tests.zoo.adml_test import _scores; from kerasadml.zoo import ADML;"
        "m = ADML.from_preset(sys.argv[1]); np.testing.assert_allclose(_scores(m), np.load(sys.argv[2]), rtol=1e-4, atol=1e-4);"
        "print('same scores')"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, KERAS_BACKEND=other, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "preset"), str(tmp_path / "expected.npy"), root],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "same scores" in done.stdout


def test_libriphrase_evaluation_on_fixture_counts_skipped(trained):
    model, _ = trained
    csvs = sorted(str(p) for p in (FIXTURES / "libriphrase").glob("*.csv"))
    result = model.evaluate(csvs)
    assert set(result) >= {"LP_E", "LP_H", "pairs", "skipped"}
    for subset in ("LP_E", "LP_H"):
        for key in ("EER", "AUC", "AP"):
            assert 0.0 <= result[subset][key] <= 1.0
    assert result["pairs"] > 0
    # the fixture lists one missing and one corrupt clip
    assert result["skipped"] > 0


def test_keyword_detector_enroll_calibrate_save_load(trained, tmp_path):
    model, _ = trained
    batch = _batch(2)
    clips = [batch["audio"][i] for i in range(8)]
    texts = ["alpha", "alpha", "bravo", "bravo", "charlie", "charlie", "delta", "delta"]
    detector = model.keyword_detector(["alpha", "bravo", "charlie", "delta"], threshold=0.3)
    results = detector.detect(clips[:2])
    assert len(results) == 2 and set(results[0]["scores"]) == {"alpha", "bravo", "charlie", "delta"}
    threshold = detector.calibrate(clips, texts)
    assert -1.0 <= threshold <= 1.0
    detector.save(tmp_path / "det")
    from kerasadml.zoo import KeywordDetector

    again = KeywordDetector.load(tmp_path / "det")
    assert again.threshold == pytest.approx(threshold)
    np.testing.assert_allclose(again.scores(clips[:2]), detector.scores(clips[:2]), rtol=1e-5, atol=1e-5)


def test_bad_inputs_give_clear_errors(trained, tmp_path):
    model, _ = trained
    with pytest.raises(PresetError, match="adml_tiny"):
        ADML.from_preset("no_such_preset")
    with pytest.raises(PhonemizerError, match="!!!"):
        model.keyword_detector(["!!!"])
    with pytest.raises(AudioError, match="missing.wav"):
        model.embed_audio([str(tmp_path / "missing.wav")])
    model.save_to_preset(tmp_path / "p")
    (tmp_path / "p" / "model.weights.h5").write_bytes(b"garbage")
    with pytest.raises(PresetError, match="corrupted"):
        ADML.from_preset(tmp_path / "p")
    (tmp_path / "p" / "model.weights.h5").unlink()
    with pytest.raises(PresetError, match="missing"):
        ADML.from_preset(tmp_path / "p")


def test_catalogue_presets_load():
    base = ADML.from_preset("adml_base", num_keywords=10)
    assert base.audio_channels == 256 and base.text_units == 256 and base.embedding_dim == 256
    tiny = ADML.from_preset("adml_tiny")
    assert tiny.preset_metadata.get("weights") is True
    with pytest.raises(PresetError, match="AADML"):
        ADML.from_preset("aadml_vegas")


def test_build_leaves_no_layer_unbuilt():
    # An unbuilt sub-layer (e.g. SpecAugment, unused at inference) makes Keras' JAX
    # predict_on_batch re-run the model eagerly on every call (80 ms instead of 5 ms).
    model = ADML(**{**TINY, "spec_augment": True})
    model.build()
    assert [layer.name for layer in model._flatten_layers() if not layer.built] == []


def test_compile_refuses_a_loss_and_fit_refuses_sample_weights():
    """Both used to be ignored silently."""
    model = ADML(**TINY)
    with pytest.raises(ValueError, match=r"compile\(loss='mse'\).*computes its own loss"):
        model.compile(optimizer="adam", loss="mse")
    model.compile(optimizer="adam", loss=None)  # None is what Keras passes itself: fine
    with pytest.raises(ValueError, match="does not use sample_weight"):
        model.compute_loss(x=_batch(), sample_weight=np.ones(8, "float32"))


def test_keras_evaluate_returns_a_dict_like_the_csv_evaluation(trained):
    model, _ = trained
    result = model.evaluate(_batch(1), batch_size=8, verbose=0)
    assert isinstance(result, dict) and set(LOSS_TERMS) <= set(result) and "loss" in result
    assert isinstance(model.evaluate(_batch(1), batch_size=8, verbose=0, return_dict=False), list)
