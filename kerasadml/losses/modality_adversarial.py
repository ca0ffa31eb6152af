"""Where ``ModalityAdversarial`` used to live: it is a discriminator head (it returns
``(loss, accuracy)`` and has weights of its own), now in
:mod:`kerasadml.layers.modality_discriminator`. This module keeps the old import path
working; new code imports ``kerasadml.layers.ModalityAdversarial``."""

from kerasadml.layers.modality_discriminator import ModalityAdversarial

__all__ = ["ModalityAdversarial"]
