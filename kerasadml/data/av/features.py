"""Pre-extracted audio-visual features: VEGAS / AVE files, per-video ``.npy`` folders,
and a train-only feature scaler.

AADML (Zeng et al. 2024, arXiv 2404.13789) and the group's earlier
cross-modal retrieval work train on features extracted once per video and averaged over
frames: audio 128-d (VGGish), visual 1024-d (Inception). Three layouts are read:

* **Layout A** (one HDF5 file, the usual VEGAS / AVE release): datasets
  ``audio_train, audio_test, visual_train, visual_test, lab_train, lab_test``.
* **Layout B** (one HDF5 file, some releases): ``audio_feat, visual_feat, Label_ID,
  Train_test``; one row per video, ``Train_test`` tells the split (see
  :func:`load_av_hdf5` for the convention).
* **Layout C** (a folder of per-video ``.npy`` frame features, uint8-quantised, see
  :func:`load_av_npy_folder`).

All three return an :class:`AVDataset` of float32 features and 0-based int64 labels, after
the checks of ``docs/data.md`` §3.2 (missing keys, row counts, widths, NaN/Inf, label
range, single-class splits), each failure an :class:`AVDataError` naming the file and
key. :func:`save_av_hdf5` writes layout A, which every reader of VEGAS/AVE files accepts.

Example:

>>> from kerasadml.data.av.features import load_av_hdf5
>>> data = load_av_hdf5("vegas_feature.h5", audio_dim=128, visual_dim=1024)  # doctest: +SKIP
>>> model.adapt(data.train)  # an AADML standardises its inputs with train statistics  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Dataset names of layout A, in the order they are written.
LAYOUT_A_KEYS = ("audio_train", "audio_test", "visual_train", "visual_test", "lab_train", "lab_test")
#: Dataset names of layout B.
LAYOUT_B_KEYS = ("audio_feat", "visual_feat", "Label_ID", "Train_test")

_MAX_LISTED = 5  # row indices / file names quoted in an error message

#: Without a declared ``num_classes``, a label above this many times the number of rows
#: is taken for a corrupt value, not a class (it would make more classes than videos).
MAX_CLASSES_PER_ROW = 100


class AVDataError(ValueError):
    """An audio-visual feature file or folder is missing data or holds invalid values."""


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class AVSplit:
    """One split of paired audio-visual features: row ``i`` of each array is one video.

    Args:
        audio: ``(N, Da)`` audio features, converted to float32.
        visual: ``(N, Dv)`` visual features, converted to float32.
        labels: ``(N,)`` 0-based class ids, converted to int64.
    """

    audio: np.ndarray
    visual: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.audio = np.asarray(self.audio, dtype=np.float32)
        self.visual = np.asarray(self.visual, dtype=np.float32)
        self.labels = np.asarray(self.labels).astype(np.int64, copy=False)
        if self.audio.ndim != 2 or self.visual.ndim != 2 or self.labels.ndim != 1:
            raise AVDataError(
                "AVSplit expects audio (N, Da), visual (N, Dv) and labels (N,); got shapes "
                f"{self.audio.shape}, {self.visual.shape}, {self.labels.shape}"
            )
        rows = {len(self.audio), len(self.visual), len(self.labels)}
        if len(rows) != 1:
            raise AVDataError(
                "AVSplit arrays must have the same number of rows; got audio "
                f"{len(self.audio)}, visual {len(self.visual)}, labels {len(self.labels)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def audio_dim(self) -> int:
        return int(self.audio.shape[1])

    @property
    def visual_dim(self) -> int:
        return int(self.visual.shape[1])

    def class_counts(self, num_classes: int | None = None) -> np.ndarray:
        """Number of rows of each class (length ``num_classes`` or ``max label + 1``)."""
        minlength = num_classes if num_classes is not None else 0
        return np.bincount(self.labels, minlength=minlength)

    def subset(self, indices: Sequence[int] | np.ndarray) -> AVSplit:
        """The rows at ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return AVSplit(self.audio[indices], self.visual[indices], self.labels[indices])


