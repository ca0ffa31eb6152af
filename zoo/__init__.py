"""The kerasadml preset catalogue (installed as ``kerasadml.presets_data``).

One folder per preset: ``config.json``, ``metadata.json``, ``README.md`` (the model card)
and, for trained presets, ``model.weights.h5``.
"""
