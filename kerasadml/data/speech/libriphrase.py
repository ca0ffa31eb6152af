"""Read LibriPhrase CSV files (and SynthPhrase, which writes the same format).

LibriPhrase (Shin et al., 2022) is cut from LibriSpeech with word alignments; each CSV
row is one comparison between an *anchor* clip and a *comparison* clip
(see :data:`LIBRIPHRASE_COLUMNS`). The official test sets come split by phrase length
(``libriphrase_diffspk_all_1word.csv`` ... ``_4word.csv``); pass them all at once.

Two views of the rows are built here:

* :func:`evaluation_pairs` -- (audio clip, text) pairs to score, with the LibriPhrase
  protocol subsets **LP_E** (positives + easy negatives) and **LP_H** (positives + hard
  negatives). Pairs are taken in **both directions**: the anchor's audio against the
  comparison's text *and* the comparison's audio against the anchor's text, then
  deduplicated, so every distinct (clip, text, kind) is scored exactly once.
* :func:`training_items` -- the distinct clips with their text (one class per distinct
  text) and speaker, for classification-style metric-learning training.

About the ``class`` column: in the published LibriPhrase files (and in the code that made
them) ``class`` is the **number of words** of the anchor phrase (the "word class" 1-4),
not a keyword id. It is read into :attr:`LibriPhraseRow.word_class`; training class ids are
made by :func:`training_items` from the distinct texts.

Example:

>>> rows = read_libriphrase_csv("LibriPhrase/libriphrase_diffspk_all_*word.csv")  # doctest: +SKIP
>>> pairs = evaluation_pairs(rows)                                                  # doctest: +SKIP
>>> hard = pairs.subset("LP_H")                                                     # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import logging
import math
import os
from collections.abc import Iterable, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: The columns of a LibriPhrase CSV file, in the published order.
LIBRIPHRASE_COLUMNS = (
    "anchor",
    "anchor_spk",
    "anchor_text",
    "anchor_dur",
    "comparison",
    "comparison_spk",
    "comparison_text",
    "comparison_dur",
    "type",
    "target",
    "class",
)

#: Pair kinds, from the suffix of the ``type`` column (``diffspk_positive`` ...).
PAIR_KINDS = ("positive", "easyneg", "hardneg")

#: Protocol subsets (docs/methods.md §1.11): LP_E = positives + easy negatives, LP_H = positives
#: + hard negatives. ``"all"`` keeps every pair.
PROTOCOL_SUBSETS = {
    "LP_E": ("positive", "easyneg"),
    "LP_H": ("positive", "hardneg"),
    "all": PAIR_KINDS,
}

_MAX_ERRORS_KEPT = 20


def normalize_text(text: str) -> str:
    """Lower-case and collapse whitespace: the identity of a keyword text."""
    return " ".join(str(text).lower().split())


@dataclasses.dataclass(frozen=True)
class LibriPhraseRow:
    """One row of a LibriPhrase CSV.

    ``word_class`` is the ``class`` column (the number of words of the anchor phrase in
    the published files). ``source`` and ``line`` name the file and its line number
    (the header is line 1) for error messages and for resolving relative audio paths.
    Texts are normalised with :func:`normalize_text`.
    """

    anchor: str
    anchor_spk: str
    anchor_text: str
    anchor_dur: float
    comparison: str
    comparison_spk: str
    comparison_text: str
    comparison_dur: float
    type: str
    target: int
    word_class: int
    source: str = ""
    line: int = 0

    @property
    def kind(self) -> str:
        """``"positive"``, ``"easyneg"`` or ``"hardneg"`` (from ``type``)."""
        return _kind_of(self.type)


class LibriPhraseRows(list):
    """A ``list`` of :class:`LibriPhraseRow`, plus what reading skipped.

    Attributes:
        skipped: number of malformed rows skipped (``on_error="skip"``).
        errors: the first few error messages, each naming the file and line.
        files: the CSV files read, in order.
    """

    def __init__(self, rows=(), skipped: int = 0, errors=None, files=None):
        super().__init__(rows)
        self.skipped = int(skipped)
        self.errors = list(errors or [])
        self.files = list(files or [])


def _kind_of(type_value: str) -> str:
    value = str(type_value).strip().lower()
    for kind in PAIR_KINDS:
        if value.endswith(kind):
            return kind
    raise ValueError(
        f"unknown pair type {type_value!r}: expected one ending in 'positive', 'easyneg' or "
        "'hardneg' (e.g. 'diffspk_positive')"
    )


def _expand_paths(path_or_paths) -> list[str]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        items = [path_or_paths]
    else:
        items = list(path_or_paths)
    if not items:
        raise ValueError("read_libriphrase_csv: no CSV path given")
    files: list[str] = []
    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = sorted(glob.glob(os.path.join(item, "*.csv")))
            if not found:
                raise FileNotFoundError(f"read_libriphrase_csv: no .csv file in folder {item!r}")
            files.extend(found)
        elif any(ch in item for ch in "*?["):
            found = sorted(glob.glob(item))
            if not found:
                raise FileNotFoundError(f"read_libriphrase_csv: no file matches {item!r}")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise FileNotFoundError(f"read_libriphrase_csv: CSV file not found: {item!r}")
    return files


def _parse_float(value: str, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"column {column!r}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"column {column!r}: {value!r} is not a finite non-negative number")
    return number


def _parse_int(value: str, column: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"column {column!r}: {value!r} is not an integer") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"column {column!r}: {value!r} is not an integer")
    return int(number)


def _parse_row(record: dict, source: str, line: int) -> LibriPhraseRow:
    if None in record:  # more fields than the header has
        raise ValueError(f"{len(record[None])} more field(s) than the header")
    missing = [c for c in LIBRIPHRASE_COLUMNS if record.get(c) is None]
    if missing:
        raise ValueError(f"fewer fields than the header (no value for {missing})")
    anchor = record["anchor"].strip()
    comparison = record["comparison"].strip()
    anchor_text = normalize_text(record["anchor_text"])
    comparison_text = normalize_text(record["comparison_text"])
    for column, value in (
        ("anchor", anchor),
        ("comparison", comparison),
        ("anchor_text", anchor_text),
        ("comparison_text", comparison_text),
    ):
        if not value:
            raise ValueError(f"column {column!r} is empty")
    kind = _kind_of(record["type"])
    target = _parse_int(record["target"], "target")
    if target not in (0, 1):
        raise ValueError(f"column 'target': {target} is not 0 or 1")
    if (kind == "positive") != (target == 1):
        raise ValueError(f"type {record['type']!r} disagrees with target {target}")
    if (anchor_text == comparison_text) != (target == 1):
        raise ValueError(
            f"target {target} but anchor_text {anchor_text!r} and comparison_text "
            f"{comparison_text!r} are {'equal' if anchor_text == comparison_text else 'different'}"
        )
    return LibriPhraseRow(
        anchor=anchor,
        anchor_spk=record["anchor_spk"].strip(),
        anchor_text=anchor_text,
        anchor_dur=_parse_float(record["anchor_dur"], "anchor_dur"),
        comparison=comparison,
        comparison_spk=record["comparison_spk"].strip(),
        comparison_text=comparison_text,
        comparison_dur=_parse_float(record["comparison_dur"], "comparison_dur"),
        type=record["type"].strip(),
        target=target,
        word_class=_parse_int(record["class"], "class"),
        source=source,
        line=line,
    )


def read_libriphrase_csv(path_or_paths, *, on_error: str = "raise") -> LibriPhraseRows:
    """Read one or more LibriPhrase-format CSV files.

    Args:
        path_or_paths: a CSV file, a folder (all its ``*.csv``, sorted), a glob pattern
            (e.g. ``".../libriphrase_diffspk_all_*word.csv"``), or a sequence of these.
            Extra columns (e.g. ``anchor_start``) are ignored.
        on_error: ``"raise"``: a malformed row raises ``ValueError`` naming the file and
            line; ``"skip"``: malformed rows are skipped, counted in ``.skipped`` and
            logged once per file.

    Returns:
        :class:`LibriPhraseRows` (a list of :class:`LibriPhraseRow`).

    Raises:
        FileNotFoundError: a file, folder or pattern that matches nothing.
        ValueError: a file without some of :data:`LIBRIPHRASE_COLUMNS` (the message
            names the file and the missing columns, whatever ``on_error``), or a
            malformed row with ``on_error="raise"``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"read_libriphrase_csv: on_error must be 'raise' or 'skip', got {on_error!r}")
    files = _expand_paths(path_or_paths)
    rows: list[LibriPhraseRow] = []
    skipped = 0
    errors: list[str] = []
    for path in files:
        source = os.path.abspath(path)
        file_skipped = 0
        try:
            rows_of_file = _read_rows(path, source, on_error)
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{path}: not UTF-8 text ({error.reason}); save the CSV as UTF-8"
            ) from None
        for item in rows_of_file:
            if isinstance(item, str):
                skipped += 1
                file_skipped += 1
                if len(errors) < _MAX_ERRORS_KEPT:
                    errors.append(item)
            else:
                rows.append(item)
        if file_skipped:
            logger.warning("%s: skipped %d malformed row(s); first: %s", path, file_skipped, errors[0])
    return LibriPhraseRows(rows, skipped=skipped, errors=errors, files=[os.path.abspath(f) for f in files])


