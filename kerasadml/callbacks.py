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

Resuming an interrupted run: ``kerasadml.training.fit_with_backup`` adds
:class:`SafeBackupAndRestore` (a ``keras.callbacks.BackupAndRestore`` whose backups
survive ``kill -9``, Ctrl-C and a full disk) under ``out_dir/backup``; starting the same
call again resumes at the first epoch that had not finished (model, optimizer and epoch
counter restored).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import keras

from kerasadml.atomic import fsync_path, sha256_file
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


class BackupError(ValueError):
    """A training backup folder that cannot be resumed from: every backup in it is
    damaged, or it holds the backup of another model or configuration. The message names
    the folder and says how to start fresh."""


#: The manifest of a :class:`SafeBackupAndRestore` folder.
BACKUP_MANIFEST = "backup.json"
_BACKUP_FORMAT = 1


def _strip_names(value):
    """``value`` (a config) without ``name`` keys: auto-generated names (``dense_3``)
    differ between runs of the same model."""
    if isinstance(value, dict):
        return {k: _strip_names(v) for k, v in value.items() if k not in ("name", "trainable", "dtype")}
    if isinstance(value, (list, tuple)):
        return [_strip_names(v) for v in value]
    return value


def model_fingerprint(model: keras.Model) -> dict:
    """What must match for a backup to belong to ``model``: its class and its constructor
    configuration (names, ``trainable`` and dtype policy left out), or, for a model
    without ``get_config``, the shapes of its weights. Returns ``{"class", "parameters",
    "digest"}`` (``parameters`` is informative only: variables created lazily during the
    first step change it, so it is not part of the digest)."""
    shapes = [list(v.shape) for v in model.weights]
    try:
        identity = {"config": _strip_names(model.get_config())}
    except Exception:  # noqa: BLE001  (a model without get_config)
        identity = {"shapes": shapes}
    text = json.dumps(
        {"class": type(model).__name__, **identity},
        sort_keys=True,
        default=lambda obj: type(obj).__name__,  # never an address: the digest must be stable
    )
    return {
        "class": type(model).__name__,
        "parameters": int(sum(int(np.prod(s)) for s in shapes)),
        "digest": hashlib.sha256(text.encode()).hexdigest()[:16],
    }




