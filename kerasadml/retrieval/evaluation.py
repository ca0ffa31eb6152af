"""Audio-visual retrieval reports: the figures and their table."""

from __future__ import annotations

#: The figures of a retrieval report, in table order (docs/methods.md §2).
RETRIEVAL_KEYS = ("MAP_A2V", "MAP_V2A", "MAP", "R@1", "R@5", "R@10")


def format_table(result: dict, title: str = "") -> str:
    """A plain-text table of a retrieval report (percentages).

    Args:
        result: a report with (some of) :data:`RETRIEVAL_KEYS` as fractions, as
            :meth:`kerasadml.zoo.AADML.evaluate` returns.
        title: an optional first line.

    Example:
        >>> print(format_table({"MAP": 0.5}))  # doctest: +NORMALIZE_WHITESPACE
               MAP
             50.00
    """
    keys = [k for k in RETRIEVAL_KEYS if k in result]
    lines = [title] if title else []
    lines.append("".join(f"{k:>10}" for k in keys))
    lines.append("".join(f"{100 * result[k]:>10.2f}" for k in keys))
    return "\n".join(lines)
