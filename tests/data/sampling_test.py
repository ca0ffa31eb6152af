"""ClassBalancedSampler, checked against properties derived by hand (rounds, families,
queues, sorted order), not against a second run of the same code."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from kerasadml.data.sampling import ClassBalancedSampler


def _groups(sizes):
    """Class g holds the consecutive indices ``sum(sizes[:g]) ... sum(sizes[:g+1]) - 1``."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return [np.arange(offsets[g], offsets[g + 1]) for g in range(len(sizes))]


def _batches(sampler, n):
    return [sampler.next_batch() for _ in range(n)]


def _classes_of(batch, q):
    """The P classes of a batch (rows are grouped by class, Q each)."""
    rows, classes = batch
    assert rows.dtype == np.int64 and classes.dtype == np.int64
    assert rows.shape == classes.shape and rows.shape[0] % q == 0
    per_class = classes.reshape(-1, q)
    assert (per_class == per_class[:, :1]).all()  # grouped
    return per_class[:, 0].tolist()


# ---------------------------------------------------------------------------- classes
@pytest.mark.parametrize("samples", ["draw", "cycle"])
def test_every_class_once_per_round_when_p_divides_the_classes(samples):
    groups = _groups([3] * 12)
    sampler = ClassBalancedSampler(groups, 4, 2, rng=0, samples=samples)
    batches = _batches(sampler, 30)  # 10 rounds of 3 batches
    for r in range(10):
        round_classes = [c for b in batches[3 * r : 3 * r + 3] for c in _classes_of(b, 2)]
        assert sorted(round_classes) == list(range(12)), r
    # rounds are shuffled: not all the same order
    orders = {tuple(c for b in batches[3 * r : 3 * r + 3] for c in _classes_of(b, 2)) for r in range(10)}
    assert len(orders) > 1


def test_rounds_when_p_does_not_divide_the_classes():
    # 7 classes, 3 per batch: a round's last class finishes it in the next batch, and the
    # next round leaves it out. So the first 7 turns are all classes, no batch repeats a
    # class, and two turns of a class are never more than 2 * 7 - 1 positions apart.
    n, p = 7, 3
    sampler = ClassBalancedSampler(_groups([2] * n), p, 2, rng=4)
    flat = []
    for batch in _batches(sampler, 100):
        chosen = _classes_of(batch, 2)
        assert len(set(chosen)) == p
        flat.extend(chosen)
    assert sorted(flat[:n]) == list(range(n))
    for c in range(n):
        positions = [i for i, g in enumerate(flat) if g == c]
        assert positions[0] < n
        assert max(np.diff(positions)) <= 2 * n - 1, c


def test_no_class_twice_in_a_batch_with_families_and_lengths():
    groups = _groups([4] * 10)
    neighbours = [np.array([(g + 1) % 10, (g + 2) % 10, (g + 9) % 10]) for g in range(10)]
    lengths = np.linspace(1000, 1300, 10)
    sampler = ClassBalancedSampler(
        groups, 5, 3, rng=1, neighbours=neighbours, family_size=3, lengths=lengths, pool_batches=2
    )
    for batch in _batches(sampler, 50):
        chosen = _classes_of(batch, 3)
        assert len(chosen) == 5 and len(set(chosen)) == 5
        for row, c in zip(*batch):
            assert row in groups[c]


# --------------------------------------------------------------------------- families
def test_families_bring_their_neighbours():
    # four disjoint cliques of 3: a seed brings its 2 neighbours (family_size 3), so with
    # P = 3 every batch is one whole clique, and with P = 6 the union of two cliques.
    cliques = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11)]
    neighbours = [np.array(sorted(set(next(f for f in cliques if g in f)) - {g})) for g in range(12)]
    groups = _groups([2] * 12)
    one = ClassBalancedSampler(groups, 3, 2, rng=0, neighbours=neighbours, family_size=3)
    for batch in _batches(one, 40):
        assert tuple(sorted(_classes_of(batch, 2))) in cliques
    two = ClassBalancedSampler(groups, 6, 2, rng=0, neighbours=neighbours, family_size=3)
    for batch in _batches(two, 40):
        chosen = set(_classes_of(batch, 2))
        assert sum(set(f) <= chosen for f in cliques) == 2, chosen
    # every clique comes: seeds follow the shuffled rounds
    seen = collections.Counter(c for batch in _batches(one, 40) for c in _classes_of(batch, 2))
    assert set(seen) == set(range(12))


