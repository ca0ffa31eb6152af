"""kerasadml.ops: each helper against numpy, eagerly and traced (tf.function / jax.jit)."""

import keras
import numpy as np
import pytest

from kerasadml import ops as kops
from tests.helpers import backend_name, to_numpy, value_and_grad


def _traced(fn, x):
    """``fn(x_traced)`` evaluated at trace time inside the backend's compiler
    (``tf.function`` / ``jax.jit``), where ``x`` has no value yet."""
    seen = []

    def body(t):
        seen.append(fn(t))
        return t

    if backend_name() == "tensorflow":
        import tensorflow as tf

        tf.function(body)(tf.convert_to_tensor(x))
    else:
        import jax

        jax.jit(body)(x)
    return seen[0]


def _l2_reference(x, axis=-1, epsilon=1e-12):
    x = np.asarray(x, np.float64)
    return x / np.sqrt(np.maximum((x**2).sum(axis=axis, keepdims=True), epsilon))


def test_l2_normalize_matches_numpy():
    x = np.random.randn(5, 7).astype("float32")
    x[2] = 0.0  # a zero row stays zero
    x[3] *= 1e-8  # below sqrt(epsilon): scaled by 1/sqrt(epsilon), not to unit norm
    got = to_numpy(kops.l2_normalize(x))
    np.testing.assert_allclose(got, _l2_reference(x), rtol=1e-5, atol=1e-7)
    assert np.all(got[2] == 0.0)
    np.testing.assert_allclose(np.linalg.norm(got[[0, 1, 4]], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(kops.l2_normalize(x, axis=0)), _l2_reference(x, axis=0), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        to_numpy(kops.l2_normalize(x, epsilon=1e-30)), _l2_reference(x, epsilon=1e-30), rtol=1e-4
    )
    assert to_numpy(kops.l2_normalize(x)).dtype == np.float32


def test_l2_normalize_gradient_is_finite_at_a_zero_row():
    x = np.random.randn(3, 4).astype("float32")
    x[1] = 0.0
    w = np.random.randn(3, 4).astype("float32")
    _, (grad,) = value_and_grad(lambda v: keras.ops.sum(kops.l2_normalize(v) * w), x)
    assert np.all(np.isfinite(grad))
    # at a zero row the map is x / sqrt(epsilon): the gradient is w / sqrt(epsilon)
    np.testing.assert_allclose(grad[1], w[1] / np.sqrt(1e-12), rtol=1e-5)


def test_l2_normalize_on_symbolic_inputs():
    out = kops.l2_normalize(keras.Input((4,)))
    assert tuple(out.shape) == (None, 4)


def test_l2_normalize_np_matches_reference_and_keeps_dtype():
    x = np.random.randn(4, 3)
    x[0] = 0.0
    np.testing.assert_allclose(kops.l2_normalize_np(x), _l2_reference(x), rtol=1e-12)
    np.testing.assert_allclose(kops.l2_normalize_np(x, axis=0), _l2_reference(x, axis=0), rtol=1e-12)
    assert kops.l2_normalize_np(x.astype("float32")).dtype == np.float32
    assert kops.l2_normalize_np(np.array([[3, 4]])).tolist() == [[0.6, 0.8]]
    tiny = np.finfo(np.float32).tiny
    small = np.array([[3e-10, 4e-10]], np.float32)  # scale-free with the smallest epsilon
    np.testing.assert_allclose(kops.l2_normalize_np(small, epsilon=tiny), [[0.6, 0.8]], rtol=1e-5)


def test_l2_normalize_np_agrees_with_the_tensor_version():
    x = np.random.randn(6, 5).astype("float32")
    np.testing.assert_allclose(kops.l2_normalize_np(x), to_numpy(kops.l2_normalize(x)), rtol=1e-6)


def test_concrete_value_of_eager_values():
    x = np.arange(6).reshape(2, 3)
    assert kops.concrete_value(x) is x
    np.testing.assert_array_equal(kops.concrete_value(keras.ops.convert_to_tensor(x)), x)
    np.testing.assert_array_equal(kops.concrete_value([1, 2]), [1, 2])
    assert kops.concrete_value(None) is None
    assert kops.is_concrete(keras.ops.ones((2,)))
    assert not kops.is_concrete(None)


def test_concrete_value_of_symbolic_and_traced_tensors_is_none():
    assert kops.concrete_value(keras.Input((3,))) is None
    assert not kops.is_concrete(keras.KerasTensor((2, 3)))
    assert _traced(kops.concrete_value, np.ones((2, 3), "float32")) is None
    assert _traced(kops.is_concrete, np.ones((2, 3), "float32")) is False


def test_concrete_value_inside_tf_data_is_none():
    # a TensorFlow graph tensor under either Keras backend (DataLayers run there)
    tf = pytest.importorskip("tensorflow")
    seen = []

    def fn(x):
        seen.append(kops.concrete_value(x))
        return x

    list(tf.data.Dataset.from_tensors(np.ones((2,), "float32")).map(fn))
    assert seen == [None]


@pytest.mark.parametrize(
    "dtype, expected", [("float32", -1.0e9), ("float16", -3.0e4), ("bfloat16", -1.0e9)]
)
def test_large_negative_is_finite_in_its_dtype(dtype, expected):
    value = kops.large_negative(dtype)
    assert value == expected
    assert np.isfinite(to_numpy(keras.ops.cast(keras.ops.cast(value, dtype), "float32")))


def test_large_negative_masks_a_softmax():
    logits = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], "float32")
    mask = np.array([[True, False, True], [False, False, False]])
    masked = keras.ops.where(mask, logits, kops.large_negative("float32"))
    got = to_numpy(keras.ops.softmax(masked, axis=-1))
    e = np.exp(np.array([1.0, 3.0]) - 3.0)
    np.testing.assert_allclose(got[0], [e[0] / e.sum(), 0.0, e[1] / e.sum()], rtol=1e-6)
    np.testing.assert_allclose(got[1], [1 / 3] * 3, rtol=1e-6)  # all masked: uniform, no NaN


