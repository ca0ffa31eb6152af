"""Log-mel front-end of ADML (docs/methods.md §1.1.1): 25 ms / 10 ms frames, 512-point FFT,
40 log-mel bins, per-utterance mean normalisation over the valid frames only."""

from __future__ import annotations

import keras
import numpy as np

from kerasadml._keras_compat import DataLayer
from kerasadml.ops import concrete_value


def _hz_to_mel_htk(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def htk_mel_matrix(
    num_mel_bins: int,
    num_spectrogram_bins: int,
    sample_rate: float,
    lower_edge_hz: float,
    upper_edge_hz: float,
) -> np.ndarray:
    """The ``(num_spectrogram_bins, num_mel_bins)`` HTK mel filterbank (float32).

    Triangles of peak 1 evenly spaced on the HTK mel scale ``1127 ln(1 + f/700)``, with the
    DC bin zeroed: the same matrix as ``tf.signal.linear_to_mel_weight_matrix`` and
    ``keras.layers.MelSpectrogram``, computed once in numpy (float64, then cast).
    """
    freqs = np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:]
    spec_mel = _hz_to_mel_htk(freqs)[:, None]
    edges = np.linspace(
        _hz_to_mel_htk(lower_edge_hz), _hz_to_mel_htk(upper_edge_hz), num_mel_bins + 2
    )
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    lower_slope = (spec_mel - lower) / (center - lower)
    upper_slope = (upper - spec_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


@keras.saving.register_keras_serializable(package="kerasadml")
class LogMelSpectrogram(DataLayer):
    """Waveforms to mean-normalised log-mel features, usable in a model and in ``tf.data``.

    For each clip: frames of ``frame_length`` samples every ``frame_step`` samples with
    **no centering/padding** (``T = 1 + (S - frame_length) // frame_step``), a periodic Hann
    window, the power spectrum ``|rfft(frame, fft_length)|^2``, an HTK mel filterbank
    (``1127 ln(1 + f/700)``, triangles of peak 1, same as ``tf.signal`` and
    ``keras.layers.MelSpectrogram``), then ``log(mel + epsilon)``. With
    ``mean_normalize``, each clip's mean over its *valid* frames is subtracted per mel bin
    (cepstral-mean-style normalisation). Frames past a clip's valid frames
    ``1 + (length - frame_length) // frame_step`` are set to 0 and do not enter the mean,
    so zero padding after ``lengths`` never changes the valid frames.

    It is a Keras ``DataLayer`` (like ``keras.layers.MelSpectrogram``): inside a
    ``tf.data`` map it computes with TensorFlow ops whatever the Keras backend, and inside
    a model it uses the active backend; both give the same features.

    Args:
        sample_rate: input sample rate in Hz (16 kHz in ADML).
        frame_length: window length in samples (400 = 25 ms).
        frame_step: hop in samples (160 = 10 ms).
        fft_length: FFT size (512); frames are zero-padded to it.
        num_mel_bins: number of mel bands (40).
        lower_edge_hz, upper_edge_hz: frequency range of the filterbank.
        mean_normalize: subtract the per-utterance, per-bin mean over valid frames.
        epsilon: added to the mel power before the log.

    Call arguments:
        waveform: ``(B, S)`` float waveforms.
        lengths: optional ``(B,)`` int, valid samples per clip (``None``: all ``S``);
            pass it as a keyword. Values above ``S`` are clipped to ``S``.

    Returns:
        ``(B, T, num_mel_bins)`` features.

    Example:

    >>> import numpy as np
    >>> layer = LogMelSpectrogram()
    >>> wave = np.random.RandomState(0).randn(2, 16000).astype("float32")
    >>> tuple(layer(wave, lengths=np.array([16000, 8000])).shape)
    (2, 98, 40)

    Paper: front-end of ADML (arXiv 2505.16735), following ECAPA-TDNN's 40-bin log-mel input.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        frame_length: int = 400,
        frame_step: int = 160,
        fft_length: int = 512,
        num_mel_bins: int = 40,
        lower_edge_hz: float = 20.0,
        upper_edge_hz: float = 7600.0,
        mean_normalize: bool = True,
        epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 < int(frame_length) <= int(fft_length):
            raise ValueError(
                "LogMelSpectrogram: need 0 < frame_length <= fft_length, "
                f"got {frame_length}, {fft_length}"
            )
        if int(frame_step) <= 0:
            raise ValueError(f"LogMelSpectrogram: frame_step must be positive, got {frame_step}")
        if not 0.0 <= float(lower_edge_hz) < float(upper_edge_hz) <= sample_rate / 2.0:
            raise ValueError(
                "LogMelSpectrogram: need 0 <= lower_edge_hz < upper_edge_hz <= sample_rate / 2, "
                f"got {lower_edge_hz}, {upper_edge_hz}, sample_rate={sample_rate}"
            )
        if float(epsilon) <= 0:
            raise ValueError(f"LogMelSpectrogram: epsilon must be positive, got {epsilon}")
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length)
        self.num_mel_bins = int(num_mel_bins)
        self.lower_edge_hz = float(lower_edge_hz)
        self.upper_edge_hz = float(upper_edge_hz)
        self.mean_normalize = bool(mean_normalize)
        self.epsilon = float(epsilon)
        n = np.arange(self.frame_length)
        self._window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.frame_length)).astype(np.float32)
        self._mel = htk_mel_matrix(
            self.num_mel_bins,
            self.fft_length // 2 + 1,
            self.sample_rate,
            self.lower_edge_hz,
            self.upper_edge_hz,
        )
        self._offsets = np.arange(self.frame_length, dtype=np.int32)[None, :]

    # ---------------------------------------------------------------- helpers
    def _num_frames_static(self, num_samples):
        if num_samples is None:
            return None
        return 1 + (int(num_samples) - self.frame_length) // self.frame_step

    def frame_lengths(self, lengths):
        """Valid frame counts ``max(0, 1 + (lengths - frame_length) // frame_step)`` (int32)."""
        b = self.backend
        lengths = b.cast(b.convert_to_tensor(lengths), "int32")
        frames = 1 + b.numpy.floor_divide(lengths - self.frame_length, self.frame_step)
        return b.numpy.maximum(frames, 0)

    def _check(self, waveform, lengths):
        shape = tuple(waveform.shape)
        if len(shape) != 2:
            raise ValueError(
                "LogMelSpectrogram expects waveforms of shape (batch, samples), "
                f"got rank {len(shape)} "
                f"shape {shape}; add a batch axis for a single clip"
            )
        if shape[1] is not None and shape[1] < self.frame_length:
            raise ValueError(
                f"LogMelSpectrogram: waveforms have {shape[1]} samples, shorter than one frame "
                f"({self.frame_length} samples = "
                f"{1000 * self.frame_length / self.sample_rate:g} ms)"
            )
        values = concrete_value(lengths)
        if values is not None:
            values = np.asarray(values)
            if values.ndim != 1 or (shape[0] is not None and values.shape[0] != shape[0]):
                raise ValueError(
                    f"LogMelSpectrogram: lengths must have shape ({shape[0]},), got {values.shape}"
                )
            short = np.flatnonzero(values < self.frame_length)
            if short.size:
                raise ValueError(
                    f"LogMelSpectrogram: clip(s) {short.tolist()} have lengths "
                    f"{values[short].tolist()}, "
                    f"shorter than one frame ({self.frame_length} samples)"
                )

    # ------------------------------------------------------------------ call
    def call(self, waveform, lengths=None):
        b = self.backend
        self._check(waveform, lengths)
        x = b.cast(waveform, "float32")
        num_samples = b.shape(x)[1]
        num_frames = 1 + (num_samples - self.frame_length) // self.frame_step
        # Framing by gather (exact on every device; conv-based patch extraction can use
        # reduced precision on GPUs).
        starts = b.numpy.arange(num_frames, dtype="int32")[:, None] * self.frame_step
        index = starts + b.convert_to_tensor(self._offsets)
        frames = b.numpy.take(x, b.numpy.reshape(index, [-1]), axis=1)
        frames = b.numpy.reshape(frames, [b.shape(x)[0], num_frames, self.frame_length])
        frames = frames * b.convert_to_tensor(self._window)
        real, imag = b.math.rfft(frames, fft_length=self.fft_length)
        power = real * real + imag * imag
        mel = b.numpy.matmul(power, b.convert_to_tensor(self._mel))
        feats = b.numpy.log(mel + self.epsilon)

        if lengths is None:
            valid = None
        else:
            frames_valid = b.numpy.minimum(self.frame_lengths(lengths), num_frames)
            valid = b.numpy.arange(num_frames, dtype="int32")[None, :] < frames_valid[:, None]
            valid = b.cast(valid, "float32")[:, :, None]
        if self.mean_normalize:
            if valid is None:
                mean = b.numpy.mean(feats, axis=1, keepdims=True)
            else:
                count = b.numpy.maximum(b.numpy.sum(valid, axis=1, keepdims=True), 1.0)
                mean = b.numpy.sum(feats * valid, axis=1, keepdims=True) / count
            feats = feats - mean
        if valid is not None:
            feats = feats * valid
        return b.cast(feats, self.compute_dtype)

    def compute_output_shape(self, input_shape, lengths_shape=None):
        input_shape = tuple(input_shape)
        if len(input_shape) != 2:
            raise ValueError(
                f"LogMelSpectrogram expects waveforms of shape (batch, samples), got {input_shape}"
            )
        return (input_shape[0], self._num_frames_static(input_shape[1]), self.num_mel_bins)

    def compute_output_spec(self, waveform, lengths=None):
        shape = self.compute_output_shape(waveform.shape)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "frame_length": self.frame_length,
                "frame_step": self.frame_step,
                "fft_length": self.fft_length,
                "num_mel_bins": self.num_mel_bins,
                "lower_edge_hz": self.lower_edge_hz,
                "upper_edge_hz": self.upper_edge_hz,
                "mean_normalize": self.mean_normalize,
                "epsilon": self.epsilon,
            }
        )
        return config
