"""Helpers shared by the test-suite; every test file runs under the backend named by
``KERAS_BACKEND`` (the README's test command runs the suite once per backend).

One copy of each small helper lives here: gradients with the backend's own machinery
(:func:`value_and_grad`), :func:`compiled` (``jax.jit`` on JAX), numpy references
(:func:`lengths_to_mask`, :func:`unit_rows`), toy data (:func:`class_blobs`,
:func:`av_blobs`, :func:`two_tower_model`), the tiny zoo configs (``ADML_TINY``,
``AADML_TINY``), :func:`record_predict_batches` (what inference feeds a model) and the
layer checks (:func:`roundtrip`, :func:`run_layer_test`)."""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from typing import Callable

import keras
import numpy as np


def backend_name() -> str:
    return keras.backend.backend()


def value_and_grad(fn: Callable, *args: np.ndarray):
    """Value of ``fn(*args)`` (a scalar) and its gradients with respect to ``args``,
    computed with the active backend's own gradient machinery (``tf.GradientTape``
    or ``jax.grad``), not with ``keras.ops``.
    """
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
        return np.asarray(value), [np.asarray(g) for g in grads]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        arrays = [jnp.asarray(a) for a in args]
        value, grads = jax.value_and_grad(
            lambda *xs: fn(*xs), argnums=tuple(range(len(arrays)))
        )(*arrays)
        return np.asarray(value), [np.asarray(g) for g in grads]
    raise NotImplementedError(f"tests support tensorflow and jax, not {backend}")


def roundtrip(obj):
    """Serialise a layer/loss with ``keras.saving.serialize_keras_object`` and back."""
    config = keras.saving.serialize_keras_object(obj)
    return keras.saving.deserialize_keras_object(config)


def to_numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def compiled(fn):
    """``jax.jit(fn)`` under JAX (eager JAX runs op by op and compiles every op: slow);
    ``fn`` itself under TensorFlow, where eager execution is quick."""
    if backend_name() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def training_call(layer, *args, **kwargs):
    """``layer(*args, training=True, **kwargs)`` as a pure ``stateless_call`` (compiled on
    JAX): the outputs and the updated non-trainable variables, as numpy."""

    def fn(trainable, non_trainable, *arrays):
        return layer.stateless_call(trainable, non_trainable, *arrays, training=True, **kwargs)

    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    outputs, new_non_trainable = compiled(fn)(trainable, non_trainable, *args)
    outputs = (
        tuple(to_numpy(o) for o in outputs) if isinstance(outputs, tuple) else to_numpy(outputs)
    )
    return outputs, [to_numpy(v) for v in new_non_trainable]


def dense_reference(layer):
    """A built ``keras.layers.Dense`` (no activation) as a float64 numpy function."""
    kernel = to_numpy(layer.kernel).astype("float64")
    bias = to_numpy(layer.bias).astype("float64") if layer.use_bias else 0.0
    return lambda x: x @ kernel + bias


def lengths_to_mask(lengths, steps: int) -> np.ndarray:
    """(B, steps) bool: True at the first ``lengths[b]`` positions of row ``b``."""
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row (the last axis) of ``x`` divided by its L2 norm (numpy reference)."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def class_blobs(n: int = 64, c: int = 4, d: int = 8, seed: int = 0):
    """``(x, y)``: ``n`` float32 points in ``d`` dims around ``c`` random centres (scale 2,
    unit noise), labels ``y = arange(n) % c`` (int32)."""
    rng = np.random.RandomState(seed)
    centers = rng.randn(c, d) * 2
    y = np.arange(n) % c
    return (centers[y] + rng.randn(n, d)).astype("float32"), y.astype("int32")


