import logging
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kerasadml.data import audio_io
from kerasadml.data.audio_io import (
    AudioError,
    load_audio,
    resample,
    tfio_kernels_available,
    write_wav_atomic,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
LOGGER = "kerasadml.data.audio_io"


def _tone(sr, n, freq=440.0):
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(n) / sr)


@pytest.fixture
def fresh_tfio_probe():
    """Forget the cached tensorflow-io probe before and after the test."""
    saved = dict(audio_io._TFIO_STATE)
    audio_io._TFIO_STATE.clear()
    yield
    audio_io._TFIO_STATE.clear()
    audio_io._TFIO_STATE.update(saved)


# --------------------------------------------------------------------------- good files
def test_fixtures_are_small():
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 50_000


def test_wav_16k_mono_is_read_exactly():
    wave = load_audio(FIXTURES / "tone_16k_mono.wav", backend="soundfile")
    assert wave.dtype == np.float32 and wave.shape == (1600,)
    np.testing.assert_allclose(wave, _tone(16000, 1600), atol=1.0 / 32768 + 1e-7)


def test_stereo_44k_is_downmixed_and_resampled():
    wave = load_audio(FIXTURES / "tone_44k_stereo.wav")
    data, sr = sf.read(FIXTURES / "tone_44k_stereo.wav", dtype="float32")
    assert sr == 44100 and data.shape[1] == 2
    assert wave.shape == (round(data.shape[0] * 16000 / 44100),)
    np.testing.assert_allclose(wave, resample(data.mean(axis=1), 44100, 16000), atol=1e-6)
    # channels are tone and tone/2: the mix is 0.75 * tone (away from the resampler's edges)
    expected = 0.75 * _tone(16000, wave.shape[0])
    np.testing.assert_allclose(wave[50:-50], expected[50:-50], atol=5e-3)


def test_flac_8k_is_upsampled():
    wave = load_audio(FIXTURES / "tone_8k.flac")
    assert wave.shape == (1600,)
    np.testing.assert_allclose(wave[50:-50], _tone(16000, 1600)[50:-50], atol=5e-3)


@pytest.mark.parametrize("name", ["tone_16k.ogg", "tone_16k.mp3"])
def test_compressed_formats(name):
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{name} not generated (libsndfile without that encoder)")
    wave = load_audio(path)
    assert wave.dtype == np.float32 and abs(wave.shape[0] - 1600) < 1200
    assert 0.3 < np.abs(wave).max() < 0.7


def test_target_rate_and_min_samples_and_allow_silent():
    wave = load_audio(FIXTURES / "tone_16k_mono.wav", target_sr=8000)
    assert wave.shape == (800,)
    assert load_audio(FIXTURES / "short_100.wav", min_samples=50).shape == (100,)
    silent = load_audio(FIXTURES / "silent.wav", allow_silent=True)
    assert silent.shape == (800,) and not silent.any()


# --------------------------------------------------------------------------- bad files
@pytest.mark.parametrize(
    "name, reason",
    [
        ("does_not_exist.wav", "not found"),
        ("zero_bytes.wav", "empty file"),
        ("corrupt.wav", "unreadable or corrupt"),
        ("not_audio.flac", "unreadable or corrupt"),
        ("empty_header_only.wav", "no samples"),
        ("short_100.wav", "shorter than one 25 ms frame"),
        ("silent.wav", "silent"),
        ("nan_float.wav", "NaN or Inf"),
    ],
)
def test_bad_files_raise_audio_error_naming_the_file(name, reason):
    path = FIXTURES / name
    with pytest.raises(AudioError, match=reason) as info:
        load_audio(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path == str(path) and reason in err.reason
    assert str(path) in str(err)


def test_directory_and_bad_backend():
    with pytest.raises(AudioError, match="directory"):
        load_audio(FIXTURES)
    with pytest.raises(ValueError, match="backend"):
        load_audio(FIXTURES / "tone_16k_mono.wav", backend="librosa")


def test_audio_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(AudioError("a.wav", "silent")))
    assert (err.path, err.reason, str(err)) == (
        "a.wav",
        "silent",
        str(AudioError("a.wav", "silent")),
    )


# --------------------------------------------------------------------------- resample
def test_resample_lengths_and_identity():
    x = _tone(16000, 16000).astype(np.float32)
    assert resample(x, 16000, 16000) is not None
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    y = resample(x, 16000, 22050)
    assert y.dtype == np.float32 and y.shape == (22050,)
    np.testing.assert_allclose(y[100:-100], _tone(22050, 22050)[100:-100], atol=2e-3)
    assert resample(np.zeros(0, np.float32), 8000, 16000).shape == (0,)
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, 16000)


# --------------------------------------------------------------------------- writing
def test_write_wav_atomic_round_trip_creates_parents(tmp_path):
    path = tmp_path / "a" / "b" / "clip.wav"
    wave = np.concatenate([_tone(16000, 800), [1.5, -2.0]]).astype(np.float32)
    write_wav_atomic(path, wave)
    data, sr = sf.read(path, dtype="float32")
    info = sf.info(path)
    assert sr == 16000 and info.subtype == "PCM_16" and info.format == "WAV"
    np.testing.assert_allclose(data[:800], wave[:800], atol=1.0 / 32768 + 1e-7)
    assert data[800] > 0.999 and data[801] == -1.0  # clipped
    assert os.listdir(path.parent) == ["clip.wav"]  # no temporary file left


