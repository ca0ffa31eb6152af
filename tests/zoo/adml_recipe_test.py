"""ADML's recipe options (docs/methods.md §1.10): ProxyNCE with a keyword memory, the loss
warm-up, attentive text pooling, cosine attention, the default optimiser's schedule;
their config and preset round trips and bad values."""

import keras
import numpy as np
import pytest

from kerasadml.losses.proxy_nce import ProxyNCE
from kerasadml.zoo import ADML
from tests.helpers import ADML_TINY, to_numpy
from tests.losses.proxy_nce_test import proxy_nce_reference

RECIPE = dict(
    ADML_TINY,
    num_keywords=6,
    utterance_loss="proxy_nce",
    nce_scale=12.0,
    nce_margin=0.15,
    proxy_memory=True,
    loss_warmup_steps=5,
    text_pooling="attention",
    aligner_similarity="cosine",
)
NEW_KEYS = (
    "utterance_loss",
    "nce_scale",
    "nce_margin",
    "proxy_memory",
    "text_pooling",
    "aligner_similarity",
    "loss_warmup_steps",
)


def _batch(labels=(0, 0, 1, 1, 3, 3), seed=0):
    rng = np.random.RandomState(seed)
    labels = np.asarray(labels, "int32")
    n = len(labels)
    t = np.arange(8000) / 16000.0
    audio = np.stack([0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t) for k in labels]).astype("float32")
    audio += 0.01 * rng.randn(*audio.shape).astype("float32")
    phonemes = np.zeros((n, 6), "int32")
    for i, k in enumerate(labels):
        phonemes[i, : 2 + k % 4] = 2 + 3 * k + np.arange(2 + k % 4)
    return {
        "audio": audio,
        "audio_length": np.array([8000, 6000] * (n // 2), "int32"),
        "phonemes": phonemes,
        "label": labels,
    }


@pytest.fixture(scope="module")
def fitted():
    keras.utils.set_random_seed(0)
    model = ADML(**RECIPE)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(_batch(), batch_size=6, epochs=3, verbose=0).history  # 3 steps
    return model, history


@pytest.mark.slow
def test_recipe_fits_and_updates_its_counters_and_memory(fitted):
    model, history = fitted
    assert isinstance(model.utterance_loss, ProxyNCE)
    assert model.aligner.similarity == "cosine" and model.text_encoder.pooling == "attention"
    assert all(np.all(np.isfinite(history[k])) for k in ("loss", "loss_utt", "loss_key", "loss_phn"))
    assert float(to_numpy(model.loss_step)) == 3.0
    # the memory holds exactly the keywords seen in training, as unit vectors
    filled = to_numpy(model.proxy_filled)
    np.testing.assert_array_equal(filled, [1, 1, 0, 1, 0, 0])
    bank = to_numpy(model.proxy_bank)
    np.testing.assert_allclose(np.linalg.norm(bank[[0, 1, 3]], axis=1), 1.0, rtol=1e-5)
    assert np.all(bank[[2, 4, 5]] == 0.0)
    # they are state, not trained weights
    trainable = {id(v) for v in model.trainable_variables}
    for v in (model.proxy_bank, model.proxy_filled, model.loss_step):
        assert id(v) not in trainable


@pytest.mark.slow
def test_utterance_loss_uses_the_memory_for_keywords_absent_from_the_batch(fitted):
    model, _ = fitted
    batch = _batch(labels=(0, 0, 2, 2, 5, 5), seed=1)
    y_pred = model(batch, training=False)
    terms = model.loss_terms(batch, y_pred, training=False)
    ea, et = to_numpy(y_pred["audio_embedding"]), to_numpy(y_pred["text_embedding"])
    bank, filled = to_numpy(model.proxy_bank), to_numpy(model.proxy_filled) > 0
    labels = batch["label"]
    # memory rows count for filled keywords not in the batch: 1 and 3 (0 is in the batch)
    bank_mask = filled & ~np.isin(np.arange(6), labels)
    np.testing.assert_array_equal(bank_mask, [False, True, False, True, False, False])
    expected = proxy_nce_reference(
        ea, labels, np.concatenate([et, bank]), np.concatenate([labels, np.arange(6)]),
        pmask=np.concatenate([np.ones(6, bool), bank_mask]), scale=12.0, margin=0.15,
    ).mean()
    np.testing.assert_allclose(float(to_numpy(terms["weighted"]["utt"])), expected, rtol=1e-4)
    without_memory = proxy_nce_reference(ea, labels, et, labels, scale=12.0, margin=0.15).mean()
    assert abs(expected - without_memory) > 1e-4
    # training=False leaves the counter and the memory as they were
    assert float(to_numpy(model.loss_step)) == 3.0
    np.testing.assert_array_equal(to_numpy(model.proxy_filled), [1, 1, 0, 1, 0, 0])


@pytest.mark.slow
def test_warmup_ramps_the_keyword_phoneme_and_adversarial_terms():
    keras.utils.set_random_seed(1)
    model = ADML(**RECIPE)
    model.build()
    assert float(to_numpy(model.loss_step)) == 0.0
    batch = _batch()
    y_pred = model(batch, training=False)

    def weighted():
        terms = model.loss_terms(batch, y_pred, training=False)
        return {k: float(to_numpy(v)) for k, v in terms["weighted"].items()}, {
            k: float(to_numpy(v)) for k, v in terms["logged"].items()
        }

    at_zero, logged = weighted()
    for term in ("phn", "key", "adv"):
        assert at_zero[term] == 0.0, term
    assert at_zero["utt"] > 0 and at_zero["mm"] > 0
    assert logged["loss_phn"] > 0 and logged["loss_key"] > 0 and logged["loss_adv"] > 0
    model.loss_step.assign(2.0)
    mid, _ = weighted()
    model.loss_step.assign(7.0)  # past the warm-up: full weights
    full, _ = weighted()
    np.testing.assert_allclose(full["phn"], model.lambda_phn * logged["loss_phn"], rtol=1e-5)
    np.testing.assert_allclose(full["key"], model.keyword_weight * logged["loss_key"], rtol=1e-5)
    np.testing.assert_allclose(full["adv"], logged["loss_adv"], rtol=1e-5)
    for term in ("phn", "key", "adv"):
        np.testing.assert_allclose(mid[term], 0.4 * full[term], rtol=1e-5)
    for term in ("utt", "mm"):  # never ramped
        assert at_zero[term] == pytest.approx(full[term], rel=1e-5) == pytest.approx(mid[term], rel=1e-5)
    # a training call counts the step
    model.loss_step.assign(0.0)
    model.loss_terms(batch, y_pred, training=True)
    assert float(to_numpy(model.loss_step)) == 1.0


def test_without_warmup_or_memory_there_is_no_extra_state():
    plain = ADML(**{**RECIPE, "loss_warmup_steps": 0, "proxy_memory": False})
    assert plain.loss_step is None and plain.proxy_bank is None and plain.proxy_filled is None
    # the memory belongs to ProxyNCE only
    relational = ADML(**{**RECIPE, "utterance_loss": "relational_proxy"})
    assert relational.proxy_bank is None
    assert relational.utterance_loss.__class__.__name__ == "RelationalProxy"


def test_default_optimizer_schedule():
    optimizer = ADML.default_optimizer(total_steps=100)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(1e-4) and optimizer.clipnorm == pytest.approx(5.0)
    schedule = optimizer._learning_rate
    rate = {step: float(to_numpy(schedule(step))) for step in (0, 2, 5, 50, 100)}
    assert rate[0] == 0.0
    assert rate[2] == pytest.approx(0.4e-3, rel=1e-4)  # linear warm-up over 5 % = 5 steps
    assert rate[5] == pytest.approx(1e-3, rel=1e-5)  # the peak
    assert max(float(to_numpy(schedule(s))) for s in (1, 3, 4, 6, 10, 30)) < 1e-3  # 5 is the peak
    assert rate[100] == pytest.approx(1e-5, rel=1e-3)  # 1 % of the peak at the end
    assert rate[5] > rate[50] > rate[100]
    other = ADML.default_optimizer(total_steps=1000, learning_rate=3e-3, warmup_fraction=0.1)._learning_rate
    assert float(to_numpy(other(100))) == pytest.approx(3e-3, rel=1e-5)
    assert float(to_numpy(other(1000))) == pytest.approx(3e-5, rel=1e-3)
    constant = ADML.default_optimizer()
    assert float(to_numpy(constant.learning_rate)) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="total_steps"):
        ADML.default_optimizer(total_steps=0)


def test_config_roundtrip_keeps_the_new_keys():
    model = ADML(**RECIPE)
    config = model.get_config()
    for key in NEW_KEYS:
        assert config[key] == RECIPE[key], key
    clone = ADML.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.utterance_loss, ProxyNCE)
    assert clone.utterance_loss.scale == 12.0 and clone.utterance_loss.margin == 0.15
    assert clone.proxy_bank is not None and clone.loss_step is not None
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert restored.get_config() == config


