"""The preset registry and the preset folder format shared by the zoo models.

A preset folder (keras-hub's format, without its loader indirection) holds:

- ``config.json``: ``keras.saving.serialize_keras_object(model)`` of the zoo model;
- ``metadata.json``: versions, the backend that wrote it, the parameter count, whether
  weights are present and their SHA-256, and free-form ``info`` (data, command, results);
- ``model.weights.h5``: the weights, when the preset is trained;
- ``README.md``: the model card (catalogue presets only).

The catalogue lives in the repository's top-level ``zoo/`` folder and is installed with
the package as ``kerasadml.presets_data``, so ``from_preset`` works from a wheel.
"""

from __future__ import annotations

import datetime
import glob
import importlib.resources
import json
import logging
import os
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import keras

import kerasadml
from kerasadml.atomic import _umask, fsync_path, sha256_file
from kerasadml.atomic import atomic_write_text as _atomic_write_text

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"

#: The explicit catalogue: preset name -> zoo class name, one-line description and the
#: training recipe that ``kerasadml train`` / ``kerasadml demo`` use by default.
PRESETS: dict[str, dict[str, Any]] = {
    "adml_tiny": {
        "class": "ADML",
        "description": "Small ADML keyword spotter (ECAPA C=64, BiLSTM 64, D=128), trained on SynthPhrase small.",
        "recipe": {"epochs": 10, "steps_per_epoch": 100, "keywords_per_batch": 32, "clips_per_keyword": 2},
    },
    "adml_small": {
        "class": "ADML",
        "description": "ADML keyword spotter (ECAPA C=96, BiLSTM 96, D=128) trained on SynthPhrase v2 large "
        "(synthetic speech only); the default of `kerasadml detect`.",
        "recipe": {"epochs": 24, "steps_per_epoch": 100, "keywords_per_batch": 32, "clips_per_keyword": 2},
    },
    "adml_base": {
        "class": "ADML",
        "description": "ADML at the paper's sizes (ECAPA C=256, BiLSTM 256, D=256); untrained.",
        "recipe": {"epochs": 50, "steps_per_epoch": 500, "keywords_per_batch": 64, "clips_per_keyword": 2},
    },
    "aadml_vegas": {
        "class": "AADML",
        "description": "AADML for VEGAS features (128-d VGGish audio, 1024-d Inception visual, 10 classes); untrained.",
        "recipe": {"epochs": 30, "steps_per_epoch": 100, "batch_size": 128},
    },
    "aadml_ave": {
        "class": "AADML",
        "description": "AADML for AVE features (128-d audio, 1024-d visual, 15 classes); untrained.",
        "recipe": {"epochs": 30, "steps_per_epoch": 20, "batch_size": 60},
    },
    "aadml_avdigits": {
        "class": "AADML",
        "description": "AADML trained on AV-Digits (spoken digits x real handwritten digits), 10 classes.",
        "recipe": {"epochs": 20, "steps_per_epoch": 30, "batch_size": 60},
    },
}


class PresetError(ValueError):
    """A preset name is unknown, or a preset folder is missing or corrupt."""


def catalogue_dir() -> Path:
    """The installed catalogue folder (``zoo/`` of the repository)."""
    return Path(str(importlib.resources.files("kerasadml.presets_data")))


def preset_recipe(name_or_dir: str | os.PathLike) -> dict[str, Any]:
    """The default training recipe of a catalogue preset (``{}`` for a folder)."""
    return dict(PRESETS.get(str(name_or_dir), {}).get("recipe", {}))


def preset_config(name_or_dir: str | os.PathLike, class_name: str | None = None, drop=()) -> dict[str, Any]:
    """A preset's constructor arguments (its ``config.json``), to build a variant of it.

    Leaves out ``name``, ``trainable`` and ``dtype`` (so the global dtype policy applies,
    as in :func:`load_preset`) and the names in ``drop`` (e.g. the ones a tuner searches).

    Args:
        name_or_dir: a catalogue name or a preset folder.
        class_name: when given, the class the preset must describe ("ADML", "AADML").
        drop: more keys to leave out.

    Raises:
        PresetError: an unknown preset, a corrupt config, or another class than ``class_name``.

    Example:

    >>> config = preset_config("adml_tiny", "ADML", drop=("num_keywords",))
    >>> model = ADML(num_keywords=400, **config)  # doctest: +SKIP
    """
    config_path = resolve_preset(name_or_dir) / CONFIG_FILE
    serialized = read_preset_config(name_or_dir)
    if class_name is not None and serialized.get("class_name") != class_name:
        raise PresetError(f"{config_path} describes a {serialized.get('class_name')}, not a {class_name}")
    config = dict(serialized.get("config", {}))
    for key in ("name", "trainable", "dtype", *drop):
        config.pop(key, None)
    return config