def test_interrupted_writer_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "clip.wav"
    write_wav_atomic(path, _tone(16000, 800))
    before = path.read_bytes()
    real_write = sf.write

    def write_half_then_die(file, data, *args, **kwargs):
        real_write(file, data[: len(data) // 2], *args, **kwargs)
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(sf, "write", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_wav_atomic(path, _tone(16000, 16000))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["clip.wav"]
    monkeypatch.setattr(sf, "write", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_wav_atomic(tmp_path / "new.wav", _tone(16000, 16000))
    assert not (tmp_path / "new.wav").exists()


def test_write_rejects_nan(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_wav_atomic(tmp_path / "x.wav", np.array([0.0, np.nan]))


# --------------------------------------------------------------------------- tensorflow-io
def _fake_tfio(decode_wav, audio_io_tensor=None):
    module = types.ModuleType("tensorflow_io")
    module.audio = types.SimpleNamespace(decode_wav=decode_wav, AudioIOTensor=audio_io_tensor)
    return module


def test_fallback_when_tfio_missing_logs_one_line(fresh_tfio_probe, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow_io", None)  # import raises ImportError
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert tfio_kernels_available() is False
        assert tfio_kernels_available() is False
        wave = load_audio(FIXTURES / "tone_16k_mono.wav")  # backend="auto"
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 1
    assert lines[0].startswith("tensorflow-io native kernels unavailable (")
    assert lines[0].endswith("); using soundfile+soxr")
    assert wave.shape == (1600,)


def test_real_environment_probe_never_raises(fresh_tfio_probe):
    assert tfio_kernels_available() in (True, False)
    assert load_audio(FIXTURES / "tone_16k_mono.wav").shape == (1600,)


def _raise_not_found(*args, **kwargs):
    import tensorflow as tf

    raise tf.errors.NotFoundError(
        None, None, "/x/libtensorflow_io.so: undefined symbol: _ZN10tensorflow"
    )


@pytest.mark.parametrize(
    "failure",
    [
        _raise_not_found,
        lambda *a, **k: (_ for _ in ()).throw(NotImplementedError("no kernel")),
        lambda *a, **k: (_ for _ in ()).throw(OSError("undefined symbol: _ZN3tsl")),
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("something else entirely")),
    ],
    ids=["NotFoundError", "NotImplementedError", "OSError", "RuntimeError"],
)
def test_fallback_when_tfio_kernels_are_broken(fresh_tfio_probe, monkeypatch, caplog, failure):
    monkeypatch.setitem(sys.modules, "tensorflow_io", _fake_tfio(failure))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert tfio_kernels_available() is False
        wave = load_audio(FIXTURES / "tone_8k.flac")
        load_audio(FIXTURES / "tone_8k.flac", backend="auto")
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "unavailable" in warnings[0].getMessage()
    assert wave.shape == (1600,)
    with pytest.raises(RuntimeError, match="tensorflow-io native kernels unavailable"):
        load_audio(FIXTURES / "tone_8k.flac", backend="tfio")


def test_import_time_undefined_symbol_is_caught(fresh_tfio_probe, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "tensorflow_io":
            raise ImportError("libtensorflow_io.so: undefined symbol: _ZN10tensorflow8OpKernel")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "tensorflow_io", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert tfio_kernels_available() is False
    assert "undefined symbol" in audio_io._TFIO_STATE["reason"]


class _FakeAudioIOTensor:
    """Stands in for tfio.audio.AudioIOTensor (int16 samples, like tfio returns for PCM_16)."""

    calls = 0

    def __init__(self, path):
        type(self).calls += 1
        data, self.rate = sf.read(path, dtype="int16", always_2d=True)
        self._data = data

    def to_tensor(self):
        return self._data


def _ok_decode_wav(contents, dtype=None):
    return np.zeros((16, 1), np.int16)


def test_auto_uses_tfio_when_kernels_load(fresh_tfio_probe, monkeypatch):
    _FakeAudioIOTensor.calls = 0
    monkeypatch.setitem(
        sys.modules, "tensorflow_io", _fake_tfio(_ok_decode_wav, _FakeAudioIOTensor)
    )
    assert tfio_kernels_available() is True
    via_tfio = load_audio(FIXTURES / "tone_44k_stereo.wav")
    assert _FakeAudioIOTensor.calls == 1
    via_sf = load_audio(FIXTURES / "tone_44k_stereo.wav", backend="soundfile")
    np.testing.assert_allclose(via_tfio, via_sf, atol=1e-6)
    assert load_audio(FIXTURES / "tone_8k.flac", backend="tfio").shape == (1600,)
    with pytest.raises(AudioError, match="silent"):
        load_audio(FIXTURES / "silent.wav", backend="tfio")


def test_auto_retries_with_soundfile_when_tfio_cannot_decode(fresh_tfio_probe, monkeypatch):
    def failing_tensor(path):
        raise ValueError("unsupported format")

    monkeypatch.setitem(sys.modules, "tensorflow_io", _fake_tfio(_ok_decode_wav, failing_tensor))
    assert load_audio(FIXTURES / "tone_16k_mono.wav").shape == (1600,)
    with pytest.raises(AudioError, match="unreadable"):
        load_audio(FIXTURES / "tone_16k_mono.wav", backend="tfio")


def test_real_tfio_matches_soundfile_when_available(fresh_tfio_probe):
    """Runs only where tensorflow-io's kernels load (e.g. TensorFlow 2.16 + tfio 0.37)."""
    if not tfio_kernels_available():
        pytest.skip(f"tensorflow-io kernels unavailable: {audio_io._TFIO_STATE['reason']}")
    for name in ("tone_16k_mono.wav", "tone_44k_stereo.wav", "tone_8k.flac"):
        np.testing.assert_allclose(
            load_audio(FIXTURES / name, backend="tfio"),
            load_audio(FIXTURES / name, backend="soundfile"),
            atol=1e-4,
        )


# --------------------------------------------------------------------------- issue #13
def test_truncated_wav_warns_loads_what_is_there_or_raises(tmp_path):
    from kerasadml.data.audio_io import TruncatedAudioWarning, wav_header_frames

    full = tmp_path / "full.wav"
    write_wav_atomic(full, _tone(16000, 16000))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2 * 8000])  # header: 16000 frames; data: 8000
    assert wav_header_frames(full) == wav_header_frames(cut) == 16000
    assert sf.info(cut).frames == 8000  # libsndfile reports what is there, silently
    with pytest.warns(TruncatedAudioWarning, match=r"cut\.wav.*declares 16000 frames but it holds 8000") as record:
        wave = load_audio(cut)
    assert wave.shape == (8000,) and record[0].message.declared == 16000
    with pytest.raises(AudioError, match="truncated"):
        load_audio(cut, on_truncated="raise")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_audio(cut, on_truncated="ignore").shape == (8000,)
        assert load_audio(full).shape == (16000,)  # a whole file: no warning


def test_wav_header_frames_unknown_cases(tmp_path):
    from kerasadml.data.audio_io import wav_header_frames

    assert wav_header_frames(FIXTURES / "tone_8k.flac") is None
    assert wav_header_frames(FIXTURES / "zero_bytes.wav") is None
    assert wav_header_frames(tmp_path / "missing.wav") is None
    # a streaming writer's header (data size 0xFFFFFFFF) is not "truncated"
    data = bytearray((FIXTURES / "tone_16k_mono.wav").read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = b"\xff\xff\xff\xff"
    (tmp_path / "stream.wav").write_bytes(bytes(data))
    assert wav_header_frames(tmp_path / "stream.wav") is None


@pytest.mark.skipif(os.name == "nt", reason="POSIX byte file names")
def test_non_utf8_file_name_is_read_not_reported_corrupt(tmp_path):
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9.wav"
    try:
        with open(raw, "wb") as handle:
            handle.write((FIXTURES / "tone_16k_mono.wav").read_bytes())
    except OSError:
        pytest.skip("this file system only takes UTF-8 names")
    name = os.fsdecode(raw)  # 'caf\udce9.wav'
    assert load_audio(name).shape == (1600,)
    assert load_audio(raw).shape == (1600,)
    with pytest.raises(AudioError, match="not found"):
        load_audio(os.fsdecode(os.fsencode(str(tmp_path)) + b"/gon\xe9.wav"))


def test_arrays_get_the_checks_files_get():
    from kerasadml.data.audio_io import check_waveform, load_clips

    tone = _tone(16000, 1600).astype(np.float32)
    with pytest.raises(AudioError, match=r"audio array 'audio\[1\]': contains NaN") as info:
        load_clips([tone, np.full(1600, np.nan)])
    assert info.value.kind == "audio array" and info.value.path == "audio[1]"
    with pytest.raises(AudioError, match=r"audio\[0\].*too short: 10 samples"):
        load_clips([tone[:10]])
    with pytest.raises(AudioError, match=r"audio\[0\].*no samples"):
        load_clips([np.zeros(0)])
    with pytest.raises(TypeError, match=r"audio\[0\] is None"):
        load_clips([None])
    # the same downmix as files: (N, 2) and (2, N) both average the channels
    stereo = np.stack([tone, tone / 2], axis=1)
    np.testing.assert_allclose(check_waveform(stereo), 0.75 * tone, atol=1e-7)
    np.testing.assert_allclose(check_waveform(stereo.T), 0.75 * tone, atol=1e-7)
    # min_samples and silence as for files
    assert check_waveform(tone[:100], min_samples=50).shape == (100,)
    assert not check_waveform(np.zeros(800), allow_silent=True).any()
    # an array error pickles with its kind
    import pickle

    err = pickle.loads(pickle.dumps(AudioError("audio[2]", "silent", "audio array")))
    assert str(err) == "audio array 'audio[2]': silent"