def test_flat_labels():
    np.testing.assert_array_equal(to_numpy(kops.flat_labels("y", np.array([1, 2, 3]))), [1, 2, 3])
    np.testing.assert_array_equal(to_numpy(kops.flat_labels("y", np.array([[1], [2]]))), [1, 2])
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) or \(N, 1\), got \(2, 2\)"):
        kops.flat_labels("y", np.zeros((2, 2), "int32"))
    with pytest.raises(ValueError, match="y must have shape"):
        kops.flat_labels("y", np.int32(3))


def test_bool_mask():
    labels = np.array([4, 5, 6])
    got = to_numpy(kops.bool_mask(None, labels))
    assert got.dtype == bool and got.tolist() == [True, True, True]
    assert to_numpy(kops.bool_mask(np.array([[1], [0], [1]]), labels)).tolist() == [True, False, True]
    assert to_numpy(kops.bool_mask(np.array([0.0, 1.0, 0.0]), labels)).tolist() == [False, True, False]


def test_check_labels_in_range():
    kops.check_labels_in_range("labels", np.array([0, 1, 2]), 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got out-of-range values \[-1, 3\]"):
        kops.check_labels_in_range("labels", np.array([3, 0, -1, 3]), 3)
    # masked-out labels are not checked
    kops.check_labels_in_range("labels", np.array([0, 7, 1]), 3, mask=np.array([True, False, True]))
    with pytest.raises(ValueError, match="proxy_labels must lie"):
        kops.check_labels_in_range(
            "proxy_labels", keras.ops.convert_to_tensor([0, 7]), 3, mask=np.array([[1], [1]])
        )
    # traced labels cannot be checked: no error
    assert _traced(lambda t: kops.check_labels_in_range("labels", t, 3), np.array([5, 9])) is None


def test_class_ids_checks_eagerly_and_clips_when_traced():
    got = to_numpy(kops.class_ids("labels", np.array([[2], [0]]), 3))
    assert got.dtype == np.int32 and got.tolist() == [2, 0]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        kops.class_ids("labels", np.array([0, 3]), 3)
    got = to_numpy(kops.class_ids("labels", np.array([0, 9]), 3, mask=np.array([True, False])))
    assert got.tolist() == [0, 2]  # masked: clipped, no error
    if backend_name() == "jax":
        import jax

        clipped = jax.jit(lambda t: kops.class_ids("labels", t, 3))(np.array([-2, 1, 9]))
    else:
        import tensorflow as tf

        clipped = tf.function(lambda t: kops.class_ids("labels", t, 3))(tf.constant([-2, 1, 9]))
    assert to_numpy(clipped).tolist() == [0, 1, 2]
