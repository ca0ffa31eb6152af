"""Enroll keywords as text and detect them in speech."""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from kerasadml.atomic import atomic_write_json
from kerasadml.validation import as_text_list

DETECTOR_FILE = "detector.json"


def check_threshold(threshold, name: str = "threshold") -> float:
    """``threshold`` as a float; it must be a finite real number in [-1, 1] (scores are
    cosines, so a threshold outside that range detects always or never).

    Raises:
        TypeError: not a real number (e.g. ``None``, a string, a bool).
        ValueError: NaN, infinite, or outside [-1, 1].
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(threshold).__name__}: {threshold!r}")
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}; nothing would ever be detected")
    if not -1.0 <= value <= 1.0:
        raise ValueError(
            f"{name} must be in [-1, 1] (scores are cosine similarities), got {value}"
        )
    return value


class KeywordDetector:
    """Keywords enrolled as text; scores and decisions for audio clips.

    Text embeddings are computed once at enrollment and cached. A clip's score for a
    keyword is ``cos(ea, et)``; it is detected when the score is >= ``threshold``.

    Args:
        model: a trained ``ADML`` model.
        keywords: the keyword texts to enroll (each must give phonemes); a single
            ``str`` is one keyword.
        threshold: decision threshold on the cosine score, a finite number in [-1, 1]
            (calibrate it with :meth:`calibrate`); NaN, inf or out of range raise.

    Example:

    >>> detector = model.keyword_detector(["turn on the light", "stop"])  # doctest: +SKIP
    >>> detector.calibrate(dev_clips, dev_texts)  # threshold at the dev set's EER  # doctest: +SKIP
    >>> detector.detect(["clip.wav"])  # doctest: +SKIP
    [{'file': 'clip.wav', 'scores': {...}, 'detected': ['stop'], 'best': 'stop'}]
    """

    def __init__(self, model, keywords: Sequence[str] | str, threshold: float = 0.5):
        keywords = as_text_list(keywords, "keywords")
        if not keywords:
            raise ValueError("KeywordDetector: keywords is empty")
        self.model = model
        self.keywords = keywords
        self.threshold = threshold
        self.keyword_embeddings = model.embed_text(self.keywords)

    @property
    def threshold(self) -> float:
        """Decision threshold (finite, in [-1, 1]; checked whenever it is set)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value) -> None:
        self._threshold = check_threshold(value, "KeywordDetector: threshold")

    @staticmethod
    def _clips(audio) -> list:
        # a single path or 1-D array is one clip (as in ADML.embed_audio)
        if isinstance(audio, (str, bytes, os.PathLike)) or (
            isinstance(audio, np.ndarray) and audio.ndim == 1
        ):
            return [audio]
        try:
            return list(audio)
        except TypeError:
            raise TypeError(
                f"audio must be a list of clips (file paths or 16 kHz arrays), not {type(audio).__name__}"
            ) from None

    def scores(self, audio) -> np.ndarray:
        """(N, K) cosine scores of clips (16 kHz arrays or file paths) against the keywords."""
        return self.model.embed_audio(self._clips(audio)) @ self.keyword_embeddings.T

    def detect(self, audio) -> list[dict]:
        """Per clip: scores per keyword, the keywords at or above threshold, the best one."""
        audio = self._clips(audio)
        scores = self.scores(audio)
        out = []
        for item, row in zip(audio, scores):
            name = str(item) if isinstance(item, (str, os.PathLike)) else None
            out.append(
                {
                    "file": name,
                    "scores": {k: float(s) for k, s in zip(self.keywords, row)},
                    "detected": [k for k, s in zip(self.keywords, row) if s >= self.threshold],
                    "best": self.keywords[int(np.argmax(row))],
                }
            )
        return out

    def calibrate(self, audio, texts: Sequence[str]) -> float:
        """Set the threshold at the EER of a dev set.

        Args:
            audio: dev clips (arrays or paths).
            texts: the true keyword text of each clip; every (clip, enrolled keyword)
                combination is a trial, a target when the texts match.

        Returns:
            The new threshold.
        """
        from kerasadml.metrics.detection import eer_threshold

        audio = self._clips(audio)
        texts = as_text_list(texts, "texts")
        if len(texts) != len(audio):
            raise ValueError(f"calibrate: {len(audio)} clips but {len(texts)} texts")
        scores = self.scores(audio)
        targets = np.array([[t == k for k in self.keywords] for t in texts], int)
        # cosines of unit vectors may round to just above 1
        self.threshold = float(np.clip(eer_threshold(targets.ravel(), scores.ravel()), -1.0, 1.0))
        return self.threshold

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model (as a preset) and ``detector.json`` (keywords, threshold)."""
        folder = Path(folder)
        self.model.save_to_preset(folder / "model")
        atomic_write_json(folder / DETECTOR_FILE, {"keywords": self.keywords, "threshold": self.threshold})
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "KeywordDetector":
        """Load a detector written by :meth:`save`."""
        from kerasadml.zoo.adml import ADML

        folder = Path(folder)
        path = folder / DETECTOR_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no {DETECTOR_FILE} in {folder}")
        spec = json.loads(path.read_text())
        return cls(ADML.from_preset(folder / "model"), spec["keywords"], threshold=spec["threshold"])


def keyword_detector(keywords, threshold: float = 0.5, preset: str | None = None) -> KeywordDetector:
    """A :class:`KeywordDetector` on a shipped keyword spotter, enrolled with ``keywords``.

    Args:
        keywords: keyword texts (a bare string is one keyword).
        threshold: cosine score above which a keyword is detected.
        preset: a preset name or folder; default
            :data:`kerasadml.zoo.presets.DEFAULT_KWS_PRESET`, the best trained ADML preset.

    Example:

    >>> detector = keyword_detector(["turn on the light", "stop"])  # doctest: +SKIP
    >>> detector.detect(["clip.wav"])                                # doctest: +SKIP
    """
    from kerasadml.zoo.adml import ADML
    from kerasadml.zoo.presets import DEFAULT_KWS_PRESET

    return ADML.from_preset(preset or DEFAULT_KWS_PRESET).keyword_detector(keywords, threshold=threshold)