def _read_rows(path: str, source: str, on_error: str) -> list:
    """The parsed rows of one CSV file, and an error message in place of each malformed row
    (``on_error="skip"``); raises ``ValueError`` naming the file and line otherwise."""
    out: list = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in LIBRIPHRASE_COLUMNS if c not in header]
            if missing:
                raise ValueError(
                    f"{path}: not a LibriPhrase CSV, missing column(s) {missing} "
                    f"(found {header}; expected {list(LIBRIPHRASE_COLUMNS)})"
                )
            for record in reader:
                line = reader.line_num
                if not any((v or "").strip() for k, v in record.items() if k is not None):
                    continue  # blank line
                try:
                    out.append(_parse_row(record, source, line))
                except ValueError as error:
                    message = f"{path}, line {line}: malformed row: {error}"
                    if on_error == "raise":
                        raise ValueError(message) from None
                    out.append(message)
        except csv.Error as error:  # e.g. a field over csv.field_size_limit()
            raise ValueError(f"{path}, after line {reader.line_num}: not a readable CSV row: {error}") from None
    return out


class OutsideAudioRootError(ValueError):
    """A CSV row names an audio file outside the given ``audio_root`` (an absolute path,
    or a relative one that climbs out with ``..``)."""


def _resolve(
    path: str,
    source: str,
    audio_root,
    allow_outside_root: bool = True,
    line: int = 0,
    column: str = "",
) -> str:
    """The absolute path of a row's clip.

    With an explicit ``audio_root`` and ``allow_outside_root=False``, a path that is
    absolute or leaves the root (checked on the normalised path, without following
    symbolic links) raises :class:`OutsideAudioRootError` naming the CSV file, line and
    column.
    """
    if audio_root is not None and not allow_outside_root:
        root = os.path.normpath(os.path.abspath(os.fspath(audio_root)))
        resolved = os.path.normpath(os.path.abspath(os.path.join(root, path)))
        try:
            inside = os.path.commonpath([root, resolved]) == root
        except ValueError:  # another drive (Windows)
            inside = False
        if os.path.isabs(path) or not inside:
            how = "an absolute path" if os.path.isabs(path) else "a path that leaves it with '..'"
            raise OutsideAudioRootError(
                f"{source or '<rows>'}, line {line}: column {column!r} holds {path!r}, {how}, "
                f"outside the audio root {root!r}; refusing to read files outside the audio root "
                "(pass allow_outside_root=True, or --allow-outside-root on the command line, "
                "if the CSV is trusted)"
            )
        return resolved
    if os.path.isabs(path):
        return os.path.normpath(path)
    root = os.fspath(audio_root) if audio_root is not None else os.path.dirname(source or ".")
    return os.path.normpath(os.path.abspath(os.path.join(root, path)))


