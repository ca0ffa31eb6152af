"""Offline speech synthesis with eSpeak NG, loaded from the ``espeakng-loader`` wheel.

The wheel ships ``libespeak-ng.so`` and the ``espeak-ng-data`` voices, so no system
package and no network is needed. The library keeps global state and is not
thread-safe: every call goes through one process-wide lock.

Example:

>>> from kerasadml.data.espeak import ESpeak, Voice
>>> tts = ESpeak()
>>> wave = tts.synthesize("turn on the light", Voice("en-us", "m3", rate=170, pitch=50))
>>> wave.dtype, tts.sample_rate
(dtype('float32'), 22050)
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import sys
import threading
from pathlib import Path

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7

#: English accents shipped with eSpeak NG, usable as the ``accent`` of a :class:`Voice`.
ENGLISH_ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic "speaker": accent x voice variant x speaking rate x pitch.

    Args:
        accent: an eSpeak NG language name, e.g. ``"en-us"`` (see ``ENGLISH_ACCENTS``).
        variant: a file name under ``espeak-ng-data/voices/!v`` (e.g. ``"m3"``,
            ``"Andy"``), or ``""`` for the accent's default voice.
        rate: speaking rate in words per minute (80-450).
        pitch: base pitch, 0-100.
        pitch_range: pitch range, 0-100.
        word_gap: extra pause between words, in units of 10 ms (at the normal rate).
        volume: amplitude, 0-200 (100 is eSpeak NG's default).
    """

    accent: str = "en-us"
    variant: str = ""
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    word_gap: int = 0
    volume: int = 100

    @property
    def name(self) -> str:
        """The eSpeak NG voice name, ``accent+variant``."""
        return f"{self.accent}+{self.variant}" if self.variant else self.accent

    def key(self) -> str:
        """A stable identifier usable as a speaker id in CSV files."""
        variant = self.variant or "default"
        return f"{self.accent}_{variant}_r{self.rate}_p{self.pitch}"


class ESpeakError(RuntimeError):
    """eSpeak NG could not be loaded or failed to synthesise a text."""


def data_path() -> str:
    """Path of the ``espeak-ng-data`` folder shipped by ``espeakng-loader``."""
    try:
        import espeakng_loader
    except ImportError as error:  # pragma: no cover - dependency of the package
        raise ESpeakError(
            "The 'espeakng-loader' package is required for speech synthesis: "
            "pip install espeakng-loader"
        ) from error
    return espeakng_loader.get_data_path()


