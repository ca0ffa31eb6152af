"""Enroll keywords as text and detect them in speech."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from kerasadml.atomic import atomic_write_json

DETECTOR_FILE = "detector.json"


class KeywordDetector:
    """Keywords enrolled as text; scores and decisions for audio clips.

    Text embeddings are computed once at enrollment and cached. A clip's score for a
    keyword is ``cos(ea, et)``; it is detected when the score is >= ``threshold``.

    Args:
        model: a trained ``ADML`` model.
        keywords: the keyword texts to enroll (each must give phonemes).
        threshold: decision threshold on the cosine score (calibrate it with
            :meth:`calibrate`).

    Example:

    >>> detector = model.keyword_detector(["turn on the light", "stop"])  # doctest: +SKIP
    >>> detector.calibrate(dev_clips, dev_texts)  # threshold at the dev set's EER  # doctest: +SKIP
    >>> detector.detect(["clip.wav"])  # doctest: +SKIP
    [{'file': 'clip.wav', 'scores': {...}, 'detected': ['stop'], 'best': 'stop'}]
    """

    def __init__(self, model, keywords: Sequence[str], threshold: float = 0.5):
        if not keywords:
            raise ValueError("KeywordDetector: keywords is empty")
        self.model = model
        self.keywords = [str(k) for k in keywords]
        self.threshold = float(threshold)
        self.keyword_embeddings = model.embed_text(self.keywords)

    def scores(self, audio) -> np.ndarray:
        """(N, K) cosine scores of clips (16 kHz arrays or file paths) against the keywords."""
        return self.model.embed_audio(list(audio)) @ self.keyword_embeddings.T

    def detect(self, audio) -> list[dict]:
        """Per clip: scores per keyword, the keywords at or above threshold, the best one."""
        audio = list(audio)
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

        texts = list(texts)
        scores = self.scores(audio)
        targets = np.array([[t == k for k in self.keywords] for t in texts], int)
        self.threshold = float(eer_threshold(targets.ravel(), scores.ravel()))
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