class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` whose backups survive an interruption.

    Keras overwrites ``latest.weights.h5`` in place, so a ``kill -9``, a Ctrl-C or a full
    disk during the write leaves a truncated file that every later run fails to load.
    Here, at the end of each epoch:

    1. the weights (model and optimizer) go to a temporary file in ``backup_dir``, are
       flushed to disk (``fsync``) and renamed to ``epochNNNNN.weights.h5``;
    2. ``backup.json`` (written atomically) records that file with its size and SHA-256,
       the previous ``keep - 1`` backups, and the model's :func:`model_fingerprint`;
    3. only then are older backup files deleted.

    An interruption at any point leaves the last complete backup(s) and the manifest
    intact (a temporary file at most, removed by the next run). On resume the newest
    backup whose size and checksum match and that loads is used; when it is damaged the
    callback falls back to the previous one and logs a warning saying so. A folder whose
    backups are all damaged, or that holds the backup of another model or configuration,
    raises :class:`BackupError` naming the folder and how to start fresh (delete it, or
    ``kerasadml train --fresh``). A write that fails (e.g. ``ENOSPC``) raises ``OSError``
    saying which epoch's backup is still there.

    Backups written by ``keras.callbacks.BackupAndRestore`` (``latest.weights.h5``) are
    still resumed from when they load.

    Args:
        backup_dir: the backup folder (used by this callback only).
        delete_checkpoint: delete the folder when ``fit`` finishes.
        keep: complete backups kept (>= 2: the newest and a fallback).

    Attributes:
        restored_epoch: after ``on_train_begin``, the epoch training resumes at (0: fresh).
        fell_back: whether a damaged backup was skipped.

    Example:

    >>> model.fit(ds, epochs=10, steps_per_epoch=100,
    ...           callbacks=[SafeBackupAndRestore("run/backup")])  # doctest: +SKIP
    """

    def __init__(self, backup_dir: str | os.PathLike, delete_checkpoint: bool = True, keep: int = 2):
        super().__init__(os.fspath(backup_dir), save_freq="epoch", delete_checkpoint=delete_checkpoint)
        if int(keep) < 2:
            raise ValueError(f"SafeBackupAndRestore: keep must be >= 2, got {keep}")
        self.keep = int(keep)
        self.folder = Path(os.fspath(backup_dir))
        self.restored_epoch = 0
        self.fell_back = False

    # ------------------------------------------------------------------ helpers
    @property
    def manifest_path(self) -> Path:
        return self.folder / BACKUP_MANIFEST

    def _fresh_hint(self) -> str:
        return f"delete {self.folder} (or run `kerasadml train` with --fresh) to start training from scratch"

    def _read_manifest(self) -> dict | None:
        if not self.manifest_path.is_file():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or not isinstance(manifest.get("checkpoints"), list):
                raise ValueError("no 'checkpoints' list")
            return manifest
        except (OSError, ValueError) as error:
            raise BackupError(f"{self.manifest_path} is damaged ({error}); {self._fresh_hint()}") from None

    def _remove_temporaries(self) -> None:
        if self.folder.is_dir():
            for stale in self.folder.glob(".*.tmp*"):
                stale.unlink(missing_ok=True)

    def _load_into_model(self, path: Path) -> None:
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(path))

    # ------------------------------------------------------------------ restore
    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "SafeBackupAndRestore: build the model before fit() (its variables must exist to restore them)"
            )
        self.restored_epoch = 0
        self.fell_back = False
        self._remove_temporaries()
        manifest = self._read_manifest()
        if manifest is None:
            self._restore_keras_backup()
            return
        fingerprint = model_fingerprint(self.model)
        saved = manifest.get("fingerprint") or {}
        if saved.get("digest") != fingerprint["digest"]:
            raise BackupError(
                f"{self.folder} holds the backup of another run (a {saved.get('class', '?')} with "
                f"{saved.get('parameters', '?')} parameters; this run trains a {fingerprint['class']} with "
                f"{fingerprint['parameters']} parameters, or the same with another configuration); "
                + self._fresh_hint()
            )
        problems = []
        for index, entry in enumerate(manifest["checkpoints"]):
            path = self.folder / str(entry.get("weights", ""))
            problem = None
            if not path.is_file():
                problem = "missing"
            elif path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
                problem = "damaged (size or checksum differs)"
            else:
                try:
                    self._load_into_model(path)
                except Exception as error:  # noqa: BLE001  (h5py/keras raise many types)
                    problem = f"unloadable ({type(error).__name__}: {str(error)[:200]})"
            if problem is not None:
                problems.append(f"{path.name} (epoch {entry.get('epoch')}): {problem}")
                continue
            epoch = int(entry["epoch"])
            if problems:
                self.fell_back = True
                log.warning(
                    "%s: the newest backup is unusable (%s); resuming from the previous backup instead (epoch %d)",
                    self.folder, "; ".join(problems), epoch,
                )
            log.warning("resuming training from %s after epoch %d", self.folder, epoch)
            self.model._initial_epoch = epoch
            self.restored_epoch = epoch
            return
        raise BackupError(f"{self.folder}: no usable training backup ({'; '.join(problems)}); " + self._fresh_hint())

    def _restore_keras_backup(self) -> None:
        """A folder written by ``keras.callbacks.BackupAndRestore`` (or by an older kerasadml)."""
        if not os.path.exists(self._weights_path):
            return
        try:
            super()._load_model()
        except Exception as error:  # noqa: BLE001
            raise BackupError(
                f"{self.folder} holds a backup that cannot be loaded into this model "
                f"({type(error).__name__}: {str(error)[:200]}); " + self._fresh_hint()
            ) from None
        self.restored_epoch = int(self.model._initial_epoch or 0)
        log.warning("resuming training from %s after epoch %d", self.folder, self.restored_epoch)

    # ------------------------------------------------------------------ backup
    def _save_model(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        epoch = int(self._current_epoch)
        name = f"epoch{epoch:05d}.weights.h5"
        final = self.folder / name
        temporary = self.folder / f".{name}.{os.getpid()}.tmp.weights.h5"  # Keras wants .weights.h5
        try:
            previous = (self._read_manifest() or {}).get("checkpoints", [])
        except BackupError:
            previous = []
        kept_epoch = previous[0].get("epoch") if previous else None
        try:
            self.model.save_weights(str(temporary), overwrite=True)
            fsync_path(temporary)
            os.replace(temporary, final)
            entry = {"epoch": epoch, "weights": name, "bytes": final.stat().st_size, "sha256": sha256_file(final)}
            checkpoints = [entry] + [c for c in previous if c.get("weights") != name][: self.keep - 1]
            from kerasadml.atomic import atomic_write_json

            atomic_write_json(
                self.manifest_path,
                {"format": _BACKUP_FORMAT, "fingerprint": model_fingerprint(self.model), "checkpoints": checkpoints},
            )
            fsync_path(self.folder, directory=True)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            kept = f"the backup of epoch {kept_epoch} is kept" if kept_epoch is not None else "no earlier backup exists"
            message = (
                f"cannot write the training backup of epoch {epoch} to {self.folder} "
                f"({error.strerror or error}); {kept}: free space and run the same command again to resume"
            )
            raise (OSError(error.errno, message) if error.errno is not None else OSError(message)) from error
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        referenced = {c["weights"] for c in checkpoints}
        for old in self.folder.glob("epoch*.weights.h5"):
            if old.name not in referenced:
                old.unlink(missing_ok=True)
        for legacy in (self._weights_path, self._training_metadata_path):
            if os.path.exists(legacy):
                os.unlink(legacy)


__all__ = [
    "AffinityImageLogger",
    "BackupError",
    "GradientReversalSchedule",
    "SafeBackupAndRestore",
    "model_fingerprint",
]
