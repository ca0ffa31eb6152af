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

eSpeak NG also carries state from one synthesis to the next (the phase of its pitch
"flutter" table, automatic gain, cycle counters, noise generators), so the same text and
voice give slightly different audio depending on what this process synthesised before.
:class:`PristinePool` is the one place that deals with this: it runs units of work, each
in a process forked from an engine that was initialised and never used, so a unit's audio
depends only on the unit (SynthPhrase and AV-Digits build on it).
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7

logger = logging.getLogger(__name__)

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
        if self._set_rand_seed is not None:
            self._set_rand_seed.argtypes = [ctypes.c_long]
            self._set_rand_seed.restype = ctypes.c_int

    @property
    def seedable(self) -> bool:
        """Whether this eSpeak NG exports ``espeak_ng_SetRandSeed`` (every
        ``espeakng-loader`` build does); without it :meth:`set_random_seed` does nothing
        and voices that draw random numbers are not reproducible."""
        return self._set_rand_seed is not None

    def set_random_seed(self, seed: int) -> None:
        """Seed eSpeak NG's own random generator (``espeak_ng_SetRandSeed``).

        eSpeak NG seeds it from the clock at start-up and some voices draw from it (noise
        in the excitation of breathy voices), so without a seed the same text and voice
        differ from run to run. ``synthesize(..., seed=s)`` does the same before its
        utterance. A no-op when the library lacks the function (see :attr:`seedable`).

        Args:
            seed: the seed; only its low 31 bits are used.
        """
        with self._lock:
            self._seed_locked(seed)

    def _seed_locked(self, seed: int) -> None:
        if self._set_rand_seed is not None:
            self._set_rand_seed(ctypes.c_long(int(seed) & 0x7FFFFFFF))

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
            if seed is not None:
                self._seed_locked(seed)
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


# ----------------------------------------------------------------------- pristine engines
@dataclasses.dataclass(frozen=True)
class UnitFailure:
    """What :meth:`PristinePool.run` gives for a unit of work that returned nothing.

    Attributes:
        kind: ``"error"`` (the unit raised an exception), ``"interrupted"`` (it raised
            ``KeyboardInterrupt``) or ``"crashed"`` (its process died: a segmentation
            fault in eSpeak NG, a kill).
        message: ``"Type: text"`` of the exception, ``"KeyboardInterrupt"``, or how the
            process ended.
    """

    kind: str
    message: str


#: Set while a unit of work runs: where :func:`report_progress` sends its counts.
_progress_sink: Callable[[int], None] | None = None


def report_progress(count: int = 1) -> None:
    """Tell the :class:`PristinePool` running the current unit of work that ``count`` more
    items of it are done; ``PristinePool.run(..., progress=f)`` calls ``f(count)`` in the
    parent process. A no-op outside a unit."""
    sink = _progress_sink
    if sink is not None:
        sink(int(count))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unit_child(write_fd: int, function: Callable, unit: Any) -> None:  # pragma: no cover - a forked child
    """Run one unit in a child forked from a zygote and send its messages (pickles:
    ``("progress", n)`` ..., then ``("done", result)`` or ``("failed", UnitFailure)``) down
    ``write_fd``. Never returns: the child must not go on with the zygote's loop."""
    global _progress_sink
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

        def send(message) -> None:
            _write_all(write_fd, pickle.dumps(message))  # pickled whole first: no torn frame

        _progress_sink = lambda count: send(("progress", count))
        try:
            ESpeak().set_random_seed(0)
            outcome = ("done", function(unit))
        except KeyboardInterrupt:
            outcome = ("failed", UnitFailure("interrupted", "KeyboardInterrupt"))
        except BaseException as error:  # noqa: BLE001
            outcome = ("failed", UnitFailure("error", f"{type(error).__name__}: {error}"))
        _progress_sink = None
        try:
            send(outcome)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as error:
            send(("failed", UnitFailure("error", f"the unit's result cannot be pickled: {error}")))
    except BaseException:  # noqa: BLE001  (e.g. the zygote is gone: nobody reads the pipe)
        code = 1
    finally:
        os._exit(code)


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"the process running it was killed by {name}"
    return f"the process running it exited with code {os.WEXITSTATUS(status)} without a result"