def test_family_size_two_adds_one_neighbour_and_plain_batches_do_not():
    # neighbours are pairs (2i, 2i+1): with family_size 2 and P = 2 every batch is a pair.
    neighbours = [np.array([g ^ 1]) for g in range(10)]
    groups = _groups([3] * 10)
    pairs = ClassBalancedSampler(groups, 2, 1, rng=2, neighbours=neighbours, family_size=2)
    for batch in _batches(pairs, 30):
        a, b = sorted(_classes_of(batch, 1))
        assert b == a + 1 and a % 2 == 0
    # without neighbours family_size is ignored, and pairs are only chance
    plain = ClassBalancedSampler(groups, 2, 1, rng=2, family_size=2)
    assert plain.family_size == 1
    together = sum(
        sorted(_classes_of(b, 1))[1] == sorted(_classes_of(b, 1))[0] + 1 and min(_classes_of(b, 1)) % 2 == 0
        for b in _batches(plain, 100)
    )
    assert together < 50


# ---------------------------------------------------------------------------- samples
def test_shuffle_false_keeps_sorted_order():
    # 4 classes of 4 samples (class g holds 4g .. 4g+3), 2 classes x 2 samples: classes go
    # 0,1 | 2,3 | 0,1 | ..., and each class gives its samples in order, two per visit.
    groups = _groups([4, 4, 4, 4])
    sampler = ClassBalancedSampler(groups, 2, 2, rng=0, shuffle=False, samples="cycle")
    got = [b[0].tolist() for b in _batches(sampler, 6)]
    expected = []
    visits = collections.Counter()
    for b in range(6):
        rows = []
        for c in ((2 * b) % 4, (2 * b + 1) % 4):
            t = visits[c]
            visits[c] += 1
            rows.extend((4 * c + np.arange(2 * t, 2 * t + 2) % 4).tolist())
        expected.append(rows)
    assert got == expected
    # no randomness: any seed gives the same batches
    other = ClassBalancedSampler(groups, 2, 2, rng=99, shuffle=False, samples="cycle")
    assert [b[0].tolist() for b in _batches(other, 6)] == expected


def test_shuffle_false_round_and_queue_tails_by_hand():
    # classes [0 1 2] [3 4] [5 6 7 8], P = Q = 2.
    # batch 1: classes 0, 1 -> 0 1 | 3 4; class 2 is left of round 1, round 2 is [0, 1].
    # batch 2: classes 2, 0 -> 5 6 | 2, then class 0's queue refills without 2 -> 0.
    # batch 3: class 1 is left of round 2, round 3 is [0, 2]: classes 1, 0 -> 3 4 | 1 0.
    groups = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7, 8])]
    sampler = ClassBalancedSampler(groups, 2, 2, shuffle=False, samples="cycle")
    assert [b[0].tolist() for b in _batches(sampler, 3)] == [[0, 1, 3, 4], [5, 6, 2, 0], [3, 4, 1, 0]]


def test_cycle_uses_every_sample_before_reusing_one():
    groups = _groups([8, 12, 4])  # each a multiple of Q = 4
    sampler = ClassBalancedSampler(groups, 3, 4, rng=3, samples="cycle")
    taken = {c: [] for c in range(3)}
    for batch in _batches(sampler, 12):
        rows, classes = batch
        for c in _classes_of(batch, 4):
            block = rows[classes == c].tolist()
            assert len(set(block)) == 4  # no repeat inside a batch
            taken[c].extend(block)
    for c, members in enumerate(groups):
        size = len(members)
        full = len(taken[c]) // size
        assert full >= 3
        for k in range(full):  # every consecutive block of one class's size is a permutation
            assert sorted(taken[c][k * size : (k + 1) * size]) == members.tolist(), (c, k)
    assert taken[1][:12] != taken[1][12:24]  # passes are shuffled anew


