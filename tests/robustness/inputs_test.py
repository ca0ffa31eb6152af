"""A corpus of bad inputs over the data and inference entry points (issue #13, part B).

Every case names an entry point, a bad input and the *outcome class* it must get:

* ``Error(type, match)``: a clean exception of that type whose message names the thing
  (the file, the argument and its index, the CSV row, the HDF5 dataset and row);
* ``Repair(check)``: a documented repair (down-mix, int PCM scaling, a string taken as
  one keyword, a truncated wav read as far as it goes ...); ``check`` looks at the result
  and ``warns`` names the warning that must come with it;
* ``Skip(key, count)``: the run goes on and counts what it skipped in ``result[key]``.

Cases marked ``model`` run the tiny ADML (the shipped ``adml_tiny`` architecture, built
once per module) under the active Keras backend; run the file once per backend
(``KERAS_BACKEND=tensorflow`` and ``jax``). The others do not depend on the backend.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import pytest
import soundfile as sf

from kerasadml.data.audio_io import (
    AudioError,
    TruncatedAudioWarning,
    check_waveform,
    load_audio,
    load_clips,
    write_wav_atomic,
)
from kerasadml.data.av.features import AVDataError, AVDataset, AVSplit, load_av_hdf5
from kerasadml.data.speech.libriphrase import (
    LIBRIPHRASE_COLUMNS,
    OutsideAudioRootError,
    evaluation_pairs,
    read_libriphrase_csv,
    training_items,
)
from kerasadml.data.speech.phonemizer import Phonemizer, PhonemizerError, UnvoicedTextWarning
from kerasadml.kws.detector import check_threshold
from kerasadml.validation import as_text_list

AUDIO_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
SR = 16000


# ------------------------------------------------------------------------ outcome classes
@dataclasses.dataclass
class Error:
    type: type
    match: str  # regex the message must contain (names the thing)


@dataclasses.dataclass
class Repair:
    check: Callable[[Any], bool] = lambda result: True
    warns: type | None = None  # warning category that must accompany the repair


@dataclasses.dataclass
class Skip:
    key: str
    count: int


def _tone(n=8000, freq=440.0, amp=0.3):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


TONE = _tone()
STEREO = np.stack([TONE, 0.5 * TONE], axis=1)


# ------------------------------------------------------------------------ files on disk
def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(LIBRIPHRASE_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def _row(anchor, anchor_text, comparison, comparison_text, kind="easyneg"):
    target = int(kind == "positive")
    return {
        "anchor": anchor, "anchor_spk": "1", "anchor_text": anchor_text, "anchor_dur": 0.5,
        "comparison": comparison, "comparison_spk": "2", "comparison_text": comparison_text,
        "comparison_dur": 0.5, "type": f"diffspk_{kind}", "target": target, "class": 1,
    }  # fmt: skip


def _layout_a(path: Path, lab_train, lab_test, attrs=None) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for split, labels in (("train", lab_train), ("test", lab_test)):
            n = len(labels)
            f.create_dataset(f"audio_{split}", data=rng.normal(size=(n, 4)).astype("float32"))
            f.create_dataset(f"visual_{split}", data=rng.normal(size=(n, 6)).astype("float32"))
            f.create_dataset(f"lab_{split}", data=np.asarray(labels))
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("inputs")
    out: dict[str, Any] = {"root": root}
    write_wav_atomic(root / "tone.wav", TONE)
    sf.write(root / "stereo.wav", STEREO, SR, subtype="PCM_16")
    full = (root / "tone.wav").read_bytes()
    # header says 8000 frames, the file holds 4000 (a copy cut off mid-transfer)
    (root / "truncated.wav").write_bytes(full[: 44 + 2 * 4000])
    sf.write(root / "tone.flac", TONE + 0.01 * np.random.default_rng(0).normal(size=TONE.shape), SR)
    flac = (root / "tone.flac").read_bytes()
    (root / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    out["non_utf8"] = None
    if os.name != "nt":
        name = os.fsdecode(os.fsencode(str(root)) + b"/caf\xe9.wav")
        try:
            with open(os.fsencode(name), "wb") as handle:
                handle.write(full)
            out["non_utf8"] = name
        except OSError:  # a file system that only takes UTF-8 names (e.g. APFS)
            pass

    # LibriPhrase-format rows over four clips in root/clips, and a clip outside it
    clips = root / "clips"
    for i, freq in enumerate((300.0, 500.0, 700.0, 900.0)):
        write_wav_atomic(clips / f"c{i}.wav", _tone(8000, freq))
    (clips / "cut.wav").write_bytes(full[: 44 + 2 * 4000])
    write_wav_atomic(root / "outside.wav", TONE)
    good = [
        _row("c0.wav", "stop", "c1.wav", "stop", "positive"),
        _row("c0.wav", "stop", "c2.wav", "go", "easyneg"),
        _row("c1.wav", "stop", "c3.wav", "top", "hardneg"),
        _row("c2.wav", "go", "c1.wav", "stop", "easyneg"),
        _row("c3.wav", "top", "c0.wav", "stop", "hardneg"),
    ]
    out["csv_good"] = _write_csv(clips / "good.csv", good)
    out["csv_abs"] = _write_csv(clips / "abs.csv", good + [_row(str(root / "outside.wav"), "go", "c0.wav", "stop")])
    out["csv_dotdot"] = _write_csv(clips / "dotdot.csv", good + [_row("c0.wav", "stop", "../outside.wav", "go")])
    out["csv_text"] = _write_csv(
        clips / "text.csv", good + [_row("c0.wav", "stop", "c2.wav", "\u0645\u0631\u062d\u0628\u0627")]
    )
    out["csv_partial_text"] = _write_csv(
        clips / "partial.csv", good + [_row("c1.wav", "stop", "c2.wav", "go \u2122")]
    )
    out["csv_missing"] = _write_csv(clips / "missing.csv", good + [_row("c0.wav", "stop", "nope.wav", "go")])
    out["csv_cut"] = _write_csv(clips / "cut.csv", good + [_row("c0.wav", "stop", "cut.wav", "go")])

    # HDF5 feature files (layout A unless said)
    ok_train, ok_test = [0, 1, 2, 0, 1, 2], [0, 1, 2]
    out["h5_huge"] = _layout_a(root / "huge.h5", [0, 1, 2, 10**9, 1, 2], ok_test)
    out["h5_negative"] = _layout_a(root / "negative.h5", ok_train, [0, -3, 2])
    out["h5_declared"] = _layout_a(root / "declared.h5", ok_train, [0, 1, 7], attrs={"num_classes": 3})
    out["h5_bad_attr"] = _layout_a(root / "bad_attr.h5", ok_train, ok_test, attrs={"num_classes": "ten"})
    out["h5_sparse"] = _layout_a(root / "sparse.h5", [0, 1, 40, 0, 1, 40], [0, 1, 40])
    with h5py.File(root / "layout_b.h5", "w") as f:
        f["audio_feat"] = np.ones((6, 4), "float32") * np.arange(6)[:, None]
        f["visual_feat"] = np.ones((6, 6), "float32")
        f["Label_ID"] = np.array([0, 1, 0, 1, 10**9, 1])
        f["Train_test"] = np.array([1, 1, 1, 0, 0, 0])
    out["h5_layout_b"] = root / "layout_b.h5"
    return out


@pytest.fixture(scope="module")
def model():
    """The shipped ``adml_tiny`` architecture. These cases test input handling, not
    accuracy, so the weights are not loaded (keeps the cases independent of the
    shipped weights file)."""
    from kerasadml.zoo import ADML

    return ADML.from_preset("adml_tiny", load_weights=False)


@pytest.fixture(scope="module")
def phonemizer():
    return Phonemizer(use_pos_tagger=False)


def _evaluate(model, csv_path, **kwargs):
    from kerasadml.kws.evaluation import evaluate_libriphrase

    return evaluate_libriphrase(model, [str(csv_path)], progress=False, **kwargs)


def _pairs(files, key, **kwargs):
    return evaluation_pairs(read_libriphrase_csv(files[key]), audio_root=files["root"] / "clips", **kwargs)


def _detector_with_threshold(model, value):
    detector = model.keyword_detector(["stop"])
    detector.threshold = value
    return detector


# ------------------------------------------------------------------------ the corpus
# (id, needs, call, outcome): ``needs`` lists the fixtures ``call`` takes, by name.
F = ("files",)
M = ("model",)
MF = ("model", "files")
P = ("phonemizer",)
NAN, INF = float("nan"), float("inf")

CASES = [
    # --- audio files ---------------------------------------------------------------
    ("file/missing", F, lambda f: load_audio(f["root"] / "nope.wav"), Error(AudioError, r"nope\.wav.*not found")),
    ("file/zero-bytes", (), lambda: load_audio(AUDIO_FIXTURES / "zero_bytes.wav"), Error(AudioError, r"zero_bytes\.wav.*empty file")),
    ("file/corrupt", (), lambda: load_audio(AUDIO_FIXTURES / "corrupt.wav"), Error(AudioError, r"corrupt\.wav.*unreadable or corrupt")),
    ("file/directory", F, lambda f: load_audio(f["root"]), Error(AudioError, "is a directory")),
    ("file/header-only", (), lambda: load_audio(AUDIO_FIXTURES / "empty_header_only.wav"), Error(AudioError, "no samples")),
    ("file/too-short", (), lambda: load_audio(AUDIO_FIXTURES / "short_100.wav"), Error(AudioError, r"short_100\.wav.*too short: 100 samples")),
    ("file/silent", (), lambda: load_audio(AUDIO_FIXTURES / "silent.wav"), Error(AudioError, r"silent\.wav.*silent")),
    ("file/nan-samples", (), lambda: load_audio(AUDIO_FIXTURES / "nan_float.wav"), Error(AudioError, r"nan_float\.wav.*NaN or Inf")),
    ("file/truncated-wav", F, lambda f: load_audio(f["root"] / "truncated.wav"),
     Repair(lambda wave: wave.shape == (4000,), warns=TruncatedAudioWarning)),
    ("file/truncated-wav-strict", F, lambda f: load_audio(f["root"] / "truncated.wav", on_truncated="raise"),
     Error(AudioError, r"truncated\.wav.*truncated: its header declares 8000 frames but it holds 4000")),
    ("file/truncated-flac", F, lambda f: load_audio(f["root"] / "truncated.flac"),
     Error(AudioError, r"truncated\.flac.*unreadable or corrupt")),
    ("file/stereo-downmix", F, lambda f: load_audio(f["root"] / "stereo.wav"),
     Repair(lambda wave: np.allclose(wave, 0.75 * TONE, atol=2e-4))),
    ("file/bad-truncation-mode", F, lambda f: load_audio(f["root"] / "tone.wav", on_truncated="sometimes"),
     Error(ValueError, "on_truncated must be one of")),
    # --- arrays: one check for arrays and files ------------------------------------
    ("array/nan", (), lambda: load_clips([TONE, np.where(np.arange(8000) == 7, np.nan, TONE)]),
     Error(AudioError, r"audio array 'audio\[1\]': contains NaN or Inf samples \(1, first at sample 7\)")),
    ("array/inf", (), lambda: load_clips([np.full(8000, np.inf, "float32")]), Error(AudioError, r"audio\[0\].*NaN or Inf")),
    ("array/empty", (), lambda: load_clips([np.zeros(0, "float32")]), Error(AudioError, r"audio\[0\].*no samples")),
    ("array/10-samples", (), lambda: load_clips([TONE[:10]]), Error(AudioError, r"audio\[0\].*too short: 10 samples.*fewer than 400")),
    ("array/silent", (), lambda: load_clips([np.zeros(8000, "float32")]), Error(AudioError, r"audio\[0\].*silent")),
    ("array/none-item", (), lambda: load_clips([TONE, None]), Error(TypeError, r"audio\[1\] is None")),
    ("array/none", (), lambda: load_clips(None), Error(TypeError, r"audio is None")),
    ("array/scalar-item", (), lambda: load_clips([0.5]), Error(AudioError, r"audio\[0\].*single number")),
    ("array/object-item", (), lambda: load_clips([{"wave": TONE}]), Error(TypeError, r"audio\[0\] is not an array of samples")),
    ("array/text-item", (), lambda: load_clips([np.array(["a", "b"])]), Error(TypeError, r"audio\[0\] is not an array of samples")),
    ("array/ragged-item", (), lambda: load_clips([[[0.1, 0.2], [0.3]]]), Error(TypeError, r"audio\[0\] is not an array of samples")),
    ("array/uint8", (), lambda: load_clips([np.full(8000, 128, np.uint8)]), Error(AudioError, r"audio\[0\].*dtype uint8")),
    ("array/complex", (), lambda: load_clips([TONE.astype(np.complex64)]), Error(AudioError, r"audio\[0\].*dtype complex64")),
    ("array/3-d", (), lambda: load_clips([np.zeros((2, 2, 8000))]), Error(AudioError, r"audio\[0\].*3 dimensions")),
    ("array/ambiguous-2-d", (), lambda: load_clips([np.ones((500, 500), "float32")]), Error(AudioError, r"audio\[0\].*2-D shape \(500, 500\)")),
    ("array/stereo-bare", (), lambda: load_clips(STEREO), Error(AudioError, r"shape \(8000, 2\).*pass \[wave\]")),
    ("array/stereo-(N,2)", (), lambda: load_clips([STEREO]), Repair(lambda w: np.allclose(w[0], 0.75 * TONE))),
    ("array/stereo-(2,N)", (), lambda: load_clips([STEREO.T]), Repair(lambda w: np.allclose(w[0], 0.75 * TONE))),
    ("array/int16-pcm", (), lambda: load_clips([(TONE * 32767).astype(np.int16)]),
     Repair(lambda w: w[0].dtype == np.float32 and np.allclose(w[0], TONE, atol=1e-4))),
    ("array/bare-1-d-is-one-clip", (), lambda: load_clips(TONE), Repair(lambda w: len(w) == 1 and w[0].shape == (8000,))),
    ("array/bare-path-is-one-clip", F, lambda f: load_clips(str(f["root"] / "tone.wav")), Repair(lambda w: len(w) == 1)),
    ("array/check-waveform-float64", (), lambda: check_waveform(TONE.astype(np.float64)), Repair(lambda w: w.dtype == np.float32)),
    # --- keyword texts ---------------------------------------------------------------
    ("text/other-script-warns", P, lambda p: p.phonemize("hello \u0645\u0631\u062d\u0628\u0627"),
     Repair(lambda ph: ph == ["HH", "AH", "L", "OW"], warns=UnvoicedTextWarning)),
    ("text/other-script-strict", P, lambda p: p.phonemize("hello \u0645\u0631\u062d\u0628\u0627", strict=True),
     Error(PhonemizerError, "'\u0645\u0631\u062d\u0628\u0627' cannot be voiced")),
    ("text/trademark-alone", P, lambda p: p.phonemize("\u2122"), Error(PhonemizerError, "'\u2122' cannot be voiced")),
    ("text/trademark-not-spelt", P, lambda p: p.phonemize("hello\u2122"),
     Repair(lambda ph: ph == ["HH", "AH", "L", "OW"], warns=UnvoicedTextWarning)),
    ("text/emoji", P, lambda p: p.phonemize("stop \U0001f6d1"), Repair(lambda ph: ph == ["S", "T", "AA", "P"], warns=UnvoicedTextWarning)),
    ("text/none", P, lambda p: p.phonemize(None), Error(TypeError, "text must be a str, got NoneType")),
    ("text/punctuation-only", P, lambda p: p.phonemize("?!"), Error(PhonemizerError, "gives no phonemes")),
    ("text/bare-string-list", (), lambda: as_text_list("mass"), Repair(lambda k: k == ["mass"])),
    ("text/none-in-list", (), lambda: as_text_list(["stop", None]), Error(TypeError, r"keywords\[1\] must be a str, got NoneType")),
    ("text/bytes", (), lambda: as_text_list(b"stop"), Error(TypeError, "pass text as str")),
    ("text/number-list", (), lambda: as_text_list(5), Error(TypeError, "must be a str or a list of str, not int")),
    # --- thresholds ------------------------------------------------------------------
    ("threshold/nan", (), lambda: check_threshold(NAN), Error(ValueError, "finite")),
    ("threshold/inf", (), lambda: check_threshold(INF), Error(ValueError, "finite")),
    ("threshold/-inf", (), lambda: check_threshold(-INF), Error(ValueError, "finite")),
    ("threshold/above-1", (), lambda: check_threshold(1.5), Error(ValueError, r"\[-1, 1\]")),
    ("threshold/string", (), lambda: check_threshold("0.5"), Error(TypeError, "real number, got str")),
    ("threshold/bool", (), lambda: check_threshold(True), Error(TypeError, "real number, got bool")),
    ("threshold/numpy-float", (), lambda: check_threshold(np.float32(0.25)), Repair(lambda t: t == 0.25 and type(t) is float)),
    # --- CSV rows ------------------------------------------------------------------------
    ("csv/absolute-path-outside-root", F, lambda f: _pairs(f, "csv_abs"),
     Error(OutsideAudioRootError, r"abs\.csv, line 7: column 'anchor'.*an absolute path.*allow_outside_root")),
    ("csv/dotdot-outside-root", F, lambda f: _pairs(f, "csv_dotdot"),
     Error(OutsideAudioRootError, r"dotdot\.csv, line 7: column 'comparison' holds '\.\./outside\.wav'")),
    ("csv/training-items-outside-root", F,
     lambda f: training_items(read_libriphrase_csv(f["csv_dotdot"]), audio_root=f["root"] / "clips"),
     Error(OutsideAudioRootError, r"line 7: column 'comparison'")),
    ("csv/outside-root-allowed", F, lambda f: _pairs(f, "csv_dotdot", allow_outside_root=True),
     Repair(lambda pairs: any(p.endswith("outside.wav") for p in pairs.audio_paths))),
    # --- HDF5 features -----------------------------------------------------------------
    ("h5/label-1e9", F, lambda f: load_av_hdf5(f["h5_huge"]),
     Error(AVDataError, r"huge\.h5: 'lab_train' row 3: label 1000000000 is implausible")),
    ("h5/label-1e9-layout-b", F, lambda f: load_av_hdf5(f["h5_layout_b"]),
     Error(AVDataError, r"'Label_ID' row 4: label 1000000000 is implausible")),
    ("h5/negative-label", F, lambda f: load_av_hdf5(f["h5_negative"]),
     Error(AVDataError, r"'lab_test' has labels outside \[0, 3\) in rows 1 \(values \[-3\]\)")),
    ("h5/label-above-declared-attr", F, lambda f: load_av_hdf5(f["h5_declared"]),
     Error(AVDataError, r"'lab_test' has labels outside \[0, 3\) in rows 2")),
    ("h5/bad-num-classes-attr", F, lambda f: load_av_hdf5(f["h5_bad_attr"]),
     Error(AVDataError, "attribute 'num_classes' is 'ten'")),
    ("h5/label-1e9-with-num-classes", F, lambda f: load_av_hdf5(f["h5_huge"], num_classes=3),
     Error(AVDataError, r"'lab_train' has labels outside \[0, 3\) in rows 3")),
    ("h5/sparse-labels-load", F, lambda f: load_av_hdf5(f["h5_sparse"]), Repair(lambda d: d.num_classes == 41)),
    ("h5/dataset-label-outside-num-classes", (),
     lambda: AVDataset(AVSplit(np.ones((2, 3)), np.ones((2, 4)), [0, 1]), AVSplit(np.ones((2, 3)), np.ones((2, 4)), [0, 2]), 2, "mine"),
     Error(AVDataError, r"mine: the test split has labels outside \[0, 2\) in rows 1")),
    # --- the model's inference API (backend-dependent) ------------------------------------
    ("model/score-bare-string-is-one-keyword", M, lambda m: m.score([TONE], "mass"), Repair(lambda s: s.shape == (1, 1))),
    ("model/detector-bare-string", M, lambda m: m.keyword_detector("stop").keywords, Repair(lambda k: k == ["stop"])),
    ("model/score-nan-array", M, lambda m: m.score([TONE, np.full(8000, np.nan, "float32")], ["stop"]),
     Error(AudioError, r"audio\[1\].*NaN or Inf")),
    ("model/score-empty-array", M, lambda m: m.score([np.zeros(0, "float32")], ["stop"]), Error(AudioError, r"audio\[0\].*no samples")),
    ("model/score-10-samples", M, lambda m: m.score([TONE[:10]], ["stop"]), Error(AudioError, r"audio\[0\].*too short")),
    ("model/embed-none", M, lambda m: m.embed_audio([None]), Error(TypeError, r"audio\[0\] is None")),
    ("model/embed-stereo-equals-downmix", M, lambda m: (m.embed_audio([STEREO]), m.embed_audio([0.75 * TONE])),
     Repair(lambda pair: np.allclose(pair[0], pair[1], atol=1e-5))),
    ("model/embed-stereo-(2,N)", M, lambda m: m.embed_audio([STEREO.T]), Repair(lambda e: np.isfinite(e).all())),
    ("model/detector-threshold-nan", M, lambda m: m.keyword_detector(["stop"], threshold=NAN), Error(ValueError, "threshold must be a finite number")),
    ("model/detector-threshold-inf", M, lambda m: m.keyword_detector(["stop"], threshold=INF), Error(ValueError, "finite")),
    ("model/detector-threshold-set-nan", M, lambda m: _detector_with_threshold(m, NAN), Error(ValueError, "finite")),
    ("model/detector-keyword-none", M, lambda m: m.keyword_detector(["stop", None]), Error(TypeError, r"keywords\[1\] must be a str")),
    ("model/detector-empty", M, lambda m: m.keyword_detector([]), Error(ValueError, "keywords is empty")),
    ("model/embed-text-none", M, lambda m: m.embed_text([None]), Error(TypeError, r"texts\[0\] must be a str")),
    ("model/enroll-partly-unvoiced", M, lambda m: m.keyword_detector(["hello \u0645\u0631\u062d\u0628\u0627"]).keywords,
     Repair(lambda k: k == ["hello \u0645\u0631\u062d\u0628\u0627"], warns=UnvoicedTextWarning)),
    ("model/enroll-trademark", M, lambda m: m.keyword_detector(["\u2122"]), Error(PhonemizerError, "'\u2122'")),
    ("model/detect-bare-path", MF, lambda m, f: m.keyword_detector("stop").detect(str(f["root"] / "tone.wav")),
     Repair(lambda out: len(out) == 1 and out[0]["file"].endswith("tone.wav"))),
    # --- evaluate: skip and count, or refuse before any work ----------------------------
    ("eval/unphonemizable-text", MF, lambda m, f: _evaluate(m, f["csv_text"]), Skip("skipped_text", 1)),
    ("eval/partly-unvoiced-text", MF, lambda m, f: _evaluate(m, f["csv_partial_text"]), Skip("skipped_text", 1)),
    ("eval/missing-clip", MF, lambda m, f: _evaluate(m, f["csv_missing"]), Skip("skipped", 1)),
    ("eval/truncated-clip", MF, lambda m, f: _evaluate(m, f["csv_cut"]), Skip("truncated", 1)),
    ("eval/outside-root", MF, lambda m, f: _evaluate(m, f["csv_dotdot"], audio_root=f["root"] / "clips"),
     Error(OutsideAudioRootError, r"dotdot\.csv, line 7")),
]


def _run(case, request):
    _, needs, call, _ = case
    return call(*[request.getfixturevalue(name) for name in needs])


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_outcome(case, request):
    name, needs, call, outcome = case
    if isinstance(outcome, Error):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnvoicedTextWarning)
            with pytest.raises(outcome.type) as info:
                _run(case, request)
        assert re.search(outcome.match, str(info.value)), f"{name}: message {str(info.value)!r}"
        assert "Traceback" not in str(info.value)
    elif isinstance(outcome, Repair):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _run(case, request)
        assert outcome.check(result), f"{name}: repaired result fails its check: {result!r}"[:500]
        categories = {w.category for w in caught}
        if outcome.warns is not None:
            assert outcome.warns in categories, f"{name}: no {outcome.warns.__name__}"
        for category in (TruncatedAudioWarning, UnvoicedTextWarning):
            if category is not outcome.warns:
                assert category not in categories, f"{name}: unexpected {category.__name__}"
    else:
        assert isinstance(outcome, Skip)
        result = _run(case, request)
        assert result[outcome.key] == outcome.count, (name, {k: v for k, v in result.items() if not isinstance(v, dict)})
        assert result["pairs"] > 0  # the rest of the run went on


def test_corpus_size():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


def test_non_utf8_file_name_is_read_not_called_corrupt(files):
    name = files["non_utf8"]
    if name is None:
        pytest.skip("this file system does not take non-UTF-8 file names")
    wave = load_audio(name)
    assert wave.shape == (8000,)
    assert load_audio(os.fsencode(name)).shape == (8000,)
    assert load_clips([name])[0].shape == (8000,)


def test_evaluate_counts_add_up_and_the_table_says_so(model, files):
    from kerasadml.kws.evaluation import format_table

    result = _evaluate(model, files["csv_text"])
    clean = _evaluate(model, files["csv_good"])
    total = result["pairs"] + result["skipped"] + result["skipped_text"]
    # the extra row adds one pair with the unvoiceable text (its other direction, clip c2
    # against "stop", is already an easy negative of the clean rows)
    assert total == clean["pairs"] + 1 and result["pairs"] == clean["pairs"]
    assert clean["skipped_text"] == 0 and clean["truncated"] == 0
    assert "skipped (text without phonemes): 1" in format_table(result)
    assert "text without phonemes" not in format_table(clean)
    cut = _evaluate(model, files["csv_cut"])
    assert "truncated clips (scored as far as they go): 1" in format_table(cut)
    assert all(math.isfinite(cut[s]["EER"]) for s in ("LP_E", "LP_H") if s in cut)


def test_cli_evaluate_refuses_rows_outside_audio_root_unless_allowed(files, capsys):
    from kerasadml.cli import main

    clips = str(files["root"] / "clips")
    argv = ["evaluate", "adml_tiny", "--data", str(files["csv_dotdot"]), "--audio-root", clips, "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(r"dotdot\.csv, line 7: column 'comparison' holds '\.\./outside\.wav'", err), err
    assert "--allow-outside-root" in err and "Traceback" not in err
    assert main(argv + ["--allow-outside-root"]) == 0
    assert "pairs scored" in capsys.readouterr().out
