"""kerasadml.encoders."""
