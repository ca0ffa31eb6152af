import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from kerasadml.metrics import (
    average_precision_per_query,
    precision_at_k,
    recall_at_k,
    retrieval_map,
    retrieval_report,
)


def _unit(deg):
    rad = np.deg2rad(deg)
    return np.array([np.cos(rad), np.sin(rad)])


# Hand-computed example: 2-D unit vectors, so the cosine ranking follows the angle gap.
#   gallery  g0 = 0 deg (A), g1 = 30 deg (B), g2 = 60 deg (A), g3 = (0, 1) (B), g4 = (-1, 0) (A)
#   query q0 = 0 deg, label A: ranks g0 g1 g2 g3 g4 -> relevant 1 0 1 0 1
#       AP = (1/1 + 2/3 + 3/5) / 3 = 0.755555...
#   query q1 = (0, 1), label B: gaps g3 0, g2 30, g1 60, g0 90, g4 90 -> g0 and g4 tie
#       exactly (cosine 0), broken by gallery index: ranks g3 g2 g1 g0 g4 -> relevant 1 0 1 0 0
#       AP = (1/1 + 2/3) / 2 = 0.833333...
#   query q2 = (-1, 0), label B: ranks g4 g3 g2 g1 g0 -> relevant 0 1 0 1 0
#       AP = (1/2 + 2/4) / 2 = 0.5
#   MAP = (0.755555 + 0.833333 + 0.5) / 3 = 0.696296...
GALLERY = np.stack([_unit(0), _unit(30), _unit(60), np.array([0.0, 1.0]), np.array([-1.0, 0.0])])
GALLERY_LABELS = np.array(["A", "B", "A", "B", "A"])
QUERIES = np.stack([_unit(0), np.array([0.0, 1.0]), np.array([-1.0, 0.0])])
QUERY_LABELS = np.array(["A", "B", "B"])
HAND_APS = [(1 + 2 / 3 + 3 / 5) / 3, (1 + 2 / 3) / 2, (1 / 2 + 2 / 4) / 2]


def test_hand_computed_map():
    aps = average_precision_per_query(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS)
    np.testing.assert_allclose(aps, HAND_APS, rtol=1e-12)
    assert retrieval_map(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS) == pytest.approx(
        np.mean(HAND_APS)
    )
    assert retrieval_map(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS) == pytest.approx(
        0.6962962963
    )


def test_hand_computed_recall_and_precision_at_k():
    # Relevance lists: q0 1 0 1 0 1, q1 1 0 1 0 0, q2 0 1 0 1 0.
    recall = recall_at_k(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 2, 5))
    assert recall == pytest.approx({1: 2 / 3, 2: 1.0, 5: 1.0})
    precision = precision_at_k(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS, ks=(1, 2, 5, 10))
    # k = 10 > gallery size 5 counts as k = 5.
    assert precision == pytest.approx({1: 2 / 3, 2: 1 / 2, 5: 7 / 15, 10: 7 / 15})


def test_queries_without_relevant_items_are_excluded_and_counted():
    queries = np.concatenate([QUERIES, [_unit(45)]])
    labels = np.concatenate([QUERY_LABELS, ["C"]])
    with pytest.warns(UserWarning, match="1 of 4 queries have no relevant item"):
        value = retrieval_map(queries, labels, GALLERY, GALLERY_LABELS)
    assert value == pytest.approx(np.mean(HAND_APS))
    aps = average_precision_per_query(queries, labels, GALLERY, GALLERY_LABELS)
    assert np.isnan(aps[3])
    with pytest.raises(ValueError, match="no query has a relevant item"):
        retrieval_map(queries[3:], labels[3:], GALLERY, GALLERY_LABELS)


