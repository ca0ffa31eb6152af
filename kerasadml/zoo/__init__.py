"""kerasadml.zoo."""
