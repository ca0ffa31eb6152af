"""Architectures of the catalogue presets; ``python -m kerasadml.zoo.catalogue DIR`` writes
their ``config.json``/``metadata.json`` (trained presets then get weights from their recipe,
see each model card in ``zoo/``)."""

from __future__ import annotations

import sys
from pathlib import Path

#: Constructor arguments of each catalogue preset.
PRESET_CONFIGS: dict[str, dict] = {
    "adml_tiny": dict(
        num_keywords=1000,  # replaced by the training data's keyword count
        embedding_dim=128,
        audio_channels=64,
        se_channels=32,
        attention_channels=32,
        text_units=64,
        token_dim=64,
    ),
    "adml_small": dict(
        num_keywords=1000,  # replaced by the training data's keyword count
        embedding_dim=128,
        audio_channels=96,
        se_channels=48,
        attention_channels=48,
        text_units=96,
        token_dim=64,
    ),
    "adml_base": dict(
        num_keywords=1000,
        embedding_dim=256,
        audio_channels=256,
        audio_mfa_channels=512,  # ~1.8 M audio-encoder parameters, the paper's size
        se_channels=128,
        attention_channels=128,
        text_units=256,
        token_dim=128,
    ),
    "aadml_vegas": dict(audio_dim=128, visual_dim=1024, num_classes=10),
    "aadml_ave": dict(audio_dim=128, visual_dim=1024, num_classes=15),
    "aadml_avdigits": dict(audio_dim=128, visual_dim=1024, num_classes=10),
}


def build_preset_model(name: str):
    """A fresh (untrained) model with the architecture of catalogue preset ``name``."""
    from kerasadml.zoo.aadml import AADML
    from kerasadml.zoo.adml import ADML
    from kerasadml.zoo.presets import PRESETS

    cls = ADML if PRESETS[name]["class"] == "ADML" else AADML
    model = cls(name=name, **PRESET_CONFIGS[name])
    model.build()
    return model


def write_catalogue_configs(root: str | Path, names=None) -> None:
    """Write config.json + metadata.json (no weights) for the named presets under ``root``."""
    from kerasadml.zoo.presets import write_preset_config

    for name in names or PRESET_CONFIGS:
        write_preset_config(build_preset_model(name), Path(root) / name, info={"trained": False})


if __name__ == "__main__":
    write_catalogue_configs(sys.argv[1] if len(sys.argv) > 1 else "zoo", sys.argv[2:] or None)
