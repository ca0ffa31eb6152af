"""kerasadml.plots: ROC/DET and affinity figures are written as PNG files of the
expected size (headless, Agg backend), into folders created on the way; bad inputs raise
before anything is written."""

import struct

import matplotlib

matplotlib.use("Agg")  # headless, as kerasadml.plots itself selects

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kerasadml.plots import plot_affinity, plot_roc_det  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 120  # the resolution both functions save at


def _png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _assert_drawn(path):
    """The image is not blank: its pixels take more than one value."""
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.std() > 0


def _trials(n=200, separation=1.5, seed=0):
    rng = np.random.RandomState(seed)
    targets = (np.arange(n) % 2).astype("int64")
    scores = rng.randn(n) + separation * targets
    return targets, scores


def test_roc_det_writes_a_png(tmp_path):
    open_before = set(plt.get_fignums())
    curves = {"LP_E": _trials(seed=0), "LP_H": _trials(separation=0.5, seed=1)}
    path = tmp_path / "new" / "folder" / "roc_det.png"
    returned = plot_roc_det(curves, path, title="two subsets")
    assert returned == path and path.is_file() and path.stat().st_size > 0
    assert _png_size(path) == (11 * DPI, int(4.8 * DPI))  # figsize (11, 4.8)
    _assert_drawn(path)
    assert set(plt.get_fignums()) == open_before  # the figure is closed


def test_roc_det_accepts_str_paths_booleans_and_no_title(tmp_path):
    targets, scores = _trials(n=50)
    path = plot_roc_det({"only": (targets.astype(bool), scores.tolist())}, str(tmp_path / "r.png"))
    assert path == tmp_path / "r.png"
    assert _png_size(path) == (11 * DPI, int(4.8 * DPI))


@pytest.mark.parametrize(
    "targets,scores,match",
    [
        ([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], None),  # one class only: no ROC, no EER
        ([0, 1, 0], [0.1, 0.2], "inconsistent|same length"),  # lengths differ
        ([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4], None),  # not binary
    ],
    ids=["one-class", "length-mismatch", "not-binary"],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_roc_det_bad_input_raises_and_writes_nothing(tmp_path, targets, scores, match):
    path = tmp_path / "bad.png"
    open_before = set(plt.get_fignums())
    with pytest.raises(ValueError, match=match):
        plot_roc_det({"bad": (np.asarray(targets), np.asarray(scores))}, path)
    assert not path.exists()
    assert set(plt.get_fignums()) == open_before  # checked before a figure is made


def test_affinity_writes_one_panel_per_matrix(tmp_path):
    open_before = set(plt.get_fignums())
    rng = np.random.RandomState(0)
    matrices = [rng.rand(5, 40), rng.rand(3, 25), rng.rand(4, 60)]
    phonemes = [["HH", "EH", "L", "OW", "<pad>"], ["K", "AE", "T"], ["D", "AO", "G", "Z"]]
    titles = ['"hello"', '"cat"', '"dogs"']
    path = tmp_path / "plots" / "affinity.png"
    returned = plot_affinity(matrices, phonemes, titles, path, frame_step_s=0.02)
    assert returned == path and path.stat().st_size > 0
    assert _png_size(path) == (9 * DPI, int(round(2.4 * 3 * DPI)))  # figsize (9, 2.4 n)
    _assert_drawn(path)
    assert set(plt.get_fignums()) == open_before
    # one panel
    one = plot_affinity([matrices[0]], [phonemes[0]], ["one"], str(tmp_path / "one.png"))
    assert _png_size(one) == (9 * DPI, int(round(2.4 * DPI)))


def test_affinity_shows_only_the_rows_of_the_phonemes(tmp_path):
    """Rows past ``len(phonemes)`` (padding) are cut: extra garbage rows change nothing."""
    rng = np.random.RandomState(1)
    matrix = rng.rand(3, 30)
    padded = np.concatenate([matrix, 1e6 * np.ones((4, 30))], axis=0)
    a = plot_affinity([matrix], [["A", "B", "C"]], ["t"], tmp_path / "a.png")
    b = plot_affinity([padded], [["A", "B", "C"]], ["t"], tmp_path / "b.png")
    np.testing.assert_array_equal(matplotlib.image.imread(a), matplotlib.image.imread(b))


def test_affinity_bad_input_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.png"
    open_before = set(plt.get_fignums())
    with pytest.raises(ValueError, match="at least one"):
        plot_affinity([], [], [], path)  # no matrix: no panel to draw
    with pytest.raises(ValueError, match="got 2, 1, 1"):
        plot_affinity([np.ones((2, 3))] * 2, [["A", "B"]], ["t"], path)  # lists of different lengths
    with pytest.raises(ValueError, match=r"matrices\[0\] must be 2-D"):
        plot_affinity([np.ones(5)], [["A"]], ["t"], path)
    assert not path.exists()
    assert set(plt.get_fignums()) == open_before
