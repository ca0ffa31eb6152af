"""kerasadml.data."""