@pytest.mark.parametrize("shuffle", [True, False])
def test_small_class_gives_every_member_and_repeats_some(shuffle):
    groups = [np.array([0, 1]), np.arange(2, 12), np.arange(12, 22)]
    sampler = ClassBalancedSampler(groups, 3, 5, rng=0, shuffle=shuffle, samples="cycle")
    for rows, classes in _batches(sampler, 10):
        small = rows[classes == 0].tolist()
        assert len(small) == 5 and set(small) == {0, 1}
        if not shuffle:
            assert small == [0, 1, 0, 1, 0]  # each member once, then cyclic repeats
        for c in (1, 2):
            assert len(set(rows[classes == c].tolist())) == 5


def test_draw_mode_without_replacement_when_possible():
    groups = [np.array([0, 1]), np.arange(2, 12), np.arange(12, 15)]
    sampler = ClassBalancedSampler(groups, 3, 3, rng=5)
    seen_small = set()
    for rows, classes in _batches(sampler, 30):
        small = rows[classes == 0].tolist()
        assert len(small) == 3 and set(small) <= {0, 1}  # fewer than Q: with replacement
        seen_small |= set(small)
        assert sorted(rows[classes == 2].tolist()) == [12, 13, 14]  # exactly Q: all of them
        large = rows[classes == 1].tolist()
        assert len(set(large)) == 3 and set(large) <= set(range(2, 12))
    assert seen_small == {0, 1}


def test_draw_mode_usable_restricts_the_samples():
    groups = _groups([5, 5, 5])
    sampler = ClassBalancedSampler(groups, 3, 2, rng=0)
    for rows, classes in (sampler.next_batch(lambda g: groups[g][:2]) for _ in range(10)):
        for row, c in zip(rows, classes):
            assert row in groups[c][:2]


def test_clip_lengths_keep_long_samples_out():
    # class 0 has one sample 30x its typical length: never drawn while 2 short ones exist
    groups = [np.array([0, 1, 2]), np.array([3, 4])]
    clip_lengths = np.array([100, 100, 3000, 100, 110], float)
    sampler = ClassBalancedSampler(
        groups, 2, 2, rng=0, lengths=np.array([100.0, 105.0]), clip_lengths=clip_lengths
    )
    for rows, _ in _batches(sampler, 20):
        assert 2 not in rows.tolist()


# ------------------------------------------------------------------ labels, seeds, errors
def test_from_labels_maps_classes_to_label_values():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat([3, 7, 42], [5, 6, 7]))
    sampler = ClassBalancedSampler.from_labels(labels, 2, 3, rng=1, samples="cycle")
    assert sampler.classes.tolist() == [3, 7, 42]
    for rows, classes in _batches(sampler, 10):
        np.testing.assert_array_equal(labels[rows], sampler.classes[classes])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"samples": "cycle"},
        {"neighbours": [np.array([(g + 1) % 8]) for g in range(8)], "family_size": 2,
         "lengths": np.arange(8) * 100.0 + 1000, "clip_lengths": np.arange(32) * 25.0 + 1000},
    ],
)
def test_same_seed_same_batches_other_seed_other_batches(options):
    groups = _groups([4] * 8)

    def run(rng):
        return [(r.tolist(), c.tolist()) for r, c in _batches(ClassBalancedSampler(groups, 4, 2, rng, **options), 12)]

    first = run(7)
    assert run(7) == first
    assert run(np.random.default_rng(7)) == first  # a seed or its generator
    assert run([7, 1]) != first and run(8) != first


def test_bad_arguments_are_refused():
    groups = _groups([2, 2, 2])
    with pytest.raises(ValueError, match="only 3 class"):
        ClassBalancedSampler(groups, 4, 2)
    with pytest.raises(ValueError, match="no samples"):
        ClassBalancedSampler(groups + [np.array([], np.int64)], 2, 2)
    with pytest.raises(ValueError, match=">= 1"):
        ClassBalancedSampler(groups, 2, 0)
    with pytest.raises(ValueError, match="samples must be"):
        ClassBalancedSampler(groups, 2, 2, samples="random")
    with pytest.raises(ValueError, match="shuffle=False"):
        ClassBalancedSampler(groups, 2, 2, shuffle=False)  # "draw" is random by nature
    with pytest.raises(ValueError, match="clip_lengths"):
        ClassBalancedSampler(groups, 2, 2, samples="cycle", lengths=np.ones(3), clip_lengths=np.ones(6))
    with pytest.raises(ValueError, match="usable"):
        ClassBalancedSampler(groups, 2, 2, samples="cycle").next_batch(lambda g: groups[g])
