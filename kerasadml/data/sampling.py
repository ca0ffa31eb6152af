"""Class-balanced batch sampling: the one ``P x K`` sampler both training pipelines use.

Metric-learning losses need positives and negatives inside each batch, so the keyword
spotting pipeline (:func:`kerasadml.data.speech.dataset.make_kws_training_dataset`,
``K`` keywords x ``M`` clips) and the audio-visual pipeline
(:func:`kerasadml.data.av.dataset.make_av_dataset`, ``P`` classes x ``Q`` videos) both
draw their rows with :class:`ClassBalancedSampler`. The sampler returns row indices only
(NumPy, no TensorFlow); the pipelines turn them into tensors.

Example:

>>> import numpy as np
>>> sampler = ClassBalancedSampler.from_labels(
...     np.array([0, 0, 1, 1, 2, 2]), classes_per_batch=2, samples_per_class=2, rng=0)
>>> rows, groups = sampler.next_batch()
>>> rows.shape, len(set(groups.tolist()))
((4,), 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

SampleMode = Literal["draw", "cycle"]
_SAMPLE_MODES = ("draw", "cycle")


class ClassBalancedSampler:
    """Batches of ``P = classes_per_batch`` distinct classes x ``Q = samples_per_class``
    samples each, rows grouped by class.

    **Classes** are visited in rounds: each round is a shuffled order of all classes
    (sorted with ``shuffle=False``) and every class comes once per round. A round is
    drawn when fewer than ``P`` classes are left queued; the classes still queued finish
    the old round first and are left out of the new one, so no class is twice in a batch.

    **Samples** of a class, two modes:

    * ``samples="draw"``: every batch draws ``Q`` of the class's samples at random,
      without replacement inside the batch when the class has at least ``Q``, with
      replacement otherwise (batches are independent).
    * ``samples="cycle"``: each class keeps a queue of its samples (shuffled, or sorted
      with ``shuffle=False``), refilled when empty, so every sample is used once before
      any is used again; a queue refilled in the middle of a batch leaves out the samples
      the batch already holds. A class with fewer than ``Q`` samples gives each of them
      once and repeats some (at random; cyclically with ``shuffle=False``).

    **Families** (``neighbours`` and ``family_size`` F > 1): each class taken from the
    round brings up to F - 1 of its neighbours (e.g. hard negatives) that are not in the
    batch yet, chosen at random, so every batch contrasts close classes. A neighbour
    taken this way still gets its own turn in the round.

    **Length grouping** (``lengths``, a typical length per class): each round is cut into
    pools of about ``pool_batches`` batches and each pool is sorted by length (in a
    random direction) and consumed in order ("sortish" batching), so a batch holds
    classes of similar length while every class still comes once per round. Family
    neighbours are then only those within a factor ``slack`` of the class's length. With
    ``clip_lengths`` too (a length per sample; ``samples="draw"`` only), a class's
    samples are drawn among those at most ``slack`` times the longest typical length of
    the batch's classes (all its samples when fewer than ``Q`` qualify), so one long
    sample does not widen the whole padded batch.

    Args:
        groups: per class, the indices of its samples (non-empty); class ``g`` is
            ``groups[g]``. :meth:`from_labels` builds them from a label array.
        classes_per_batch: ``P``, at most ``len(groups)``.
        samples_per_class: ``Q``.
        rng: a ``numpy.random.Generator`` (used as is) or a seed for
            ``numpy.random.default_rng``.
        shuffle: ``False``: classes in sorted order every round and, with
            ``samples="cycle"``, samples in sorted order; uses no randomness but the
            repeats of a small class, so it only goes with ``samples="cycle"`` and no
            families or length grouping.
        samples: ``"draw"`` or ``"cycle"`` (above).
        neighbours: per class, an array of neighbour classes; ignored (``family_size``
            taken as 1) when ``None``.
        family_size: ``F``, at most this many classes per family.
        lengths: per class, a typical length, for length grouping.
        pool_batches: length grouping: batches per sorted pool.
        clip_lengths: per sample index, its length (only used with ``lengths``).
        slack: length tolerance factor (``>= 1``) of families and ``clip_lengths``.

    Raises:
        ValueError: no classes, an empty class, ``P`` or ``Q`` below 1, ``P`` above the
            number of classes, arrays of the wrong length, or options that do not go
            together.

    Example:

    >>> import numpy as np
    >>> groups = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7, 8])]
    >>> sampler = ClassBalancedSampler(groups, 2, 2, rng=0, shuffle=False, samples="cycle")
    >>> [sampler.next_batch()[0].tolist() for _ in range(3)]
    [[0, 1, 3, 4], [5, 6, 2, 0], [3, 4, 1, 0]]
    """

    def __init__(
        self,
        groups: Sequence[np.ndarray],
        classes_per_batch: int,
        samples_per_class: int,
        rng: np.random.Generator | int | Sequence[int] | None = None,
        *,
        shuffle: bool = True,
        samples: SampleMode = "draw",
        neighbours: Sequence[np.ndarray] | None = None,
        family_size: int = 1,
        lengths: np.ndarray | None = None,
        pool_batches: int = 16,
        clip_lengths: np.ndarray | None = None,
        slack: float = 1.2,
    ):
        self.groups = [np.asarray(g, np.int64).reshape(-1) for g in groups]
        self.classes_per_batch, self.samples_per_class = int(classes_per_batch), int(samples_per_class)
        if not self.groups:
            raise ValueError("ClassBalancedSampler: no classes given")
        empty = [g for g, members in enumerate(self.groups) if members.size == 0]
        if empty:
            raise ValueError(f"ClassBalancedSampler: class(es) {empty[:10]} have no samples")
        if self.classes_per_batch < 1 or self.samples_per_class < 1:
            raise ValueError("ClassBalancedSampler: classes_per_batch and samples_per_class must be >= 1")
        if self.classes_per_batch > len(self.groups):
            raise ValueError(
                f"ClassBalancedSampler: classes_per_batch={self.classes_per_batch} but only "
                f"{len(self.groups)} class(es)"
            )
        if samples not in _SAMPLE_MODES:
            raise ValueError(f"ClassBalancedSampler: samples must be one of {_SAMPLE_MODES}, got {samples!r}")
        self.rng = np.random.default_rng(rng)
        self.shuffle = bool(shuffle)
        self.samples = samples
        self.neighbours = None if neighbours is None else [np.asarray(n, np.int64).reshape(-1) for n in neighbours]
        self.family_size = max(1, int(family_size)) if neighbours is not None else 1
        self.lengths = None if lengths is None else np.asarray(lengths, np.float64)
        self.pool_batches = max(1, int(pool_batches))
        self.clip_lengths = None if clip_lengths is None or lengths is None else np.asarray(clip_lengths)
        self.slack = float(slack)
        if self.neighbours is not None and len(self.neighbours) != len(self.groups):
            raise ValueError("ClassBalancedSampler: neighbours must have one entry per class")
        if self.lengths is not None and self.lengths.shape != (len(self.groups),):
            raise ValueError("ClassBalancedSampler: lengths must have one value per class")
        if self.clip_lengths is not None and samples != "draw":
            raise ValueError('ClassBalancedSampler: clip_lengths needs samples="draw"')
        if not self.shuffle and (samples != "cycle" or self.family_size > 1 or self.lengths is not None):
            raise ValueError(
                'ClassBalancedSampler: shuffle=False goes only with samples="cycle", '
                "without families or length grouping"
            )
        #: class indices still to come in the current round, in order
        self.queue: list[int] = []
        self._sample_queues: list[list[int]] = [[] for _ in self.groups]
        #: label value of each class (set by :meth:`from_labels`; else the class index)
        self.classes = np.arange(len(self.groups))

    @classmethod
    def from_labels(
        cls,
        labels: np.ndarray,
        classes_per_batch: int,
        samples_per_class: int,
        rng: np.random.Generator | int | Sequence[int] | None = None,
        **options,
    ) -> ClassBalancedSampler:
        """A sampler over the rows of ``labels`` (one class per distinct label, in sorted
        order; ``sampler.classes[g]`` is the label of class ``g``). ``options`` are those
        of the constructor."""
        labels = np.asarray(labels).reshape(-1)
        classes = np.unique(labels)
        sampler = cls(
            [np.flatnonzero(labels == c) for c in classes], classes_per_batch, samples_per_class, rng, **options
        )
        sampler.classes = classes
        return sampler

    # ------------------------------------------------------------------------- classes
    def _round(self, pending: set) -> list[int]:
        """The next round: every class not in ``pending`` (still queued), in order."""
        n = len(self.groups)
        order = self.rng.permutation(n).tolist() if self.shuffle else list(range(n))
        order = [g for g in order if g not in pending]
        if self.lengths is None:
            return order
        # a batch takes P classes, or P / family_size seeds when families fill it
        per_batch = max(1, self.classes_per_batch // self.family_size)
        pool = per_batch * self.pool_batches
        out: list[int] = []
        for start in range(0, len(order), pool):
            # Sorted pools are consumed in order (a batch may take more seeds than
            # ``per_batch`` when families are small, so batches are not cut here); the
            # direction of each pool is random.
            chunk = sorted(order[start : start + pool], key=lambda g: self.lengths[g])
            out.extend(chunk[::-1] if self.rng.random() < 0.5 else chunk)
        return out

    def _refill(self) -> None:
        if len(self.queue) < self.classes_per_batch:
            self.queue = self.queue + self._round(set(self.queue))

    def next_classes(self) -> list[int]:
        """The ``P`` distinct class indices of the next batch."""
        k = self.classes_per_batch
        self._refill()
        if self.family_size == 1:
            chosen, self.queue = self.queue[:k], self.queue[k:]
            return chosen
        chosen: list[int] = []
        taken: set[int] = set()
        while len(chosen) < k:
            self._refill()
            seed = self.queue.pop(0)
            if seed in taken:
                continue
            chosen.append(seed)
            taken.add(seed)
            near = [g for g in self.neighbours[seed].tolist() if g not in taken]
            if self.lengths is not None:  # keep the batch's lengths together
                low, high = self.lengths[seed] / self.slack, self.lengths[seed] * self.slack
                near = [g for g in near if low <= self.lengths[g] <= high]
            if near:
                count = min(len(near), self.family_size - 1, k - len(chosen))
                for g in self.rng.choice(len(near), size=count, replace=False).tolist():
                    chosen.append(near[g])
                    taken.add(near[g])
        return chosen

    # ------------------------------------------------------------------------- samples
    def _order(self, values: np.ndarray) -> list[int]:
        return [int(v) for v in (self.rng.permutation(values) if self.shuffle else values)]

    def _cycle(self, g: int) -> list[int]:
        """``Q`` samples of class ``g`` from its queue (``samples="cycle"``)."""
        members, q = self.groups[g], self.samples_per_class
        if len(members) < q:
            # Small class: every member once, the rest drawn again (with replacement).
            extra = (
                self.rng.choice(members, q - len(members))
                if self.shuffle
                else np.resize(members, q - len(members))
            )
            return self._order(members) + [int(i) for i in extra]
        queue = self._sample_queues[g]
        taken: list[int] = []
        while len(taken) < q:
            if not queue:
                queue.extend(i for i in self._order(members) if i not in taken)
            taken.append(queue.pop(0))
        return taken

    def _draw(self, members: np.ndarray, limit: float | None) -> list[int]:
        """``Q`` random samples among ``members`` (``samples="draw"``)."""
        m = self.samples_per_class
        if limit is not None:
            short = members[self.clip_lengths[members] <= limit]
            if short.shape[0] >= min(m, members.shape[0]):
                members = short
        replace = members.shape[0] < m
        picks = self.rng.choice(members.shape[0], size=m, replace=replace)
        return members[picks].tolist()

    def next_batch(self, usable: Callable[[int], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The next batch: ``(rows, classes)``, int64 ``(P * Q,)`` each, the sample
        indices and the class index of each row, grouped by class.

        ``usable`` (``samples="draw"`` only): class index -> the samples currently
        allowed (e.g. without files that failed to decode); default ``groups[g]``.
        """
        chosen = self.next_classes()
        rows: list[int] = []
        if self.samples == "cycle":
            if usable is not None:
                raise ValueError('ClassBalancedSampler.next_batch: usable needs samples="draw"')
            for g in chosen:
                rows.extend(self._cycle(g))
        else:
            limit = None
            if self.clip_lengths is not None:
                # The batch is padded to its longest sample: draw each class's samples
                # among those no longer than the batch's typical class length allows (at
                # least Q per class when it has them), so that one slow voice does not
                # double the width of the whole batch.
                limit = self.slack * float(np.max(self.lengths[chosen]))
            for g in chosen:
                rows.extend(self._draw(self.groups[g] if usable is None else usable(g), limit))
        classes = np.repeat(np.asarray(chosen, np.int64), self.samples_per_class)
        return np.asarray(rows, np.int64), classes
