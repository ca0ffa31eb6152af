"""Checks of numeric arguments shared by the Python API and the ``kerasadml`` command:
a bad value is a ``ValueError`` naming the argument, never a hang (``steps_per_epoch=0``)
or a silent no-op (``epochs=0``)."""

from __future__ import annotations

import math
import numbers

#: Seeds go to NumPy's and Keras' generators, which take 0 <= seed < 2**32.
MAX_SEED = 2**32 - 1


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, allow_none: bool = False):
    """``value`` as an ``int``, checked to be an integer within [minimum, maximum].

    Raises:
        ValueError: naming ``name``, for a non-integer (``1.5``, ``"3"``, ``True``) or an
            out-of-range value.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(name: str, value, minimum: float | None = None, maximum: float | None = None) -> float:
    """``value`` as a finite ``float`` within [minimum, maximum].

    Raises:
        ValueError: naming ``name``, for a non-number, NaN, an infinity or an out-of-range value.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_seed(value, name: str = "seed") -> int:
    """A seed usable by NumPy and Keras: an integer in [0, 2**32 - 1]."""
    return check_int(name, value, minimum=0, maximum=MAX_SEED)


def as_text_list(texts, name: str = "keywords") -> list[str]:
    """Keyword texts as a list of ``str``.

    A single ``str`` is **one** keyword (``"stop"`` -> ``["stop"]``, never four letters);
    any other iterable is taken item by item.

    Raises:
        TypeError: ``texts`` is ``None`` or not iterable, or an item is not a ``str``
            (the message names it, e.g. ``keywords[1]``).
    """
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        raise TypeError(f"{name} is None; expected a keyword text or a list of them")
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError(f"{name} is {type(texts).__name__}; pass text as str")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(
            f"{name} must be a str or a list of str, not {type(texts).__name__}"
        ) from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"{name}[{i}] must be a str, got {type(item).__name__}: {item!r}"
            )
    return items
