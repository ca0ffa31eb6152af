"""Reusable Keras layers of kerasadml."""

from kerasadml.layers.gradient_reversal import GradientReversal, dann_lambda

__all__ = ["GradientReversal", "dann_lambda"]
