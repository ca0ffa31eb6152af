import keras
import numpy as np
import pytest

from kerasadml.metrics import StreamingAUC, StreamingEER, eer, roc_auc
from tests.helpers import roundtrip, to_numpy


def _cosine_trials(n=4000, seed=0):
    rng = np.random.RandomState(seed)
    labels = (rng.rand(n) < 0.4).astype("float32")
    scores = np.clip(rng.randn(n) * 0.3 + 0.35 * labels - 0.1, -1.0, 1.0).astype("float32")
    return labels, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_eer_approximates_exact_eer_over_batches(seed):
    labels, scores = _cosine_trials(seed=seed)
    metric = StreamingEER()
    for start in range(0, len(labels), 512):
        metric.update_state(labels[start : start + 512, None], scores[start : start + 512, None])
    value = float(to_numpy(metric.result()))
    assert abs(value - eer(labels, scores)) < 0.02
    assert abs(value - eer(labels, scores)) < 0.005  # 200 bins: in practice much closer


def test_streaming_eer_hand_example_and_edge_cases():
    metric = StreamingEER()
    assert float(to_numpy(metric.result())) == 0.0  # nothing seen yet
    metric.update_state([1, 1], [0.2, 0.4])
    assert float(to_numpy(metric.result())) == 0.0  # one class only
    metric.update_state([0, 0], [0.9, 0.95])  # every negative above every positive
    assert float(to_numpy(metric.result())) == pytest.approx(1.0)
    metric.reset_state()
    metric.update_state([0, 0, 1, 1], [-0.9, -0.5, 0.5, 0.9])  # separated
    assert float(to_numpy(metric.result())) == pytest.approx(0.0)
    metric.reset_state()
    metric.update_state([0, 0, 1, 1], [-5.0, 0.2, 0.1, 5.0])  # out of range: clipped to end bins
    assert float(to_numpy(metric.result())) == pytest.approx(
        eer([0, 0, 1, 1], [-5.0, 0.2, 0.1, 5.0])
    )


def test_sample_weight_equals_repetition():
    labels, scores = _cosine_trials(n=300, seed=3)
    weights = np.random.RandomState(0).randint(0, 4, size=300)
    weighted = StreamingEER()
    weighted.update_state(labels[:, None], scores[:, None], sample_weight=weights)
    repeated = StreamingEER()
    repeated.update_state(np.repeat(labels, weights), np.repeat(scores, weights))
    np.testing.assert_allclose(to_numpy(weighted.result()), to_numpy(repeated.result()), rtol=1e-5)


def test_reset_state():
    labels, scores = _cosine_trials(n=500, seed=4)
    metric = StreamingEER(num_thresholds=100)
    metric.update_state(labels[:250], scores[:250])
    metric.reset_state()
    assert float(to_numpy(metric.result())) == 0.0
    metric.update_state(labels[250:], scores[250:])
    fresh = StreamingEER(num_thresholds=100)
    fresh.update_state(labels[250:], scores[250:])
    assert float(to_numpy(metric.result())) == pytest.approx(float(to_numpy(fresh.result())))


def test_score_range_for_probabilities():
    labels, scores = _cosine_trials(n=2000, seed=5)
    probabilities = (scores + 1.0) / 2.0
    metric = StreamingEER(score_range=(0.0, 1.0))
    metric.update_state(labels, probabilities)
    assert abs(float(to_numpy(metric.result())) - eer(labels, probabilities)) < 0.01
    with pytest.raises(ValueError, match="score_range"):
        StreamingEER(score_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="num_thresholds"):
        StreamingEER(num_thresholds=1)


def test_streaming_auc_approximates_exact_auc_on_cosine_scores():
    labels, scores = _cosine_trials(seed=6)
    metric = StreamingAUC()
    metric.update_state(labels, scores)
    assert abs(float(to_numpy(metric.result())) - roc_auc(labels, scores)) < 0.01
    metric.reset_state()
    assert float(to_numpy(metric.result())) == 0.0


def test_config_roundtrip():
    for metric in (
        StreamingEER(num_thresholds=50, score_range=(0, 1), name="e"),
        StreamingAUC(num_thresholds=64),
    ):
        restored = roundtrip(metric)
        assert type(restored) is type(metric)
        assert restored.get_config() == metric.get_config()


def test_metrics_work_under_fit_and_evaluate_over_the_whole_set():
    rng = np.random.RandomState(0)
    x = rng.randn(512, 4).astype("float32")
    y = (x[:, 0] + 0.5 * rng.randn(512) > 0).astype("float32")[:, None]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="tanh")])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss="mse",
        metrics=[StreamingEER(), StreamingAUC()],
    )
    history = model.fit(x, y * 2.0 - 1.0, epochs=3, batch_size=64, verbose=0)
    assert set(history.history) >= {"eer", "auc"}
    assert all(0.0 <= v <= 1.0 for v in history.history["eer"] + history.history["auc"])
    assert history.history["eer"][-1] < 0.35
    # evaluate accumulates over all batches: equals the metric of the whole prediction set.
    results = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    scores = model.predict(x, verbose=0)[:, 0]
    assert abs(results["eer"] - eer(y[:, 0], scores)) < 0.02
    assert abs(results["auc"] - roc_auc(y[:, 0], scores)) < 0.01
