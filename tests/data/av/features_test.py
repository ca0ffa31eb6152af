import logging
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from kerasadml.data.av.features import (
    AVDataError,
    AVDataset,
    AVSplit,
    average_frames,
    dequantize_frames,
    load_av,
    load_av_hdf5,
    load_av_npy_folder,
    save_av_hdf5,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "av"
LAYOUT_A = FIXTURES / "layout_a.h5"
LAYOUT_B = FIXTURES / "layout_b.h5"
NPY = FIXTURES / "npy"


def assert_same_data(x: AVDataset, y: AVDataset):
    assert x.num_classes == y.num_classes
    for name in ("train", "test"):
        a, b = getattr(x, name), getattr(y, name)
        np.testing.assert_array_equal(a.audio, b.audio)
        np.testing.assert_array_equal(a.visual, b.visual)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.audio.dtype == np.float32 and a.visual.dtype == np.float32
        assert a.labels.dtype == np.int64


def read_layout_a(path=LAYOUT_A) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def write_h5(path, arrays: dict) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


# ------------------------------------------------------------------ the three layouts


def test_three_layouts_encode_the_same_data():
    a = load_av_hdf5(LAYOUT_A, audio_dim=8, visual_dim=12, num_classes=3)
    b = load_av_hdf5(LAYOUT_B, audio_dim=8, visual_dim=12, num_classes=3)
    c = load_av_npy_folder(NPY, audio_dim=8, visual_dim=12, num_classes=3)
    assert_same_data(a, b)
    assert_same_data(a, c)
    assert len(a.train) == 12 and len(a.test) == 6
    assert a.train.class_counts(3).tolist() == [4, 4, 4]
    assert c.class_names == ("dog", "drum", "siren")
    assert a.source == str(LAYOUT_A)


def test_load_av_dispatches_on_folder_or_file():
    assert_same_data(load_av(NPY), load_av(LAYOUT_A))
    assert_same_data(load_av(LAYOUT_B, train_value=1), load_av(LAYOUT_A))


def test_dequantisation_formula():
    frames = np.array([[128, 192], [0, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(dequantize_frames(frames), [[0.0, 0.25], [-0.5, 127 / 256]])
    np.testing.assert_allclose(average_frames(frames), [-0.25, (64 + 127) / 512])
    np.testing.assert_array_equal(average_frames(np.array([1.5, 2.0])), [1.5, 2.0])
    with pytest.raises(AVDataError, match="uint8"):
        dequantize_frames(np.ones((2, 3), dtype=np.int32))


def test_save_roundtrip_is_atomic_and_keeps_names(tmp_path):
    data = load_av_npy_folder(NPY)
    out = save_av_hdf5(tmp_path / "sub" / "copy.h5", data, attrs={"seed": 3, "note": None})
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.h5"]  # no temp file left
    again = load_av_hdf5(out)
    assert_same_data(data, again)
    assert again.class_names == data.class_names
    with h5py.File(out, "r") as f:
        assert f.attrs["seed"] == 3 and f.attrs["note"] == "none"
        assert set(f.keys()) == {
            "audio_train", "audio_test", "visual_train", "visual_test", "lab_train", "lab_test"
        }


def test_save_failure_leaves_no_file(tmp_path):
    data = load_av_hdf5(LAYOUT_A)
    with pytest.raises(TypeError):
        save_av_hdf5(tmp_path / "bad.h5", data, attrs={"bad": object()})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ layout B specifics


def _layout_b_arrays():
    with h5py.File(LAYOUT_B, "r") as f:
        return {k: f[k][()] for k in f}


def test_layout_b_string_markers_and_train_value(tmp_path):
    arrays = _layout_b_arrays()
    expected = load_av_hdf5(LAYOUT_A)
    flags = arrays["Train_test"]
    as_strings = dict(arrays, Train_test=np.array([b"train" if f else b"TEST " for f in flags]))
    assert_same_data(load_av_hdf5(write_h5(tmp_path / "s.h5", as_strings)), expected)
    # A file that marks train rows with 0: say so with train_value=0.
    inverted = dict(arrays, Train_test=1 - flags)
    assert_same_data(load_av_hdf5(write_h5(tmp_path / "i.h5", inverted), train_value=0), expected)
    # Integer labels in a column instead of one-hot.
    column = dict(arrays, Label_ID=np.argmax(arrays["Label_ID"], axis=1)[:, None].astype(float))
    assert_same_data(load_av_hdf5(write_h5(tmp_path / "c.h5", column)), expected)


def test_layout_b_unknown_markers_are_an_error(tmp_path):
    arrays = _layout_b_arrays()
    path = write_h5(tmp_path / "m.h5", dict(arrays, Train_test=arrays["Train_test"] + 1))
    with pytest.raises(AVDataError, match=r"Train_test.*train_value"):
        load_av_hdf5(path)
    path = write_h5(tmp_path / "w.h5", dict(arrays, Train_test=np.array([b"val"] * 18)))
    with pytest.raises(AVDataError, match="val"):
        load_av_hdf5(path)


def test_layout_b_bad_one_hot_names_rows(tmp_path):
    arrays = _layout_b_arrays()
    labels = arrays["Label_ID"].copy()
    labels[4] = [1, 1, 0]
    with pytest.raises(AVDataError, match=r"Label_ID.*rows 4 .*one-hot"):
        load_av_hdf5(write_h5(tmp_path / "o.h5", dict(arrays, Label_ID=labels)))


# ------------------------------------------------------------------ label repairs/errors


def test_one_based_labels_are_repaired_with_a_log_line(tmp_path, caplog):
    arrays = read_layout_a()
    arrays["lab_train"] = arrays["lab_train"] + 1
    arrays["lab_test"] = arrays["lab_test"] + 1
    path = write_h5(tmp_path / "one_based.h5", arrays)
    with caplog.at_level(logging.WARNING, logger="kerasadml.data.av.features"):
        repaired = load_av_hdf5(path)
    assert "1-based" in caplog.text and str(path) in caplog.text
    assert_same_data(repaired, load_av_hdf5(LAYOUT_A))
    assert_same_data(load_av_hdf5(path, num_classes=3), repaired)


def test_one_hot_layout_a_labels(tmp_path):
    arrays = read_layout_a()
    arrays["lab_train"] = np.eye(3)[arrays["lab_train"]]
    assert_same_data(load_av_hdf5(write_h5(tmp_path / "oh.h5", arrays)), load_av_hdf5(LAYOUT_A))


@pytest.mark.parametrize("bad", [3, -1])
def test_labels_out_of_range_name_key_and_rows(tmp_path, bad):
    arrays = read_layout_a()
    arrays["lab_test"] = arrays["lab_test"].copy()
    arrays["lab_test"][[1, 4]] = bad
    path = write_h5(tmp_path / "range.h5", arrays)
    with pytest.raises(AVDataError, match=r"lab_test.*outside \[0, 3\).*rows 1, 4") as info:
        load_av_hdf5(path, num_classes=3)
    assert str(path) in str(info.value)


def test_fractional_labels_are_an_error(tmp_path):
    arrays = read_layout_a()
    arrays["lab_train"] = arrays["lab_train"] + 0.5
    with pytest.raises(AVDataError, match=r"lab_train.*non-integer"):
        load_av_hdf5(write_h5(tmp_path / "f.h5", arrays))


def test_single_class_split_is_an_error(tmp_path):
    arrays = read_layout_a()
    arrays["lab_test"] = np.zeros_like(arrays["lab_test"])
    with pytest.raises(AVDataError, match=r"test split has a single class"):
        load_av_hdf5(write_h5(tmp_path / "one.h5", arrays), num_classes=3)


# ------------------------------------------------------------------ feature errors


def test_missing_keys_list_what_exists(tmp_path):
    arrays = read_layout_a()
    del arrays["visual_test"]
    path = write_h5(tmp_path / "missing.h5", arrays)
    with pytest.raises(AVDataError) as info:
        load_av_hdf5(path)
    message = str(info.value)
    assert str(path) in message
    assert "missing visual_test" in message
    assert "The file has: audio_test, audio_train, lab_test, lab_train, visual_train" in message


def test_row_counts_differ(tmp_path):
    arrays = read_layout_a()
    arrays["visual_train"] = arrays["visual_train"][:-1]
    with pytest.raises(AVDataError, match=r"row counts differ.*'audio_train' has 12.*'visual_train' has 11"):
        load_av_hdf5(write_h5(tmp_path / "rows.h5", arrays))


def test_wrong_width_names_key(tmp_path):
    with pytest.raises(AVDataError, match=r"'audio_train' has feature width 8, expected 128"):
        load_av_hdf5(LAYOUT_A, audio_dim=128)
    with pytest.raises(AVDataError, match=r"'visual_feat' has feature width 12, expected 1024"):
        load_av_hdf5(LAYOUT_B, visual_dim=1024)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_inf_rows_are_named(tmp_path, value):
    arrays = read_layout_a()
    arrays["visual_test"] = arrays["visual_test"].copy()
    arrays["visual_test"][2, 3] = value
    arrays["visual_test"][5, 0] = value
    with pytest.raises(AVDataError, match=r"'visual_test' has NaN or Inf values in 2 row\(s\): 2, 5"):
        load_av_hdf5(write_h5(tmp_path / "nan.h5", arrays))


def test_frame_level_features_are_rejected(tmp_path):
    arrays = read_layout_a()
    arrays["audio_train"] = np.repeat(arrays["audio_train"][:, None], 3, axis=1)
    with pytest.raises(AVDataError, match=r"'audio_train' must be a 2-D"):
        load_av_hdf5(write_h5(tmp_path / "3d.h5", arrays))


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_av_hdf5(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(AVDataError, match=r"junk.h5: not a readable HDF5"):
        load_av_hdf5(junk)


# ------------------------------------------------------------------ npy folder errors


@pytest.fixture
def npy_copy(tmp_path):
    root = tmp_path / "npy"
    shutil.copytree(NPY, root)
    return root


def test_npy_missing_split_folder_lists_contents(npy_copy):
    shutil.rmtree(npy_copy / "test")
    (npy_copy / "readme.txt").write_text("x")
    with pytest.raises(AVDataError, match=r"missing test.*holds: readme.txt, train"):
        load_av_npy_folder(npy_copy)


def test_npy_missing_modality_names_the_video(npy_copy):
    (npy_copy / "train" / "drum" / "tr101_visual.npy").unlink()
    with pytest.raises(AVDataError, match=r"tr101.*no tr101_visual.npy"):
        load_av_npy_folder(npy_copy)


def test_npy_bad_files_name_the_file_and_can_be_skipped(npy_copy, caplog):
    np.save(npy_copy / "train" / "dog" / "tr000_audio.npy", np.zeros((2, 9), np.uint8))
    with pytest.raises(AVDataError, match=r"tr000_audio.npy: audio feature width 9, expected 8"):
        load_av_npy_folder(npy_copy)
    np.save(npy_copy / "test" / "siren" / "te200_visual.npy", np.full((2, 12), np.nan, np.float32))
    (npy_copy / "train" / "drum" / "tr102_audio.npy").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="kerasadml.data.av.features"):
        data = load_av_npy_folder(npy_copy, on_bad="skip")
    assert "skipped 3 bad video(s)" in caplog.text
    assert len(data.train) == 10 and len(data.test) == 5


def test_npy_empty_and_wrong_dtype(npy_copy):
    np.save(npy_copy / "test" / "dog" / "te000_audio.npy", np.zeros((0, 8), np.uint8))
    with pytest.raises(AVDataError, match=r"te000_audio.npy: .*at least one frame"):
        load_av_npy_folder(npy_copy)
    np.save(npy_copy / "test" / "dog" / "te000_audio.npy", np.zeros((2, 8), np.int16))
    with pytest.raises(AVDataError, match=r"te000_audio.npy: .*uint8"):
        load_av_npy_folder(npy_copy)


def test_npy_class_order_numeric_and_classes_txt(tmp_path, npy_copy):
    for split in ("train", "test"):
        for old, new in (("dog", "10"), ("drum", "2"), ("siren", "1")):
            (npy_copy / split / old).rename(npy_copy / split / new)
    data = load_av_npy_folder(npy_copy)
    assert data.class_names == ("1", "2", "10")  # numeric, not alphabetical
    (npy_copy / "classes.txt").write_text("10\n2\n1\n")
    reference = load_av_npy_folder(NPY)
    assert_same_data(load_av_npy_folder(npy_copy), reference)
    (npy_copy / "classes.txt").write_text("10\n2\n")
    with pytest.raises(AVDataError, match=r"classes.txt: class folders \['1'\] are not listed"):
        load_av_npy_folder(npy_copy)


def test_npy_num_classes_mismatch(npy_copy):
    with pytest.raises(AVDataError, match=r"found 3 classes.*expected 4"):
        load_av_npy_folder(npy_copy, num_classes=4)


# ------------------------------------------------------------------ containers


def test_split_validates_shapes():
    with pytest.raises(AVDataError, match="same number of rows"):
        AVSplit(np.zeros((3, 2)), np.zeros((2, 2)), np.zeros(3))
    with pytest.raises(AVDataError, match="shapes"):
        AVSplit(np.zeros(3), np.zeros((3, 2)), np.zeros(3))
    split = AVSplit(np.zeros((3, 2)), np.ones((3, 4)), [0, 1, 1])
    assert split.subset([2, 0]).labels.tolist() == [1, 0]



# ------------------------------------------------------------------ implausible labels (#13)


def test_a_label_of_1e9_is_refused_naming_the_dataset_and_row(tmp_path):
    arrays = read_layout_a()
    arrays["lab_train"] = arrays["lab_train"].copy()
    arrays["lab_train"][5] = 10**9
    path = write_h5(tmp_path / "huge.h5", arrays)
    with pytest.raises(AVDataError, match=r"'lab_train' row 5: label 1000000000 is implausible") as info:
        load_av_hdf5(path)
    assert str(path) in str(info.value) and "num_classes=" in str(info.value)
    with pytest.raises(AVDataError, match=r"'lab_train' has labels outside \[0, 3\) in rows 5"):
        load_av_hdf5(path, num_classes=3)


def test_the_file_num_classes_attribute_is_the_declared_range(tmp_path):
    arrays = read_layout_a()
    arrays["lab_test"] = arrays["lab_test"].copy()
    arrays["lab_test"][0] = 4
    path = write_h5(tmp_path / "declared.h5", arrays)
    assert load_av_hdf5(path).num_classes == 5  # inferred without a declaration
    with h5py.File(path, "a") as f:
        f.attrs["num_classes"] = 3
    with pytest.raises(AVDataError, match=r"'lab_test' has labels outside \[0, 3\) in rows 0"):
        load_av_hdf5(path)
    assert load_av_hdf5(path, num_classes=5).num_classes == 5  # the argument wins
    with h5py.File(path, "a") as f:
        f.attrs["num_classes"] = -2
    with pytest.raises(AVDataError, match="attribute 'num_classes' is -2"):
        load_av_hdf5(path)
    # what save_av_hdf5 writes reads back unchanged
    data = load_av_hdf5(LAYOUT_A)
    assert_same_data(load_av_hdf5(save_av_hdf5(tmp_path / "saved.h5", data)), data)


def test_sparse_labels_are_logged(tmp_path, caplog):
    arrays = read_layout_a()
    arrays["lab_train"] = np.where(arrays["lab_train"] == 2, 30, arrays["lab_train"])
    arrays["lab_test"] = np.where(arrays["lab_test"] == 2, 30, arrays["lab_test"])
    with caplog.at_level(logging.WARNING, logger="kerasadml.data.av.features"):
        data = load_av_hdf5(write_h5(tmp_path / "sparse.h5", arrays))
    assert data.num_classes == 31
    assert "only 3 of the 31 classes" in caplog.text


def test_dataset_labels_must_fit_num_classes():
    split = AVSplit(np.ones((3, 2)), np.ones((3, 2)), [0, 1, 1])
    with pytest.raises(AVDataError, match=r"src: the train split has labels outside \[0, 2\) in rows 2"):
        AVDataset(AVSplit(np.ones((3, 2)), np.ones((3, 2)), [0, 1, 2]), split, 2, "src")
    with pytest.raises(AVDataError, match="num_classes must be positive"):
        AVDataset(split, split, 0, "src")