@dataclasses.dataclass
class AVDataset:
    """A train and a test :class:`AVSplit` with the same feature widths.

    Args:
        train: the training split (the scaler and the model see only this one).
        test: the test split (the retrieval gallery and queries).
        num_classes: the number of classes; every label is in ``[0, num_classes)``.
        source: where the data came from (a path, or e.g. ``"av-digits"``).
        class_names: optional names of the classes, indexed by label.
    """

    train: AVSplit
    test: AVSplit
    num_classes: int
    source: str
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.num_classes = int(self.num_classes)
        if self.class_names is not None:
            self.class_names = tuple(str(name) for name in self.class_names)
            if len(self.class_names) != self.num_classes:
                raise AVDataError(
                    f"{self.source}: {len(self.class_names)} class names for "
                    f"{self.num_classes} classes"
                )
        if self.num_classes < 1:
            raise AVDataError(f"{self.source}: num_classes must be positive, got {self.num_classes}")
        for split_name, split in (("train", self.train), ("test", self.test)):
            bad = (split.labels < 0) | (split.labels >= self.num_classes)
            if bad.any():
                raise AVDataError(
                    f"{self.source}: the {split_name} split has labels outside [0, "
                    f"{self.num_classes}) in rows {_first_rows(bad)} (values "
                    f"{sorted(set(split.labels[bad].tolist()))[:_MAX_LISTED]})"
                )
        for name in ("audio_dim", "visual_dim"):
            if getattr(self.train, name) != getattr(self.test, name):
                raise AVDataError(
                    f"{self.source}: train and test {name.split('_')[0]} features differ in "
                    f"width ({getattr(self.train, name)} vs {getattr(self.test, name)})"
                )

    @property
    def audio_dim(self) -> int:
        return self.train.audio_dim

    @property
    def visual_dim(self) -> int:
        return self.train.visual_dim

    def summary(self) -> dict[str, Any]:
        """Sizes and per-class counts, JSON-able."""
        return {
            "source": self.source,
            "num_classes": self.num_classes,
            "audio_dim": self.audio_dim,
            "visual_dim": self.visual_dim,
            "num_train": len(self.train),
            "num_test": len(self.test),
            "train_per_class": self.train.class_counts(self.num_classes).tolist(),
            "test_per_class": self.test.class_counts(self.num_classes).tolist(),
        }


# --------------------------------------------------------------------------------------
# Validation shared by every layout
# --------------------------------------------------------------------------------------


def _first_rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    listed = ", ".join(str(int(r)) for r in rows[:_MAX_LISTED])
    more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
    return f"{listed}{more}"


def _check_features(values: np.ndarray, where: str, key: str, dim: int | None) -> np.ndarray:
    """Return ``values`` as a float32 ``(N, D)`` array, or raise naming ``where`` and ``key``."""
    if values.ndim != 2:
        raise AVDataError(
            f"{where}: {key!r} must be a 2-D (videos, features) array of frame-averaged "
            f"features; it has shape {values.shape}"
        )
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise AVDataError(f"{where}: {key!r} holds {values.dtype} values, not real numbers")
    values = values.astype(np.float32, copy=False)
    if dim is not None and values.shape[1] != dim:
        raise AVDataError(
            f"{where}: {key!r} has feature width {values.shape[1]}, expected {dim}"
        )
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise AVDataError(
            f"{where}: {key!r} has NaN or Inf values in {int(bad.sum())} row(s): {_first_rows(bad)}"
        )
    return values


