"""Every layer of ``kerasadml.layers`` and every loss of ``kerasadml.losses`` through
``run_layer_test`` (tests/helpers.py): its config names every constructor argument, and
``from_config``, ``serialize_keras_object``/``deserialize_keras_object`` and a ``.keras``
model round trip give the same outputs. Small arguments and inputs, as in each class's
own tests; a case per variant whose weights or config differ (e.g. ``adaptive=False``)."""

import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest

import kerasadml.layers
import kerasadml.losses
from kerasadml.layers import (
    AnchorAwareProxy,
    AttentiveStatsPooling,
    CrossAttentionAligner,
    GradientReversal,
    LogMelSpectrogram,
    MaskedAttentionPooling,
    MaskedAveragePooling,
    MaskedDense,
    ModalityAdversarial,
    PaddingMask,
    SERes2Block,
    SpecAugment,
    TDNNBlock,
)
from kerasadml.losses import (
    AAContrastive,
    AAMSoftmax,
    AATriplet,
    AsyPAdaMS,
    MonotonicAlignment,
    MultiSimilarity,
    ProxyMS,
    ProxyNCE,
    RelationalProxy,
    SphereFace2,
    SupervisedContrastive,
    Triplet,
)
from tests.helpers import lengths_to_mask, run_layer_test

RNG = np.random.RandomState(0)


def _f32(*shape):
    return RNG.randn(*shape).astype("float32")


# Shared inputs (fixed at import; every case reads them, none writes them).
SEQ = _f32(2, 7, 6)  # (B, T, C)
SEQ_MASK = lengths_to_mask([7, 4], 7)
SEQ8 = _f32(2, 7, 8)
EMB = _f32(6, 8)  # (N, D)
LABELS = np.array([0, 0, 1, 1, 2, 2], "int32")
EMB_MASK = np.array([True, True, True, True, True, False])
REF = _f32(6, 8)
REF_LABELS = np.array([2, 1, 0, 2, 1, 0], "int32")
PROXIES = _f32(4, 8)
PROXY_LABELS = np.array([0, 1, 2, 3], "int32")
PROXY_MASK = np.array([True, True, True, False])
CLASS_LABELS = np.array([0, 1, 2, 3, 0, 1], "int32")
TEXT = _f32(2, 3, 6)
TEXT_MASK = lengths_to_mask([3, 2], 3)
AUDIO = _f32(2, 7, 5)
WAVE = (0.3 * RNG.randn(2, 400)).astype("float32")
WAVE_LENGTHS = np.array([400, 250], "int32")
AFFINITY = np.abs(_f32(2, 3, 7))
AUDIO_EMB = _f32(8, 6)
AUDIO_EMB_LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3], "int32")
TEXT_EMB = _f32(4, 6)

