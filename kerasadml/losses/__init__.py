"""kerasadml.losses."""