def _labels_to_ids(values: np.ndarray, where: str, key: str) -> np.ndarray:
    """Integer label ids from a 1-D array, an ``(N, 1)`` column, or one-hot rows."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 2:
        if not np.issubdtype(values.dtype, np.number):
            raise AVDataError(f"{where}: {key!r} holds {values.dtype} values, not labels")
        finite = np.isfinite(values).all(axis=1)
        one_hot = finite & np.isin(values, (0, 1)).all(axis=1) & (values.sum(axis=1) == 1)
        if not one_hot.all():
            raise AVDataError(
                f"{where}: {key!r} is 2-D {values.shape} but rows {_first_rows(~one_hot)} are "
                "not one-hot (exactly one 1, zeros elsewhere)"
            )
        return np.argmax(values, axis=1).astype(np.int64)
    if values.ndim != 1:
        raise AVDataError(f"{where}: {key!r} must be 1-D labels or one-hot rows; shape {values.shape}")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise AVDataError(f"{where}: {key!r} holds {values.dtype} values, not integer labels")
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise AVDataError(
                f"{where}: {key!r} has non-integer or NaN/Inf labels in rows {_first_rows(bad)}"
            )
    return values.astype(np.int64)


def _finalise_labels(
    named: Sequence[tuple[str, np.ndarray]], where: str, num_classes: int | None
) -> tuple[list[np.ndarray], int]:
    """Repair 1-based label sets, check the range, and return ``(labels, num_classes)``.

    ``named`` holds ``(key, labels)`` of every split, checked together so that one split
    never shifts without the other. Without ``num_classes``, a label above
    :data:`MAX_CLASSES_PER_ROW` times the number of rows is an error naming the key and
    row (a corrupt value would otherwise make that many classes), and a label set that
    leaves more than half of ``0 .. max`` unused is logged as a warning.
    """
    everything = np.concatenate([labels for _, labels in named])
    if everything.size == 0:
        raise AVDataError(f"{where}: no labels")
    if num_classes is not None and int(num_classes) < 1:
        raise AVDataError(f"{where}: num_classes must be positive, got {num_classes}")
    low, high = int(everything.min()), int(everything.max())
    if num_classes is None:
        limit = MAX_CLASSES_PER_ROW * everything.size
        for key, labels in named:
            bad = labels > limit
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise AVDataError(
                    f"{where}: {key!r} row {row}: label {int(labels[row])} is implausible: it "
                    f"would make {int(labels[row]) + 1} classes for {everything.size} rows "
                    f"(rows {_first_rows(bad)}); fix the file, or pass num_classes= (the "
                    "declared number of classes) to have out-of-range labels named"
                )
    present = np.unique(everything)
    # 1-based label sets: 0 never occurs, the smallest label is 1 and the largest is the
    # number of classes (given, or, when not given, every class 1..max occurs).
    if low == 1 and (
        (num_classes is not None and high == num_classes)
        or (num_classes is None and len(present) == high)
    ):
        logger.warning(
            "%s: labels run from 1 to %d; treating them as 1-based and subtracting 1 "
            "(stored label k is class k-1)",
            where,
            high,
        )
        named = [(key, labels - 1) for key, labels in named]
        high -= 1
    if num_classes is None:
        num_classes = high + 1
        if len(present) * 2 < num_classes:
            logger.warning(
                "%s: labels run up to %d but only %d of the %d classes 0..%d occur; the "
                "number of classes is taken as %d (pass num_classes= if that is wrong)",
                where,
                high,
                len(present),
                num_classes,
                high,
                num_classes,
            )
    result = []
    for key, labels in named:
        bad = (labels < 0) | (labels >= num_classes)
        if bad.any():
            raise AVDataError(
                f"{where}: {key!r} has labels outside [0, {num_classes}) in rows "
                f"{_first_rows(bad)} (values {sorted(set(labels[bad].tolist()))[:_MAX_LISTED]})"
            )
        result.append(labels)
    return result, int(num_classes)


def _check_split(split: AVSplit, where: str, name: str) -> None:
    if len(split) == 0:
        raise AVDataError(f"{where}: the {name} split is empty")
    classes = np.unique(split.labels)
    if len(classes) < 2:
        raise AVDataError(
            f"{where}: the {name} split has a single class ({int(classes[0])}); retrieval "
            "and metric learning need at least two"
        )


def _make_split(
    where: str,
    audio: tuple[str, np.ndarray],
    visual: tuple[str, np.ndarray],
    labels: tuple[str, np.ndarray],
    audio_dim: int | None,
    visual_dim: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = _check_features(audio[1], where, audio[0], audio_dim)
    v = _check_features(visual[1], where, visual[0], visual_dim)
    y = _labels_to_ids(labels[1], where, labels[0])
    if not len(a) == len(v) == len(y):
        raise AVDataError(
            f"{where}: row counts differ: {audio[0]!r} has {len(a)}, {visual[0]!r} has "
            f"{len(v)}, {labels[0]!r} has {len(y)}"
        )
    return a, v, y


# --------------------------------------------------------------------------------------
# HDF5 (layouts A and B)
# --------------------------------------------------------------------------------------


def _split_mask(values: np.ndarray, where: str, train_value: Any) -> np.ndarray:
    """Boolean train mask from a layout-B ``Train_test`` column."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise AVDataError(f"{where}: 'Train_test' must be 1-D; it has shape {values.shape}")
    if values.dtype.kind in "SOU":
        values = np.array(
            [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
        )
        values = np.char.lower(np.char.strip(values))
    if train_value is not None:
        if isinstance(train_value, bytes):
            train_value = train_value.decode()
        if isinstance(train_value, str):
            train_value = train_value.strip().lower()
        return values == train_value
    if values.dtype.kind == "U":
        allowed = {"train", "test"}
        found = set(np.unique(values).tolist())
        if not found <= allowed:
            raise AVDataError(
                f"{where}: 'Train_test' holds {sorted(found - allowed)[:_MAX_LISTED]}; expected "
                "'train'/'test' (or pass train_value= to name the train marker)"
            )
        return values == "train"
    found = set(np.unique(values).tolist())
    if not found <= {0, 1}:
        raise AVDataError(
            f"{where}: 'Train_test' holds {sorted(found)[:_MAX_LISTED]}; expected 1 = train, "
            "0 = test (or pass train_value= to name the train marker)"
        )
    return values == 1


def load_av_hdf5(
    path: str | os.PathLike,
    *,
    audio_dim: int | None = None,
    visual_dim: int | None = None,
    num_classes: int | None = None,
    train_value: int | str | None = None,
) -> AVDataset:
    """Read a VEGAS / AVE style HDF5 feature file (layout A or B).

    Layout A has ``audio_train, audio_test, visual_train, visual_test, lab_train,
    lab_test``. Layout B has ``audio_feat, visual_feat, Label_ID, Train_test`` with one
    row per video; its split column is read as follows:

    * ``train_value=None`` (default): numbers must be 0/1 with **1 = train, 0 = test**;
      strings (or bytes) must be ``"train"``/``"test"`` (case and spaces ignored).
    * ``train_value=v``: rows equal to ``v`` are train, every other row is test (e.g.
      ``train_value=0`` for a file that marks its training rows with 0).

    Rows keep their file order inside each split.

    Labels may be integers (any integer or integral float dtype, ``(N,)`` or ``(N, 1)``)
    or one-hot rows ``(N, C)`` (converted with argmax). A **1-based** label set is
    repaired to 0-based with a logged warning: when 0 never occurs, the smallest label
    is 1 and the largest equals ``num_classes`` (or, with ``num_classes=None``, every
    label from 1 to the largest occurs).

    Args:
        path: the ``.h5`` / ``.hdf5`` file.
        audio_dim: expected audio width (e.g. 128 for VGGish); ``None`` accepts any.
        visual_dim: expected visual width (e.g. 1024 for Inception); ``None`` accepts any.
        num_classes: number of classes (10 for VEGAS, 15 for AVE); ``None`` takes the
            file's ``num_classes`` attribute when it has one (as :func:`save_av_hdf5`
            writes), else infers ``max label + 1`` (after the 1-based repair), refusing a
            label above 100 x the number of rows as corrupt (the error names the dataset
            and row).
        train_value: layout B's train marker, see above; ignored for layout A.

    Returns:
        An :class:`AVDataset` whose ``source`` is the path.

    Raises:
        FileNotFoundError: the file does not exist.
        AVDataError: the file is not HDF5, keys of neither layout are present (the
            message lists the keys it has), the audio, visual and label row counts
            differ, a width differs from ``audio_dim`` / ``visual_dim``, features hold
            NaN/Inf (key and first rows named), labels are out of range or malformed,
            or a split is empty or holds a single class.
    """
    import h5py

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no such feature file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise AVDataError(f"{where}: not a readable HDF5 file ({error})") from error
    with handle:
        keys = set(handle.keys())
        attrs = dict(handle.attrs)
        if num_classes is None and "num_classes" in attrs:
            declared = np.asarray(attrs["num_classes"])
            if declared.shape != () or declared.dtype.kind not in "iu" or int(declared) < 1:
                raise AVDataError(
                    f"{where}: file attribute 'num_classes' is "
                    f"{np.asarray(attrs['num_classes']).tolist()!r}, not a positive integer"
                )
            num_classes = int(declared)

        def read(key: str) -> np.ndarray:
            item = handle[key]
            if not isinstance(item, h5py.Dataset):
                raise AVDataError(f"{where}: {key!r} is a group, not a dataset")
            return np.asarray(item[()])

        if set(LAYOUT_A_KEYS) <= keys:
            layout = "A"
            train = _make_split(
                where,
                ("audio_train", read("audio_train")),
                ("visual_train", read("visual_train")),
                ("lab_train", read("lab_train")),
                audio_dim,
                visual_dim,
            )
            test = _make_split(
                where,
                ("audio_test", read("audio_test")),
                ("visual_test", read("visual_test")),
                ("lab_test", read("lab_test")),
                audio_dim,
                visual_dim,
            )
            (train_labels, test_labels), num_classes = _finalise_labels(
                [("lab_train", train[2]), ("lab_test", test[2])], where, num_classes
            )
            train, test = (train[0], train[1], train_labels), (test[0], test[1], test_labels)
        elif set(LAYOUT_B_KEYS) <= keys:
            layout = "B"
            audio, visual, labels = _make_split(
                where,
                ("audio_feat", read("audio_feat")),
                ("visual_feat", read("visual_feat")),
                ("Label_ID", read("Label_ID")),
                audio_dim,
                visual_dim,
            )
            mask = _split_mask(read("Train_test"), where, train_value)
            if len(mask) != len(labels):
                raise AVDataError(
                    f"{where}: row counts differ: 'Train_test' has {len(mask)}, "
                    f"'Label_ID' has {len(labels)}"
                )
            # Labels are checked over the whole column so that row numbers in errors
            # are file rows.
            (labels,), num_classes = _finalise_labels([("Label_ID", labels)], where, num_classes)
            train = (audio[mask], visual[mask], labels[mask])
            test = (audio[~mask], visual[~mask], labels[~mask])
        else:
            missing_a = [k for k in LAYOUT_A_KEYS if k not in keys]
            missing_b = [k for k in LAYOUT_B_KEYS if k not in keys]
            raise AVDataError(
                f"{where}: not a VEGAS/AVE feature file. Layout A needs "
                f"{', '.join(LAYOUT_A_KEYS)} (missing {', '.join(missing_a)}); layout B needs "
                f"{', '.join(LAYOUT_B_KEYS)} (missing {', '.join(missing_b)}). The file has: "
                f"{', '.join(sorted(keys)) or 'no datasets'}"
            )

    train_split = AVSplit(*train)
    test_split = AVSplit(*test)
    _check_split(train_split, where, "train")
    _check_split(test_split, where, "test")
    class_names = _decode_names(attrs.get("class_names"))
    if class_names is not None and len(class_names) != num_classes:
        class_names = None
    logger.info(
        "%s: layout %s, %d train / %d test videos, %d classes, audio %d-d, visual %d-d",
        where,
        layout,
        len(train_split),
        len(test_split),
        num_classes,
        train_split.audio_dim,
        train_split.visual_dim,
    )
    return AVDataset(train_split, test_split, num_classes, where, class_names)


def _decode_names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = np.atleast_1d(np.asarray(value)).tolist()
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in items)


