"""kerasadml: Keras 3 model zoo for cross-modal deep metric learning.

Subpackages: ``layers``, ``losses``, ``metrics``, ``encoders``, ``zoo``, ``data``,
``tuning``. Import them explicitly, e.g. ``from kerasadml.zoo import ADML``.
"""

__version__ = "0.1.0"