def voice_variants() -> list[str]:
    """Names of the voice variants shipped in ``espeak-ng-data/voices/!v``, sorted."""
    folder = Path(data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


_CALLBACK_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class ESpeak:
    """A process-wide handle on the eSpeak NG library (a singleton).

    Call :meth:`synthesize` to turn text into a float32 waveform at
    :attr:`sample_rate` (22,050 Hz for eSpeak NG's voices).
    """

    _instance: "ESpeak | None" = None
    _lock = threading.Lock()

    def __new__(cls) -> "ESpeak":
        with cls._lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._load()
                cls._instance = instance
        return cls._instance

    def _load(self) -> None:
        import espeakng_loader

        library_path = espeakng_loader.get_library_path()
        if not os.path.exists(library_path):
            raise ESpeakError(f"eSpeak NG library not found at {library_path}")
        self._lib = ctypes.CDLL(library_path)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetVoiceByName.restype = ctypes.c_int
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self._lib.espeak_Synth.restype = ctypes.c_int
        # espeak_Initialize takes the folder that *contains* espeak-ng-data.
        parent = str(Path(data_path()).parent).encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, parent, 0)
        if rate <= 0:
            raise ESpeakError(f"espeak_Initialize failed with code {rate}")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._error: BaseException | None = None

        def _collect(wav, num_samples, _events):
            # An exception escaping a ctypes callback is printed ("Exception ignored on
            # calling ctypes callback") and dropped, and eSpeak NG goes on: a Ctrl-C here
            # used to give a silently truncated waveform. Record it, return 1 (eSpeak NG
            # stops the synthesis) and let synthesize() raise it after the C call.
            try:
                if self._error is not None:
                    return 1
                if num_samples > 0:
                    self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
                return 0
            except BaseException as error:  # noqa: BLE001  (KeyboardInterrupt included)
                self._error = error
                return 1

        self._collect = _collect
        self._callback = _CALLBACK_TYPE(_collect)  # keep a reference
        self._lib.espeak_SetSynthCallback(self._callback)
        self._voice: Voice | None = None
        self._set_rand_seed = getattr(self._lib, "espeak_ng_SetRandSeed", None)

    def _set_voice(self, voice: Voice) -> None:
        if voice == self._voice:
            return
        code = self._lib.espeak_SetVoiceByName(voice.name.encode())
        if code != 0:
            raise ESpeakError(f"eSpeak NG has no voice named {voice.name!r} (code {code})")
        self._lib.espeak_SetParameter(_PARAM_RATE, int(voice.rate), 0)
        self._lib.espeak_SetParameter(_PARAM_PITCH, int(voice.pitch), 0)
        self._lib.espeak_SetParameter(_PARAM_RANGE, int(voice.pitch_range), 0)
        self._lib.espeak_SetParameter(_PARAM_VOLUME, int(voice.volume), 0)
        self._lib.espeak_SetParameter(_PARAM_WORDGAP, int(voice.word_gap), 0)
        self._voice = voice

    def synthesize(self, text: str, voice: Voice = Voice(), seed: int | None = None) -> np.ndarray:
        """Synthesise ``text`` with ``voice``.

        eSpeak NG seeds its own random generator from the clock (some voices use it), so
        pass ``seed`` for reproducible audio; it calls ``espeak_ng_SetRandSeed`` first.
        (eSpeak also keeps a pitch-flutter counter across utterances that nothing resets,
        so bit-exact output further needs the same sequence of utterances in a fresh process.)

        Args:
            text: the text to speak (UTF-8).
            voice: the :class:`Voice` to speak it with.
            seed: seed of eSpeak NG's random generator for this utterance.

        Returns:
            A float32 array in [-1, 1] at :attr:`sample_rate`, leading and trailing
            silence included as eSpeak NG produces it.

        Raises:
            ESpeakError: the voice is unknown, the synthesis produced no audio, or an error
                occurred while receiving the audio (the partial waveform is discarded).
            KeyboardInterrupt: a Ctrl-C during the synthesis (never a truncated waveform).
        """
        if not text or not text.strip():
            raise ESpeakError("cannot synthesise an empty text")
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            self._set_voice(voice)
            if seed is not None and self._set_rand_seed is not None:
                self._set_rand_seed(ctypes.c_long(int(seed) & 0x7FFFFFFF))
            self._chunks = []
            self._error = None
            # An exception can also arrive before the callback's ``try`` (a signal handler
            # runs at the callback's first instruction); ctypes then hands it to
            # sys.unraisablehook: catch it there too.
            previous_hook = sys.unraisablehook

            def _hook(unraisable):
                if unraisable.object is self._collect and self._error is None:
                    self._error = unraisable.exc_value or unraisable.exc_type()
                else:
                    previous_hook(unraisable)

            sys.unraisablehook = _hook
            try:
                code = self._lib.espeak_Synth(
                    data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
                )
            finally:
                sys.unraisablehook = previous_hook
                chunks, self._chunks = self._chunks, []
                error, self._error = self._error, None
        if error is not None:
            # the waveform is incomplete: never return it
            if isinstance(error, Exception):
                raise ESpeakError(f"eSpeak NG synthesis of {text!r} was interrupted: {error!r}") from error
            raise error  # KeyboardInterrupt, SystemExit
        if code != 0 or not chunks:
            raise ESpeakError(f"eSpeak NG failed on {text!r} with voice {voice.name!r} (code {code})")
        return (np.concatenate(chunks).astype(np.float32) / 32768.0).astype(np.float32)