def save_av_hdf5(
    path: str | os.PathLike, dataset: AVDataset, *, attrs: Mapping[str, Any] | None = None
) -> Path:
    """Write ``dataset`` as a layout-A HDF5 file, atomically.

    The file is written next to ``path`` under a temporary name and moved into place
    with ``os.replace``, so a reader never sees a half-written file. Labels are stored
    as int64, features as float32; ``num_classes``, ``source`` and ``class_names`` (when
    known) become file attributes, plus any ``attrs`` given (``None`` values are
    stored as the string ``"none"``).

    Args:
        path: the output file; its folder is created if needed.
        dataset: the :class:`AVDataset` to write.
        attrs: extra file attributes (numbers, strings, or lists of them).

    Returns:
        The path written.
    """
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with h5py.File(temp_name, "w") as out:
            for split_name, split in (("train", dataset.train), ("test", dataset.test)):
                out.create_dataset(f"audio_{split_name}", data=split.audio.astype(np.float32))
                out.create_dataset(f"visual_{split_name}", data=split.visual.astype(np.float32))
                out.create_dataset(f"lab_{split_name}", data=split.labels.astype(np.int64))
            out.attrs["num_classes"] = int(dataset.num_classes)
            out.attrs["source"] = str(dataset.source)
            if dataset.class_names is not None:
                out.attrs["class_names"] = np.array(dataset.class_names, dtype=h5py.string_dtype())
            for key, value in (attrs or {}).items():
                out.attrs[key] = "none" if value is None else value
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.remove(temp_name)
        raise
    return path


