"""LibriPhrase reader: the fixture in tests/fixtures/libriphrase/ is in the published format
(two test files split by word count, one row pointing at a missing clip, one at a corrupt one)."""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from kerasadml.data.speech.libriphrase import (
    LIBRIPHRASE_COLUMNS,
    evaluation_pairs,
    hard_negative_map,
    read_libriphrase_csv,
    training_items,
    write_libriphrase_csv,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "libriphrase"
ONE_WORD = FIXTURE / "libriphrase_diffspk_all_1word.csv"
TWO_WORD = FIXTURE / "libriphrase_diffspk_all_2word.csv"


def _clip(rel: str) -> str:
    return os.path.normpath(str(FIXTURE / rel))


@pytest.fixture(scope="module")
def rows():
    return read_libriphrase_csv([ONE_WORD, TWO_WORD])


def test_columns_constant_matches_the_published_header():
    with open(ONE_WORD, newline="") as handle:
        assert tuple(next(csv.reader(handle))) == LIBRIPHRASE_COLUMNS


def test_reads_rows_from_files_folder_and_glob(rows):
    assert len(rows) == 11 and rows.skipped == 0
    assert len(read_libriphrase_csv(FIXTURE)) == 11
    assert len(read_libriphrase_csv(str(FIXTURE / "libriphrase_diffspk_all_*word.csv"))) == 11
    first = rows[0]
    assert first.anchor == "wav/101/101_0001_1word_0.wav"
    assert first.anchor_text == "friend" and first.anchor_spk == "101"
    assert first.kind == "positive" and first.target == 1 and first.word_class == 1
    assert first.source == os.path.abspath(ONE_WORD) and first.line == 2
    assert {r.word_class for r in rows} == {1, 2}
    assert sorted({r.kind for r in rows}) == ["easyneg", "hardneg", "positive"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_libriphrase_csv(tmp_path / "nope.csv")


def test_missing_columns_error_names_file_and_columns(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("anchor,anchor_text,comparison,comparison_text,type,target\na.wav,x,b.wav,y,diffspk_easyneg,0\n")
    with pytest.raises(ValueError) as excinfo:
        read_libriphrase_csv(bad)
    message = str(excinfo.value)
    assert "bad.csv" in message
    for column in ("anchor_spk", "anchor_dur", "comparison_spk", "comparison_dur", "class"):
        assert column in message


def _write_rows(path: Path, lines: list[str]) -> None:
    path.write_text(",".join(LIBRIPHRASE_COLUMNS) + "\n" + "\n".join(lines) + "\n")


def test_malformed_row_raises_with_file_and_line_or_is_skipped(tmp_path):
    good = "a.wav,1,hi,0.5,b.wav,2,hi,0.6,diffspk_positive,1,1"
    bad_dur = "a.wav,1,hi,oops,b.wav,2,yo,0.6,diffspk_easyneg,0,1"
    bad_target = "a.wav,1,hi,0.5,b.wav,2,yo,0.6,diffspk_easyneg,1,1"
    short = "a.wav,1,hi,0.5"
    path = tmp_path / "rows.csv"
    _write_rows(path, [good, bad_dur, good, bad_target, short])
    with pytest.raises(ValueError, match=r"rows\.csv, line 3: malformed row: column 'anchor_dur'"):
        read_libriphrase_csv(path)
    rows = read_libriphrase_csv(path, on_error="skip")
    assert len(rows) == 2 and rows.skipped == 3
    assert "line 5" in rows.errors[1] and "line 6" in rows.errors[2]
    with pytest.raises(ValueError, match="on_error"):
        read_libriphrase_csv(path, on_error="ignore")


def test_texts_are_normalised(tmp_path):
    path = tmp_path / "rows.csv"
    _write_rows(path, ["a.wav,1,  The  River ,0.5,b.wav,2,the river,0.6,diffspk_positive,1,2"])
    (row,) = read_libriphrase_csv(path)
    assert row.anchor_text == "the river" == row.comparison_text


def test_evaluation_pairs_both_directions_deduplicated(rows):
    pairs = evaluation_pairs(rows)
    got = {
        (pairs.audio_paths[a], pairs.texts[t], int(y), str(k))
        for a, t, y, k in zip(pairs.audio_index, pairs.text_index, pairs.target, pairs.kind)
    }
    assert len(got) == len(pairs)  # no duplicates
    expected = {
        # friend_101 rows: anchor audio vs comparison text, comparison audio vs anchor text
        (_clip("wav/101/101_0001_1word_0.wav"), "friend", 1, "positive"),
        (_clip("wav/102/102_0001_1word_0.wav"), "friend", 1, "positive"),
        (_clip("wav/101/101_0001_1word_0.wav"), "guard", 0, "easyneg"),
        (_clip("wav/104/104_0001_1word_0.wav"), "friend", 0, "easyneg"),
        (_clip("wav/101/101_0001_1word_0.wav"), "trend", 0, "hardneg"),
        (_clip("wav/103/103_0001_1word_0.wav"), "friend", 0, "hardneg"),
        # friend_102 rows
        (_clip("wav/106/106_0001_1word_0.wav"), "friend", 1, "positive"),
        (_clip("wav/102/102_0001_1word_0.wav"), "guard", 0, "easyneg"),
        (_clip("wav/102/102_0001_1word_0.wav"), "trend", 0, "hardneg"),
        (_clip("wav/107/107_0001_1word_0.wav"), "friend", 0, "hardneg"),
        # two-word rows
        (_clip("wav/101/101_0002_2word_0.wav"), "the river", 1, "positive"),
        (_clip("wav/105/105_0001_2word_0.wav"), "the river", 1, "positive"),
        (_clip("wav/101/101_0002_2word_0.wav"), "every morning", 0, "easyneg"),
        (_clip("wav/103/103_0002_2word_0.wav"), "the river", 0, "easyneg"),
        (_clip("wav/101/101_0002_2word_0.wav"), "the liver", 0, "hardneg"),
        (_clip("wav/102/102_0002_2word_0.wav"), "the river", 0, "hardneg"),
        (_clip("wav/105/105_0001_2word_0.wav"), "the liver", 0, "hardneg"),
    }
    assert got == expected
    assert all(os.path.isabs(p) for p in pairs.audio_paths)
    assert len(set(pairs.audio_paths)) == len(pairs.audio_paths) == 10
    assert sorted(pairs.texts) == ["every morning", "friend", "guard", "the liver", "the river", "trend"]
    assert set(pairs.direction.tolist()) == {0, 1}
    assert pairs.counts() == {"positive": 5, "easyneg": 5, "hardneg": 7}


def test_protocol_subsets(rows):
    pairs = evaluation_pairs(rows)
    easy, hard = pairs.subset("LP_E"), pairs.subset("LP_H")
    assert set(easy.kind.tolist()) == {"positive", "easyneg"}
    assert set(hard.kind.tolist()) == {"positive", "hardneg"}
    assert len(easy) == 10 and len(hard) == 12
    assert easy.audio_paths is pairs.audio_paths and easy.texts is pairs.texts
    np.testing.assert_array_equal(pairs.mask("LP_E"), np.isin(pairs.kind, ["positive", "easyneg"]))
    assert len(pairs.subset("all")) == len(pairs)
    assert ((easy.target == 1) == (easy.kind == "positive")).all()
    with pytest.raises(ValueError, match="LP_E"):
        pairs.subset("LP_X")


def test_audio_root_overrides_csv_folder(rows, tmp_path):
    pairs = evaluation_pairs(rows, audio_root=tmp_path)
    assert all(p.startswith(str(tmp_path)) for p in pairs.audio_paths)


def test_training_items(rows):
    items = training_items(rows)
    assert len(items) == 10  # 8 clips + the missing and the corrupt one
    assert items.class_texts == sorted(items.class_texts)
    assert items.num_classes == 6
    for path, text, label in zip(items.paths, items.texts, items.labels):
        assert items.class_texts[label] == text
        assert os.path.isabs(path)
    by_path = dict(zip(items.paths, items.speakers))
    assert by_path[_clip("wav/105/105_0001_2word_0.wav")] == "105"
    assert items.durations.dtype == np.float32


def test_training_items_rejects_a_clip_with_two_texts(tmp_path):
    path = tmp_path / "rows.csv"
    _write_rows(
        path,
        [
            "a.wav,1,hi,0.5,b.wav,2,hi,0.6,diffspk_positive,1,1",
            "a.wav,1,ho,0.5,c.wav,3,yo,0.6,diffspk_easyneg,0,1",
        ],
    )
    with pytest.raises(ValueError, match="a.wav"):
        training_items(read_libriphrase_csv(path))


def test_write_then_read_roundtrip(rows, tmp_path):
    records = [
        {
            "anchor": r.anchor, "anchor_spk": r.anchor_spk, "anchor_text": r.anchor_text,
            "anchor_dur": r.anchor_dur, "comparison": r.comparison, "comparison_spk": r.comparison_spk,
            "comparison_text": r.comparison_text, "comparison_dur": r.comparison_dur, "type": r.type,
            "target": r.target, "class": r.word_class,
        }
        for r in rows
    ]
    out = tmp_path / "copy.csv"
    write_libriphrase_csv(out, records)
    again = read_libriphrase_csv(out)
    assert [(r.anchor, r.comparison_text, r.kind) for r in again] == [(r.anchor, r.comparison_text, r.kind) for r in rows]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_audio_root_refuses_rows_outside_it_naming_the_row(tmp_path):
    from kerasadml.data.speech.libriphrase import OutsideAudioRootError

    root = tmp_path / "root"
    root.mkdir()
    path = tmp_path / "rows.csv"
    _write_rows(
        path,
        [
            "a.wav,1,hi,0.5,b.wav,2,hi,0.6,diffspk_positive,1,1",
            "sub/../a.wav,1,hi,0.5,../../etc/passwd,3,yo,0.6,diffspk_easyneg,0,1",
        ],
    )
    rows = read_libriphrase_csv(path)
    with pytest.raises(OutsideAudioRootError, match=r"rows\.csv, line 3: column 'comparison' holds '\.\./\.\./etc/passwd'") as info:
        evaluation_pairs(rows, audio_root=root)
    assert isinstance(info.value, ValueError) and "allow_outside_root" in str(info.value)
    with pytest.raises(OutsideAudioRootError, match="line 3"):
        training_items(rows, audio_root=root)
    absolute = tmp_path / "abs.csv"
    _write_rows(absolute, [f"{tmp_path / 'x.wav'},1,hi,0.5,b.wav,2,hi,0.6,diffspk_positive,1,1"])
    with pytest.raises(OutsideAudioRootError, match=r"line 2: column 'anchor'.*an absolute path"):
        evaluation_pairs(read_libriphrase_csv(absolute), audio_root=root)
    # opting in reads them; "sub/../a.wav" stays inside and is fine either way
    pairs = evaluation_pairs(rows, audio_root=root, allow_outside_root=True)
    assert os.path.normpath(str(root / "../../etc/passwd")) in pairs.audio_paths
    assert str(root / "a.wav") in evaluation_pairs(rows[:1], audio_root=root).audio_paths
    # without an explicit audio_root paths are relative to the CSV, as before
    assert len(evaluation_pairs(rows)) == 4


def test_hard_negative_map_from_the_fixture(rows):
    near = hard_negative_map(rows)
    # the fixture's hardneg rows: friend/trend (twice) and the river/the liver (twice)
    assert near == {
        "friend": ["trend"],
        "trend": ["friend"],
        "the river": ["the liver"],
        "the liver": ["the river"],
    }
    assert "guard" not in near and "every morning" not in near  # easyneg rows only


def test_hard_negative_map_is_symmetric_sorted_and_ignores_other_rows(tmp_path):
    path = tmp_path / "rows.csv"
    _write_rows(
        path,
        [
            "a.wav,1,cat,0.5,b.wav,2,cap,0.6,diffspk_hardneg,0,1",
            "a.wav,1,cat,0.5,c.wav,2,bat,0.6,diffspk_hardneg,0,1",
            "d.wav,3,mat,0.5,a.wav,1,cat,0.6,samespk_hardneg,0,1",
            "a.wav,1,cat,0.5,e.wav,2,dog,0.6,diffspk_easyneg,0,1",  # not a hard negative
            "a.wav,1,cat,0.5,f.wav,2,cat,0.6,diffspk_positive,1,1",
            "b.wav,2,cap,0.6,a.wav,1,cat,0.5,diffspk_hardneg,0,1",  # a duplicate, reversed
        ],
    )
    rows = list(read_libriphrase_csv(path))
    assert sorted({r.kind for r in rows}) == ["easyneg", "hardneg", "positive"]
    # a hardneg row with one text on both sides (the reader refuses it; built by hand) is ignored
    rows.append(dataclasses.replace(rows[0], anchor_text="sun", comparison_text="sun"))
    near = hard_negative_map(rows)
    assert near == {"cat": ["bat", "cap", "mat"], "cap": ["cat"], "bat": ["cat"], "mat": ["cat"]}
    for text, others in near.items():
        assert others == sorted(set(others)) and text not in others
        for other in others:
            assert text in near[other]  # symmetric
    assert hard_negative_map([]) == {}
    assert hard_negative_map(r for r in rows) == near  # any iterable, one pass
