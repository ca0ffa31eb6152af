"""ADML and AADML train under mixed_float16 and mixed_bfloat16: no NaN, loss parts in
float32, the global policy restored afterwards."""

import keras
import numpy as np
import pytest

from kerasadml.zoo import AADML, ADML
from kerasadml.zoo.adml import LOSS_TERMS
from tests.helpers import AADML_TINY, ADML_TINY, av_split
from tests.zoo.aadml_test import _batch as aadml_batch
from tests.zoo.adml_test import _batch as adml_batch

POLICIES = ["mixed_float16", "mixed_bfloat16"]


@pytest.fixture
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _half(policy_name):
    return "float16" if policy_name == "mixed_float16" else "bfloat16"


def _check_loss_parts_float32(parts):
    for part in parts:
        assert part.compute_dtype == "float32", (part.name, part.compute_dtype)
        assert part.variable_dtype == "float32", (part.name, part.variable_dtype)
        for sub in part._flatten_layers(include_self=False):
            assert sub.compute_dtype == "float32", (part.name, sub.name, sub.compute_dtype)


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_adml_trains_without_nan(policy):
    model = ADML(**ADML_TINY)
    assert model.audio_encoder.compute_dtype == _half(policy)
    assert model.text_encoder.compute_dtype == _half(policy)
    parts = [model.utterance_loss, model.phoneme_loss_layer, model.alignment_loss, model.keyword_head,
             model.adversary_utt, model.adversary_phn]
    _check_loss_parts_float32(parts)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    batch = adml_batch()
    y_pred = model(batch, training=False)
    assert keras.backend.standardize_dtype(y_pred["audio_embedding"].dtype) == _half(policy)
    loss = model.compute_loss(x=batch, y_pred=y_pred, training=False)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    history = model.fit(batch, batch_size=8, epochs=3, verbose=0).history
    for term in ("loss",) + LOSS_TERMS:
        assert np.all(np.isfinite(history[term])), (term, history[term])
    for w in model.trainable_weights:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(w))), w.path
    scores = model.score([batch["audio"][0]], ["hello"])
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_aadml_trains_without_nan(policy):
    split = av_split()
    # a constant feature (real visual features have some): 0 / epsilon in the normaliser
    split.visual[:, 0] = 1.0
    model = AADML(**AADML_TINY)
    model.adapt(split)
    assert model.audio_tower.compute_dtype == _half(policy)
    _check_loss_parts_float32([model.audio_anchor_loss, model.visual_anchor_loss])
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    batch = aadml_batch(split)
    loss = model.compute_loss(x=batch, y_pred=model(batch, training=False), training=False)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    history = model.fit(batch, batch_size=24, epochs=8, verbose=0).history
    for key in ("loss", "loss_metric", "loss_label"):
        assert np.all(np.isfinite(history[key])), (key, history[key])
    assert min(history["loss"][-3:]) < history["loss"][0], history["loss"]
    assert 0.0 <= model.evaluate(av_split(seed=1))["MAP"] <= 1.0


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_presets_follow_the_global_policy(policy):
    adml = ADML.from_preset("adml_tiny")
    aadml = AADML.from_preset("aadml_avdigits")
    for model in (adml, aadml):
        assert model.dtype_policy.name == policy
        model.compile()
        # mixed_float16 needs loss scaling; Keras adds it from the model's policy
        is_scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert is_scaled == (policy == "mixed_float16")
    assert adml.audio_encoder.compute_dtype == _half(policy)
    _check_loss_parts_float32([adml.utterance_loss, adml.keyword_head, aadml.audio_anchor_loss])
    # the trained weights load into the half-precision model and still score in float32
    wave = np.sin(np.linspace(0, 2000, 16000)).astype("float32") * 0.1
    assert np.all(np.isfinite(adml.score([wave], ["hello", "world"])))
    assert ADML.from_preset("adml_tiny", dtype="float32").dtype_policy.name == "float32"


def test_policy_is_restored():
    assert keras.mixed_precision.global_policy().name == "float32"