# --------------------------------------------------------------------------------------
# Per-video .npy folders (layout C)
# --------------------------------------------------------------------------------------


def dequantize_frames(frames: np.ndarray) -> np.ndarray:
    """Frame features back to floats: uint8 ``x`` becomes ``(x - 128) / 256``.

    Float arrays are taken as already dequantised and returned as float32; other
    integer types are rejected (they are not the quantisation this format uses).
    """
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return (frames.astype(np.float32) - 128.0) / 256.0
    if np.issubdtype(frames.dtype, np.floating):
        return frames.astype(np.float32)
    raise AVDataError(f"frame features must be uint8 (quantised) or float; got {frames.dtype}")


def average_frames(frames: np.ndarray) -> np.ndarray:
    """Dequantise ``(T, D)`` frame features (or one ``(D,)`` frame) and average over time."""
    values = dequantize_frames(frames)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[0] == 0:
        raise AVDataError(f"expected (frames, features) with at least one frame; got {values.shape}")
    return values.mean(axis=0, dtype=np.float64).astype(np.float32)


def _class_order(names: Iterable[str]) -> list[str]:
    names = sorted(set(names))
    if names and all(name.isdigit() for name in names):
        return sorted(names, key=int)
    return names


def load_av_npy_folder(
    root: str | os.PathLike,
    *,
    audio_dim: int | None = None,
    visual_dim: int | None = None,
    num_classes: int | None = None,
    on_bad: str = "raise",
) -> AVDataset:
    """Read per-video ``.npy`` frame features from a folder tree (layout C).

    Layout::

        root/
          classes.txt                     # optional: class names, one a line, in label order
          train/<class_name>/<video_id>_audio.npy    # (T_a, Da) uint8 frame features
          train/<class_name>/<video_id>_visual.npy   # (T_v, Dv) uint8 frame features
          test/<class_name>/<video_id>_audio.npy
          test/<class_name>/<video_id>_visual.npy

    Every video has one ``_audio.npy`` and one ``_visual.npy`` (their frame counts may
    differ). uint8 values are dequantised as ``(x - 128) / 256`` and averaged over
    frames; float arrays are taken as already dequantised. A single frame may be stored
    as ``(D,)``. Without ``classes.txt`` the labels are the class folder names of
    ``train`` and ``test`` together, sorted (numerically when every name is a number,
    else alphabetically); with it, the line number (0-based) is the label and an unknown
    folder is an error. Videos are ordered by label, then by ``video_id``.

    Args:
        root: the folder.
        audio_dim, visual_dim: expected widths; ``None`` expects the width that most
            videos have (a video of another width is a bad video).
        num_classes: expected number of classes; ``None`` counts the classes found.
        on_bad: ``"raise"`` (default) stops at the first unreadable or invalid video
            with an error naming its file; ``"skip"`` leaves such videos out, counts
            them, and logs the count and the first few names at the end.

    Returns:
        An :class:`AVDataset` whose ``source`` is ``root`` and whose ``class_names``
        are the class folder names.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        AVDataError: ``train`` or ``test`` is missing (the message lists what ``root``
            holds), a video lacks its other modality, a file is unreadable, empty, not
            uint8/float, NaN/Inf or of the wrong width, or a split is empty or
            single-class.
    """
    if on_bad not in ("raise", "skip"):
        raise ValueError(f"on_bad must be 'raise' or 'skip', not {on_bad!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such feature folder")
    missing = [name for name in ("train", "test") if not (root / name).is_dir()]
    if missing:
        found = sorted(p.name for p in root.iterdir())
        raise AVDataError(
            f"{root}: per-video .npy layout needs train/ and test/ folders (missing "
            f"{', '.join(missing)}); the folder holds: {', '.join(found) or 'nothing'}"
        )
    split_classes = {
        split: sorted(p.name for p in (root / split).iterdir() if p.is_dir())
        for split in ("train", "test")
    }
    index_file = root / "classes.txt"
    if index_file.is_file():
        class_names = [
            line.strip() for line in index_file.read_text().splitlines() if line.strip()
        ]
        unknown = sorted(
            set(split_classes["train"] + split_classes["test"]) - set(class_names)
        )
        if unknown:
            raise AVDataError(
                f"{index_file}: class folders {unknown[:_MAX_LISTED]} are not listed"
            )
    else:
        class_names = _class_order(split_classes["train"] + split_classes["test"])
    if num_classes is not None and len(class_names) != num_classes:
        raise AVDataError(
            f"{root}: found {len(class_names)} classes ({', '.join(class_names[:_MAX_LISTED])}"
            f"{', ...' if len(class_names) > _MAX_LISTED else ''}), expected {num_classes}"
        )
    label_of = {name: i for i, name in enumerate(class_names)}
    skipped: list[str] = []

    def bad(error: AVDataError) -> None:
        if on_bad == "raise":
            raise error
        skipped.append(str(error))

    # First pass: read and average every video.
    read: dict[str, list[tuple[int, dict[str, np.ndarray], dict[str, Path]]]] = {}
    for split in ("train", "test"):
        read[split] = []
        for class_name in sorted(split_classes[split], key=lambda n: label_of[n]):
            folder = root / split / class_name
            videos: dict[str, dict[str, Path]] = {}
            for file in folder.iterdir():
                if file.suffix != ".npy":
                    continue
                for modality in ("audio", "visual"):
                    if file.stem.endswith("_" + modality):
                        videos.setdefault(file.stem[: -len(modality) - 1], {})[modality] = file
            for video_id in sorted(videos):
                files = videos[video_id]
                try:
                    features = {}
                    for modality in ("audio", "visual"):
                        if modality not in files:
                            raise AVDataError(
                                f"{folder / video_id}: has no {video_id}_{modality}.npy "
                                f"(found {', '.join(p.name for p in files.values())})"
                            )
                        features[modality] = _read_video_features(files[modality], modality)
                except AVDataError as error:
                    bad(error)
                    continue
                read[split].append((label_of[class_name], features, files))

    # Second pass: widths. Without an expected width, the most common one is expected.
    dims = {"audio": audio_dim, "visual": visual_dim}
    for modality in ("audio", "visual"):
        if dims[modality] is None:
            widths = [f[modality].shape[0] for rows in read.values() for _, f, _ in rows]
            if widths:
                values, counts = np.unique(widths, return_counts=True)
                dims[modality] = int(values[np.argmax(counts)])
    splits = {}
    for split in ("train", "test"):
        audio, visual, labels = [], [], []
        for label, features, files in read[split]:
            try:
                for modality in ("audio", "visual"):
                    width = features[modality].shape[0]
                    if width != dims[modality]:
                        raise AVDataError(
                            f"{files[modality]}: {modality} feature width {width}, "
                            f"expected {dims[modality]}"
                        )
            except AVDataError as error:
                bad(error)
                continue
            audio.append(features["audio"])
            visual.append(features["visual"])
            labels.append(label)
        if not labels:
            raise AVDataError(
                f"{root / split}: no valid videos (expected <class>/<id>_audio.npy and "
                f"<class>/<id>_visual.npy; {len(skipped)} skipped)"
            )
        splits[split] = AVSplit(np.stack(audio), np.stack(visual), np.array(labels))
    if skipped:
        logger.warning(
            "%s: skipped %d bad video(s); first: %s", root, len(skipped), "; ".join(skipped[:3])
        )
    for split in ("train", "test"):
        _check_split(splits[split], str(root / split), split)
    return AVDataset(splits["train"], splits["test"], len(class_names), str(root), tuple(class_names))


def _read_video_features(file: Path, modality: str) -> np.ndarray:
    try:
        frames = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise AVDataError(f"{file}: unreadable .npy file ({error})") from error
    try:
        features = average_frames(frames)
    except AVDataError as error:
        raise AVDataError(f"{file}: {error}") from None
    if not np.isfinite(features).all():
        raise AVDataError(f"{file}: {modality} features hold NaN or Inf")
    return features


def load_av(path: str | os.PathLike, **kwargs: Any) -> AVDataset:
    """Read audio-visual features from a folder (layout C) or an HDF5 file (A or B).

    Keyword arguments go to :func:`load_av_npy_folder` or :func:`load_av_hdf5`.
    """
    if Path(path).is_dir():
        kwargs.pop("train_value", None)
        return load_av_npy_folder(path, **kwargs)
    kwargs.pop("on_bad", None)
    return load_av_hdf5(path, **kwargs)
