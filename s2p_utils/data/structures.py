"""Crystal structures in: any ASE-readable file or a pymatgen ``Structure`` JSON dict, validated.

:func:`read_structure` reads CIF, POSCAR/CONTCAR, extended XYZ and every other format
:func:`ase.io.read` understands, plus pymatgen ``Structure.as_dict()`` JSON files (the Mat2Spec
layout: ``lattice.matrix`` and ``sites[*].xyz`` in Å, ``sites[*].species`` / ``sites[*].label``)
without needing pymatgen. A Mat2Spec ``dos_<mpid>.json`` file, which holds the structure under the key
``"structure"``, is accepted too.

:func:`validate_structure` rejects what the featurizers cannot handle, with a :class:`ValueError`
that names the source and the reason:

- no atoms;
- a cell that is not periodic in all three directions, or has (near) zero volume;
- NaN or infinite coordinates or cell vectors;
- two atoms (or an atom and a periodic image, of itself or another atom) closer than
  :data:`MIN_DISTANCE` (0.5 Å).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

__all__ = [
    "MIN_DISTANCE",
    "MIN_VOLUME",
    "read_structure",
    "validate_structure",
    "atoms_from_pymatgen_dict",
    "check_cell_arrays",
    "check_min_distance",
]

MIN_DISTANCE = 0.5
"""Shortest allowed interatomic distance in Å (periodic images included)."""

MIN_VOLUME = 1e-6
"""Smallest allowed cell volume in Å³."""

_SYMBOL = re.compile(r"^\s*([A-Z][a-z]?)")


def check_cell_arrays(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, source: str) -> None:
    """The cheap checks of :func:`validate_structure` (everything except the shortest distance).

    Args:
        positions: float ``(n_atoms, 3)`` Cartesian positions in Å.
        cell: float ``(3, 3)``, rows are the lattice vectors in Å.
        pbc: bool ``(3,)`` periodic directions.
        source: name of the file or object, used in error messages.

    Raises:
        ValueError: no atoms, not periodic in all directions, NaN/inf values, zero-volume cell.
    """
    if positions.shape[0] == 0:
        raise ValueError(f"{source}: the structure has no atoms")
    if not np.all(pbc):
        raise ValueError(
            f"{source}: the structure is not periodic in all three directions (pbc={np.asarray(pbc).tolist()}); "
            "a crystal with a 3-D periodic cell is required"
        )
    if not np.isfinite(positions).all():
        bad = int(np.flatnonzero(~np.isfinite(positions).all(axis=1))[0])
        raise ValueError(f"{source}: NaN or infinite coordinates (atom {bad})")
    if not np.isfinite(cell).all():
        raise ValueError(f"{source}: NaN or infinite cell vectors")
    volume = abs(float(np.linalg.det(cell)))
    if not volume > MIN_VOLUME:
        raise ValueError(
            f"{source}: the cell has zero volume ({volume:.3g} Å³); a 3-D periodic cell is required"
        )


def validate_structure(atoms: Atoms, source: str = "<atoms>") -> Atoms:
    """Check that ``atoms`` is a usable periodic crystal and return it unchanged.

    Args:
        atoms: the structure (positions in Å).
        source: file name or description used in error messages.

    Returns:
        ``atoms`` itself.

    Raises:
        ValueError: no atoms; not periodic in all three directions; zero-volume cell; NaN/inf
            coordinates; two atoms (periodic images included) closer than :data:`MIN_DISTANCE` Å.
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{source}: expected an ase.Atoms object, got {type(atoms).__name__}")
    positions = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    check_cell_arrays(positions, cell, pbc, source)
    check_min_distance(positions, cell, pbc, source)
    return atoms


def check_min_distance(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, source: str) -> None:
    """Raise a :class:`ValueError` when two atoms (periodic images included) are closer than 0.5 Å."""
    from vesin import NeighborList

    i, j, d = NeighborList(cutoff=MIN_DISTANCE, full_list=False, n_threads=1).compute(
        positions, cell, pbc, quantities="ijd"
    )
    if len(d):
        k = int(np.argmin(d))
        what = "a periodic image of itself" if i[k] == j[k] else f"atom {int(j[k])}"
        raise ValueError(
            f"{source}: atom {int(i[k])} is {float(d[k]):.3f} Å from {what}, closer than {MIN_DISTANCE} Å "
            "(overlapping atoms or a wrong cell)"
        )


def _element_of_site(site: Mapping[str, Any], index: int, source: str) -> str:
    species = site.get("species")
    if isinstance(species, list) and species:
        if len(species) > 1:
            raise ValueError(
                f"{source}: site {index} is disordered ({len(species)} species); only ordered structures are supported"
            )
        element = species[0].get("element") if isinstance(species[0], Mapping) else None
        if isinstance(element, str):
            match = _SYMBOL.match(element)
            if match and match.group(1) in atomic_numbers:
                return match.group(1)
    label = site.get("label")
    if isinstance(label, str):
        # Labels may carry an oxidation state or an ordinal: "Fe2+", "Fe1", "O2-".
        match = _SYMBOL.match(label)
        if match and match.group(1) in atomic_numbers:
            return match.group(1)
    raise ValueError(f"{source}: cannot determine the element of site {index} (label={label!r})")


