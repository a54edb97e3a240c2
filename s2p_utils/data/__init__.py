"""Structures in, datasets out.

- :func:`read_structure` — any ASE-readable file or a pymatgen Structure JSON dict, validated.
- :func:`load` — a dataset of the registry (cache → mirror → verified download).
- :class:`Dataset`, :func:`load_prepared` — the in-memory dataset and the ``s2p-prepared/1`` format.
"""

from __future__ import annotations

from s2p_utils.data.dataset import Dataset, load_prepared, random_split, save_prepared

__all__ = ["Dataset", "load_prepared", "save_prepared", "random_split", "read_structure", "load", "REGISTRY"]


def __getattr__(name: str):
    if name == "read_structure":
        from s2p_utils.data.structures import read_structure

        return read_structure
    if name in {"load", "REGISTRY"}:
        from s2p_utils.data import registry

        return getattr(registry, name)
    raise AttributeError(f"module 's2p_utils.data' has no attribute {name!r}")