@dataclasses.dataclass
class PairSet:
    """Evaluation pairs: an audio clip scored against a text.

    ``audio_paths`` and ``texts`` are the unique clips (absolute paths) and texts; pair
    ``i`` scores ``audio_paths[audio_index[i]]`` against ``texts[text_index[i]]`` with
    label ``target[i]`` (1 = the clip says the text) and ``kind[i]`` in
    :data:`PAIR_KINDS`. ``direction[i]`` is 0 when the pair came from the anchor's audio
    and the comparison's text, 1 from the comparison's audio and the anchor's text (the
    first direction in which the pair was seen). :meth:`subset` keeps ``audio_paths`` and
    ``texts`` whole, so indices stay valid and embeddings computed once serve every subset.
    """

    audio_paths: list[str]
    texts: list[str]
    audio_index: np.ndarray
    text_index: np.ndarray
    target: np.ndarray
    kind: np.ndarray
    direction: np.ndarray

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def mask(self, name: str) -> np.ndarray:
        """Boolean mask of the pairs in protocol subset ``name`` (``"LP_E"``, ``"LP_H"``, ``"all"``)."""
        if name not in PROTOCOL_SUBSETS:
            raise ValueError(f"unknown subset {name!r}; known: {sorted(PROTOCOL_SUBSETS)}")
        return np.isin(self.kind, PROTOCOL_SUBSETS[name])

    def subset(self, name_or_mask) -> PairSet:
        """The pairs of a protocol subset (``"LP_E"`` or ``"LP_H"``) or of a boolean mask."""
        keep = self.mask(name_or_mask) if isinstance(name_or_mask, str) else np.asarray(name_or_mask, bool)
        return PairSet(
            audio_paths=self.audio_paths,
            texts=self.texts,
            audio_index=self.audio_index[keep],
            text_index=self.text_index[keep],
            target=self.target[keep],
            kind=self.kind[keep],
            direction=self.direction[keep],
        )

    def counts(self) -> dict:
        """Number of pairs per kind, e.g. ``{"positive": 10, "easyneg": 30, "hardneg": 30}``."""
        return {k: int(np.sum(self.kind == k)) for k in PAIR_KINDS}


