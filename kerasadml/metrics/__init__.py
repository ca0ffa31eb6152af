"""kerasadml.metrics."""
