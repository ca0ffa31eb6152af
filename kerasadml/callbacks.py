"""Training callbacks for the zoo models: affinity images per epoch, the DANN schedule
of ADML's gradient reversal, and notes on the Keras callbacks that already do the rest.

Loss terms in TensorBoard: no extra callback is needed. ``ADML.compute_loss`` and
``AADML.compute_loss`` update one ``keras.metrics.Mean`` per term (``model.trackers``,
listed by ``model.metrics``), so every term is in the ``logs`` dict that Keras hands to
callbacks, and ``keras.callbacks.TensorBoard(log_dir)`` writes each of them as a scalar
(``epoch_<name>`` under ``log_dir/train``; ``update_freq="batch"`` also writes
``batch_<name>``):

- ADML: ``loss``, ``loss_utt``, ``loss_phn``, ``loss_mm``, ``loss_key``, ``loss_adv``,
  ``mal_acc_utt``, ``mal_acc_phn`` (``kerasadml.zoo.adml.LOSS_TERMS``);
- AADML: ``loss``, ``loss_metric``, ``loss_label``.

This holds on the TensorFlow and the JAX backend (Keras' TensorBoard callback writes
with ``tf.summary`` whatever the backend; TensorFlow is a dependency of kerasadml).
``tests/callbacks_test.py`` checks it by reading the event files back. The same
``logs`` feed ``keras.callbacks.CSVLogger`` and ``History``.

Resuming an interrupted run: ``kerasadml.zoo.training.fit_with_backup`` adds
``keras.callbacks.BackupAndRestore`` under ``out_dir/backup``; starting the same call
again resumes at the first epoch that had not finished (model, optimizer and epoch
counter restored).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import numpy as np

from kerasadml.layers.gradient_reversal import dann_lambda

log = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="kerasadml")
class AffinityImageLogger(keras.callbacks.Callback):
    """Writes the aligner's affinity matrix of one (clip, text) pair as a PNG per epoch.

    At the end of every ``every_n_epochs``-th epoch it computes ``model.affinity(audio,
    text)`` (the cross-attention weights, phonemes x audio frames, each valid row sums to
    1) and draws it with :func:`kerasadml.plots.plot_affinity` to
    ``log_dir/affinity_epoch{NNN}.png`` (``NNN`` = the 1-based epoch). Plain PNG files
    (matplotlib, no TensorFlow summary), so it works the same on every backend; a
    monotonic diagonal band emerging over the epochs is what ``L_MM`` asks for.

    Args:
        model: the ``ADML`` model being trained (anything with ``affinity(audio, text)``
            and ``phonemizer``); ``None`` uses the model ``fit`` sets.
        audio: one clip, a 1-D float array at 16 kHz.
        text: its keyword text.
        log_dir: folder of the PNG files (created).
        every_n_epochs: write every this many epochs.

    Example:

    >>> logger = AffinityImageLogger(model, wave, "turn on the light", "logs/affinity")  # doctest: +SKIP
    >>> model.fit(train_ds, epochs=10, steps_per_epoch=100, callbacks=[logger])  # doctest: +SKIP

    Paper: ADML, arXiv 2505.16735 (cross-attention alignment, docs/methods.md §1.2).
    """

    def __init__(
        self,
        model: keras.Model | None,
        audio: np.ndarray,
        text: str,
        log_dir: str | os.PathLike,
        every_n_epochs: int = 1,
    ):
        super().__init__()
        audio = np.asarray(audio, "float32")
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"AffinityImageLogger: audio must be one non-empty 1-D clip, got shape {audio.shape}")
        if int(every_n_epochs) < 1:
            raise ValueError(f"AffinityImageLogger: every_n_epochs must be >= 1, got {every_n_epochs}")
        if not str(text).strip():
            raise ValueError("AffinityImageLogger: text is empty")
        self.audio = audio
        self.text = str(text)
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = int(every_n_epochs)
        self.written: list[Path] = []
        if model is not None:
            self.set_model(model)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        from kerasadml.plots import plot_affinity

        model = self.model
        matrix = model.affinity(self.audio, self.text)
        phones = model.phonemizer.phonemize(self.text)
        frontend = getattr(model, "frontend", None)
        step = frontend.frame_step / frontend.sample_rate if frontend is not None else 0.01
        path = Path(self.log_dir) / f"affinity_epoch{epoch + 1:03d}.png"
        plot_affinity([matrix], [phones], [f'"{self.text}", epoch {epoch + 1}'], path, frame_step_s=step)
        self.written.append(path)

    def get_config(self):
        return {
            "model": None,
            "audio": self.audio.tolist(),
            "text": self.text,
            "log_dir": self.log_dir,
            "every_n_epochs": self.every_n_epochs,
        }


@keras.saving.register_keras_serializable(package="kerasadml")
class GradientReversalSchedule(keras.callbacks.Callback):
    """Ramps ADML's reversal strength per epoch with the DANN schedule.

    At the start of epoch ``e`` (0-based) every modality adversary's reversal layer gets

        ``scale = lambda_adv * (2 / (1 + exp(-10 p)) - 1)``,  ``p = e / total_epochs``

    (:func:`kerasadml.layers.gradient_reversal.dann_lambda`), so the first epoch trains
    without adversarial pressure on the encoders and ``lambda`` approaches
    ``lambda_adv`` by the end. It writes the non-trainable ``scale`` variable of
    ``model.adversary_utt.reversal`` and ``model.adversary_phn.reversal`` (those present):
    no recompilation, and since the value depends only on the epoch it is right again
    after a ``BackupAndRestore`` resume. ``self.values`` records ``{epoch: scale}``.

    Use it or the in-graph per-step ramp (``ADML(adv_schedule_steps=...)``), not both:
    a model with ``adv_schedule_steps`` set is rejected.

    Args:
        total_epochs: the epochs of the whole run (``p`` reaches 1 there).
        lambda_adv: the final strength; ``None`` takes ``model.lambda_adv``.

    Example:

    >>> model.fit(ds, epochs=20, steps_per_epoch=100,
    ...           callbacks=[GradientReversalSchedule(total_epochs=20)])  # doctest: +SKIP

    Paper: Ganin & Lempitsky 2015 (DANN schedule); ADML, arXiv 2505.16735.
    """

    def __init__(self, total_epochs: int, lambda_adv: float | None = None):
        super().__init__()
        if int(total_epochs) < 1:
            raise ValueError(f"GradientReversalSchedule: total_epochs must be >= 1, got {total_epochs}")
        if lambda_adv is not None and float(lambda_adv) < 0:
            raise ValueError(f"GradientReversalSchedule: lambda_adv must be >= 0, got {lambda_adv}")
        self.total_epochs = int(total_epochs)
        self.lambda_adv = None if lambda_adv is None else float(lambda_adv)
        self.values: dict[int, float] = {}

    def reversal_layers(self) -> list:
        """The ``GradientReversal`` layers of the model's modality adversaries."""
        layers = []
        for name in ("adversary_utt", "adversary_phn"):
            adversary = getattr(self.model, name, None)
            if adversary is not None:
                layers.append(adversary.reversal)
        return layers

    def value(self, epoch: int) -> float:
        """The scale set at the start of ``epoch`` (0-based)."""
        strength = self.lambda_adv if self.lambda_adv is not None else float(self.model.lambda_adv)
        progress = float(epoch) / float(self.total_epochs)
        return strength * float(keras.ops.convert_to_numpy(dann_lambda(progress)))

    def on_train_begin(self, logs=None):
        if getattr(self.model, "adv_schedule_steps", None):
            raise ValueError(
                "GradientReversalSchedule: the model already ramps lambda in-graph "
                f"(adv_schedule_steps={self.model.adv_schedule_steps}); use one schedule, not both"
            )
        if not self.reversal_layers():
            log.warning("GradientReversalSchedule: the model has no modality adversary (mal='none'); nothing to do")

    def on_epoch_begin(self, epoch, logs=None):
        value = self.value(epoch)
        for layer in self.reversal_layers():
            layer.scale.assign(value)
        self.values[int(epoch)] = value

    def get_config(self):
        return {"total_epochs": self.total_epochs, "lambda_adv": self.lambda_adv}


__all__ = ["AffinityImageLogger", "GradientReversalSchedule"]
