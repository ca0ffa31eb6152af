"""tf.data pipelines of paired audio-visual features for AADML training.

AADML's anchor-aware proxies (docs/methods.md §2.2) look for each anchor's ``k`` nearest
neighbours *inside the batch*, and its triplet / contrastive losses need cross-modal
positives in the batch. A uniformly shuffled batch of a low-resource split often has a
class with a single member; :func:`make_av_dataset` therefore draws **class-balanced**
batches by default: ``P`` classes x ``Q`` videos per class (the "PK sampler" of
metric learning, :class:`kerasadml.data.sampling.ClassBalancedSampler` with
``samples="cycle"``), so every anchor has ``Q - 1`` same-class partners in its own
modality and ``Q`` positives in the other. Batches have a fixed shape
(``drop_remainder``), so a JAX-backed model compiles once.

Example:

>>> from kerasadml.data.av.features import load_av_hdf5
>>> from kerasadml.data.av.dataset import make_av_dataset, av_steps_per_epoch
>>> data = load_av_hdf5("av_digits.h5")                                  # doctest: +SKIP
>>> ds = make_av_dataset(data.train, batch_size=64)                      # doctest: +SKIP
>>> batch = next(iter(ds))      # {"audio": (64, 128), "visual": (64, 1024), "label": (64,)}
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from kerasadml.data.av.features import AVSplit
from kerasadml.data.sampling import ClassBalancedSampler

logger = logging.getLogger(__name__)


def default_classes_per_batch(batch_size: int, num_classes: int) -> int:
    """The largest ``P`` that divides ``batch_size``, is at most ``num_classes`` and
    leaves ``Q = batch_size / P >= 2`` videos per class (e.g. 64 over 10 classes ->
    8 x 8; 32 over 15 classes -> 8 x 4)."""
    for p in range(min(num_classes, batch_size // 2), 1, -1):
        if batch_size % p == 0:
            return p
    raise ValueError(
        f"cannot split a batch of {batch_size} into at least 2 classes x at least 2 "
        f"samples with {num_classes} classes; use a larger even batch_size or "
        "class_balanced=False"
    )


def av_steps_per_epoch(split: AVSplit, batch_size: int) -> int:
    """Batches in one pass over ``split`` (``len(split) // batch_size``): the
    ``steps_per_epoch`` to give ``model.fit`` with a repeating dataset."""
    return max(1, len(split) // batch_size)


def _check_args(split: AVSplit, batch_size: int) -> None:
    if not isinstance(split, AVSplit):
        raise TypeError(f"make_av_dataset takes an AVSplit, not {type(split).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    if batch_size > len(split):
        raise ValueError(
            f"batch_size={batch_size} is larger than the split ({len(split)} samples); "
            "use a batch_size of at most the number of training samples"
        )


def make_av_dataset(
    split: AVSplit,
    batch_size: int = 64,
    *,
    shuffle: bool = True,
    class_balanced: bool = True,
    classes_per_batch: int | None = None,
    seed: int = 0,
    repeat: bool = True,
    drop_remainder: bool = True,
):
    """A ``tf.data.Dataset`` of batches ``{"audio", "visual", "label"}`` from a split.

    Each element is a dict: ``"audio"`` float32 ``(B, Da)``, ``"visual"`` float32
    ``(B, Dv)``, ``"label"`` int32 ``(B,)``; row ``i`` of audio and visual is one video.
    For ``model.fit`` map it to ``(inputs, targets)`` as the model needs, e.g.
    ``ds.map(lambda b: ({"audio": b["audio"], "visual": b["visual"]}, b["label"]))``.

    Args:
        split: the :class:`~kerasadml.data.av.features.AVSplit` to draw from
            (normally the scaled training split).
        batch_size: rows per batch; must be at most ``len(split)``.
        shuffle: shuffle the order (``False``: a fixed, sorted order, for debugging).
        class_balanced: ``P`` classes x ``Q = batch_size / P`` videos per batch, so
            every anchor has same-class partners (needed by k-NN proxies and
            triplet/contrastive positives). An "epoch" is ``len(split) // batch_size``
            batches; classes and samples are visited round-robin in shuffled order.
        classes_per_batch: ``P``; must divide ``batch_size`` and leave ``Q >= 2``.
            ``None`` takes :func:`default_classes_per_batch`.
        seed: seed of the sampling. The k-th iteration over the returned dataset
            draws from ``(seed, k)``: two datasets made alike yield the same batches,
            and with ``repeat=False`` every epoch of ``model.fit`` is reshuffled.
        repeat: repeat forever (then give ``model.fit`` a ``steps_per_epoch``, e.g.
            :func:`av_steps_per_epoch`); ``False`` stops after one epoch.
        drop_remainder: only for ``class_balanced=False``: drop the last partial batch
            of an epoch, so every batch has the static shape ``(batch_size, ...)``
            (class-balanced batches are always full).

    Returns:
        A ``tf.data.Dataset`` (batched, prefetched).

    Raises:
        ValueError: ``batch_size`` exceeds the split; or, class-balanced, the split
            has fewer than 2 classes, or ``classes_per_batch`` does not divide
            ``batch_size``, exceeds the classes present, or leaves fewer than 2
            samples per class.
    """
    import tensorflow as tf

    _check_args(split, batch_size)
    labels = split.labels
    n = len(split)
    if class_balanced:
        present = np.unique(labels)
        if len(present) < 2:
            raise ValueError("class-balanced batches need at least 2 classes in the split")
        p = classes_per_batch or default_classes_per_batch(batch_size, len(present))
        if p < 2 or p > len(present):
            raise ValueError(
                f"classes_per_batch={p}, but the split has {len(present)} classes "
                "(need 2 <= classes_per_batch <= number of classes)"
            )
        if batch_size % p:
            raise ValueError(f"classes_per_batch={p} does not divide batch_size={batch_size}")
        q = batch_size // p
        if q < 2:
            raise ValueError(
                f"batch_size={batch_size} with classes_per_batch={p} leaves {q} sample per "
                "class; every anchor needs a positive (Q >= 2)"
            )
        small = [int(c) for c in present if (labels == c).sum() < q]
        if small:
            logger.warning(
                "classes %s have fewer than %d training samples: their batches repeat samples",
                small[:10],
                q,
            )
    steps = n // batch_size
    iterations = [0]  # how many times this dataset has been iterated

    def index_batches() -> Iterator[np.ndarray]:
        # The k-th pass over the dataset object draws from seed (seed, k): a new
        # dataset is reproducible, and a non-repeating one reshuffles every epoch.
        stream = [int(seed), iterations[0]]
        iterations[0] += 1
        if class_balanced:
            sampler = ClassBalancedSampler.from_labels(labels, p, q, stream, shuffle=shuffle, samples="cycle")
            while True:
                for _ in range(steps):
                    yield sampler.next_batch()[0]
                if not repeat:
                    return
        rng = np.random.default_rng(stream)
        while True:
            order = rng.permutation(n) if shuffle else np.arange(n)
            stop = steps * batch_size if drop_remainder else n
            for start in range(0, stop, batch_size):
                yield order[start : min(start + batch_size, stop)]
            if not repeat:
                return

    audio, visual, label32 = split.audio, split.visual, labels.astype(np.int32)

    def batches():
        for idx in index_batches():
            yield {"audio": audio[idx], "visual": visual[idx], "label": label32[idx]}

    fixed = class_balanced or drop_remainder
    rows = batch_size if fixed else None
    signature = {
        "audio": tf.TensorSpec((rows, split.audio_dim), tf.float32),
        "visual": tf.TensorSpec((rows, split.visual_dim), tf.float32),
        "label": tf.TensorSpec((rows,), tf.int32),
    }
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    if not repeat:
        dataset = dataset.apply(
            tf.data.experimental.assert_cardinality(
                steps if fixed else -(-n // batch_size)
            )
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_av_eval_arrays(split: AVSplit) -> dict[str, np.ndarray]:
    """The whole split as arrays for evaluation: ``{"audio": float32 (N, Da),
    "visual": float32 (N, Dv), "label": int32 (N,)}`` (retrieval metrics rank the
    whole test gallery, so evaluation is not batched by class)."""
    return {
        "audio": np.ascontiguousarray(split.audio, dtype=np.float32),
        "visual": np.ascontiguousarray(split.visual, dtype=np.float32),
        "label": split.labels.astype(np.int32),
    }