def evaluation_pairs(
    rows: Iterable[LibriPhraseRow], audio_root=None, *, allow_outside_root: bool = False
) -> PairSet:
    """Audio-vs-text evaluation pairs, in both directions, deduplicated.

    Every row gives two pairs: (anchor audio, comparison text) and (comparison audio,
    anchor text), both with the row's ``target`` and kind. We take both because either
    clip of a row is a spoken query and either text an enrolled keyword; using both
    doubles the negatives and uses every clip. A (clip, text, kind) seen more than once is
    kept once; a positive row therefore contributes each clip with its own text once
    (positives are fewer, relative to negatives, than the row counts suggest). The same
    (clip, text) may appear once as an easy and once as a hard negative, never twice in one
    of LP_E / LP_H.

    Args:
        rows: rows from :func:`read_libriphrase_csv`.
        audio_root: folder against which relative audio paths are resolved; by default
            the folder of the CSV file each row came from.
        allow_outside_root: with an ``audio_root``, accept rows whose audio path is
            absolute or climbs out of it with ``..`` (default: refuse them).

    Returns:
        A :class:`PairSet`.

    Raises:
        OutsideAudioRootError: (a ``ValueError``) with ``audio_root`` given and
            ``allow_outside_root=False``, a row whose audio lies outside the root; the
            message names the CSV file, line and column.
    """
    audio_ids: dict[str, int] = {}
    text_ids: dict[str, int] = {}
    seen: set = set()
    audio_index, text_index, targets, kinds, directions = [], [], [], [], []

    def add(path: str, text: str, target: int, kind: str, direction: int) -> None:
        a = audio_ids.setdefault(path, len(audio_ids))
        t = text_ids.setdefault(text, len(text_ids))
        key = (a, t, kind)
        if key in seen:
            return
        seen.add(key)
        audio_index.append(a)
        text_index.append(t)
        targets.append(target)
        kinds.append(kind)
        directions.append(direction)

    for row in rows:
        kind = row.kind
        anchor = _resolve(row.anchor, row.source, audio_root, allow_outside_root, row.line, "anchor")
        comparison = _resolve(
            row.comparison, row.source, audio_root, allow_outside_root, row.line, "comparison"
        )
        add(anchor, row.comparison_text, row.target, kind, 0)
        add(comparison, row.anchor_text, row.target, kind, 1)
    return PairSet(
        audio_paths=list(audio_ids),
        texts=list(text_ids),
        audio_index=np.asarray(audio_index, np.int64),
        text_index=np.asarray(text_index, np.int64),
        target=np.asarray(targets, np.int32),
        kind=np.asarray(kinds, dtype="<U8"),
        direction=np.asarray(directions, np.int8),
    )


