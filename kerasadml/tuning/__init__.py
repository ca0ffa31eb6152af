"""kerasadml.tuning."""