# (id, class, init kwargs, positional inputs, keyword inputs, expected output shape)
LAYER_CASES = [
    ("AnchorAwareProxy", AnchorAwareProxy, dict(k=2, num_heads=2, key_dim=4, name="aap"),
     EMB, dict(mask=EMB_MASK), [(6, 8), (6, 3)]),
    ("AnchorAwareProxy-mean", AnchorAwareProxy, dict(k=3, aggregation="mean", residual=False, normalize=False),
     EMB, {}, [(6, 8), (6, 4)]),
    ("AttentiveStatsPooling", AttentiveStatsPooling, dict(attention_channels=4, epsilon=1e-5),
     SEQ, dict(mask=SEQ_MASK), (2, 12)),
    ("AttentiveStatsPooling-local", AttentiveStatsPooling, dict(attention_channels=3, global_context=False),
     SEQ, {}, (2, 12)),
    ("CrossAttentionAligner", CrossAttentionAligner, dict(),
     (TEXT, AUDIO), dict(text_mask=TEXT_MASK, audio_mask=SEQ_MASK), [(2, 3, 5), (2, 3, 7)]),
    ("CrossAttentionAligner-heads-cosine", CrossAttentionAligner,
     dict(units=4, num_heads=2, output_dim=3, use_bias=True, dropout=0.1, similarity="cosine", scale=12.0),
     (TEXT, AUDIO), dict(text_mask=TEXT_MASK, audio_mask=SEQ_MASK), [(2, 3, 3), (2, 3, 7)]),
    ("TDNNBlock", TDNNBlock, dict(filters=4, kernel_size=3, dilation_rate=2),
     SEQ, dict(mask=SEQ_MASK), (2, 7, 4)),
    ("SERes2Block", SERes2Block, dict(channels=8, kernel_size=3, dilation_rate=2, scale=4, se_channels=4),
     SEQ8, dict(mask=SEQ_MASK), (2, 7, 8)),
    ("GradientReversal", GradientReversal, dict(lambda_=0.5), EMB, {}, (6, 8)),
    ("GradientReversal-schedule", GradientReversal, dict(lambda_=0.3, schedule_steps=10), EMB, {}, (6, 8)),
    ("ModalityAdversarial", ModalityAdversarial, dict(hidden_units=8, lambda_=0.3, schedule_steps=5),
     (EMB, PROXIES), dict(audio_mask=EMB_MASK, text_mask=PROXY_MASK), [(), ()]),
    ("LogMelSpectrogram", LogMelSpectrogram,
     dict(sample_rate=8000, frame_length=64, frame_step=32, fft_length=64, num_mel_bins=8,
          lower_edge_hz=50.0, upper_edge_hz=3800.0, epsilon=1e-5),
     WAVE, dict(lengths=WAVE_LENGTHS), (2, 11, 8)),
    ("LogMelSpectrogram-unnormalised", LogMelSpectrogram,
     dict(sample_rate=8000, frame_length=64, frame_step=32, fft_length=128, num_mel_bins=6,
          upper_edge_hz=4000.0, mean_normalize=False),
     WAVE, {}, (2, 11, 6)),
    ("SpecAugment", SpecAugment,
     dict(freq_masks=1, freq_width=2, time_masks=1, time_width=3, mask_value=-1.0, seed=3, time_width_ratio=0.5),
     SEQ, {}, (2, 7, 6)),
    ("PaddingMask", PaddingMask, dict(padding_id=2), np.array([[3, 2, 5, 2], [2, 1, 1, 0]], "int32"), {}, (2, 4)),
    ("MaskedDense", MaskedDense, dict(units=3), SEQ, dict(mask=SEQ_MASK), (2, 7, 3)),
    ("MaskedAveragePooling", MaskedAveragePooling, dict(), SEQ, dict(mask=SEQ_MASK), (2, 6)),
    ("MaskedAttentionPooling", MaskedAttentionPooling, dict(num_heads=2), SEQ, dict(mask=SEQ_MASK), (2, 6)),
]