def _zygote_main(conn, warm_up: Callable[[], None] | None) -> None:  # pragma: no cover - a spawned process
    """A process whose eSpeak NG engine never synthesises: every unit of work runs in a
    child forked from it, so every unit starts from the same engine state.

    Messages in: ``(index, function, unit)``, or ``None`` to stop. Out: ``("progress",
    index, n)`` ..., then ``("done", index, result or UnitFailure)``.
    """
    # Ctrl-C goes to the whole process group: the parent stops, the zygotes and their
    # children ignore it (a unit in progress finishes, complete, or is dropped; it is never
    # cut short by the signal). SIGTERM (PristinePool.close) kills the unit in progress too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    running = {"pid": None}

    def _terminate(signum, frame):
        if running["pid"] is not None:
            try:
                os.kill(running["pid"], signal.SIGKILL)
                os.waitpid(running["pid"], 0)  # reaped here, not left a zombie
            except OSError:
                pass
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    ESpeak()  # initialised, never used to synthesise
    if warm_up is not None:
        warm_up()  # what every child uses (filters, FFT plans), inherited warm; no engine state
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        index, function, unit = message
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_fd)
            _unit_child(write_fd, function, unit)
        running["pid"] = pid
        os.close(write_fd)
        outcome, parent_alive = None, True
        with os.fdopen(read_fd, "rb") as stream:
            while True:  # relay until the child closes its end
                try:
                    kind, value = pickle.load(stream)
                except EOFError:
                    break
                except Exception:  # noqa: BLE001  (a frame torn by the child's death)
                    stream.read()
                    break
                if kind == "progress":
                    if parent_alive:
                        try:
                            conn.send(("progress", index, value))
                        except OSError:
                            parent_alive = False  # still drain the child, so that it can exit
                else:
                    outcome = value
        _, status = os.waitpid(pid, 0)
        running["pid"] = None
        if outcome is None:
            outcome = UnitFailure("crashed", _exit_text(status))
        if not parent_alive:
            return
        try:
            conn.send(("done", index, outcome))
        except OSError:  # the parent is gone (interrupted)
            return