@dataclasses.dataclass
class TrainingItems:
    """Distinct clips with a class per distinct text.

    ``labels[i]`` is the index of ``texts[i]`` in ``class_texts`` (the sorted distinct
    texts), so the same rows always give the same ids.
    """

    paths: list[str]
    texts: list[str]
    speakers: list[str]
    durations: np.ndarray
    labels: np.ndarray
    class_texts: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.class_texts)


def training_items(
    rows: Iterable[LibriPhraseRow], audio_root=None, *, allow_outside_root: bool = False
) -> TrainingItems:
    """The distinct clips of ``rows`` (anchor and comparison columns) as labelled items.

    Args:
        rows: rows from :func:`read_libriphrase_csv`.
        audio_root: folder for relative audio paths (default: each CSV's folder).
        allow_outside_root: as in :func:`evaluation_pairs` (default: with an
            ``audio_root``, refuse clips outside it).

    Returns:
        :class:`TrainingItems`, clips in order of first appearance.

    Raises:
        ValueError: one clip listed with two different texts (names the clip and rows);
            :class:`OutsideAudioRootError` for a clip outside ``audio_root``.
    """
    clips: dict[str, tuple[str, str, float, str]] = {}
    for row in rows:
        for column, path, text, speaker, dur in (
            ("anchor", row.anchor, row.anchor_text, row.anchor_spk, row.anchor_dur),
            ("comparison", row.comparison, row.comparison_text, row.comparison_spk, row.comparison_dur),
        ):
            resolved = _resolve(path, row.source, audio_root, allow_outside_root, row.line, column)
            where = f"{row.source}, line {row.line}"
            if resolved in clips:
                if clips[resolved][0] != text:
                    raise ValueError(
                        f"clip {resolved!r} has text {clips[resolved][0]!r} at {clips[resolved][3]} "
                        f"but {text!r} at {where}"
                    )
                continue
            clips[resolved] = (text, speaker, dur, where)
    class_texts = sorted({value[0] for value in clips.values()})
    class_of = {text: i for i, text in enumerate(class_texts)}
    paths = list(clips)
    texts = [clips[p][0] for p in paths]
    return TrainingItems(
        paths=paths,
        texts=texts,
        speakers=[clips[p][1] for p in paths],
        durations=np.asarray([clips[p][2] for p in paths], np.float32),
        labels=np.asarray([class_of[t] for t in texts], np.int32),
        class_texts=class_texts,
    )


def write_libriphrase_csv(path, records: Sequence[dict]) -> None:
    """Write LibriPhrase-format rows (dicts keyed by :data:`LIBRIPHRASE_COLUMNS`) atomically.

    The file goes to a temporary name in the same folder and is renamed over ``path``.
    """
    from kerasadml.atomic import atomic_open

    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(LIBRIPHRASE_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({c: record[c] for c in LIBRIPHRASE_COLUMNS})


def hard_negative_map(rows: Iterable[LibriPhraseRow]) -> dict[str, list[str]]:
    """``{text: [its hard-negative texts]}`` from the ``hardneg`` rows (both directions).

    LibriPhrase-format training CSVs list, for each anchor, texts that differ from it by a
    phoneme or two; :func:`kerasadml.data.speech.dataset.make_kws_training_dataset` uses this
    map to build batches of keyword families. Linear in the number of rows.
    """
    near: dict[str, set[str]] = {}
    for row in rows:
        if row.kind == "hardneg" and row.anchor_text != row.comparison_text:
            near.setdefault(row.anchor_text, set()).add(row.comparison_text)
            near.setdefault(row.comparison_text, set()).add(row.anchor_text)
    return {text: sorted(others) for text, others in near.items()}
