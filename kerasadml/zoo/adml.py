"""ADML: adversarial deep metric learning for open-vocabulary keyword spotting."""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import keras
import numpy as np
from keras import ops

from kerasadml.data.phonemizer import PhonemeVocabulary, Phonemizer
from kerasadml.distribute import MultiWorkerDictInputsMixin, scale_loss_for_replicas
from kerasadml.encoders.ecapa_tdnn import ECAPATDNN
from kerasadml.encoders.phoneme_bilstm import PhonemeBiLSTM
from kerasadml.layers.cross_attention_aligner import CrossAttentionAligner
from kerasadml.layers.log_mel import LogMelSpectrogram
from kerasadml.layers.spec_augment import SpecAugment
from kerasadml.losses.aam_softmax import AAMSoftmax
from kerasadml.losses.asyp_adams import AsyPAdaMS
from kerasadml.losses.base import masked_mean
from kerasadml.losses.modality_adversarial import ModalityAdversarial
from kerasadml.losses.monotonic_alignment import MonotonicAlignment
from kerasadml.losses.multi_similarity import ProxyMS
from kerasadml.losses.relational_proxy import RelationalProxy
from kerasadml.losses.sphereface2 import SphereFace2
from kerasadml.zoo.presets import PresetMixin

PHONEME_LOSSES = ("asyp_adams", "asyp", "proxy_ms", "none")
KEYWORD_LOSSES = ("sphereface2", "aam_softmax", "none")
MAL_LEVELS = ("none", "utterance", "both")

#: The terms ``compute_loss`` logs during ``fit`` (each a Mean over the epoch).
LOSS_TERMS = ("loss_utt", "loss_phn", "loss_mm", "loss_key", "loss_adv", "mal_acc_utt", "mal_acc_phn")


