"""keras-tuner HyperModels for ADML and AADML, scored by each model's own evaluation.

Both hypermodels implement ``HyperModel.fit(hp, model, *args, **kwargs)``: it trains
with ``model.fit(*args, **kwargs)`` (what ``tuner.search(...)`` was given) and then
evaluates the trained model once on the validation data given to the constructor,
returning a dict of metrics. keras-tuner reads the objective from that dict, so every
tuner works (``RandomSearch``, ``BayesianOptimization``, ``Hyperband``; Hyperband
passes ``epochs``/``initial_epoch`` through ``kwargs``):

============  =====================================================  =================
hypermodel    validation                                             objective
============  =====================================================  =================
ADML          ``evaluate_libriphrase`` on a CSV / ``PairSet``        ``val_eer`` (min)
AADML         ``AADML.evaluate`` (whole-gallery retrieval) on an      ``val_map`` (max)
              ``AVSplit``
============  =====================================================  =================

A trial whose training diverged (non-finite loss or embeddings) raises
``keras_tuner.errors.FailedTrialError`` (the oracle records it as failed) instead of
reporting a NaN objective.

Example:

>>> import keras_tuner
>>> from kerasadml.tuning import ADMLHyperModel
>>> hypermodel = ADMLHyperModel(num_keywords=400, validation_data="synth/synthphrase_test.csv",
...                             config={"audio_channels": 64, "text_units": 64})  # doctest: +SKIP
>>> tuner = keras_tuner.BayesianOptimization(hypermodel, objective=hypermodel.objective,
...                                          max_trials=20, directory="tuning")  # doctest: +SKIP
>>> tuner.search(train_ds, epochs=5, steps_per_epoch=100, verbose=0)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import keras
import keras_tuner
import numpy as np

#: ADML hyperparameters: name -> (min, max, sampling, default = the paper's value).
ADML_SEARCH_SPACE: dict[str, tuple[float, float, str, float]] = {
    "lambda_adv": (0.01, 1.0, "log", 0.1),
    "lambda_phn": (0.01, 1.0, "log", 0.1),
    "sf2_margin": (0.0, 0.4, "linear", 0.2),
    "sf2_scale": (8.0, 64.0, "log", 32.0),
    "ms_alpha": (0.5, 8.0, "log", 2.0),
    "ms_beta": (10.0, 100.0, "log", 50.0),
    "ms_lambda": (0.2, 0.8, "linear", 0.5),
    "learning_rate": (1e-4, 1e-2, "log", 1e-3),
}

#: AADML hyperparameters. ``k`` and ``num_heads`` are integer choices; ``margin`` is
#: searched for the triplet losses and ``temperature`` for the contrastive ones.
AADML_SEARCH_SPACE: dict[str, Any] = {
    "k": (1, 8, "linear", 3),
    "num_heads": ((1, 2, 4, 8), 4),
    "margin": (0.05, 1.0, "linear", 0.4),
    "temperature": (0.02, 0.5, "log", 0.1),
    "learning_rate": (1e-4, 1e-2, "log", 1e-3),
}


def _float(hp, name: str, spec, ranges: Mapping | None):
    low, high, sampling, default = spec
    if ranges and name in ranges:
        low, high = (float(v) for v in ranges[name])
        default = min(max(default, low), high)
    return hp.Float(name, min_value=low, max_value=high, sampling=sampling, default=default)


def _check_tune(names: Sequence[str] | None, space: Mapping, owner: str) -> tuple[str, ...]:
    if names is None:
        return tuple(space)
    unknown = sorted(set(names) - set(space))
    if unknown:
        raise ValueError(f"{owner}: tune names unknown hyperparameters {unknown}; known: {sorted(space)}")
    return tuple(names)


def _finite_or_fail(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise keras_tuner.errors.FailedTrialError(f"{what} is {value}: training diverged")
    return value


def _build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's slots now: on TensorFlow, slots created inside the first
    traced train step make ``tf.function`` trace the whole step twice (twice the
    start-up time of every trial)."""
    model.optimizer.build(model.trainable_variables)


def _last_loss(history) -> float | None:
    losses = getattr(history, "history", {}).get("loss") if history is not None else None
    return float(losses[-1]) if losses else None