def write_preset_config(model: keras.Model, folder: str | os.PathLike, info: dict | None = None) -> Path:
    """Write ``config.json`` and ``metadata.json`` only (an untrained catalogue preset)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    _atomic_write_text(folder / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True))
    metadata = {
        "kerasadml_version": kerasadml.__version__,
        "keras_version": keras.__version__,
        "class": type(model).__name__,
        "parameter_count": int(model.count_params()),
        "weights": False,
        "info": info or {},
    }
    _atomic_write_text(folder / METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True))
    return folder


def read_preset_config(name_or_dir: str | os.PathLike) -> dict[str, Any]:
    """A preset's ``config.json``, checked: a JSON object with a string ``class_name``
    and a ``config`` object.

    Raises:
        PresetError: naming the file and what is wrong (not JSON, not UTF-8, a missing key).
    """
    config_path = resolve_preset(name_or_dir) / CONFIG_FILE
    try:
        serialized = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PresetError(f"corrupt {config_path}: {error}") from error
    if not isinstance(serialized, dict):
        raise PresetError(f"corrupt {config_path}: expected a JSON object, got {type(serialized).__name__}")
    for key in ("class_name", "config"):
        if key not in serialized:
            raise PresetError(f"corrupt {config_path}: missing key {key!r}")
    if not isinstance(serialized["class_name"], str):
        raise PresetError(f"corrupt {config_path}: 'class_name' must be a string")
    if not isinstance(serialized["config"], dict):
        raise PresetError(f"corrupt {config_path}: 'config' must be a JSON object")
    return serialized


#: The keyword spotter ``kerasadml detect`` and ``kerasadml.zoo.keyword_detector`` use when
#: none is named: the best trained ADML preset of the catalogue.
DEFAULT_KWS_PRESET = "adml_small"


def preset_is_trained(name_or_dir: str | os.PathLike) -> bool:
    """Whether a preset folder holds weights (its ``model.weights.h5``)."""
    try:
        return (resolve_preset(name_or_dir) / WEIGHTS_FILE).is_file()
    except PresetError:
        return False


def list_presets() -> dict[str, str]:
    """Preset names and their one-line descriptions."""
    return {name: entry["description"] for name, entry in PRESETS.items()}


def resolve_preset(name_or_dir: str | os.PathLike) -> Path:
    """The folder of a preset given by catalogue name or path.

    Raises:
        PresetError: neither a folder with ``config.json`` nor a known name; the
            message lists the known presets.
    """
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise PresetError(f"preset folder {path} has no {CONFIG_FILE}")
        return path
    name = str(name_or_dir)
    if name in PRESETS:
        folder = catalogue_dir() / name
        if not (folder / CONFIG_FILE).is_file():
            raise PresetError(f"preset {name!r} is registered but its folder {folder} has no {CONFIG_FILE}")
        return folder
    known = ", ".join(sorted(PRESETS))
    raise PresetError(f"unknown preset {name!r}: not a folder and not one of the known presets: {known}")


def read_metadata(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PresetError(f"corrupt {path}: {error}") from error


def weights_origin(preset: str | os.PathLike) -> dict[str, Any]:
    """Where a run that starts from ``preset``'s weights (``init_weights=True``) starts:
    recorded in its training report so that a fine-tuned model says what it was tuned from.

    Args:
        preset: a preset name or folder.

    Returns:
        ``{"preset", "weights_sha256", "trained"}``: the preset as given, the SHA-256 of
        its weights file (from its metadata; ``None`` when it has none) and the ``data``,
        ``recipe``, ``seed`` and ``init_weights`` of its own training report, if it has
        one (so a chain of fine-tunings can be followed back).

    Example:
        >>> weights_origin("adml_small")["weights_sha256"]  # doctest: +SKIP
        'b0c1...'
    """
    metadata = read_metadata(resolve_preset(preset))
    training = (metadata.get("info") or {}).get("training") or {}
    return {
        "preset": os.fspath(preset),
        "weights_sha256": metadata.get("weights_sha256"),
        "trained": {k: training[k] for k in ("data", "recipe", "seed", "init_weights") if k in training},
    }


def _weights_only(model: keras.Model) -> keras.Model:
    """``model`` itself, or, when it has an optimizer (whose moments ``save_weights``
    would store too, tripling the file), a clone without one holding the same weights."""
    if getattr(model, "optimizer", None) is None:
        return model
    clone = type(model).from_config(model.get_config())
    clone.build_for_preset()
    clone.set_weights(model.get_weights())
    return clone


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # no data copied; the old folder's deletion leaves it
    except OSError:
        shutil.copy2(source, target)


#: Temporary siblings of a preset folder being written (``.NAME.XXXX.tmp``) or replaced
#: (``.NAME.XXXX.old``).
_TEMP_SUFFIXES = (".tmp", ".old")


def save_preset(model: keras.Model, folder: str | os.PathLike, info: dict | None = None) -> Path:
    """Write ``model`` as a preset folder (config, metadata, weights), all or nothing.

    The whole preset is written into a temporary sibling folder (``.NAME.XXXX.tmp``, each
    file flushed to disk), then swapped in: an existing ``folder`` is renamed away, the new
    one renamed in, the old one deleted. Files of an existing preset other than the three
    preset files (e.g. a ``README.md`` model card) are carried over. On any failure (a full
    disk, an interruption) the existing preset is untouched and the temporary folder is
    removed; temporary folders left by a killed save are removed by the next save.

    Raises:
        PresetError: ``folder`` exists and is not a preset folder (a file, or a non-empty
            folder without ``config.json``): it is never replaced.
        OSError: the preset could not be written (the old one is kept).
    """
    folder = Path(os.fspath(folder))
    if folder.exists() and not folder.is_dir():
        raise PresetError(f"cannot save a preset to {folder}: it exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CONFIG_FILE).is_file():
        raise PresetError(
            f"cannot save a preset to {folder}: it is a non-empty folder without {CONFIG_FILE} "
            "(not a preset); choose another folder"
        )
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{glob.escape(folder.name)}.*"):
        if stale.suffix in _TEMP_SUFFIXES and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    try:
        config = keras.saving.serialize_keras_object(model)
        _atomic_write_text(staging / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True))
        weights_path = staging / WEIGHTS_FILE
        _weights_only(model).save_weights(str(weights_path), overwrite=True)
        os.chmod(weights_path, 0o644)
        fsync_path(weights_path)
        metadata = {
            "kerasadml_version": kerasadml.__version__,
            "keras_version": keras.__version__,
            "backend": keras.backend.backend(),
            "class": type(model).__name__,
            "parameter_count": int(model.count_params()),
            "weights": True,
            "weights_sha256": sha256_file(weights_path),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "info": info or {},
        }
        _atomic_write_text(staging / METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True))
        own = {CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE}
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name in own or entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    shutil.copytree(entry, staging / entry.name, copy_function=_link_or_copy)
                else:
                    _link_or_copy(str(entry), str(staging / entry.name))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        fsync_path(staging, directory=True)
        if folder.is_dir():
            retired = parent / f".{folder.name}.{secrets.token_hex(6)}.old"
            os.rename(folder, retired)
            try:
                os.rename(staging, folder)
            except BaseException:
                os.rename(retired, folder)
                raise
            fsync_path(parent, directory=True)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, folder)
            fsync_path(parent, directory=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def load_preset(cls: type, name_or_dir: str | os.PathLike, load_weights: bool = True, **overrides):
    """Instantiate ``cls`` from a preset folder or name, and load its weights.

    Args:
        cls: the zoo class (the folder's config must name it).
        name_or_dir: a catalogue name (see ``list_presets()``) or a preset folder.
        load_weights: load ``model.weights.h5`` when the preset has weights.
        **overrides: constructor arguments replacing the saved ones (e.g. a new
            ``num_keywords`` for fine-tuning; weights are then loaded only if shapes match).
            The model's dtype policy is the global one (``keras.mixed_precision``) unless
            ``dtype=`` is given here.
    """
    folder = resolve_preset(name_or_dir)
    config_path = folder / CONFIG_FILE
    serialized = read_preset_config(folder)
    class_name = serialized.get("class_name")
    if class_name != cls.__name__:
        raise PresetError(f"{config_path} describes a {class_name}, not a {cls.__name__}")
    config = dict(serialized["config"])
    # The saved dtype policy is the saving session's; a preset follows the current global
    # policy (e.g. mixed_float16, so that compile() adds loss scaling) unless overridden.
    config.pop("dtype", None)
    changed = sorted(k for k, v in overrides.items() if k != "dtype" and config.get(k, object()) != v)
    config.update(overrides)
    try:
        model = cls.from_config(config)
        model.build_for_preset()
    except (TypeError, ValueError, KeyError) as error:
        raise PresetError(f"{config_path}: cannot build a {cls.__name__} from its 'config': {error}") from error
    metadata = read_metadata(folder)
    weights_path = folder / WEIGHTS_FILE
    if load_weights and metadata.get("weights", weights_path.exists()):
        if not weights_path.is_file():
            raise PresetError(f"preset {folder} declares weights but {weights_path} is missing")
        expected = metadata.get("weights_sha256")
        if expected and sha256_file(weights_path) != expected:
            raise PresetError(f"{weights_path} is corrupted: its SHA-256 does not match {METADATA_FILE}")
        try:
            if changed:
                _load_matching_weights(model, weights_path, changed)
            else:
                model.load_weights(str(weights_path))
        except Exception as error:  # h5py/keras raise many types for a bad file
            raise PresetError(f"could not load weights from {weights_path}: {error}") from error
    model.preset_metadata = metadata
    return model


def _load_matching_weights(model: keras.Model, weights_path: Path, changed: list[str]) -> None:
    """Load the weights whose shapes still match after ``changed`` constructor arguments
    were overridden (fine-tuning: e.g. ``num_keywords`` of new data); the layers whose
    variables no longer fit keep their fresh initialisation, and one warning says so."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(str(weights_path), skip_mismatch=True)
    skipped = [w for w in caught if "could not be loaded" in str(w.message)]
    # Pass every other warning on, except numpy 2's "__array__ ... copy keyword" notice that
    # Keras' skip_mismatch path triggers for each skipped variable (Keras 3.15; harmless).
    for w in caught:
        if w not in skipped and "copy keyword" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if skipped:
        first = str(skipped[0].message).split("\n")[0]
        logger.warning(
            "%s: %s overridden, so not every saved weight fits; the weights that fit were loaded and "
            "the rest start fresh (for ADML with another num_keywords: the keyword head, the proxy "
            "memory and the loss warm-up counter). Keras said: %s",
            weights_path, ", ".join(changed), first,
        )


class PresetMixin:
    """``from_preset`` / ``save_to_preset`` for zoo models.

    A class using it implements ``build_for_preset()`` (create every variable, e.g. by
    calling the model on a small dummy batch) so weights can be loaded.
    """

    preset_metadata: dict = {}

    @classmethod
    def presets(cls) -> dict[str, str]:
        """Catalogue presets of this class and their descriptions."""
        return {n: e["description"] for n, e in PRESETS.items() if e["class"] == cls.__name__}

    @classmethod
    def from_preset(cls, name_or_dir: str | os.PathLike, load_weights: bool = True, **overrides):
        """Build the model from a catalogue preset name or a preset folder.

        Example:

        >>> from kerasadml.zoo import ADML
        >>> model = ADML.from_preset("adml_tiny")  # doctest: +SKIP
        """
        if isinstance(name_or_dir, str) and name_or_dir in PRESETS:
            expected = PRESETS[name_or_dir]["class"]
            if expected != cls.__name__:
                raise PresetError(f"preset {name_or_dir!r} is a {expected} preset, not a {cls.__name__} one")
        return load_preset(cls, name_or_dir, load_weights=load_weights, **overrides)

    def compile_from_config(self, config: dict) -> None:
        """Re-compile a model loaded from a ``.keras`` file with its saved optimizer (the
        zoo models' ``compile`` takes no loss: the loss is the model's own)."""
        optimizer = config.get("optimizer") if config else None
        if optimizer is not None and not isinstance(optimizer, str):
            optimizer = keras.optimizers.deserialize(optimizer)
        self.compile(optimizer=optimizer or "auto")
        if self.built:  # create the optimizer's variables so its saved state can load
            self.optimizer.build(self.trainable_variables)

    def save_to_preset(self, folder: str | os.PathLike, info: dict | None = None) -> Path:
        """Write this model as a preset folder loadable with ``from_preset(folder)``."""
        return save_preset(self, folder, info=info)
