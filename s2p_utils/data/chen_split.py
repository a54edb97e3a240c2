"""The ``chen2021`` phonon-DOS split, defined once.

Chen et al. (Adv. Sci. 8, 2004214, 2021) published their train/validation/test split as
``models/200801_trteva_indices.pkl`` in zhantaochen/phonondos_e3nn: a pickle of three integer lists
that index Chen's 1524-material order. Both of its users read it as **(train, val, test)**:
``index_tr, index_va, index_te = pickle.load(f)`` (Chen's ``phdos_train.ipynb``) and
``train_idx, val_idx, test_idx = pickle.load(f)`` (Mat2Spec's ``train_Mat2Spec.py`` /
``test_Mat2Spec.py``). The published E3NN and Mat2Spec test numbers are therefore on the **third**
list (the file name's "trteva" order is not the order of the lists). :data:`PICKLE_PARTS` is the one
place that says so; :func:`parts_from_pickle` applies it.

Chen's order maps to Materials Project ids only through Chen's data file or Mat2Spec's
``phdos/mpids.csv`` (inside the 241 MB ``Mat2Spec_DATA.zip``). So that ``e3nn_phdos`` can be built
online without that zip, the package ships the resulting id → part table (``chen2021_split.json``
beside this module, 1521 materials: 1218/152/151, restricted to the e3nn tutorial data; gold, mp-81,
and two training materials of Chen's 1524 are not in it, and Mg3Bi2, mp-569018, is in no part). Its
provenance is recorded in the file. The online converter downloads Chen's pickle (12 KB, pinned by
sha256), checks its list sizes against the table, and labels the materials from the table; where
``Mat2Spec_DATA.zip`` is at hand, :func:`parts_from_pickle` rebuilds the split from the pickle itself
(the ``mat2spec_phdos`` dataset), and a test checks both against each other and against the mirror.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

__all__ = [
    "PICKLE_PARTS",
    "TABLE_FILE",
    "chen2021_table",
    "chen2021_pickle_sizes",
    "parts_from_pickle",
    "check_pickle_sizes",
    "indices_for",
]

#: The order of the three lists in ``200801_trteva_indices.pkl``, as Chen's and Mat2Spec's code unpack it.
PICKLE_PARTS: tuple[str, str, str] = ("train", "val", "test")
#: The shipped id → part table (package data).
TABLE_FILE = "chen2021_split.json"


@cache
def _table_document() -> dict[str, Any]:
    text = resources.files("s2p_utils.data").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    document = json.loads(text)
    if document.get("format") != "s2p-split/1":
        raise ValueError(f"{TABLE_FILE}: unexpected format {document.get('format')!r}")
    return document


def chen2021_table() -> dict[str, str]:
    """Material id (``mp-<n>``) → ``"train"`` / ``"val"`` / ``"test"`` for the 1521 labelled materials."""
    parts = _table_document()["parts"]
    return {material: part for part in PICKLE_PARTS for material in parts[part]}


def chen2021_pickle_sizes() -> dict[str, int]:
    """Lengths of the three lists in Chen's pickle: ``{"train": 1220, "val": 152, "test": 152}``."""
    return dict(_table_document()["pickle_sizes"])


def parts_from_pickle(value: Any, source: str) -> dict[str, np.ndarray]:
    """Chen's unpickled ``(train, val, test)`` triple → ``{part: int index array}``.

    Raises:
        ValueError: naming ``source`` when ``value`` is not three integer sequences.
    """
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"{source}: expected a (train, val, test) triple, got {type(value).__name__}")
    out: dict[str, np.ndarray] = {}
    for part, indices in zip(PICKLE_PARTS, value, strict=True):
        array = np.asarray(indices)
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{source}[{part}]: expected a list of integer indices")
        out[part] = array.astype(int)
    return out


def check_pickle_sizes(parts: Mapping[str, np.ndarray], source: str) -> None:
    """Refuse a pickle whose list sizes differ from the one the shipped table was built from."""
    expected = chen2021_pickle_sizes()
    got = {part: len(parts[part]) for part in PICKLE_PARTS}
    if got != expected:
        raise ValueError(
            f"{source}: Chen's split has list sizes {got}, expected {expected} (the pickle the shipped "
            f"{TABLE_FILE} was built from); the upstream file changed"
        )


def indices_for(ids: Sequence[str]) -> dict[str, np.ndarray]:
    """``chen2021`` part → sorted row indices into ``ids`` (materials not in the table are in no part)."""
    table = chen2021_table()
    rows: dict[str, list[int]] = {part: [] for part in PICKLE_PARTS}
    for k, material in enumerate(ids):
        part = table.get(material)
        if part is not None:
            rows[part].append(k)
    return {part: np.asarray(rows[part], dtype=int) for part in PICKLE_PARTS}