def _unit(x):
    """Rows of a tensor scaled to unit L2 norm (zero rows stay zero)."""
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


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

    Training batches are dicts (see ``kerasadml.data.kws_dataset``): ``"audio"`` (B, S)
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
        keyword_weight: float = 1.0,
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if phoneme_loss not in PHONEME_LOSSES:
            raise ValueError(f"ADML: phoneme_loss must be one of {PHONEME_LOSSES}, got {phoneme_loss!r}")
        if keyword_loss not in KEYWORD_LOSSES:
            raise ValueError(f"ADML: keyword_loss must be one of {KEYWORD_LOSSES}, got {keyword_loss!r}")
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

        self.vocabulary = PhonemeVocabulary(keep_stress=self.keep_stress)
        self._phonemizer: Phonemizer | None = None
        d = self.embedding_dim
        self.frontend = LogMelSpectrogram(name="frontend")
        self.augment = SpecAugment(name="spec_augment") if self.spec_augment else None
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
            name="text_encoder",
        )
        self.aligner = CrossAttentionAligner(num_heads=self.aligner_heads, output_dim=d, name="aligner")

        # Loss parts (layers, so that their weights train, save and restore with the model).
        self.utterance_loss = RelationalProxy(
            alpha=self.ms_alpha,
            beta=self.ms_beta,
            lambda_=self.ms_lambda,
            distance_weight=self.relational_distance_weight,
            angle_weight=self.relational_angle_weight,
            name="utterance_loss",
        )
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
            features = self.augment(features, training=training)
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

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``L = L_utt + w_key L_key + w_mm L_MM + lambda_phn L_phn + L_adv`` (docs/methods.md §1.9)."""
        if y_pred is None:
            y_pred = self(x, training=training)
        labels = ops.cast(x["label"], "int32")
        ea, et = y_pred["audio_embedding"], y_pred["text_embedding"]
        zero = ops.zeros((), "float32")

        loss_utt = ops.mean(self.utterance_loss(ea, labels, et, labels))
        total = loss_utt

        text_mask = y_pred["text_mask"]
        d = ops.shape(et)[-1]
        flat_mask = ops.reshape(text_mask, (-1,))
        flat_aligned = ops.reshape(y_pred["aligned"], (-1, d))
        flat_text = ops.reshape(y_pred["text_sequence"], (-1, d))
        flat_ids = ops.reshape(ops.cast(x["phonemes"], "int32"), (-1,))

        loss_phn = zero
        if self.phoneme_loss_layer is not None:
            if isinstance(self.phoneme_loss_layer, AsyPAdaMS):
                values = self.phoneme_loss_layer(
                    flat_aligned, flat_ids, flat_text, flat_ids, mask=flat_mask, proxy_mask=flat_mask
                )
            else:
                values = self.phoneme_loss_layer(
                    flat_aligned, flat_ids, flat_text, flat_ids, mask=flat_mask, ref_mask=flat_mask
                )
            loss_phn = masked_mean(values, flat_mask)
            total = total + self.lambda_phn * loss_phn

        loss_mm = zero
        if self.mm_weight:
            loss_mm = ops.mean(
                self.alignment_loss(y_pred["affinity"], text_mask=text_mask, audio_mask=y_pred["audio_mask"])
            )
            total = total + self.mm_weight * loss_mm

        loss_key = zero
        if self.keyword_head is not None:
            loss_key = ops.mean(self.keyword_head(ea, labels))
            total = total + self.keyword_weight * loss_key

        # The modality classifiers see unit vectors: the space is cosine, and the encoders
        # (which maximise the classifier's loss through the reversal) cannot win the game
        # by inflating the feature scale.
        loss_adv, acc_utt, acc_phn = zero, zero, zero
        if self.adversary_utt is not None:
            adv, acc_utt = self.adversary_utt(_unit(ea), _unit(et), training=training)
            loss_adv = loss_adv + adv
        if self.adversary_phn is not None:
            adv, acc_phn = self.adversary_phn(
                _unit(flat_aligned), _unit(flat_text), audio_mask=flat_mask, text_mask=flat_mask, training=training
            )
            loss_adv = loss_adv + adv
        total = total + loss_adv

        for name, value in zip(LOSS_TERMS, (loss_utt, loss_phn, loss_mm, loss_key, loss_adv, acc_utt, acc_phn)):
            self.trackers[name].update_state(value)
        # MirroredStrategy sums the replicas' gradients: return loss / replicas (as
        # Keras' own compute_loss does); a no-op on one device and on JAX.
        return scale_loss_for_replicas(total)

    @property
    def metrics(self):
        return super().metrics + list(self.trackers.values())

    def compile(self, optimizer="auto", **kwargs):
        """``optimizer="auto"``: AdamW(1e-3, weight decay 1e-4) with gradient clipping at norm 5."""
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4, clipnorm=5.0)
        kwargs.pop("loss", None)  # the loss is the model's own (compute_loss)
        super().compile(optimizer=optimizer, **kwargs)

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

        A single ``str`` is one keyword. Raises ``TypeError`` naming an item that is not a
        ``str`` (e.g. ``texts[1]``), ``PhonemizerError`` for a text with no phonemes; a text
        partly left unvoiced warns (``UnvoicedTextWarning``).
        """
        from kerasadml.zoo.batching import pad_id_batches
        from kerasadml.zoo.detector import as_text_list

        ids = [self.encode_text(t) for t in as_text_list(texts, "texts")]
        out = []
        for batch, valid in pad_id_batches(ids, batch_size):
            emb = self.predict_on_batch({"phonemes": batch})["text_embedding"]
            out.append(ops.convert_to_numpy(emb)[:valid])
        return _l2_normalize(np.concatenate(out, 0)) if out else np.zeros((0, self.embedding_dim), "float32")

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
        from kerasadml.zoo.batching import pad_audio_batches

        waves = load_clips(audio)
        out = []
        for batch, valid in pad_audio_batches(waves, batch_size):
            emb = self.predict_on_batch(batch)["audio_embedding"]
            out.append(ops.convert_to_numpy(emb)[:valid])
        return _l2_normalize(np.concatenate(out, 0)) if out else np.zeros((0, self.embedding_dim), "float32")

    def score(self, audio, texts: Sequence[str] | str) -> np.ndarray:
        """Cosine scores (N clips x K keywords) between clips and keyword texts (a single
        ``str`` is one keyword; clips as in :meth:`embed_audio`)."""
        return self.embed_audio(audio) @ self.embed_text(texts).T

    def affinity(self, audio: np.ndarray, text: str) -> np.ndarray:
        """The aligner's affinity matrix (Tt x Ta) of one clip (16 kHz array) and one text."""
        ids = np.asarray([self.encode_text(text)], "int32")
        wave = np.asarray(audio, "float32")[None]
        out = self.predict_on_batch(
            {"audio": wave, "audio_length": np.array([wave.shape[1]], "int32"), "phonemes": ids}
        )
        return ops.convert_to_numpy(out["affinity"])[0]

    def keyword_detector(self, keywords: Sequence[str] | str, threshold: float = 0.5):
        """A :class:`~kerasadml.zoo.detector.KeywordDetector` enrolled with ``keywords`` (a
        single ``str`` is one keyword); ``threshold`` must be finite, in [-1, 1]."""
        from kerasadml.zoo.detector import KeywordDetector

        return KeywordDetector(self, keywords, threshold=threshold)

    def evaluate(self, x=None, *args, **kwargs) -> Any:
        """Keras ``evaluate`` on batches, or LibriPhrase evaluation on a CSV / pair set.

        With ``x`` a LibriPhrase-format CSV path (or a list of them, or a
        ``kerasadml.data.libriphrase.PairSet``), returns
        ``{"LP_E": {"EER", "AUC", "AP"}, "LP_H": {...}, "pairs": n, "skipped": s}``
        (fractions) over the whole set, scoring ``cos(ea, et)``; ``audio_root`` may be
        given as a keyword. Anything else goes to ``keras.Model.evaluate``.
        """
        from kerasadml.data.libriphrase import PairSet

        if isinstance(x, (str, os.PathLike, PairSet)) or (
            isinstance(x, (list, tuple)) and x and isinstance(x[0], (str, os.PathLike))
        ):
            from kerasadml.zoo.kws_evaluation import evaluate_libriphrase

            return evaluate_libriphrase(self, x, **kwargs)
        return super().evaluate(x, *args, **kwargs)

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
            }
        )
        return config