@pytest.mark.parametrize(
    "metric",
    [
        retrieval_map,
        recall_at_k,
        precision_at_k,
        lambda q, ql, g, gl: retrieval_report(q, g, ql, gl),
    ],
    ids=["map", "recall", "precision", "report"],
)
def test_excluded_queries_warning_points_at_the_caller(metric):
    queries = np.concatenate([QUERIES, [_unit(45)]])
    labels = np.concatenate([QUERY_LABELS, ["C"]])
    with pytest.warns(UserWarning, match="no relevant item") as record:
        metric(queries, labels, GALLERY, GALLERY_LABELS)
    assert {w.filename for w in record} == {__file__}


def test_ties_are_broken_by_gallery_index():
    gallery = np.ones((4, 3))  # every gallery item ties
    # Relevant items at indices 1 and 3 -> ranks 2 and 4: AP = (1/2 + 2/4) / 2 = 0.5.
    assert retrieval_map([[1.0, 0.0, 0.0]], [7], gallery, [0, 7, 0, 7]) == pytest.approx(0.5)
    # At indices 0 and 1 -> ranks 1 and 2: AP = 1.
    assert retrieval_map([[1.0, 0.0, 0.0]], [7], gallery, [7, 7, 0, 0]) == pytest.approx(1.0)


