import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from kerasadml.metrics import (
    average_precision,
    detection_report,
    eer,
    eer_threshold,
    roc_auc,
)


def _brentq_eer(labels, scores):
    """The common independent recipe: root of 1 - x - TPR(x) on the interpolated ROC."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def _random_trials(n=2000, seed=0, overlap=1.0):
    rng = np.random.RandomState(seed)
    labels = (rng.rand(n) < 0.3).astype(int)
    scores = rng.randn(n) * overlap + 1.5 * labels
    return labels, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_matches_the_interpolated_roc_crossing(seed):
    labels, scores = _random_trials(seed=seed)
    np.testing.assert_allclose(eer(labels, scores), _brentq_eer(labels, scores), atol=1e-9)


def test_eer_threshold_balances_the_error_rates():
    labels, scores = _random_trials(n=20000, seed=3)
    thr = eer_threshold(labels, scores)
    far = np.mean(scores[labels == 0] >= thr)
    frr = np.mean(scores[labels == 1] < thr)
    assert abs(far - frr) < 2e-3
    assert abs(eer(labels, scores) - (far + frr) / 2) < 2e-3


def test_hand_computed_examples():
    # Scores 0.9 (+), 0.6 (-), 0.4 (+), 0.1 (-): at threshold 0.6 one negative is accepted
    # (FAR 1/2) and one positive rejected (FRR 1/2): EER 0.5 exactly at a ROC point.
    assert eer([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]) == pytest.approx(0.5)
    assert eer_threshold([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9]) == pytest.approx(0.6)
    # Scores 0.9 (+), 0.5 (+), 0.5 (-), 0.1 (-): ROC points (FAR, FRR) = (0, 1/2) at 0.9 and
    # (1/2, 0) at 0.5; they cross halfway: EER 1/4, threshold 0.9 + (0.5 - 0.9) / 2 = 0.7.
    assert eer([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.25)
    assert eer_threshold([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.7)
    # Perfect separation and perfectly wrong scores.
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.0)
    assert eer([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == pytest.approx(1.0)
    # All scores equal: no information, EER 0.5, threshold the common score.
    assert eer([0, 1, 0, 1], [0.3] * 4) == pytest.approx(0.5)
    assert eer_threshold([0, 1, 0, 1], [0.3] * 4) == pytest.approx(0.3)


def test_eer_is_invariant_to_monotone_transforms_and_order():
    labels, scores = _random_trials(n=500, seed=4)
    perm = np.random.RandomState(0).permutation(500)
    base = eer(labels, scores)
    assert eer(labels[perm], scores[perm]) == pytest.approx(base)
    assert eer(labels, np.tanh(scores / 3)) == pytest.approx(base)


def test_auc_and_ap_follow_sklearn():
    labels, scores = _random_trials(seed=5)
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores)
    )


def test_detection_report():
    labels, scores = _random_trials(n=300, seed=6)
    report = detection_report(labels.astype(bool), scores.astype("float32"))
    assert set(report) == {"EER", "AUC", "AP", "threshold", "positives", "negatives"}
    assert report["positives"] == int(labels.sum())
    assert report["negatives"] == int((1 - labels).sum())
    assert report["EER"] == pytest.approx(eer(labels, scores), abs=1e-6)
    assert report["threshold"] == pytest.approx(eer_threshold(labels, scores), abs=1e-5)
    assert report["AUC"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert report["AP"] == pytest.approx(average_precision_score(labels, scores), abs=1e-6)
    for key in ("EER", "AUC", "AP"):
        assert 0.0 <= report[key] <= 1.0
        assert isinstance(report[key], float)


@pytest.mark.parametrize("fn", [eer, eer_threshold, roc_auc, average_precision, detection_report])
def test_validation(fn):
    with pytest.raises(ValueError, match="same length"):
        fn([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels must be 1-D"):
        fn([[0, 1]], [0.1, 0.2])
    with pytest.raises(ValueError, match="scores must be 1-D"):
        fn([0, 1], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="labels must be binary"):
        fn([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels must be binary"):
        fn(["a", "b"], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels must contain both classes"):
        fn([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="scores must be finite"):
        fn([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="scores must be finite"):
        fn([0, 1], [np.inf, 0.2])
