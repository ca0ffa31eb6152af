"""AADML: anchor-aware deep metric learning for audio-visual cross-modal retrieval."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from kerasadml.distribute import MultiWorkerDictInputsMixin, scale_loss_for_replicas
from kerasadml.encoders.feature_tower import FeatureTower
from kerasadml.losses.contrastive import AAContrastive, SupervisedContrastive
from kerasadml.losses.triplet import AATriplet, Triplet
from kerasadml.ops import l2_normalize_np
from kerasadml.zoo.base import check_compile_kwargs, check_no_sample_weight
from kerasadml.zoo.presets import PresetMixin

METRIC_LOSSES = ("aa_triplet", "aa_contrastive", "triplet", "contrastive")


@keras.saving.register_keras_serializable(package="kerasadml")
class AADML(PresetMixin, MultiWorkerDictInputsMixin, keras.Model):
    """Audio-visual retrieval model trained with anchor-aware (AA) proxies.

    Two :class:`~kerasadml.encoders.FeatureTower` s map pre-extracted audio and visual
    features into a common L2-normalised space. Training replaces the anchor of a
    triplet or contrastive loss by its AA proxy: attention of the anchor over itself and
    its ``k`` nearest same-modality neighbours in the batch
    (:class:`~kerasadml.layers.AnchorAwareProxy`), once with audio anchors against
    visual references and once the other way. A shared label classifier on both
    embeddings adds ``label_weight`` x cross-entropy (docs/methods.md §2.3.3):
    ``L = L_AA(audio anchors) + L_AA(visual anchors) + label_weight * CE``.

    Inputs are standardised inside the model by ``Normalization`` layers fitted on the
    training split only (:meth:`adapt`), so the statistics are saved with the weights.

    Args:
        audio_dim: audio feature width (128 for VGGish).
        visual_dim: visual feature width (1024 for Inception).
        num_classes: number of labels (10 VEGAS, 15 AVE).
        embedding_dim: width of the common space.
        hidden_units: hidden width of each tower.
        dropout: tower dropout.
        loss: ``"aa_triplet"``, ``"aa_contrastive"``, or the plain baselines
            ``"triplet"``, ``"contrastive"``.
        k: neighbours of the AA proxy.
        num_heads: attention heads of the AA proxy.
        key_dim: key width per head.
        aggregation: ``"attention"`` (the paper) or ``"mean"`` (plain mean over the
            anchor and its neighbours; the ablation).
        margin: triplet margin.
        mining: ``"batch_hard"`` or ``"all"`` triplets.
        temperature: contrastive temperature.
        label_weight: weight of the label cross-entropy.

    Example:

    >>> model = AADML(audio_dim=128, visual_dim=1024, num_classes=10)  # doctest: +SKIP
    >>> model.adapt(train_split)  # doctest: +SKIP
    >>> model.compile(optimizer="adam")  # doctest: +SKIP
    >>> model.fit(make_av_dataset(train_split), steps_per_epoch=50, epochs=10)  # doctest: +SKIP
    >>> model.evaluate(test_split)["MAP"]  # doctest: +SKIP

    Paper: "Anchor-aware Deep Metric Learning for Audio-visual Retrieval", arXiv 2404.13789.
    """

    def __init__(
        self,
        audio_dim: int = 128,
        visual_dim: int = 1024,
        num_classes: int = 10,
        embedding_dim: int = 128,
        hidden_units: int = 1024,
        dropout: float = 0.2,
        loss: str = "aa_triplet",
        k: int = 3,
        num_heads: int = 4,
        key_dim: int = 32,
        aggregation: str = "attention",
        margin: float = 0.4,
        mining: str = "batch_hard",
        temperature: float = 0.1,
        label_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in METRIC_LOSSES:
            raise ValueError(f"AADML: loss must be one of {METRIC_LOSSES}, got {loss!r}")
        if int(num_classes) < 2:
            raise ValueError(f"AADML: num_classes must be >= 2, got {num_classes}")
        self.audio_dim = int(audio_dim)
        self.visual_dim = int(visual_dim)
        self.num_classes = int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = int(hidden_units)
        self.dropout = float(dropout)
        self.loss_name = loss
        self.k = int(k)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.aggregation = aggregation
        self.margin = float(margin)
        self.mining = mining
        self.temperature = float(temperature)
        self.label_weight = float(label_weight)

        # float32 under mixed precision too: a constant feature gives 0 / epsilon, and the
        # 1e-7 epsilon is 0 in float16 (NaN from the first step, e.g. on AV-Digits).
        self.audio_norm = keras.layers.Normalization(name="audio_norm", dtype="float32")
        self.visual_norm = keras.layers.Normalization(name="visual_norm", dtype="float32")
        self.audio_norm.build((None, self.audio_dim))
        self.visual_norm.build((None, self.visual_dim))
        self.audio_tower = FeatureTower(
            self.audio_dim, self.hidden_units, self.embedding_dim, self.dropout, name="audio_tower"
        )
        self.visual_tower = FeatureTower(
            self.visual_dim, self.hidden_units, self.embedding_dim, self.dropout, name="visual_tower"
        )
        self.classifier = keras.layers.Dense(self.num_classes, name="label_classifier")
        self.classifier.build((None, self.embedding_dim))
        self.audio_anchor_loss = self._make_loss("audio_anchor_loss")
        self.visual_anchor_loss = self._make_loss("visual_anchor_loss")
        for part in (self.audio_anchor_loss, self.visual_anchor_loss):
            part.build((None, self.embedding_dim))
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss_metric", "loss_label")}

    def _make_loss(self, name: str):
        aa = dict(
            k=self.k,
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            aggregation=self.aggregation,
        )
        if self.loss_name == "triplet":
            return Triplet(margin=self.margin, mining=self.mining, name=name)
        if self.loss_name == "aa_triplet":
            return AATriplet(margin=self.margin, mining=self.mining, name=name, **aa)
        if self.loss_name == "contrastive":
            return SupervisedContrastive(temperature=self.temperature, name=name)
        return AAContrastive(temperature=self.temperature, name=name, **aa)

    # ----------------------------------------------------------------- data
    def adapt(self, split) -> None:
        """Fit the input standardisation on the TRAINING split (an ``AVSplit``).

        A feature that is constant in the training split is only centred (its variance is
        set to 1, as scikit-learn's ``StandardScaler`` does): dividing by the ~0 variance
        would turn any other value at test time into a huge input (and, in half
        precision, into inf/NaN).
        """
        self._check_widths(split.audio, split.visual)
        for norm, values in ((self.audio_norm, split.audio), (self.visual_norm, split.visual)):
            norm.adapt(np.asarray(values, "float32"))
            variance = np.asarray(ops.convert_to_numpy(norm.adapt_variance))
            norm.adapt_variance.assign(np.where(variance > 1e-12, variance, 1.0).astype("float32"))
            norm.finalize_state()

    def _check_widths(self, audio, visual) -> None:
        if audio is not None and np.shape(audio)[-1] != self.audio_dim:
            raise ValueError(
                f"AADML: audio features have width {np.shape(audio)[-1]}, this model expects audio_dim={self.audio_dim}"
            )
        if visual is not None and np.shape(visual)[-1] != self.visual_dim:
            raise ValueError(
                f"AADML: visual features have width {np.shape(visual)[-1]}, this model expects visual_dim={self.visual_dim}"
            )

    # -------------------------------------------------------------- forward
    def call(self, inputs: dict, training=None) -> dict:
        """Embeddings (and label logits) of the modalities present in ``inputs``."""
        out = {}
        if "audio" in inputs:
            za = self.audio_tower(self.audio_norm(inputs["audio"]), training=training)
            out.update(audio_embedding=za, audio_logits=self.classifier(za))
        if "visual" in inputs:
            zv = self.visual_tower(self.visual_norm(inputs["visual"]), training=training)
            out.update(visual_embedding=zv, visual_logits=self.classifier(zv))
        return out

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``L_AA(audio anchors) + L_AA(visual anchors) + label_weight * CE``;
        ``sample_weight`` is refused (:func:`kerasadml.zoo.base.check_no_sample_weight`)."""
        check_no_sample_weight("AADML", sample_weight)
        if y_pred is None:
            y_pred = self(x, training=training)
        labels = ops.cast(x["label"], "int32")
        za, zv = y_pred["audio_embedding"], y_pred["visual_embedding"]
        metric = ops.mean(self.audio_anchor_loss(za, labels, zv, labels)) + ops.mean(
            self.visual_anchor_loss(zv, labels, za, labels)
        )
        ce = keras.losses.sparse_categorical_crossentropy
        f32 = lambda t: ops.cast(t, "float32")  # noqa: E731  (float32 under mixed precision too)
        label = 0.5 * (
            ops.mean(ce(labels, f32(y_pred["audio_logits"]), from_logits=True))
            + ops.mean(ce(labels, f32(y_pred["visual_logits"]), from_logits=True))
        )
        self.trackers["loss_metric"].update_state(metric)
        self.trackers["loss_label"].update_state(label)
        # MirroredStrategy sums the replicas' gradients: return loss / replicas (as
        # Keras' own compute_loss does); a no-op on one device and on JAX.
        return scale_loss_for_replicas(metric + self.label_weight * label)

    @property
    def metrics(self):
        return super().metrics + list(self.trackers.values())

    def compile(self, optimizer="auto", **kwargs):
        """``optimizer="auto"``: Adam(1e-3)."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        super().compile(optimizer=optimizer, **check_compile_kwargs("AADML", kwargs))

    def build(self, input_shape=None):
        """Create every variable (both towers) whatever the first batch contains."""
        if not self.built:
            n = max(self.k + 2, 4)
            dummy = {
                "audio": np.zeros((n, self.audio_dim), "float32"),
                "visual": np.zeros((n, self.visual_dim), "float32"),
            }
            self.call(dummy, training=False)
            self.built = True

    def build_for_preset(self) -> None:
        """Create every variable (used before loading weights)."""
        self.build()

    # ------------------------------------------------------------ inference
    def embed(self, features: np.ndarray, modality: str, batch_size: int = 1024) -> np.ndarray:
        """Unit-norm embeddings of ``features`` of one ``modality`` ("audio" or "visual")."""
        if modality not in ("audio", "visual"):
            raise ValueError(f"AADML.embed: modality must be 'audio' or 'visual', got {modality!r}")
        features = np.asarray(features, "float32")
        self._check_widths(features if modality == "audio" else None, features if modality == "visual" else None)
        if not np.isfinite(features).all():
            bad = np.where(~np.isfinite(features).all(axis=1))[0][:5].tolist()
            raise ValueError(f"AADML.embed: {modality} features contain NaN/Inf in rows {bad}")
        out = []
        for start in range(0, len(features), batch_size):
            chunk = features[start : start + batch_size]
            emb = ops.convert_to_numpy(self.predict_on_batch({modality: chunk})[f"{modality}_embedding"])
            # Under a tf.distribute strategy, predict_on_batch runs the whole batch on every
            # replica and concatenates the copies: keep the first.
            out.append(emb[: len(chunk)])
        return l2_normalize_np(np.concatenate(out, 0)) if out else np.zeros((0, self.embedding_dim), "float32")

    def retrieve(
        self,
        queries: np.ndarray,
        gallery: np.ndarray,
        top_k: int = 10,
        query_modality: str = "audio",
        chunk_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` gallery items (other modality) for each query, by cosine similarity.

        Streams over query chunks: memory is ``chunk_size x len(gallery)``.

        Returns:
            ``(indices (Q, k), scores (Q, k))``, best first.
        """
        gallery_modality = "visual" if query_modality == "audio" else "audio"
        q = self.embed(queries, query_modality)
        g = self.embed(gallery, gallery_modality)
        top_k = min(int(top_k), len(g))
        indices = np.zeros((len(q), top_k), "int64")
        scores = np.zeros((len(q), top_k), "float32")
        for start in range(0, len(q), chunk_size):
            sims = q[start : start + chunk_size] @ g.T
            part = np.argpartition(-sims, top_k - 1, axis=1)[:, :top_k]
            part_scores = np.take_along_axis(sims, part, 1)
            order = np.argsort(-part_scores, axis=1, kind="stable")
            indices[start : start + chunk_size] = np.take_along_axis(part, order, 1)
            scores[start : start + chunk_size] = np.take_along_axis(part_scores, order, 1)
        return indices, scores

    def evaluate(self, x=None, *args, **kwargs) -> Any:
        """Retrieval evaluation on an ``AVSplit`` (or ``(audio, visual, labels)``), else Keras'.

        Returns ``{"MAP_A2V", "MAP_V2A", "MAP", "R@1", "R@5", "R@10", ...}`` over the
        whole test gallery (docs/methods.md §2.4). Anything else goes to
        ``keras.Model.evaluate`` with ``return_dict=True`` unless given, so the result is
        a dict of named figures either way.
        """
        from kerasadml.data.av.features import AVSplit
        from kerasadml.metrics.retrieval import retrieval_report

        if isinstance(x, AVSplit) or (isinstance(x, tuple) and len(x) == 3):
            audio, visual, labels = (x.audio, x.visual, x.labels) if isinstance(x, AVSplit) else x
            za = self.embed(audio, "audio")
            zv = self.embed(visual, "visual")
            labels = np.asarray(labels)
            return retrieval_report(za, zv, labels, labels, **kwargs)
        kwargs.setdefault("return_dict", True)
        return super().evaluate(x, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "audio_dim": self.audio_dim,
                "visual_dim": self.visual_dim,
                "num_classes": self.num_classes,
                "embedding_dim": self.embedding_dim,
                "hidden_units": self.hidden_units,
                "dropout": self.dropout,
                "loss": self.loss_name,
                "k": self.k,
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "aggregation": self.aggregation,
                "margin": self.margin,
                "mining": self.mining,
                "temperature": self.temperature,
                "label_weight": self.label_weight,
            }
        )
        return config