def _random_problem(num_queries=40, gallery_size=120, dim=8, classes=5, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.randn(classes, dim)
    q_labels = rng.randint(classes, size=num_queries)
    g_labels = rng.randint(classes, size=gallery_size)
    queries = centres[q_labels] + 1.5 * rng.randn(num_queries, dim)
    gallery = centres[g_labels] + 1.5 * rng.randn(gallery_size, dim)
    return queries, q_labels, gallery, g_labels


@pytest.mark.parametrize("seed", [0, 1])
def test_per_query_ap_matches_sklearn(seed):
    queries, q_labels, gallery, g_labels = _random_problem(seed=seed)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    gn = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    expected = [
        average_precision_score(g_labels == label, gn @ q) for q, label in zip(qn, q_labels)
    ]
    aps = average_precision_per_query(queries, q_labels, gallery, g_labels, chunk_size=16)
    np.testing.assert_allclose(aps, expected, rtol=1e-10)
    assert retrieval_map(queries, q_labels, gallery, g_labels) == pytest.approx(np.mean(expected))


def test_results_do_not_depend_on_chunk_size():
    queries, q_labels, gallery, g_labels = _random_problem(num_queries=37, seed=2)
    results = []
    for chunk in (1, 3, 7, 37, 1000):
        results.append(
            (
                retrieval_map(queries, q_labels, gallery, g_labels, chunk_size=chunk),
                recall_at_k(queries, q_labels, gallery, g_labels, chunk_size=chunk),
                precision_at_k(queries, q_labels, gallery, g_labels, chunk_size=chunk),
            )
        )
    for other in results[1:]:
        assert other == results[0]


def _inflated_running_ap(relevant):
    """The variant some published code computes: the running AP (precision at the hits so
    far, averaged over the hits so far) taken at *every* rank, then averaged over ranks."""
    running, hits, precision_sum = [], 0, 0.0
    for rank, rel in enumerate(relevant, start=1):
        if rel:
            hits += 1
            precision_sum += hits / rank
        running.append(precision_sum / hits if hits else 0.0)
    return float(np.mean(running))


def test_map_is_not_the_inflated_every_rank_variant():
    # One query, relevance 1 0 0 1 down the ranking (gallery angles 0, 40, 60, 90 deg).
    gallery = np.stack([_unit(0), _unit(40), _unit(60), _unit(90)])
    labels = np.array([1, 0, 0, 1])
    relevant = [1, 0, 0, 1]
    # Correct AP = (1/1 + 2/4) / 2 = 0.75; the every-rank variant: (1 + 1 + 1 + 0.75) / 4.
    assert _inflated_running_ap(relevant) == pytest.approx(0.9375)
    value = retrieval_map([_unit(0)], [1], gallery, labels)
    assert value == pytest.approx(0.75)
    assert value != pytest.approx(_inflated_running_ap(relevant))
    # Also on random data, where the variant is inflated for most queries.
    queries, q_labels, gallery, g_labels = _random_problem(seed=3)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    gn = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    inflated = np.mean(
        [
            _inflated_running_ap(g_labels[np.argsort(-(gn @ q), kind="stable")] == label)
            for q, label in zip(qn, q_labels)
        ]
    )
    assert inflated > retrieval_map(queries, q_labels, gallery, g_labels) + 0.05


def test_memory_is_bounded_by_chunk_size():
    """Peak extra memory stays well below one Q x G float32 matrix."""
    rng = np.random.RandomState(0)
    num_queries, gallery_size = 3000, 2000
    queries = rng.randn(num_queries, 16).astype("float32")
    gallery = rng.randn(gallery_size, 16).astype("float32")
    q_labels = rng.randint(10, size=num_queries)
    g_labels = rng.randint(10, size=gallery_size)
    tracemalloc.start()
    try:
        retrieval_map(queries, q_labels, gallery, g_labels, chunk_size=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = num_queries * gallery_size * 4
    assert peak < full_matrix / 2, (peak, full_matrix)


def test_retrieval_report():
    rng = np.random.RandomState(1)
    labels = np.repeat(np.arange(4), 6)
    audio = np.eye(4)[labels] + 0.05 * rng.randn(24, 4)
    visual = np.eye(4)[labels] + 0.05 * rng.randn(24, 4)
    report = retrieval_report(audio, visual, labels, labels)
    for key in ("MAP_A2V", "MAP_V2A", "MAP", "R@1", "R@5", "R@10", "P@1", "P@5"):
        assert report[key] == pytest.approx(1.0)
    assert report["P@10"] == pytest.approx(6 / 10)  # only 6 items per class
    assert report["excluded_A2V"] == report["excluded_V2A"] == 0

    queries, q_labels, gallery, g_labels = _random_problem(seed=4)
    report = retrieval_report(queries, gallery, q_labels, g_labels, ks=(1, 3))
    a2v = retrieval_map(queries, q_labels, gallery, g_labels)
    v2a = retrieval_map(gallery, g_labels, queries, q_labels)
    assert report["MAP_A2V"] == pytest.approx(a2v)
    assert report["MAP_V2A"] == pytest.approx(v2a)
    assert report["MAP"] == pytest.approx((a2v + v2a) / 2)
    r_a2v = recall_at_k(queries, q_labels, gallery, g_labels, ks=(1, 3))
    r_v2a = recall_at_k(gallery, g_labels, queries, q_labels, ks=(1, 3))
    assert report["R@3"] == pytest.approx((r_a2v[3] + r_v2a[3]) / 2)
    p_a2v = precision_at_k(queries, q_labels, gallery, g_labels, ks=(1, 3))
    assert report["P@1_A2V"] == pytest.approx(p_a2v[1])
    for key in ("MAP", "R@1", "R@3", "P@1", "P@3"):
        assert 0.0 <= report[key] <= 1.0


def test_no_warning_when_every_query_has_a_relevant_item():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        retrieval_map(QUERIES, QUERY_LABELS, GALLERY, GALLERY_LABELS)


def test_validation():
    q, g = np.zeros((2, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match="query_emb must be 2-D"):
        retrieval_map(q[0], [0], g, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="same feature size"):
        retrieval_map(q, [0, 0], np.ones((4, 2)), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="gallery_labels must be 1-D with one label per row"):
        retrieval_map(q, [0, 0], g, [0, 0])
    with pytest.raises(ValueError, match="query_labels"):
        retrieval_map(q, [0], g, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="gallery_emb must be finite"):
        retrieval_map(q, [0, 0], np.full((4, 3), np.nan), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="chunk_size"):
        retrieval_map(q, [0, 0], g, [0, 0, 0, 0], chunk_size=0)
    with pytest.raises(ValueError, match="ks must be positive"):
        recall_at_k(q, [0, 0], g, [0, 0, 0, 0], ks=(0,))
