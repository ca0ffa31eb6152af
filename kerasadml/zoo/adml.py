"""ADML: adversarial deep metric learning for open-vocabulary keyword spotting."""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import keras
import numpy as np
from keras import ops

from kerasadml.data.speech.phonemizer import PhonemeVocabulary, Phonemizer
from kerasadml.distribute import MultiWorkerDictInputsMixin, scale_loss_for_replicas
from kerasadml.encoders.ecapa_tdnn import ECAPATDNN
from kerasadml.encoders.phoneme_bilstm import PhonemeBiLSTM
from kerasadml.layers.cross_attention_aligner import CrossAttentionAligner
from kerasadml.layers.log_mel import LogMelSpectrogram
from kerasadml.layers.modality_discriminator import ModalityAdversarial
from kerasadml.layers.spec_augment import SpecAugment
from kerasadml.losses.aam_softmax import AAMSoftmax
from kerasadml.losses.asyp_adams import AsyPAdaMS
from kerasadml.losses.monotonic_alignment import MonotonicAlignment
from kerasadml.losses.multi_similarity import ProxyMS
from kerasadml.losses.proxy_nce import ProxyNCE
from kerasadml.losses.relational_proxy import RelationalProxy
from kerasadml.losses.sphereface2 import SphereFace2
from kerasadml.ops import l2_normalize, l2_normalize_np, masked_mean
from kerasadml.zoo.base import check_compile_kwargs, check_no_sample_weight
from kerasadml.zoo.presets import PresetMixin

UTTERANCE_LOSSES = ("proxy_nce", "relational_proxy")
PHONEME_LOSSES = ("asyp_adams", "asyp", "proxy_ms", "none")
KEYWORD_LOSSES = ("sphereface2", "aam_softmax", "none")
MAL_LEVELS = ("none", "utterance", "both")

#: The paper's configuration (arXiv 2505.16735) where this package's defaults differ:
#: ``ADML(num_keywords, **PAPER_CONFIG)`` or ``kerasadml train --recipe paper``. The
#: defaults are the recipe that measured best here (docs/methods.md §1.10).
PAPER_CONFIG: dict[str, Any] = {
    "utterance_loss": "relational_proxy",
    "proxy_memory": False,
    "text_pooling": "mean",
    "aligner_similarity": "dot",
    "loss_warmup_steps": 0,
    "keyword_weight": 1.0,
}

#: The terms ``compute_loss`` logs during ``fit`` (each a Mean over the epoch).
LOSS_TERMS = ("loss_utt", "loss_phn", "loss_mm", "loss_key", "loss_adv", "mal_acc_utt", "mal_acc_phn")


