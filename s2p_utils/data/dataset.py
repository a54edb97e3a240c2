"""The in-memory dataset and the prepared-dataset file format ``s2p-prepared/1``.

A prepared file is one gzip-compressed JSON object (see ``data/README.md``)::

    {"format": "s2p-prepared/1", "name": ..., "description": ..., "source": ..., "license": ...,
     "target": {"kind": "phdos"|"edos", "unit": ..., "grid": [...], "grid_unit": "cm^-1"|"eV"|"bin"},
     "splits": {"chen2021": {"train": n, "val": n, "test": n}, ...},
     "records": [{"id", "formula", "structure": {"numbers", "positions" (Å), "cell" (Å), "pbc"},
                  "target": [...], "split": {"chen2021": "train", ...},
                  "grid": [...]  # optional per-structure grid
                 }, ...]}
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from s2p_utils.paths import atomic_path

__all__ = ["Dataset", "PREPARED_FORMAT", "load_prepared", "save_prepared", "random_split"]

PREPARED_FORMAT = "s2p-prepared/1"
SPLIT_PARTS = ("train", "val", "test")


def random_split(
    n: int, seed: int = 73, fractions: tuple[float, float] = (0.8, 0.9)
) -> dict[str, np.ndarray]:
    """The original notebooks' random split.

    ``numpy.random.RandomState(seed).permutation(n)``; the first ``int(0.8 n)`` indices are train, the
    next ones up to ``int(0.9 n)`` validation, the rest test.
    """
    order = np.random.RandomState(seed).permutation(n)
    a, b = int(fractions[0] * n), int(fractions[1] * n)
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}


@dataclass
class Dataset:
    """A DOS dataset in memory.

    Attributes:
        name: registry name, e.g. ``"e3nn_phdos"``.
        ids: material identifiers, length ``n``.
        formulas: chemical formulas, length ``n``.
        structures: ``ase.Atoms`` (periodic, Cartesian positions in Å), length ``n``.
        targets: float32 ``(n, n_grid)`` spectra.
        grid: float ``(n_grid,)`` common grid of the spectra, in ``grid_unit``.
        grid_unit: ``"cm^-1"``, ``"eV"`` or ``"bin"``.
        kind: ``"phdos"`` or ``"edos"``.
        unit: unit/normalisation of the target values.
        splits: split name → ``{"train", "val", "test"}`` → int index arrays. ``random73`` is always present.
        grids: optional float32 ``(n, n_grid)`` per-structure grids (Fung et al. eDOS), else ``None``.
        meta: description, source, license, citation.
    """

    name: str
    ids: list[str]
    formulas: list[str]
    structures: list[Atoms]
    targets: np.ndarray
    grid: np.ndarray
    grid_unit: str = ""
    kind: str = ""
    unit: str = ""
    splits: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    grids: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.float32)
        self.grid = np.asarray(self.grid, dtype=np.float64)
        n = len(self.ids)
        if not (len(self.formulas) == len(self.structures) == self.targets.shape[0] == n):
            raise ValueError(
                f"dataset {self.name!r}: inconsistent lengths ids={n}, formulas={len(self.formulas)}, "
                f"structures={len(self.structures)}, targets={self.targets.shape[0]}"
            )
        if self.grids is not None:
            self.grids = np.asarray(self.grids, dtype=np.float32)
        self.splits.setdefault("random73", random_split(n, 73))

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, n={len(self)}, targets={self.targets.shape}, grid_unit={self.grid_unit!r}, "
            f"splits={sorted(self.splits)})"
        )

    def split(self, name: str) -> dict[str, np.ndarray]:
        """Index arrays ``{"train", "val", "test"}`` of split ``name`` (``ValueError`` if unknown)."""
        try:
            return self.splits[name]
        except KeyError:
            raise ValueError(
                f"dataset {self.name!r} has no split {name!r}; available: {', '.join(sorted(self.splits))}"
            ) from None


def _atoms_from_record(record: dict[str, Any]) -> Atoms:
    s = record["structure"]
    return Atoms(numbers=s["numbers"], positions=s["positions"], cell=s["cell"], pbc=s.get("pbc", True))


def load_prepared(path: str | os.PathLike) -> Dataset:
    """Read an ``s2p-prepared/1`` file (gzip JSON) into a :class:`Dataset`."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, json.JSONDecodeError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable s2p-prepared gzip JSON file ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != PREPARED_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: format is {found!r}, expected {PREPARED_FORMAT!r}")
    try:
        return _dataset_from_payload(payload, path)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ValueError(
            f"{path}: malformed s2p-prepared content ({type(error).__name__}: {error})"
        ) from error


def _dataset_from_payload(payload: dict[str, Any], path: Path) -> Dataset:
    records = payload["records"]
    target = payload["target"]
    splits: dict[str, dict[str, np.ndarray]] = {}
    for split_name in payload.get("splits", {}):
        parts: dict[str, list[int]] = {part: [] for part in SPLIT_PARTS}
        for i, record in enumerate(records):
            part = record.get("split", {}).get(split_name)
            if part is not None:
                parts[part].append(i)
        splits[split_name] = {part: np.asarray(idx, dtype=int) for part, idx in parts.items()}
    grids = None
    if records and "grid" in records[0]:
        grids = np.asarray([r["grid"] for r in records], dtype=np.float32)
    return Dataset(
        name=payload.get("name", path.stem),
        ids=[str(r["id"]) for r in records],
        formulas=[str(r.get("formula", "")) for r in records],
        structures=[_atoms_from_record(r) for r in records],
        targets=np.asarray([r["target"] for r in records], dtype=np.float32),
        grid=np.asarray(target["grid"], dtype=np.float64),
        grid_unit=target.get("grid_unit", ""),
        kind=target.get("kind", ""),
        unit=target.get("unit", ""),
        splits=splits,
        grids=grids,
        meta={k: payload.get(k, "") for k in ("description", "source", "license", "citation")},
    )


def save_prepared(dataset: Dataset, path: str | os.PathLike) -> Path:
    """Write ``dataset`` as an ``s2p-prepared/1`` file, atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    membership: list[dict[str, str]] = [{} for _ in range(len(dataset))]
    for split_name, parts in dataset.splits.items():
        if split_name == "random73":
            continue
        for part, idx in parts.items():
            for i in idx:
                membership[int(i)][split_name] = part
    records = []
    for i in range(len(dataset)):
        atoms = dataset.structures[i]
        record: dict[str, Any] = {
            "id": dataset.ids[i],
            "formula": dataset.formulas[i],
            "structure": {
                "numbers": atoms.numbers.tolist(),
                "positions": atoms.positions.tolist(),
                "cell": np.asarray(atoms.cell).tolist(),
                "pbc": [bool(p) for p in atoms.pbc],
            },
            "target": dataset.targets[i].tolist(),
            "split": membership[i],
        }
        if dataset.grids is not None:
            record["grid"] = dataset.grids[i].tolist()
        records.append(record)
    payload = {
        "format": PREPARED_FORMAT,
        "name": dataset.name,
        **{k: dataset.meta.get(k, "") for k in ("description", "source", "license", "citation")},
        "target": {
            "kind": dataset.kind,
            "unit": dataset.unit,
            "grid": dataset.grid.tolist(),
            "grid_unit": dataset.grid_unit,
        },
        "splits": {
            name: {part: int(len(idx)) for part, idx in parts.items()}
            for name, parts in dataset.splits.items()
            if name != "random73"
        },
        "records": records,
    }
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as handle:
        json.dump(payload, handle)
    return path
