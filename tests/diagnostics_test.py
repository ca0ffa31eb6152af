"""Training diagnostics: per-term gradient norms of ADML's loss for each encoder, their
shares, and the callback that logs them during ``fit``.

``term_gradient_norms`` runs one forward and backward pass of the whole model per loss
term; on JAX these passes are not compiled (minutes for a tiny ADML on 2 CPU cores), so
the JAX run of the real computation is one call, marked slow; the callback's plumbing is
checked with a stub on both backends and with the real model on TensorFlow."""

import keras
import numpy as np
import pytest

from kerasadml import diagnostics
from kerasadml.diagnostics import LossGradientMonitor, gradient_shares, term_gradient_norms
from kerasadml.zoo import ADML
from tests.helpers import ADML_TINY_SIZES, backend_name

TINY = dict(
    ADML_TINY_SIZES,
    num_keywords=6,
    utterance_loss="proxy_nce",
    proxy_memory=True,
    text_pooling="attention",
    aligner_similarity="cosine",
    loss_warmup_steps=0,  # every term at full weight from the first step
)
TERMS = ("utt", "phn", "mm", "key", "adv")


def _batch(seed=0):
    rng = np.random.RandomState(seed)
    return {
        "audio": (0.1 * rng.randn(4, 8000)).astype("float32"),
        "audio_length": np.array([8000, 7000, 8000, 6000], "int32"),
        "phonemes": np.array([[5, 6, 7, 0], [5, 6, 7, 0], [8, 9, 0, 0], [10, 11, 12, 13]], "int32"),
        "label": np.array([0, 0, 1, 2], "int32"),
    }


def _state(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.variables]


def _check_norms_and_no_side_effect(model, off=(), on=("utt", "phn", "mm", "adv")):
    batch = _batch()
    before = _state(model)
    norms = term_gradient_norms(model, batch)
    after = _state(model)
    # the call leaves every variable (weights, BatchNorm statistics, seed state, memory) as it was
    changed = [v.path for v, a, b in zip(model.variables, before, after) if not np.array_equal(a, b)]
    assert changed == []
    assert set(norms) == {"audio", "text"}
    for group, values in norms.items():
        assert set(values) == set(TERMS), group
        for term, value in values.items():
            assert isinstance(value, float) and np.isfinite(value) and value >= 0.0, (group, term, value)
    for term in off:  # a switched-off term sends no gradient anywhere
        assert norms["audio"][term] == 0.0 and norms["text"][term] == 0.0, term
    for term in on:  # these reach both encoders
        assert norms["audio"][term] > 0 and norms["text"][term] > 0, term
    shares = gradient_shares(norms)
    for group in norms:
        assert sum(shares[group].values()) == pytest.approx(1.0)
        assert all(0.0 <= s <= 1.0 for s in shares[group].values())
    return norms


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_norms_are_finite_zero_for_an_off_term_and_leave_the_model_unchanged(backend):
    if backend != backend_name():
        pytest.skip(f"runs on {backend}")
    keras.utils.set_random_seed(0)
    model = ADML(**{**TINY, "keyword_loss": "none"})  # spec_augment on: training mode is random
    model.build()
    _check_norms_and_no_side_effect(model, off=("key",))


def test_norms_with_every_term_on():
    if backend_name() == "jax":
        pytest.skip("one real JAX call is enough (slow): see the test above")
    keras.utils.set_random_seed(0)
    model = ADML(**TINY)
    model.build()
    norms = _check_norms_and_no_side_effect(model)
    assert norms["audio"]["key"] > 0
    assert norms["text"]["key"] == 0.0  # the keyword head sees only the audio embedding
    # other groups: any variables, e.g. the aligner's
    aligner = term_gradient_norms(model, _batch(), groups={"aligner": model.aligner.trainable_variables})
    assert set(aligner) == {"aligner"}
    assert aligner["aligner"]["utt"] == 0.0  # the utterance loss does not use the aligner
    assert aligner["aligner"]["mm"] > 0


def test_terms_ramped_to_zero_by_the_warmup_send_no_gradient():
    if backend_name() == "jax":
        pytest.skip("one real JAX call is enough (slow): see the test above")
    keras.utils.set_random_seed(0)
    model = ADML(**{**TINY, "loss_warmup_steps": 5})
    model.build()
    norms = _check_norms_and_no_side_effect(model, off=("phn", "key", "adv"), on=("utt", "mm"))
    assert float(keras.ops.convert_to_numpy(model.loss_step)) == 0.0  # not counted as a step


def test_gradient_shares():
    shares = gradient_shares({"audio": {"utt": 3.0, "key": 1.0, "phn": 0.0}, "text": {"utt": 0.0, "key": 0.0}})
    assert shares == {"audio": {"utt": 0.75, "key": 0.25, "phn": 0.0}, "text": {"utt": 0.0, "key": 0.0}}
    assert gradient_shares({}) == {}


class _Stub:
    """Stands for ``term_gradient_norms``: fixed norms, counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, model, batch, groups=None):
        self.calls += 1
        assert set(batch) == {"x"}
        return {"audio": {"utt": 2.0 * self.calls, "key": 2.0}, "text": {"utt": 1.0, "key": 0.0}}


def test_callback_logs_every_group_and_term(monkeypatch):
    stub = _Stub()
    monkeypatch.setattr(diagnostics, "term_gradient_norms", stub)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    monitor = LossGradientMonitor({"x": x[:2]})
    history = model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[monitor]).history
    for key in ("grad_audio_utt", "grad_audio_key", "grad_text_utt", "grad_text_key"):
        assert len(history[key]) == 2, key
    assert history["grad_audio_utt"] == [4.0, 6.0]  # measured before training and after each epoch
    assert stub.calls == 3
    assert [h["epoch"] for h in monitor.history] == [0, 1, 2]
    assert monitor.history[1]["shares"]["audio"] == {"utt": 4.0 / 6.0, "key": 2.0 / 6.0}
    assert monitor.history[0]["norms"]["text"] == {"utt": 1.0, "key": 0.0}
    with pytest.raises(ValueError, match="every"):
        LossGradientMonitor({"x": x}, every=0)


def test_callback_measures_every_n_epochs(monkeypatch):
    stub = _Stub()
    monkeypatch.setattr(diagnostics, "term_gradient_norms", stub)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    monitor = LossGradientMonitor({"x": np.ones((2, 3), "float32")}, every=2)
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=4, verbose=0, callbacks=[monitor])
    assert [h["epoch"] for h in monitor.history] == [0, 2, 4]


def test_callback_on_adml_adds_grad_keys_to_the_history():
    if backend_name() == "jax":
        pytest.skip("term_gradient_norms is not compiled on JAX (minutes per call); plumbing checked with a stub")
    keras.utils.set_random_seed(0)
    model = ADML(**{**TINY, "spec_augment": False})
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    monitor = LossGradientMonitor(_batch(1))
    history = model.fit(_batch(), batch_size=2, epochs=1, verbose=0, callbacks=[monitor]).history  # 2 steps
    for group in ("audio", "text"):
        for term in TERMS:
            key = f"grad_{group}_{term}"
            assert key in history and len(history[key]) == 1 and np.isfinite(history[key][0]), key
    assert history["grad_audio_utt"][0] > 0
    assert len(monitor.history) == 2
