"""Structures in, datasets out.

- :func:`read_structure` — any ASE-readable file or a pymatgen Structure JSON dict, validated.
- :func:`load` — a dataset of the registry (cache → mirror → verified download).
- :class:`Dataset`, :func:`load_prepared` — the in-memory dataset and the ``s2p-prepared/1`` format.
"""

from __future__ import annotations

from s2p_utils.data.dataset import Dataset, load_prepared, random_split, save_prepared
from s2p_utils.data.registry import REGISTRY, load
from s2p_utils.data.structures import read_structure

__all__ = ["Dataset", "load_prepared", "save_prepared", "random_split", "read_structure", "load", "REGISTRY"]