@keras.saving.register_keras_serializable(package="kerasadml")
class ADML(PresetMixin, MultiWorkerDictInputsMixin, keras.Model):
    """Open-vocabulary keyword spotter trained with adversarial deep metric learning.

    Audio clips (16 kHz waveforms) and keyword texts (as phoneme ids) are embedded into
    one space. The model owns:

    - the log-mel front-end and an :class:`~kerasadml.encoders.ECAPATDNN` audio encoder
      (frame-level ``Ea``, utterance-level ``ea``);
    - a :class:`~kerasadml.encoders.PhonemeBiLSTM` text encoder (``Et``, ``et``);
    - a :class:`~kerasadml.layers.CrossAttentionAligner` (text queries audio: one aligned
      audio vector per phoneme, and the affinity matrix);
    - the loss parts: :class:`RelationalProxy` (``L_utt``), :class:`AsyPAdaMS`
      (``L_phn``; its per-phoneme alpha, beta, lambda are trained and saved with the
      model), :class:`MonotonicAlignment` (``L_MM``), :class:`SphereFace2` on ``ea``
      (``L_key``), and two :class:`ModalityAdversarial` classifiers behind gradient
      reversal (``L_adv``, utterance and phoneme level).

    ``compute_loss`` returns ``L = L_utt + w_key L_key + w_mm L_MM + lambda_phn L_phn + L_adv``
    (docs/methods.md §1.9; the reversal strength ``lambda_adv`` scales what reaches the encoders).
    Every term has a switch, so the paper's ablations are configurations:

    ========================  ===============================================
    baseline (utt. RP only)   ``phoneme_loss="none", mal="none", keyword_loss="none"``
    + phoneme AsyP+AdaMS      ``phoneme_loss="asyp_adams", mal="none", keyword_loss="none"``
    + MAL utterance           ``... mal="utterance"``
    + MAL both                ``... mal="both"``
    full ADML (+SphereFace2)  ``... mal="both", keyword_loss="sphereface2"`` (default)
    ========================  ===============================================

    Training batches are dicts (see ``kerasadml.data.speech.dataset``): ``"audio"`` (B, S)
    float32 waveforms, ``"audio_length"`` (B,) valid samples, ``"phonemes"`` (B, Tt) the
    ids of each clip's own keyword (0 = padding) and ``"label"`` (B,) keyword class ids in
    ``[0, num_keywords)``. Inference scores a clip against a keyword by ``cos(ea, et)``.

    Args:
        num_keywords: training keyword vocabulary size (classes of the keyword loss).
        keep_stress: phoneme vocabulary with stress digits (saved with the model).
        embedding_dim: ``D``.
        audio_channels: ECAPA-TDNN width ``C`` (256 in the paper).
        audio_mfa_channels: width of ECAPA's feature aggregation (default ``3 C``;
            ``adml_base`` uses 512, which gives the paper's ~1.8 M audio parameters).
        se_channels: ECAPA squeeze-excitation bottleneck.
        attention_channels: CCSP attention bottleneck.
        text_units: BiLSTM units per direction (256 in the paper).
        text_layers: number of BiLSTM layers.
        token_dim: phoneme embedding width.
        aligner_heads: heads of the cross-attention aligner.
        phoneme_loss: ``"asyp_adams"`` (paper), ``"asyp"`` (fixed alpha/beta/lambda),
            ``"proxy_ms"``, or ``"none"``.
        lambda_phn: weight of ``L_phn`` (0.1 in the paper).
        mm_weight: weight of the monotonic matching loss (0 disables it).
        mm_reduction: ``"rows"`` (each phoneme's expected off-diagonal attention, in
            [0, 1]) or ``"elements"`` (the mean over all cells of docs/methods.md §1.6, ~1/Ta as large).
        keyword_loss: ``"sphereface2"`` (paper), ``"aam_softmax"`` or ``"none"``.
        keyword_weight: weight ``w_key`` of the keyword loss.
        mal: modality adversarial learning at ``"none"``, ``"utterance"`` or ``"both"`` levels.
        lambda_adv: gradient-reversal strength (0.1 in the paper).
        adv_schedule_steps: if set, ``lambda_adv`` ramps up with the DANN schedule over
            this many training steps.
        ms_alpha, ms_beta, ms_lambda: (initial) multi-similarity parameters.
        sf2_scale, sf2_margin, sf2_lambda, sf2_t, sf2_loss_weight: SphereFace2 parameters.
        relational_distance_weight, relational_angle_weight: relational term weights of
            ``L_utt`` (0, 0 leaves only its point-to-point AsyP term).
        spec_augment: apply SpecAugment to training features.
        utterance_loss: ``"relational_proxy"`` (the paper's ``L_utt``: AsyP + relational
            term over the batch's texts) or ``"proxy_nce"`` (softmax over keyword text
            proxies with an additive margin: a relative objective that keeps pushing hard
            negatives, docs/methods.md §1.10).
        nce_scale, nce_margin: scale and margin of ``"proxy_nce"``.
        proxy_memory: with ``"proxy_nce"``, every training keyword's latest text embedding
            is kept in a memory (``num_keywords x D``, not trained, saved with the model)
            and the keywords absent from a batch act as extra (constant) proxies, so each
            step contrasts a clip with all training keywords, not only the batch's.
        text_pooling: ``"mean"`` (paper) or ``"attention"`` (see ``PhonemeBiLSTM``).
        aligner_similarity: ``"dot"`` (paper) or ``"cosine"`` (see ``CrossAttentionAligner``).
        loss_warmup_steps: the keyword, phoneme and adversarial terms ramp linearly from 0
            to their weight over this many training steps (0: no ramp), so the utterance
            objective shapes the space first.

    Example:

    >>> model = ADML(num_keywords=10, audio_channels=32, embedding_dim=32, text_units=16,
    ...              se_channels=8, attention_channels=8)  # doctest: +SKIP
    >>> model.compile(optimizer="adam")  # doctest: +SKIP
    >>> model.fit(train_ds, steps_per_epoch=20, epochs=2)  # doctest: +SKIP
    >>> model.score(["clip.wav"], ["turn on the light"])  # doctest: +SKIP

    Paper: "Adversarial Deep Metric Learning for Cross-Modal Audio-Text Alignment in
    Open-Vocabulary Keyword Spotting", arXiv 2505.16735.
    """

    def __init__(
        self,
        num_keywords: int,
        keep_stress: bool = False,
        embedding_dim: int = 256,
        audio_channels: int = 256,
        audio_mfa_channels: int | None = None,
        se_channels: int = 128,
        attention_channels: int = 128,
        text_units: int = 256,
        text_layers: int = 2,
        token_dim: int = 128,
        aligner_heads: int = 1,
        phoneme_loss: str = "asyp_adams",
        lambda_phn: float = 0.1,
        mm_weight: float = 1.0,
        mm_reduction: str = "rows",
        keyword_loss: str = "sphereface2",
        keyword_weight: float = 0.1,
        mal: str = "both",
        lambda_adv: float = 0.1,
        adv_schedule_steps: int | None = None,
        ms_alpha: float = 2.0,
        ms_beta: float = 50.0,
        ms_lambda: float = 0.5,
        sf2_scale: float = 32.0,
        sf2_margin: float = 0.2,
        sf2_lambda: float = 0.7,
        sf2_t: float = 3.0,
        sf2_loss_weight: float = 50.0,
        relational_distance_weight: float = 1.0,
        relational_angle_weight: float = 2.0,
        spec_augment: bool = True,
        utterance_loss: str = "proxy_nce",
        nce_scale: float = 24.0,
        nce_margin: float = 0.25,
        proxy_memory: bool = True,
        text_pooling: str = "attention",
        aligner_similarity: str = "cosine",
        loss_warmup_steps: int = 300,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if phoneme_loss not in PHONEME_LOSSES:
            raise ValueError(f"ADML: phoneme_loss must be one of {PHONEME_LOSSES}, got {phoneme_loss!r}")
        if keyword_loss not in KEYWORD_LOSSES:
            raise ValueError(f"ADML: keyword_loss must be one of {KEYWORD_LOSSES}, got {keyword_loss!r}")
        if utterance_loss not in UTTERANCE_LOSSES:
            raise ValueError(f"ADML: utterance_loss must be one of {UTTERANCE_LOSSES}, got {utterance_loss!r}")
        if int(loss_warmup_steps) < 0:
            raise ValueError(f"ADML: loss_warmup_steps must be >= 0, got {loss_warmup_steps}")
        if mal not in MAL_LEVELS:
            raise ValueError(f"ADML: mal must be one of {MAL_LEVELS}, got {mal!r}")
        if keyword_loss != "none" and int(num_keywords) < 2:
            raise ValueError(f"ADML: keyword_loss={keyword_loss!r} needs num_keywords >= 2, got {num_keywords}")
        self.num_keywords = int(num_keywords)
        self.keep_stress = bool(keep_stress)
        self.embedding_dim = int(embedding_dim)
        self.audio_channels = int(audio_channels)
        self.audio_mfa_channels = None if audio_mfa_channels is None else int(audio_mfa_channels)
        self.se_channels = int(se_channels)
        self.attention_channels = int(attention_channels)
        self.text_units = int(text_units)
        self.text_layers = int(text_layers)
        self.token_dim = int(token_dim)
        self.aligner_heads = int(aligner_heads)
        self.phoneme_loss = phoneme_loss
        self.lambda_phn = float(lambda_phn)
        self.mm_weight = float(mm_weight)
        self.mm_reduction = mm_reduction
        self.keyword_loss = keyword_loss
        self.keyword_weight = float(keyword_weight)
        self.mal = mal
        self.lambda_adv = float(lambda_adv)
        self.adv_schedule_steps = adv_schedule_steps
        self.ms_alpha = float(ms_alpha)
        self.ms_beta = float(ms_beta)
        self.ms_lambda = float(ms_lambda)
        self.sf2_scale = float(sf2_scale)
        self.sf2_margin = float(sf2_margin)
        self.sf2_lambda = float(sf2_lambda)
        self.sf2_t = float(sf2_t)
        self.sf2_loss_weight = float(sf2_loss_weight)
        self.relational_distance_weight = float(relational_distance_weight)
        self.relational_angle_weight = float(relational_angle_weight)
        self.spec_augment = bool(spec_augment)
        self.utterance_loss_name = utterance_loss
        self.nce_scale = float(nce_scale)
        self.nce_margin = float(nce_margin)
        self.proxy_memory = bool(proxy_memory)
        self.text_pooling = text_pooling
        self.aligner_similarity = aligner_similarity
        self.loss_warmup_steps = int(loss_warmup_steps)

        self.vocabulary = PhonemeVocabulary(keep_stress=self.keep_stress)
        self._phonemizer: Phonemizer | None = None
        d = self.embedding_dim
        self.frontend = LogMelSpectrogram(name="frontend")
        self.augment = SpecAugment(time_width_ratio=0.05, name="spec_augment") if self.spec_augment else None
        self.audio_encoder = ECAPATDNN(
            input_dim=self.frontend.num_mel_bins,
            channels=self.audio_channels,
            embedding_dim=d,
            se_channels=self.se_channels,
            attention_channels=self.attention_channels,
            mfa_channels=self.audio_mfa_channels,
            name="audio_encoder",
        )
        self.text_encoder = PhonemeBiLSTM(
            vocabulary_size=self.vocabulary.size,
            embedding_dim=d,
            token_dim=self.token_dim,
            lstm_units=self.text_units,
            num_layers=self.text_layers,
            pooling=self.text_pooling,
            name="text_encoder",
        )
        self.aligner = CrossAttentionAligner(
            num_heads=self.aligner_heads, output_dim=d, similarity=self.aligner_similarity, name="aligner"
        )

        # Loss parts (layers, so that their weights train, save and restore with the model).
        if utterance_loss == "proxy_nce":
            self.utterance_loss = ProxyNCE(scale=self.nce_scale, margin=self.nce_margin, name="utterance_loss")
        else:
            self.utterance_loss = RelationalProxy(
                alpha=self.ms_alpha,
                beta=self.ms_beta,
                lambda_=self.ms_lambda,
                distance_weight=self.relational_distance_weight,
                angle_weight=self.relational_angle_weight,
                name="utterance_loss",
            )
        self.proxy_bank = self.proxy_filled = None
        if self.proxy_memory and utterance_loss == "proxy_nce":
            self.proxy_bank = self.add_weight(
                shape=(self.num_keywords, d), initializer="zeros", trainable=False, name="proxy_bank"
            )
            self.proxy_filled = self.add_weight(
                shape=(self.num_keywords,), initializer="zeros", trainable=False, name="proxy_filled"
            )
        # The step counter of the loss warm-up exists only when there is a warm-up, so that
        # presets saved without one load unchanged.
        self.loss_step = None
        if self.loss_warmup_steps:
            self.loss_step = self.add_weight(shape=(), initializer="zeros", trainable=False, name="loss_step")
        self.phoneme_loss_layer = None
        if phoneme_loss in ("asyp_adams", "asyp"):
            self.phoneme_loss_layer = AsyPAdaMS(
                num_classes=self.vocabulary.size,
                alpha=self.ms_alpha,
                beta=self.ms_beta,
                lambda_=self.ms_lambda,
                adaptive=phoneme_loss == "asyp_adams",
                name="phoneme_loss",
            )
        elif phoneme_loss == "proxy_ms":
            self.phoneme_loss_layer = ProxyMS(
                alpha=self.ms_alpha, beta=self.ms_beta, lambda_=self.ms_lambda, name="phoneme_loss"
            )
        self.alignment_loss = MonotonicAlignment(reduction=self.mm_reduction, name="alignment_loss")
        self.keyword_head = None
        if keyword_loss == "sphereface2":
            self.keyword_head = SphereFace2(
                self.num_keywords,
                scale=self.sf2_scale,
                margin=self.sf2_margin,
                lambda_=self.sf2_lambda,
                t=self.sf2_t,
                loss_weight=self.sf2_loss_weight,
                name="keyword_head",
            )
        elif keyword_loss == "aam_softmax":
            self.keyword_head = AAMSoftmax(self.num_keywords, name="keyword_head")
        self.adversary_utt = None
        self.adversary_phn = None
        if mal in ("utterance", "both"):
            self.adversary_utt = ModalityAdversarial(
                lambda_=self.lambda_adv, schedule_steps=adv_schedule_steps, name="adversary_utt"
            )
        if mal == "both":
            self.adversary_phn = ModalityAdversarial(
                lambda_=self.lambda_adv, schedule_steps=adv_schedule_steps, name="adversary_phn"
            )
        for part in (self.phoneme_loss_layer, self.keyword_head, self.adversary_utt, self.adversary_phn):
            if part is not None:
                part.build((None, d))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_TERMS}

    # ------------------------------------------------------------------ forward
    def _audio_forward(self, audio, audio_length, training=None):
        audio = ops.convert_to_tensor(audio, "float32")
        audio_length = ops.cast(audio_length, "int32")
        features = self.frontend(audio, lengths=audio_length)
        frames = self.frontend.frame_lengths(audio_length)
        if self.augment is not None and training:
            features = self.augment(features, lengths=frames, training=training)
        mask = ops.arange(ops.shape(features)[1])[None, :] < frames[:, None]
        encoded = self.audio_encoder({"features": features, "mask": mask}, training=training)
        return encoded["sequence"], encoded["embedding"], mask

    def call(self, inputs: dict, training=None) -> dict:
        """Run the towers present in ``inputs`` (audio, text, or both for training).

        Returns:
            dict with ``audio_sequence``, ``audio_embedding``, ``audio_mask`` when
            ``"audio"`` is given; ``text_sequence``, ``text_embedding``, ``text_mask``
            when ``"phonemes"`` is given; and ``aligned``, ``affinity`` when both are.
        """
        outputs = {}
        if "audio" in inputs:
            length = inputs.get("audio_length")
            if length is None:
                length = ops.full((ops.shape(inputs["audio"])[0],), ops.shape(inputs["audio"])[1], "int32")
            seq, emb, mask = self._audio_forward(inputs["audio"], length, training=training)
            outputs.update(audio_sequence=seq, audio_embedding=emb, audio_mask=mask)
        if "phonemes" in inputs:
            text = self.text_encoder({"phonemes": ops.cast(inputs["phonemes"], "int32")}, training=training)
            outputs.update(
                text_sequence=text["sequence"], text_embedding=text["embedding"], text_mask=text["mask"]
            )
        if "audio" in inputs and "phonemes" in inputs:
            aligned, affinity = self.aligner(
                outputs["text_sequence"],
                outputs["audio_sequence"],
                text_mask=outputs["text_mask"],
                audio_mask=outputs["audio_mask"],
                training=training,
            )
            outputs.update(aligned=aligned, affinity=affinity)
        return outputs

    #: The keys of ``loss_terms(...)["weighted"]``, in order.
    WEIGHTED_TERMS = ("utt", "phn", "mm", "key", "adv")

    def loss_terms(self, x: dict, y_pred: dict, training: bool = False) -> dict:
        """Each term's weighted contribution to the training loss, and what it logs.

        Returns:
            ``{"weighted": {"utt", "phn", "mm", "key", "adv"}, "logged": {LOSS_TERMS}}``:
            the total loss is the sum of ``weighted`` (docs/methods.md §1.9); ``logged``
            holds the unweighted values and the modality accuracies. With
            ``training=True`` the step counter and the proxy memory are updated.
        """
        labels = ops.cast(x["label"], "int32")
        ea, et = y_pred["audio_embedding"], y_pred["text_embedding"]
        zero = ops.zeros((), "float32")

        ramp = ops.ones((), "float32")
        if self.loss_step is not None:
            if training:
                self.loss_step.assign_add(1.0)
            ramp = ops.minimum(ops.convert_to_tensor(self.loss_step) / float(self.loss_warmup_steps), 1.0)

        if self.utterance_loss_name == "proxy_nce":
            refs, ref_labels, ref_mask = et, labels, None
            if self.proxy_bank is not None:
                keyword_ids = ops.arange(self.num_keywords, dtype="int32")
                in_batch = ops.any(ops.equal(keyword_ids[:, None], labels[None, :]), axis=1)
                bank_mask = ops.logical_and(ops.convert_to_tensor(self.proxy_filled) > 0, ops.logical_not(in_batch))
                refs = ops.concatenate([et, ops.stop_gradient(ops.cast(self.proxy_bank, et.dtype))], axis=0)
                ref_labels = ops.concatenate([labels, keyword_ids], axis=0)
                ref_mask = ops.concatenate([ops.ones_like(labels, dtype="bool"), bank_mask], axis=0)
                if training:
                    fresh = ops.stop_gradient(ops.cast(l2_normalize(et), self.proxy_bank.dtype))
                    self.proxy_bank.assign(ops.scatter_update(self.proxy_bank, labels[:, None], fresh))
                    self.proxy_filled.assign(
                        ops.scatter_update(self.proxy_filled, labels[:, None], ops.ones_like(labels, "float32"))
                    )
            loss_utt = ops.mean(self.utterance_loss(ea, labels, refs, ref_labels, ref_mask=ref_mask))
        else:
            loss_utt = ops.mean(self.utterance_loss(ea, labels, et, labels))

        text_mask = y_pred["text_mask"]
        d = ops.shape(et)[-1]
        flat_mask = ops.reshape(text_mask, (-1,))
        flat_aligned = ops.reshape(y_pred["aligned"], (-1, d))
        flat_text = ops.reshape(y_pred["text_sequence"], (-1, d))
        flat_ids = ops.reshape(ops.cast(x["phonemes"], "int32"), (-1,))

        loss_phn = zero
        if self.phoneme_loss_layer is not None:
            values = self.phoneme_loss_layer(
                flat_aligned, flat_ids, flat_text, flat_ids, mask=flat_mask, ref_mask=flat_mask
            )
            loss_phn = masked_mean(values, flat_mask)

        loss_mm = zero
        if self.mm_weight:
            loss_mm = ops.mean(
                self.alignment_loss(y_pred["affinity"], text_mask=text_mask, audio_mask=y_pred["audio_mask"])
            )

        loss_key = zero
        if self.keyword_head is not None:
            loss_key = ops.mean(self.keyword_head(ea, labels))

        # The modality classifiers see unit vectors: the space is cosine, and the encoders
        # (which maximise the classifier's loss through the reversal) cannot win the game
        # by inflating the feature scale.
        loss_adv, acc_utt, acc_phn = zero, zero, zero
        if self.adversary_utt is not None:
            adv, acc_utt = self.adversary_utt(l2_normalize(ea), l2_normalize(et), training=training)
            loss_adv = loss_adv + adv
        if self.adversary_phn is not None:
            adv, acc_phn = self.adversary_phn(
                l2_normalize(flat_aligned), l2_normalize(flat_text), audio_mask=flat_mask, text_mask=flat_mask, training=training
            )
            loss_adv = loss_adv + adv

        weighted = {
            "utt": loss_utt,
            "phn": ramp * self.lambda_phn * loss_phn,
            "mm": self.mm_weight * loss_mm,
            "key": ramp * self.keyword_weight * loss_key,
            "adv": ramp * loss_adv,
        }
        logged = dict(zip(LOSS_TERMS, (loss_utt, loss_phn, loss_mm, loss_key, loss_adv, acc_utt, acc_phn)))
        return {"weighted": weighted, "logged": logged}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``L = L_utt + w_key L_key + w_mm L_MM + lambda_phn L_phn + L_adv`` (docs/methods.md §1.9);
        the sum of :meth:`loss_terms`. ``sample_weight`` is refused (:func:`check_no_sample_weight`)."""
        check_no_sample_weight("ADML", sample_weight)
        if y_pred is None:
            y_pred = self(x, training=training)
        terms = self.loss_terms(x, y_pred, training=training)
        total = sum(terms["weighted"].values())
        for name, value in terms["logged"].items():
            self.trackers[name].update_state(value)
        # MirroredStrategy sums the replicas' gradients: return loss / replicas (as
        # Keras' own compute_loss does); a no-op on one device and on JAX.
        return scale_loss_for_replicas(total)

    @property
    def metrics(self):
        return super().metrics + list(self.trackers.values())

    @staticmethod
    def default_optimizer(
        total_steps: int | None = None,
        learning_rate: float = 1e-3,
        warmup_fraction: float = 0.05,
    ) -> keras.optimizers.Optimizer:
        """AdamW (weight decay 1e-4, gradient clipping at norm 5).

        With ``total_steps`` the learning rate warms up linearly from 0 to
        ``learning_rate`` over ``warmup_fraction`` of the steps, then follows a cosine
        decay to 1 % of it at ``total_steps``; without, it is constant.

        Args:
            total_steps: number of training steps of the run (``epochs * steps_per_epoch``).
            learning_rate: peak learning rate.
            warmup_fraction: share of ``total_steps`` spent warming up.
        """
        if total_steps is not None and int(total_steps) < 1:
            raise ValueError(f"ADML.default_optimizer: total_steps must be >= 1, got {total_steps}")
        rate = float(learning_rate)
        if total_steps:
            warmup = int(round(float(warmup_fraction) * int(total_steps)))
            rate = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=0.0 if warmup else float(learning_rate),
                decay_steps=max(1, int(total_steps) - warmup),
                alpha=0.01,
                warmup_target=float(learning_rate) if warmup else None,
                warmup_steps=warmup,
            )
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=1e-4, clipnorm=5.0)

    def compile(self, optimizer="auto", **kwargs):
        """``optimizer="auto"``: :meth:`default_optimizer` with a constant learning rate."""
        if optimizer == "auto":
            optimizer = self.default_optimizer()
        super().compile(optimizer=optimizer, **check_compile_kwargs("ADML", kwargs))

    @staticmethod
    def _dummy_batch() -> dict:
        return {
            "audio": np.zeros((2, 8000), "float32"),
            "audio_length": np.array([8000, 6000], "int32"),
            "phonemes": np.array([[5, 6, 7, 0], [8, 9, 0, 0]], "int32"),
        }

    def build(self, input_shape=None):
        """Create every variable (all towers) whatever the first batch contains."""
        if not self.built:
            self.call(self._dummy_batch(), training=False)
            self.built = True

    def build_for_preset(self) -> None:
        """Create every variable (used before loading weights)."""
        self.build()

    # --------------------------------------------------------------- inference
    @property
    def phonemizer(self) -> Phonemizer:
        if self._phonemizer is None:
            self._phonemizer = Phonemizer(keep_stress=self.keep_stress)
        return self._phonemizer

    def encode_text(self, text: str) -> list[int]:
        """Phoneme ids of ``text`` (raises ``PhonemizerError`` naming a text with no phonemes)."""
        return self.vocabulary.encode(self.phonemizer.phonemize(text))

    def embed_text(self, texts: Sequence[str] | str, batch_size: int = 256) -> np.ndarray:
        """L2-normalised utterance embeddings ``et`` (K, D) of keyword texts.

        A single ``str`` is one keyword. Each distinct text is phonemized and embedded once
        (repeated texts share the row). Raises ``TypeError`` naming an item that is not a
        ``str`` (e.g. ``texts[1]``), ``PhonemizerError`` for a text with no phonemes; a text
        partly left unvoiced warns (``UnvoicedTextWarning``).
        """
        from kerasadml.data.batching import pad_id_batches
        from kerasadml.validation import as_text_list

        texts = as_text_list(texts, "texts")
        distinct = list(dict.fromkeys(texts))
        ids = [self.encode_text(t) for t in distinct]
        out = []
        for batch, valid in pad_id_batches(ids, batch_size):
            emb = self.predict_on_batch({"phonemes": batch})["text_embedding"]
            out.append(ops.convert_to_numpy(emb)[:valid])
        if not out:
            return np.zeros((0, self.embedding_dim), "float32")
        rows = {text: i for i, text in enumerate(distinct)}
        return l2_normalize_np(np.concatenate(out, 0))[[rows[t] for t in texts]]

    def embed_audio(
        self, audio: Iterable[np.ndarray | str | os.PathLike], batch_size: int = 32
    ) -> np.ndarray:
        """L2-normalised utterance embeddings ``ea`` (N, D) of clips (arrays at 16 kHz or file paths).

        Arrays get the checks files get (``kerasadml.data.audio_io.load_clips``): a single
        path or 1-D array is one clip; 2-D clips ``(samples, channels)`` / ``(channels,
        samples)`` are down-mixed.

        Raises:
            AudioError: naming the file, or the array as ``audio[i]`` (NaN/Inf, empty,
                fewer than 400 samples, silent).
            TypeError: ``None`` or a non-numeric clip, naming it.
        """
        from kerasadml.data.audio_io import load_clips
        from kerasadml.data.batching import pad_audio_batches

        waves = load_clips(audio)
        out = []
        for batch, valid in pad_audio_batches(waves, batch_size):
            emb = self.predict_on_batch(batch)["audio_embedding"]
            out.append(ops.convert_to_numpy(emb)[:valid])
        return l2_normalize_np(np.concatenate(out, 0)) if out else np.zeros((0, self.embedding_dim), "float32")

    def score(self, audio, texts: Sequence[str] | str) -> np.ndarray:
        """Cosine scores (N clips x K keywords) between clips and keyword texts (a single
        ``str`` is one keyword; clips as in :meth:`embed_audio`)."""
        return self.embed_audio(audio) @ self.embed_text(texts).T

    def affinity(self, audio: np.ndarray, text: str) -> np.ndarray:
        """The aligner's affinity matrix (Tt x Ta) of one clip (16 kHz array) and one text.

        The clip is padded to a multiple of 0.5 s and the phonemes to a multiple of 8
        (masked, so the values are those of the unpadded pair), which keeps the number of
        compiled shapes small when many clips are inspected; the matrix returned covers
        the clip's own frames only.
        """
        ids = self.encode_text(text)
        wave = np.asarray(audio, "float32").reshape(-1)
        width = max(8000, int(np.ceil(wave.shape[0] / 8000)) * 8000)
        padded = np.zeros((1, width), "float32")
        padded[0, : wave.shape[0]] = wave
        phonemes = np.zeros((1, max(8, int(np.ceil(len(ids) / 8)) * 8)), "int32")
        phonemes[0, : len(ids)] = ids
        length = np.array([wave.shape[0]], "int32")
        out = self.predict_on_batch({"audio": padded, "audio_length": length, "phonemes": phonemes})
        frames = int(ops.convert_to_numpy(self.frontend.frame_lengths(length))[0])
        return ops.convert_to_numpy(out["affinity"])[0, : len(ids), :frames]

    def keyword_detector(self, keywords: Sequence[str] | str, threshold: float = 0.5):
        """A :class:`~kerasadml.kws.detector.KeywordDetector` enrolled with ``keywords`` (a
        single ``str`` is one keyword); ``threshold`` must be finite, in [-1, 1]."""
        from kerasadml.kws.detector import KeywordDetector

        return KeywordDetector(self, keywords, threshold=threshold)

    def evaluate(self, x=None, *args, **kwargs) -> Any:
        """Keras ``evaluate`` on batches, or LibriPhrase evaluation on a CSV / pair set.

        With ``x`` a LibriPhrase-format CSV path (or a list of them, or a
        ``kerasadml.data.speech.libriphrase.PairSet``), returns
        ``{"LP_E": {"EER", "AUC", "AP"}, "LP_H": {...}, "pairs": n, "skipped": s}``
        (fractions) over the whole set, scoring ``cos(ea, et)``; ``audio_root`` may be
        given as a keyword. Anything else goes to ``keras.Model.evaluate``, with
        ``return_dict=True`` unless given: either way the result is a dict of named figures.
        """
        from kerasadml.data.speech.libriphrase import PairSet

        if isinstance(x, (str, os.PathLike, PairSet)) or (
            isinstance(x, (list, tuple)) and x and isinstance(x[0], (str, os.PathLike))
        ):
            from kerasadml.kws.evaluation import evaluate_libriphrase

            return evaluate_libriphrase(self, x, **kwargs)
        kwargs.setdefault("return_dict", True)
        return super().evaluate(x, *args, **kwargs)

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild from ``get_config``. A config saved before the recipe options existed
        (no ``utterance_loss`` key) is the paper's configuration: its missing keys are
        filled from :data:`PAPER_CONFIG`, so old presets and ``.keras`` files load as the
        model they were saved as, not with today's defaults."""
        config = dict(config)
        if "utterance_loss" not in config:
            for key, value in PAPER_CONFIG.items():
                config.setdefault(key, value)
            config.setdefault("nce_scale", 16.0)
            config.setdefault("nce_margin", 0.1)
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_keywords": self.num_keywords,
                "keep_stress": self.keep_stress,
                "embedding_dim": self.embedding_dim,
                "audio_channels": self.audio_channels,
                "audio_mfa_channels": self.audio_mfa_channels,
                "se_channels": self.se_channels,
                "attention_channels": self.attention_channels,
                "text_units": self.text_units,
                "text_layers": self.text_layers,
                "token_dim": self.token_dim,
                "aligner_heads": self.aligner_heads,
                "phoneme_loss": self.phoneme_loss,
                "lambda_phn": self.lambda_phn,
                "mm_weight": self.mm_weight,
                "mm_reduction": self.mm_reduction,
                "keyword_loss": self.keyword_loss,
                "keyword_weight": self.keyword_weight,
                "mal": self.mal,
                "lambda_adv": self.lambda_adv,
                "adv_schedule_steps": self.adv_schedule_steps,
                "ms_alpha": self.ms_alpha,
                "ms_beta": self.ms_beta,
                "ms_lambda": self.ms_lambda,
                "sf2_scale": self.sf2_scale,
                "sf2_margin": self.sf2_margin,
                "sf2_lambda": self.sf2_lambda,
                "sf2_t": self.sf2_t,
                "sf2_loss_weight": self.sf2_loss_weight,
                "relational_distance_weight": self.relational_distance_weight,
                "relational_angle_weight": self.relational_angle_weight,
                "spec_augment": self.spec_augment,
                "utterance_loss": self.utterance_loss_name,
                "nce_scale": self.nce_scale,
                "nce_margin": self.nce_margin,
                "proxy_memory": self.proxy_memory,
                "text_pooling": self.text_pooling,
                "aligner_similarity": self.aligner_similarity,
                "loss_warmup_steps": self.loss_warmup_steps,
            }
        )
        return config