def atoms_from_pymatgen_dict(structure: Mapping[str, Any], source: str = "<dict>") -> Atoms:
    """Build an :class:`ase.Atoms` from a pymatgen ``Structure.as_dict()`` dictionary (no pymatgen needed).

    Uses ``lattice.matrix`` (rows are lattice vectors, Å), ``lattice.pbc`` when present (else periodic),
    and per site ``xyz`` (Cartesian, Å) or else ``abc`` (fractional). The element comes from
    ``species[0].element`` when present, else from the ``label`` with any oxidation state or ordinal
    stripped (``"Fe2+"``, ``"Fe1"`` → ``Fe``).

    Raises:
        ValueError: missing keys, disordered sites, unknown elements.
    """
    try:
        lattice = structure["lattice"]
        matrix = np.asarray(lattice["matrix"], dtype=np.float64)
        sites = structure["sites"]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{source}: not a pymatgen Structure dict ({type(error).__name__}: {error})"
        ) from None
    if matrix.shape != (3, 3):
        raise ValueError(f"{source}: lattice.matrix must be 3×3, got shape {matrix.shape}")
    if not isinstance(sites, list):
        raise ValueError(f"{source}: 'sites' must be a list")
    symbols: list[str] = []
    positions: list[Any] = []
    for index, site in enumerate(sites):
        if not isinstance(site, Mapping):
            raise ValueError(f"{source}: site {index} is not an object")
        symbols.append(_element_of_site(site, index, source))
        try:
            if site.get("xyz") is not None:
                xyz = np.asarray(site["xyz"], dtype=np.float64)
            else:
                xyz = np.asarray(site["abc"], dtype=np.float64) @ matrix
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{source}: site {index} has no usable 'xyz' or 'abc' coordinates ({error})"
            ) from None
        if xyz.shape != (3,):
            raise ValueError(f"{source}: site {index} coordinates must have 3 components, got {xyz.shape}")
        positions.append(xyz)
    pbc = lattice.get("pbc", True) if isinstance(lattice, Mapping) else True
    return Atoms(
        symbols=symbols,
        positions=np.reshape(np.asarray(positions, dtype=np.float64), (-1, 3)),
        cell=matrix,
        pbc=pbc,
    )


def _read_json(path: Path, text: str) -> Atoms | None:
    """A pymatgen Structure dict (bare or under ``"structure"``), or ``None`` for other JSON."""
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: unreadable JSON ({error})") from None
    if isinstance(content, Mapping) and isinstance(content.get("structure"), Mapping):
        content = content["structure"]
    if isinstance(content, Mapping) and "lattice" in content and "sites" in content:
        return atoms_from_pymatgen_dict(content, str(path))
    return None


def read_structure(path: str | os.PathLike) -> Atoms:
    """Read and validate one crystal structure.

    Args:
        path: a file in any format :func:`ase.io.read` reads (CIF, POSCAR, extxyz, ...; for
            multi-frame files the last frame, as ASE does), or a pymatgen Structure JSON file
            (``.json`` or ``.json.gz``; a bare dict or a Mat2Spec wrapper with key ``"structure"``).

    Returns:
        ``ase.Atoms`` with Cartesian positions in Å, validated by :func:`validate_structure`.

    Raises:
        ValueError: the file is missing, unreadable or empty, or the structure is invalid (see
            :func:`validate_structure`); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: unreadable file ({type(error).__name__}: {error})") from None
    if not raw.strip():
        raise ValueError(f"{path}: empty file")

    atoms: Atoms | None = None
    stem_suffix = Path(path.stem).suffix if path.suffix == ".gz" else path.suffix
    if stem_suffix.lower() == ".json" or raw.lstrip()[:1] == b"{":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: unreadable file ({error})") from None
        atoms = _read_json(path, text)
    if atoms is None:
        atoms = _read_with_ase(path)
    return validate_structure(atoms, str(path))


def _read_with_ase(path: Path) -> Atoms:
    import warnings

    import ase.io

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. CIF symmetry chatter
            atoms = ase.io.read(path)
    except Exception as error:  # ASE raises many kinds of errors for malformed files
        raise ValueError(
            f"{path}: unreadable as a structure file ({type(error).__name__}: {error})"
        ) from None
    if isinstance(atoms, list):  # pragma: no cover - ase.io.read with the default index returns one Atoms
        if not atoms:
            raise ValueError(f"{path}: the file holds no structure")
        atoms = atoms[-1]
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{path}: unreadable as a structure file (got {type(atoms).__name__})")
    return atoms