class ADMLHyperModel(keras_tuner.HyperModel):
    """Searches ADML's loss weights, SphereFace2 and AdaMS initial values, learning rate.

    Hyperparameters (ranges in :data:`ADML_SEARCH_SPACE`; default = the paper's value):
    ``lambda_adv`` (reversal strength), ``lambda_phn`` (weight of ``L_phn``),
    ``sf2_margin``, ``sf2_scale``, ``ms_alpha``/``ms_beta``/``ms_lambda`` (the AdaMS
    initial values, also used by ``L_utt``), ``learning_rate`` (AdamW, weight decay
    1e-4, clipnorm 5, as ``compile(optimizer="auto")``). A term that the fixed
    configuration switches off (``mal="none"``, ``phoneme_loss="none"``,
    ``keyword_loss != "sphereface2"``) does not search its parameters.

    Objective: ``val_eer`` (min), the EER of ``cos(ea, et)`` on the validation pairs
    (``subset``: LP_E, LP_H, or the mean of both). ``fit`` returns
    ``{"val_eer", "val_auc", "val_eer_LP_E", "val_eer_LP_H", ..., "loss"}``.

    Args:
        num_keywords: training keyword classes (size of the keyword head).
        validation_data: LibriPhrase-format CSV path(s) or a
            ``kerasadml.data.speech.libriphrase.PairSet``.
        audio_root: folder the CSV's audio paths are relative to (default: the CSV's).
        config: fixed ``ADML`` constructor arguments (architecture sizes, switches).
        tune: names of the hyperparameters to search (default: all); the others keep
            their value from ``config`` (or ADML's default).
        ranges: ``{name: (min, max)}`` replacing ranges of :data:`ADML_SEARCH_SPACE`.
        subset: ``"LP_E"``, ``"LP_H"`` or ``"mean"`` (of the subsets present).
        eval_batch_size: clips per embedding batch during validation.
        name, tunable: as ``keras_tuner.HyperModel``.

    Example:

    >>> hm = ADMLHyperModel(num_keywords=16, validation_data="tiny/synthphrase_test.csv",
    ...                     config={"audio_channels": 16})  # doctest: +SKIP
    >>> tuner = keras_tuner.RandomSearch(hm, objective=hm.objective, max_trials=4)  # doctest: +SKIP
    >>> tuner.search(train_ds, epochs=1, steps_per_epoch=20)  # doctest: +SKIP

    Paper: ADML, arXiv 2505.16735 (hyperparameters of docs/methods.md §1.3-§1.9).
    """

    objective = keras_tuner.Objective("val_eer", direction="min")

    def __init__(
        self,
        num_keywords: int,
        validation_data,
        audio_root: str | os.PathLike | None = None,
        config: Mapping[str, Any] | None = None,
        tune: Sequence[str] | None = None,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        subset: str = "mean",
        eval_batch_size: int = 32,
        name: str | None = None,
        tunable: bool = True,
    ):
        super().__init__(name=name, tunable=tunable)
        if subset not in ("LP_E", "LP_H", "mean"):
            raise ValueError(f"ADMLHyperModel: subset must be 'LP_E', 'LP_H' or 'mean', got {subset!r}")
        self.num_keywords = int(num_keywords)
        self.config = dict(config or {})
        self.tune = _check_tune(tune, ADML_SEARCH_SPACE, "ADMLHyperModel")
        for key in ("num_keywords",) + self.tune:
            if key in self.config:
                raise ValueError(f"ADMLHyperModel: {key!r} is set by the hypermodel, remove it from config")
        self.ranges = dict(ranges or {})
        _check_tune(tuple(self.ranges), ADML_SEARCH_SPACE, "ADMLHyperModel (ranges)")
        self.subset = subset
        self.eval_batch_size = int(eval_batch_size)
        self.audio_root = audio_root
        self.validation_data = self._load_pairs(validation_data, audio_root)
        self._encoder = None

    @staticmethod
    def _load_pairs(data, audio_root):
        from kerasadml.data.speech.libriphrase import PairSet, evaluation_pairs, read_libriphrase_csv

        if isinstance(data, PairSet):
            return data
        paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        return evaluation_pairs(read_libriphrase_csv(paths), audio_root=audio_root)

    # ------------------------------------------------------------ search space
    def _active(self) -> tuple[str, ...]:
        """The tuned names that the fixed configuration actually uses."""
        off = set()
        if self.config.get("mal", "both") == "none":
            off.add("lambda_adv")
        if self.config.get("phoneme_loss", "asyp_adams") == "none":
            off.add("lambda_phn")
        if self.config.get("keyword_loss", "sphereface2") != "sphereface2":
            off.update({"sf2_margin", "sf2_scale"})
        return tuple(n for n in self.tune if n not in off)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        from kerasadml.zoo.adml import ADML

        values = {name: _float(hp, name, ADML_SEARCH_SPACE[name], self.ranges) for name in self._active()}
        learning_rate = values.pop("learning_rate", ADML_SEARCH_SPACE["learning_rate"][3])
        model = ADML(num_keywords=self.num_keywords, **{**self.config, **values})
        model.build()  # every variable exists, so Hyperband can load a previous trial's weights
        model.compile(optimizer=ADML.default_optimizer(learning_rate=learning_rate))
        _build_optimizer(model)
        return model

    # --------------------------------------------------------- train + validate
    def fit(self, hp, model, *args, **kwargs) -> dict[str, float]:
        """``model.fit(*args, **kwargs)``, then LibriPhrase evaluation on the validation pairs."""
        from kerasadml.kws.evaluation import evaluate_libriphrase

        history = model.fit(*args, **kwargs)
        loss = _last_loss(history)
        if loss is not None:
            _finite_or_fail(loss, "the training loss")
        try:
            result = evaluate_libriphrase(
                model, self.validation_data, batch_size=self.eval_batch_size, progress=False
            )
        except ValueError as error:  # sklearn refuses NaN scores
            raise keras_tuner.errors.FailedTrialError(f"validation failed: {error}") from error
        subsets = [s for s in ("LP_E", "LP_H") if s in result]
        chosen = subsets if self.subset == "mean" else [self.subset]
        missing = [s for s in chosen if s not in result]
        if not chosen or missing:
            raise ValueError(
                f"ADMLHyperModel: the validation data has no scorable {missing or 'LP_E/LP_H'} pairs "
                f"(pairs scored: {result['pairs']}, skipped: {result['skipped']})"
            )
        metrics = {
            "val_eer": _finite_or_fail(np.mean([result[s]["EER"] for s in chosen]), "val_eer"),
            "val_auc": float(np.mean([result[s]["AUC"] for s in chosen])),
            "val_ap": float(np.mean([result[s]["AP"] for s in chosen])),
        }
        for s in subsets:
            metrics.update({f"val_{k.lower()}_{s}": float(result[s][k]) for k in ("EER", "AUC", "AP")})
        if loss is not None:
            metrics["loss"] = loss
        return metrics

    # ---------------------------------------------------------------- helpers
    def encode_text(self, text: str) -> list[int]:
        """Phoneme ids as every model of this search encodes them (to build the training data)."""
        if self._encoder is None:
            from kerasadml.data.speech.phonemizer import PhonemeVocabulary, Phonemizer

            keep_stress = bool(self.config.get("keep_stress", False))
            self._encoder = (PhonemeVocabulary(keep_stress=keep_stress), Phonemizer(keep_stress=keep_stress))
        vocabulary, phonemizer = self._encoder
        return vocabulary.encode(phonemizer.phonemize(text))

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (``validation_data`` as the ``PairSet`` it was read into)."""
        return {
            "num_keywords": self.num_keywords,
            "validation_data": self.validation_data,
            "audio_root": self.audio_root,
            "config": dict(self.config),
            "tune": list(self.tune),
            "ranges": dict(self.ranges),
            "subset": self.subset,
            "eval_batch_size": self.eval_batch_size,
            "name": self.name,
            "tunable": self.tunable,
        }


class AADMLHyperModel(keras_tuner.HyperModel):
    """Searches AADML's proxy ``k``, attention heads, margin or temperature, learning rate.

    Hyperparameters (:data:`AADML_SEARCH_SPACE`): ``k`` (AA-proxy neighbours, an int in
    ``[1, min(8, max_k)]``), ``num_heads`` (one of 1, 2, 4, 8), ``margin`` (triplet
    losses) or ``temperature`` (contrastive losses), ``learning_rate`` (Adam). Plain
    ``triplet``/``contrastive`` baselines have no proxy: ``k`` and ``num_heads`` are
    then not searched.

    Objective: ``val_map`` (max), the whole-gallery mean average precision
    ``(MAP_A2V + MAP_V2A) / 2`` of ``AADML.evaluate`` on the validation split. ``fit``
    returns ``{"val_map", "val_map_a2v", "val_map_v2a", "val_r1", "loss"}``.

    Args:
        validation_split: an ``AVSplit`` (held out from training).
        config: fixed ``AADML`` constructor arguments (``audio_dim``, ``visual_dim``,
            ``num_classes``, sizes, ``loss`` ...).
        adapt_split: the training ``AVSplit``; every model's input standardisation is
            fitted on it (``AADML.adapt``). ``None`` leaves the identity statistics.
        max_k: the largest ``k`` to try (must stay below the training batch size).
        tune: names of the hyperparameters to search (default: all that apply).
        ranges: ``{name: (min, max)}`` replacing ranges of the float hyperparameters
            (and of ``k``).
        name, tunable: as ``keras_tuner.HyperModel``.

    Example:

    >>> hm = AADMLHyperModel(data.test, config={"audio_dim": 128, "visual_dim": 1024,
    ...                      "num_classes": 10}, adapt_split=data.train)  # doctest: +SKIP
    >>> tuner = keras_tuner.Hyperband(hm, objective=hm.objective, max_epochs=9)  # doctest: +SKIP
    >>> tuner.search(make_av_dataset(data.train), steps_per_epoch=30)  # doctest: +SKIP

    Paper: AADML, arXiv 2404.13789 (hyperparameters of docs/methods.md §2.2-§2.3).
    """

    objective = keras_tuner.Objective("val_map", direction="max")

    def __init__(
        self,
        validation_split,
        config: Mapping[str, Any] | None = None,
        adapt_split=None,
        max_k: int = 8,
        tune: Sequence[str] | None = None,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        name: str | None = None,
        tunable: bool = True,
    ):
        super().__init__(name=name, tunable=tunable)
        from kerasadml.data.av.features import AVSplit

        for label, split in (("validation_split", validation_split), ("adapt_split", adapt_split)):
            if split is not None and not isinstance(split, AVSplit):
                raise ValueError(f"AADMLHyperModel: {label} must be an AVSplit, got {type(split).__name__}")
        if validation_split is None:
            raise ValueError("AADMLHyperModel: validation_split is required")
        if int(max_k) < 1:
            raise ValueError(f"AADMLHyperModel: max_k must be >= 1, got {max_k}")
        self.validation_split = validation_split
        self.adapt_split = adapt_split
        self.config = dict(config or {})
        self.max_k = int(max_k)
        self.tune = _check_tune(tune, AADML_SEARCH_SPACE, "AADMLHyperModel")
        self.ranges = dict(ranges or {})
        _check_tune(tuple(self.ranges), AADML_SEARCH_SPACE, "AADMLHyperModel (ranges)")
        if "num_heads" in self.ranges:
            raise ValueError("AADMLHyperModel: num_heads is a choice (1, 2, 4, 8); use tune= to fix it in config")
        for key in self.tune:
            if key in self.config and key != "learning_rate":
                raise ValueError(f"AADMLHyperModel: {key!r} is searched, remove it from config (or from tune)")

    def _active(self) -> tuple[str, ...]:
        loss = self.config.get("loss", "aa_triplet")
        off = {"temperature"} if "triplet" in loss else {"margin"}
        if not loss.startswith("aa_"):
            off.update({"k", "num_heads"})
        return tuple(n for n in self.tune if n not in off)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        from kerasadml.zoo.aadml import AADML

        values: dict[str, Any] = {}
        for name in self._active():
            if name == "k":
                low, high, _, default = AADML_SEARCH_SPACE["k"]
                low, high = (int(v) for v in self.ranges.get("k", (low, min(high, self.max_k))))
                values["k"] = hp.Int("k", low, high, default=min(max(default, low), high))
            elif name == "num_heads":
                choices, default = AADML_SEARCH_SPACE["num_heads"]
                values["num_heads"] = hp.Choice("num_heads", list(choices), default=default)
            else:
                values[name] = _float(hp, name, AADML_SEARCH_SPACE[name], self.ranges)
        learning_rate = values.pop("learning_rate", AADML_SEARCH_SPACE["learning_rate"][3])
        model = AADML(**{**self.config, **values})
        if self.adapt_split is not None:
            model.adapt(self.adapt_split)
        model.build()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate))
        _build_optimizer(model)
        return model

    def fit(self, hp, model, *args, **kwargs) -> dict[str, float]:
        """``model.fit(*args, **kwargs)``, then retrieval evaluation on the validation split."""
        history = model.fit(*args, **kwargs)
        loss = _last_loss(history)
        if loss is not None:
            _finite_or_fail(loss, "the training loss")
        try:
            report = model.evaluate(self.validation_split)
        except ValueError as error:  # NaN embeddings
            raise keras_tuner.errors.FailedTrialError(f"validation failed: {error}") from error
        metrics = {
            "val_map": _finite_or_fail(report["MAP"], "val_map"),
            "val_map_a2v": float(report["MAP_A2V"]),
            "val_map_v2a": float(report["MAP_V2A"]),
            "val_r1": float(report["R@1"]),
        }
        if loss is not None:
            metrics["loss"] = loss
        return metrics

    def get_config(self) -> dict[str, Any]:
        return {
            "validation_split": self.validation_split,
            "config": dict(self.config),
            "adapt_split": self.adapt_split,
            "max_k": self.max_k,
            "tune": list(self.tune),
            "ranges": dict(self.ranges),
            "name": self.name,
            "tunable": self.tunable,
        }