def av_blobs(n: int = 64, c: int = 4, seed: int = 0):
    """``(audio (n, 6), visual (n, 10), labels (n,))``: two modalities with class structure."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % c
    xa = (rng.randn(c, 6)[y] + 0.5 * rng.randn(n, 6)).astype("float32")
    xv = (rng.randn(c, 10)[y] + 0.5 * rng.randn(n, 10)).astype("float32")
    return xa, xv, y.astype("int32")


def pair_batch(n: int = 10, m: int = 12, d: int = 6, c: int = 3, seed: int = 0):
    """``(anchors (n, d), labels (n,), refs (m, d), ref_labels (m,))``, random, ``c`` classes."""
    rng = np.random.RandomState(seed)
    return (
        rng.randn(n, d).astype("float32"),
        rng.randint(0, c, n),
        rng.randn(m, d).astype("float32"),
        rng.randint(0, c, m),
    )


def av_split(n_per_class: int = 8, seed: int = 0):
    """An ``AVSplit`` of 3 classes x ``n_per_class``: 6-d audio and 10-d visual features
    around class centres that are the same for every ``seed`` (so splits share classes)."""
    from kerasadml.data.av.features import AVSplit

    centers = np.random.RandomState(42)  # the same classes in every split
    centers_a, centers_v = centers.randn(3, 6) * 2, centers.randn(3, 10) * 2
    rng = np.random.RandomState(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    audio = centers_a[labels] + rng.randn(len(labels), 6)
    visual = centers_v[labels] + rng.randn(len(labels), 10)
    return AVSplit(audio.astype("float32"), visual.astype("float32"), labels.astype("int64"))


def two_tower_model(loss_cls, **kw):
    """Audio (6) and visual (10) Dense towers to 8 dims, each modality anchored against the
    other by its own ``loss_cls`` instance (``a2v``, ``v2a``); outputs their sum (N,)."""
    xa = keras.Input((6,), name="audio")
    xv = keras.Input((10,), name="visual")
    y = keras.Input((), dtype="int32", name="label")
    za = keras.layers.Dense(8, name="audio_tower")(xa)
    zv = keras.layers.Dense(8, name="visual_tower")(xv)
    audio_anchors = loss_cls(name="a2v", **kw)(za, y, zv, y)
    visual_anchors = loss_cls(name="v2a", **kw)(zv, y, za, y)
    return keras.Model([xa, xv, y], audio_anchors + visual_anchors)


# ------------------------------------------------------------------ tiny zoo configs
#: The encoder sizes of a tiny ADML (seconds to build and train a step on a CPU).
ADML_TINY_SIZES = dict(
    embedding_dim=16,
    audio_channels=16,
    se_channels=4,
    attention_channels=4,
    text_units=8,
    token_dim=8,
)
#: A tiny ADML with 4 keywords and no SpecAugment (deterministic training steps).
ADML_TINY = dict(num_keywords=4, **ADML_TINY_SIZES, spec_augment=False)
#: A tiny AADML for 6-d audio and 10-d visual features of 3 classes.
AADML_TINY = dict(audio_dim=6, visual_dim=10, num_classes=3, embedding_dim=8, hidden_units=16, num_heads=2, key_dim=4)


def record_predict_batches(model: keras.Model, monkeypatch) -> list[dict[str, np.ndarray]]:
    """Record every batch ``model.predict_on_batch`` is given from now on (as numpy
    copies, in call order), for checking what inference code such as ``ADML.embed_audio``
    feeds the network; ``monkeypatch`` (pytest's fixture) undoes it after the test."""
    batches: list[dict[str, np.ndarray]] = []
    predict = model.predict_on_batch

    def recording(x):
        batches.append({key: np.array(value) for key, value in x.items()})
        return predict(x)

    monkeypatch.setattr(model, "predict_on_batch", recording)
    return batches


# ------------------------------------------------------------------ run_layer_test
_PLAIN = (type(None), bool, int, float, str)


def _numpy_tree(outputs) -> list[np.ndarray]:
    return [to_numpy(x) for x in keras.tree.flatten(outputs)]


def _assert_outputs_close(got, expected, what: str, rtol: float, atol: float) -> None:
    got, expected = _numpy_tree(got), _numpy_tree(expected)
    assert len(got) == len(expected), f"{what}: {len(got)} outputs, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, f"{what}: output {i} has shape {g.shape}, expected {e.shape}"
        if np.issubdtype(e.dtype, np.floating):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"{what}: output {i}")
        else:
            np.testing.assert_array_equal(g, e, err_msg=f"{what}: output {i}")