class PristinePool:
    """Runs units of work, each with a pristine eSpeak NG engine, in worker processes.

    eSpeak NG keeps state from one synthesis to the next (see the module docstring), so
    for byte-identical output every unit of work runs in a child forked from a "zygote"
    process whose engine has been initialised but never used, with eSpeak NG's random
    generator seeded with 0: a unit's audio depends on the unit alone, whatever ran
    before, whichever worker runs it and however many workers there are. ``workers``
    zygotes run units in parallel.

    A unit is ``function(unit)``: ``function`` a module-level function and ``unit`` its
    argument, both picklable (they are sent to the workers); the result is pickled back.
    A unit may call :func:`report_progress` to report items done before it returns.

    ``workers=0``, or a system without ``os.fork`` (Windows), runs the units in this
    process: the same calls, but the audio is not byte-for-byte reproducible and an
    exception of a unit propagates.

    Interruptions: the workers ignore Ctrl-C (SIGINT), which stops the parent; leaving the
    ``with`` block asks the workers to stop after their unit in progress (waiting up to
    10 s), or, with ``kill_on_error`` and an exception leaving the block, kills them and
    their units at once. A unit whose process dies gives a :class:`UnitFailure` of kind
    ``"crashed"``; a worker that dies between units raises ``RuntimeError``.

    Args:
        workers: worker processes (0: run in this process).
        name: what messages call the pool's user (e.g. ``"SynthPhrase"``).
        warm_up: a picklable function run once in each worker after the engine is loaded
            (e.g. to warm up filters and FFT plans the units use); it must not synthesise.
        kill_on_error: stop units in progress at once when an exception (Ctrl-C included)
            leaves the ``with`` block, instead of letting them finish.

    Example:

    >>> with PristinePool(2, name="demo") as pool:                  # doctest: +SKIP
    ...     for index, result in pool.run(my_module.speak, ["one", "two"]):
    ...         ...
    """

    def __init__(self, workers: int = 1, *, name: str = "eSpeak NG",
                 warm_up: Callable[[], None] | None = None, kill_on_error: bool = False):
        self.workers = max(0, int(workers))
        self.name = name
        self.warm_up = warm_up
        self.kill_on_error = bool(kill_on_error)
        self.forking = self.workers > 0 and hasattr(os, "fork")
        self._zygotes: list = []

    def __enter__(self) -> PristinePool:
        if self.workers > 0 and not self.forking:
            logger.warning("%s: os.fork is unavailable; the audio will not be byte-for-byte reproducible", self.name)
        if not self.forking:
            return self
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update({k: "1" for k in saved})  # single-threaded zygotes fork cleanly
        try:
            for _ in range(self.workers):
                parent_conn, child_conn = context.Pipe()
                process = context.Process(target=_zygote_main, args=(child_conn, self.warm_up), daemon=True)
                process.start()
                child_conn.close()
                self._zygotes.append((process, parent_conn))
        except BaseException:
            self.close(kill=True)
            raise
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(kill=self.kill_on_error and exc_type is not None)

    def close(self, kill: bool = False) -> None:
        """Stop the workers: after their unit in progress (up to 10 s, then killed), or at
        once with ``kill``."""
        for process, conn in self._zygotes:
            if kill:
                process.terminate()  # its SIGTERM handler kills the unit in progress
            else:
                try:
                    conn.send(None)
                except OSError:
                    pass
            conn.close()
        for process, _ in self._zygotes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        self._zygotes = []

    def run(self, function: Callable[[Any], Any], units: Iterable[Any],
            progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
        """Run ``function(unit)`` for every unit, each from a pristine engine; yield
        ``(unit index, result)`` as units finish (they start in order). The result is what
        ``function`` returned, or a :class:`UnitFailure` when it raised or its process died.
        ``progress(n)`` is called for each :func:`report_progress` of a unit."""
        global _progress_sink
        units = list(units)
        if not self.forking:
            engine = ESpeak()
            for index, unit in enumerate(units):
                previous, _progress_sink = _progress_sink, progress
                try:
                    engine.set_random_seed(0)
                    result = function(unit)
                finally:
                    _progress_sink = previous
                yield index, result
            return
        from multiprocessing.connection import wait

        if not self._zygotes:
            raise RuntimeError(f"{self.name}: PristinePool.run outside its `with` block")
        pending = list(range(len(units)))[::-1]
        idle = [conn for _, conn in self._zygotes]
        busy: dict = {}
        while pending or busy:
            while pending and idle:
                conn = idle.pop()
                index = pending.pop()
                conn.send((index, function, units[index]))
                busy[conn] = index
            for conn in wait(list(busy)):
                try:
                    kind, index, value = conn.recv()
                except EOFError:
                    raise RuntimeError(f"{self.name}: a synthesis process died") from None
                if kind == "progress":
                    if progress is not None:
                        progress(value)
                    continue
                del busy[conn]
                idle.append(conn)
                yield index, value

    def map(self, function: Callable[[Any], Any], units: Iterable[Any],
            progress: Callable[[int], None] | None = None) -> Iterator[Any]:
        """Like :meth:`run`, but yield the results in the order of ``units``."""
        ready: dict[int, Any] = {}
        following = 0
        for index, result in self.run(function, units, progress):
            ready[index] = result
            while following in ready:
                yield ready.pop(following)
                following += 1