@pytest.mark.slow
def test_preset_roundtrip_keeps_outputs_memory_and_counter(fitted, tmp_path):
    model, _ = fitted
    model.save_to_preset(tmp_path / "preset")
    restored = ADML.from_preset(tmp_path / "preset")
    for key in NEW_KEYS:
        assert restored.get_config()[key] == RECIPE[key], key
    texts = ["turn on the light", "stop", "hello world"]
    np.testing.assert_allclose(restored.embed_text(texts), model.embed_text(texts), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(to_numpy(restored.proxy_filled), to_numpy(model.proxy_filled))
    np.testing.assert_allclose(to_numpy(restored.proxy_bank), to_numpy(model.proxy_bank), rtol=1e-6)
    assert float(to_numpy(restored.loss_step)) == 3.0
    np.testing.assert_allclose(
        float(to_numpy(restored.aligner.log_scale)), float(to_numpy(model.aligner.log_scale)), rtol=1e-6
    )


def test_bad_recipe_values_raise():
    with pytest.raises(ValueError, match="utterance_loss"):
        ADML(**{**RECIPE, "utterance_loss": "infonce"})
    with pytest.raises(ValueError, match="loss_warmup_steps"):
        ADML(**{**RECIPE, "loss_warmup_steps": -1})
    with pytest.raises(ValueError, match="pooling"):
        ADML(**{**RECIPE, "text_pooling": "max"})
    with pytest.raises(ValueError, match="similarity"):
        ADML(**{**RECIPE, "aligner_similarity": "euclidean"})