def _json_config(config):
    """A config as it comes back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(config, sort_keys=True))


def constructor_arguments(cls) -> dict[str, inspect.Parameter]:
    """The named arguments of ``cls.__init__`` (no ``self``, ``*args``, ``**kwargs``)."""
    params = inspect.signature(cls.__init__).parameters.values()
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {p.name: p for p in params if p.name != "self" and p.kind not in skip}


def assert_config_has_constructor_arguments(cls, init_kwargs: dict, config: dict) -> None:
    """Every argument of ``cls.__init__`` is a key of ``config``; a plain value (None, bool,
    number, string) equals the one passed in ``init_kwargs``, or else the default."""
    for name, param in constructor_arguments(cls).items():
        assert name in config, f"{cls.__name__}.get_config() lacks the constructor argument {name!r}"
        if name in init_kwargs:
            expected, source = init_kwargs[name], "passed"
        elif param.default is not inspect.Parameter.empty:
            expected, source = param.default, "default"
        else:
            continue
        if isinstance(expected, _PLAIN) and isinstance(config[name], _PLAIN):
            assert config[name] == expected, (
                f"{cls.__name__}.get_config()[{name!r}] is {config[name]!r}, the {source} value is {expected!r}"
            )


def _same_weights(layer, other, what: str) -> None:
    a, b = layer.get_weights(), other.get_weights()
    assert len(a) == len(b), f"{what}: {len(b)} weights, the original has {len(a)}"
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(y, x, err_msg=f"{what}: weight {i}")


def _symbolic(value):
    if isinstance(value, np.ndarray):
        return keras.Input(shape=value.shape[1:], dtype=str(value.dtype))
    return value


def run_layer_test(
    cls,
    init_kwargs: dict,
    input_data,
    expected_output_shape=None,
    call_kwargs: dict | None = None,
    call_fn: Callable | None = None,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    symbolic_rtol: float = 1e-5,
    symbolic_atol: float = 1e-5,
):
    """Basic checks of a Keras layer (or a kerasadml loss, which is a layer), in the spirit
    of ``keras.src.testing.TestCase.run_layer_test`` with public API only.

    1. ``cls(**init_kwargs)`` is called on the numpy inputs: ``input_data`` (an array or a
       tuple of positional arrays) and ``call_kwargs`` (keyword arguments: arrays such
       as masks, or plain values such as ``return_scores=True``), through
       ``call_fn(layer, *inputs, **call_kwargs)`` (default: ``layer(*inputs, **kwargs)``).
       The outputs' shapes are compared with ``expected_output_shape`` (a shape, or a
       tuple of shapes for several outputs) and the weight counts with the expected ones.
    2. ``get_config()`` has every argument of ``cls.__init__`` (inspected), with the
       passed (or default) value for plain values.
    3. ``cls.from_config(get_config())`` has the same config and, given the same weights,
       the same outputs on the same inputs (to ``rtol``/``atol``, 1e-6).
    4. ``keras.saving.serialize_keras_object`` -> JSON -> ``deserialize_keras_object``
       gives the class back with the same config and, with the same weights, the same outputs.
    5. A functional model of the layer on ``keras.Input``s of the same shapes (batch
       axis left free) has symbolic output shapes that agree with the eager ones and the
       eager outputs (to ``symbolic_rtol``/``symbolic_atol``: compiled vs eager); saved
       to ``.keras`` and loaded, it has the same weights and the same outputs (to 1e-6).

    The layer runs in inference mode (no ``training=True``), so outputs are deterministic.
    Runs under the active backend; the suite runs once per backend. Returns the layer.
    """
    inputs = tuple(input_data) if isinstance(input_data, (tuple, list)) else (input_data,)
    call_kwargs = dict(call_kwargs or {})
    call = call_fn or (lambda lyr, *args, **kwargs: lyr(*args, **kwargs))
    name = cls.__name__

    # 1. construct and call
    layer = cls(**init_kwargs)
    assert type(layer) is cls
    outputs = call(layer, *inputs, **call_kwargs)
    if expected_output_shape is not None:
        shapes = [tuple(x.shape) for x in _numpy_tree(outputs)]
        expected = expected_output_shape
        expected = [tuple(s) for s in expected] if expected and isinstance(expected[0], (tuple, list)) else [tuple(expected)]
        assert shapes == expected, f"{name}: output shapes {shapes}, expected {expected}"
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, (
            f"{name}: {len(layer.trainable_weights)} trainable weights, expected {expected_num_trainable_weights}"
        )
    if expected_num_non_trainable_weights is not None:
        assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, (
            f"{name}: {len(layer.non_trainable_weights)} non-trainable weights, "
            f"expected {expected_num_non_trainable_weights}"
        )

    # 2. the config names every constructor argument
    config = layer.get_config()
    assert_config_has_constructor_arguments(cls, init_kwargs, config)

    # 3. from_config(get_config())
    clone = cls.from_config(config)
    assert type(clone) is cls
    assert clone.get_config() == config, f"{name}: from_config(get_config()).get_config() differs"
    call(clone, *inputs, **call_kwargs)  # builds it
    clone.set_weights(layer.get_weights())
    _assert_outputs_close(call(clone, *inputs, **call_kwargs), outputs, f"{name}.from_config", rtol, atol)

    # 4. serialize_keras_object -> JSON -> deserialize_keras_object
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls, f"{name}: deserialized as {type(revived).__name__}"
    assert _json_config(revived.get_config()) == _json_config(config), f"{name}: deserialized config differs"
    call(revived, *inputs, **call_kwargs)
    revived.set_weights(layer.get_weights())
    _assert_outputs_close(call(revived, *inputs, **call_kwargs), outputs, f"{name} deserialized", rtol, atol)

    # 5. in a model, symbolically; saved to .keras and loaded
    symbolic_inputs = [_symbolic(x) for x in inputs]
    symbolic_kwargs = {k: _symbolic(v) for k, v in call_kwargs.items()}
    model_inputs = [x for x in [*symbolic_inputs, *symbolic_kwargs.values()] if isinstance(x, keras.KerasTensor)]
    arrays = [x for x in [*inputs, *call_kwargs.values()] if isinstance(x, np.ndarray)]
    symbolic_outputs = call(layer, *symbolic_inputs, **symbolic_kwargs)
    for i, (sym, out) in enumerate(zip(keras.tree.flatten(symbolic_outputs), _numpy_tree(outputs))):
        compatible = len(sym.shape) == out.ndim and all(s is None or s == o for s, o in zip(sym.shape, out.shape))
        assert compatible, f"{name}: symbolic output {i} has shape {sym.shape}, the eager one {out.shape}"
    model = keras.Model(model_inputs, symbolic_outputs)
    predicted = model.predict_on_batch(arrays)
    _assert_outputs_close(predicted, outputs, f"{name} in a model", symbolic_rtol, symbolic_atol)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    inner = [lyr for lyr in loaded.layers if type(lyr) is cls]
    assert len(inner) == 1, f"{name}: the loaded model holds {len(inner)} layers of the class"
    assert _json_config(inner[0].get_config()) == _json_config(config), f"{name}: config differs after .keras"
    _same_weights(layer, inner[0], f"{name} after .keras")
    _assert_outputs_close(loaded.predict_on_batch(arrays), predicted, f"{name} after .keras", rtol, atol)
    return layer