LOSS_CASES = [
    ("AAMSoftmax", AAMSoftmax, dict(num_classes=4, scale=10.0, margin=0.3),
     (EMB, CLASS_LABELS), dict(mask=EMB_MASK), (6,)),
    ("AAMSoftmax-easy", AAMSoftmax,
     dict(num_classes=4, easy_margin=True, kernel_initializer=keras.initializers.RandomNormal(seed=1)),
     (EMB, CLASS_LABELS), {}, (6,)),
    ("SphereFace2", SphereFace2, dict(num_classes=4, scale=16.0, margin=0.2, lambda_=0.6, t=2.0, loss_weight=10.0),
     (EMB, CLASS_LABELS), dict(mask=EMB_MASK), (6,)),
    ("AsyPAdaMS", AsyPAdaMS, dict(num_classes=4, alpha=3.0, beta=40.0, lambda_=0.4),
     (EMB, CLASS_LABELS, PROXIES, PROXY_LABELS), dict(mask=EMB_MASK, ref_mask=PROXY_MASK), (6,)),
    ("AsyPAdaMS-fixed", AsyPAdaMS, dict(num_classes=4, adaptive=False, lambda_=1.5, positive_proxies_only=False),
     (EMB, CLASS_LABELS, PROXIES, PROXY_LABELS), {}, (6,)),
    ("SupervisedContrastive", SupervisedContrastive, dict(temperature=0.2),
     (EMB, LABELS, REF, REF_LABELS), dict(mask=EMB_MASK), (6,)),
    ("SupervisedContrastive-same-set", SupervisedContrastive, dict(), (EMB, LABELS), {}, (6,)),
    ("AAContrastive", AAContrastive, dict(temperature=0.2, k=2, num_heads=2, key_dim=4),
     (EMB, LABELS, REF, REF_LABELS), dict(mask=EMB_MASK, return_scores=True), [(6,), (6, 3)]),
    ("Triplet", Triplet, dict(margin=0.3, mining="all", distance="euclidean"),
     (EMB, LABELS, REF, REF_LABELS), dict(mask=EMB_MASK), (6,)),
    ("Triplet-same-set", Triplet, dict(), (EMB, LABELS), {}, (6,)),
    ("AATriplet", AATriplet, dict(margin=0.3, k=2, num_heads=2, key_dim=4, residual=False),
     (EMB, LABELS, REF, REF_LABELS), dict(ref_mask=EMB_MASK), (6,)),
    ("AATriplet-mean", AATriplet, dict(k=2, aggregation="mean", normalize=False),
     (EMB, LABELS, REF, REF_LABELS), dict(return_scores=True), [(6,), (6, 3)]),
    ("MonotonicAlignment", MonotonicAlignment, dict(g=0.3),
     AFFINITY, dict(text_mask=TEXT_MASK, audio_mask=SEQ_MASK), (2,)),
    ("MonotonicAlignment-rows", MonotonicAlignment, dict(reduction="rows"), AFFINITY, {}, (2,)),
    ("MultiSimilarity", MultiSimilarity, dict(alpha=3.0, beta=40.0, lambda_=0.4),
     (EMB, LABELS), dict(mask=EMB_MASK), (6,)),
    ("MultiSimilarity-refs", MultiSimilarity, dict(), (EMB, LABELS, REF, REF_LABELS), {}, (6,)),
    ("ProxyMS", ProxyMS, dict(lambda_=0.3), (EMB, CLASS_LABELS, PROXIES, PROXY_LABELS),
     dict(ref_mask=PROXY_MASK), (6,)),
    ("ProxyNCE", ProxyNCE, dict(scale=12.0, margin=0.15, learn_scale=True, max_scale=30.0),
     (EMB, CLASS_LABELS, PROXIES, PROXY_LABELS), dict(mask=EMB_MASK, ref_mask=PROXY_MASK), (6,)),
    ("ProxyNCE-forward", ProxyNCE, dict(symmetric=False), (EMB, LABELS), {}, (6,)),
    ("RelationalProxy", RelationalProxy,
     dict(alpha=3.0, beta=40.0, lambda_=0.4, distance_weight=0.5, angle_weight=1.0, max_angle_keywords=3),
     (AUDIO_EMB, AUDIO_EMB_LABELS, TEXT_EMB, PROXY_LABELS), dict(text_mask=PROXY_MASK), (8,)),
    ("RelationalProxy-plain", RelationalProxy,
     dict(max_angle_keywords=None, normalize=False, positive_proxies_only=False),
     (AUDIO_EMB, AUDIO_EMB_LABELS, TEXT_EMB, PROXY_LABELS), {}, (8,)),
]


def _params(cases):
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


@pytest.mark.parametrize("cls,init_kwargs,inputs,call_kwargs,shape", _params(LAYER_CASES))
def test_layer_roundtrips(cls, init_kwargs, inputs, call_kwargs, shape):
    run_layer_test(cls, init_kwargs, inputs, expected_output_shape=shape, call_kwargs=call_kwargs)


@pytest.mark.parametrize("cls,init_kwargs,inputs,call_kwargs,shape", _params(LOSS_CASES))
def test_loss_roundtrips(cls, init_kwargs, inputs, call_kwargs, shape):
    run_layer_test(cls, init_kwargs, inputs, expected_output_shape=shape, call_kwargs=call_kwargs)


def _layer_classes(package):
    """The concrete layer classes defined in the modules of ``package`` (base classes
    without a ``call`` of their own, such as ``MetricLoss``, left out)."""
    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and issubclass(obj, keras.layers.Layer):
                found.add(obj)
    return found


BASES = {"MetricLoss", "PairLoss", "CosineClassifierLoss"}  # abstract: no ``call`` of their own


@pytest.mark.parametrize("package,cases", [(kerasadml.layers, LAYER_CASES), (kerasadml.losses, LOSS_CASES)])
def test_every_class_has_a_case(package, cases):
    defined = {cls.__name__ for cls in _layer_classes(package)} - BASES
    covered = {case[1].__name__ for case in cases}
    assert defined - covered == set(), f"classes of {package.__name__} without a run_layer_test case"
    assert covered <= defined
