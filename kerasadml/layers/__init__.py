"""kerasadml.layers."""
