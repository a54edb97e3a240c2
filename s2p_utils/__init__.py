"""struct2prop: density-of-states prediction from per-atom pair distribution functions.

Reproduces Shermukhamedov, Mamurjonova, Maihom & Probst, "Structure to Property: Machine Learning
Methods for Predicting Electronic Properties of Crystals", ChemRxiv 2023
(doi:10.26434/chemrxiv-2023-gq77g).

Importing this package, the featurizers and the dataset registry never imports TensorFlow; only
:mod:`s2p_utils.model`, :mod:`s2p_utils.train` and :mod:`s2p_utils.prediction` do.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "predict", "get_preset", "PRESETS"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports so that ``import s2p_utils`` stays light (no TensorFlow).
    if name == "predict":
        return import_module("s2p_utils.prediction").predict
    if name in {"get_preset", "PRESETS"}:
        return getattr(import_module("s2p_utils.config"), name)
    raise AttributeError(f"module 's2p_utils' has no attribute {name!r}")
