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
- a cell so thin or so elongated that the neighbour search would need an absurd number of periodic
  images or cells (a height below :data:`MIN_CELL_HEIGHT`, or heights differing by more than
  :data:`MAX_CELL_ASPECT` ×; such cells crashed the neighbour list with a floating-point exception);
- fewer than :data:`MIN_DENSITY` atoms per Å³ (an isolated molecule in a box, not a crystal: the
  density-normalised PDF would reach 10²² there);
- atomic numbers outside 0…118 (0 is ASE's dummy atom ``X``, kept and fed as ``[UNK]``);
- partially occupied or mixed sites and vacancies (:func:`check_ordered`, the same rule for every format);
- two atoms (or an atom and a periodic image, of itself or another atom) closer than
  :data:`MIN_DISTANCE` (0.5 Å).

:func:`read_structure` also refuses files (or ``.gz`` contents) larger than :data:`MAX_STRUCTURE_BYTES`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from tqdm.auto import tqdm
from vesin import NeighborList

__all__ = [
    "MIN_DISTANCE",
    "MIN_VOLUME",
    "read_structure",
    "read_structures",
    "validate_structure",
    "atoms_from_pymatgen_dict",
    "check_cell_arrays",
    "check_min_distance",
    "check_ordered",
    "check_numbers",
    "cell_heights",
    "cell_aspect",
    "MIN_CELL_HEIGHT",
    "MAX_CELL_ASPECT",
    "MIN_DENSITY",
    "MAX_STRUCTURE_BYTES",
]

MIN_DISTANCE = 0.5
"""Shortest allowed interatomic distance in Å (periodic images included)."""

MIN_VOLUME = 1e-6
"""Smallest allowed cell volume in Å³."""

MIN_CELL_HEIGHT = 0.05
"""Smallest allowed distance between opposite cell faces, in Å. A skewed (unreduced) setting of a valid
crystal can be thin; below this the neighbour search would need thousands of periodic images."""

MAX_CELL_ASPECT = 100.0
"""Largest allowed ratio of the tallest to the thinnest cell height, heights below :data:`MIN_DISTANCE`
counted as :data:`MIN_DISTANCE` (the neighbour search's smallest cutoff). At most 25 among the 3953
Materials Project cells of the mirror; vesin 0.6 dies with SIGFPE on cells of aspect ≳ 10⁵ (1 Cu in
0.6 × 0.6 × 1e6 Å), killing the whole process."""

MIN_DENSITY = 1e-3
"""Fewest atoms per Å³ (0.0096 at least among the 3953 Materials Project cells, 0.018 in e3nn_phdos)."""

MAX_STRUCTURE_BYTES = 64 * 2**20
"""Largest structure file, or decompressed ``.gz`` content, :func:`read_structure` reads (64 MiB)."""

_OCCUPANCY_TOLERANCE = 1e-3

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
    with np.errstate(over="ignore", invalid="ignore"):  # absurd cells are refused below, quietly
        volume = abs(float(np.linalg.det(cell)))
        heights = cell_heights(cell)
    if not volume > MIN_VOLUME:
        raise ValueError(
            f"{source}: the cell has zero volume ({volume:.3g} Å³); a 3-D periodic cell is required"
        )
    if heights.min() < MIN_CELL_HEIGHT:
        raise ValueError(
            f"{source}: the cell is {heights.min():.3g} Å thin between two faces (less than {MIN_CELL_HEIGHT} Å); "
            "the neighbour search would need too many periodic images (Niggli-reduce a skewed cell first)"
        )
    if cell_aspect(heights) > MAX_CELL_ASPECT:
        raise ValueError(
            f"{source}: the cell is too elongated (heights {heights.min():.3g} to {heights.max():.3g} Å, more "
            f"than {MAX_CELL_ASPECT:g}× apart); not a bulk crystal cell"
        )
    density = positions.shape[0] / volume
    if density < MIN_DENSITY:
        raise ValueError(
            f"{source}: {density:.3g} atoms per Å³ is below {MIN_DENSITY:g} (a mostly empty box, not a "
            "crystal); its density-normalised PDF would be meaningless"
        )


def cell_heights(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell(s): float64 ``(..., 3)`` in Å.

    Args:
        cell: float ``(..., 3, 3)``, rows are the lattice vectors in Å.

    Height ``i`` is ``|det(cell)| / |a_j × a_k|``, the spacing of the lattice planes spanned by the other
    two vectors; a periodic image search to radius ``r`` needs about ``r / h_i`` images along ``a_i``.
    """
    cell = np.asarray(cell, dtype=np.float64)
    volume = np.abs(np.linalg.det(cell))[..., None]
    faces = np.cross(np.roll(cell, -1, axis=-2), np.roll(cell, -2, axis=-2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return volume / np.linalg.norm(faces, axis=-1)


def cell_aspect(heights: np.ndarray) -> np.ndarray:
    """Tallest over thinnest cell height, heights below :data:`MIN_DISTANCE` counted as it: ``(...)``.

    Args:
        heights: float ``(..., 3)`` in Å, from :func:`cell_heights`.
    """
    clipped = np.maximum(heights, MIN_DISTANCE)
    return clipped.max(axis=-1) / clipped.min(axis=-1)


def check_numbers(numbers: np.ndarray, source: str) -> None:
    """Raise a :class:`ValueError` for atomic numbers outside 0…118 (0 is ASE's dummy atom ``X``)."""
    numbers = np.asarray(numbers)
    bad = (numbers < 0) | (numbers > 118)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{source}: atom {index} has atomic number {int(numbers[index])}; elements have Z = 1…118"
        )


def check_ordered(atoms: Atoms, source: str) -> None:
    """Refuse partial occupancy, mixed sites and vacancies: only ordered crystals are supported.

    ASE's CIF and extxyz readers keep the site occupancies in ``atoms.info["occupancy"]`` (site tag →
    ``{symbol: fraction}``) and silently keep one species per site; per-atom ``occupancy`` arrays are
    checked too. The pymatgen-JSON reader applies the same rule (:func:`atoms_from_pymatgen_dict`).

    Raises:
        ValueError: a site with more than one species or a fraction other than 1.
    """
    occupancy = atoms.info.get("occupancy") if isinstance(atoms.info, Mapping) else None
    if isinstance(occupancy, Mapping):
        for site, fractions in occupancy.items():
            if isinstance(fractions, Mapping):
                _check_site(dict(fractions), str(site), source)
    per_atom = atoms.arrays.get("occupancy")
    if per_atom is not None:
        for index, fraction in enumerate(np.ravel(per_atom)):
            _check_site({atoms[index].symbol: fraction}, str(index), source)


def _check_site(fractions: dict[str, Any], site: str, source: str) -> None:
    """One site's ``{symbol: occupancy}``: exactly one species, fully occupied."""
    try:
        values = {str(k): float(v) for k, v in fractions.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{source}: site {site} has unreadable occupancies {fractions!r}") from None
    if len(values) > 1:
        raise ValueError(
            f"{source}: site {site} is disordered ({', '.join(f'{k} {v:g}' for k, v in values.items())}); "
            "only ordered structures are supported"
        )
    for symbol, value in values.items():
        if abs(value - 1.0) > _OCCUPANCY_TOLERANCE:
            raise ValueError(
                f"{source}: site {site} ({symbol}) has occupancy {value:g} (a vacancy or partial occupancy); "
                "only ordered structures are supported"
            )


def validate_structure(atoms: Atoms, source: str = "<atoms>") -> Atoms:
    """Check that ``atoms`` is a usable periodic crystal and return it unchanged.

    Args:
        atoms: the structure (positions in Å).
        source: file name or description used in error messages.

    Returns:
        ``atoms`` itself.

    Raises:
        ValueError: no atoms; not periodic in all three directions; zero-volume, too thin or too
            elongated cell; too low a density; NaN/inf coordinates; atomic numbers outside 0…118; partial
            occupancy; two atoms (periodic images included) closer than :data:`MIN_DISTANCE` Å.
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{source}: expected an ase.Atoms object, got {type(atoms).__name__}")
    positions = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    check_cell_arrays(positions, cell, pbc, source)
    check_numbers(atoms.numbers, source)
    check_ordered(atoms, source)
    check_min_distance(positions, cell, pbc, source)
    return atoms


def check_min_distance(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, source: str) -> None:
    """Raise a :class:`ValueError` when two atoms (periodic images included) are closer than 0.5 Å."""
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
        if all(isinstance(entry, Mapping) for entry in species):
            _check_site({str(e.get("element")): e.get("occu", 1.0) for e in species}, str(index), source)
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
        ValueError: missing keys, disordered or partially occupied sites (the rule of
            :func:`check_ordered`), unknown elements.
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
        raw = _read_limited(path)
    except (OSError, EOFError, zlib.error) as error:
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


def _read_limited(path: Path) -> bytes:
    """The bytes of ``path`` (decompressed for ``.gz``), at most :data:`MAX_STRUCTURE_BYTES` of them.

    Raises:
        ValueError: the file, or its decompressed content, is larger than the limit (a ``.gz`` is
            decompressed in a stream and abandoned as soon as it passes the limit).
    """
    limit = MAX_STRUCTURE_BYTES
    with open(path, "rb") as raw_handle:
        handle = gzip.GzipFile(fileobj=raw_handle) if path.suffix == ".gz" else raw_handle
        data = handle.read(limit + 1)
    if len(data) > limit:
        what = "decompresses to" if path.suffix == ".gz" else "holds"
        raise ValueError(
            f"{path}: {what} more than {limit} bytes ({limit / 2**20:.3g} MiB); too large for one crystal "
            "structure (refused)"
        )
    return data


#: File suffixes read with a named ASE format, skipping ASE's content sniffing (a fifth of a CIF's read time).
_ASE_FORMAT_OF_SUFFIX = {".cif": "cif"}


def _read_with_ase(path: Path) -> Atoms:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. CIF symmetry chatter
            atoms = ase.io.read(path, format=_ASE_FORMAT_OF_SUFFIX.get(path.suffix.lower()))
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


def _read_or_error(path: str | os.PathLike) -> Atoms | ValueError:
    try:
        return read_structure(path)
    except ValueError as error:
        return error
    except Exception as error:  # noqa: BLE001 - one bad file must never stop the others
        return ValueError(f"{path}: unreadable ({type(error).__name__}: {error})")


def _read_chunk(paths: Sequence[str | os.PathLike]) -> list[Atoms | ValueError]:
    return [_read_or_error(path) for path in paths]


def read_structures(
    paths: Sequence[str | os.PathLike], *, n_jobs: int = 1, progress: bool = False
) -> list[Atoms | ValueError]:
    """:func:`read_structure` of every path, in order, in ``n_jobs`` processes (joblib; ``-1`` = all cores).

    Returns:
        One entry per path: the validated ``ase.Atoms``, or the ``ValueError`` that names the file and
        why it was refused (no error of one file stops the others).
    """
    paths = list(paths)
    if n_jobs == 1 or len(paths) < 2 * _MIN_FILES_PER_JOB:
        iterator = tqdm(paths, desc="reading", unit="file", disable=not progress or len(paths) < 50)
        return [_read_or_error(path) for path in iterator]
    from joblib import Parallel, delayed

    chunks = [paths[start : start + _MIN_FILES_PER_JOB] for start in range(0, len(paths), _MIN_FILES_PER_JOB)]
    results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_read_chunk)(chunk) for chunk in chunks)
    out: list[Atoms | ValueError] = []
    for part in tqdm(results, total=len(chunks), desc="reading", unit="chunk", disable=not progress):
        out.extend(part)
    return out


#: Files per work unit of :func:`read_structures` (a few ms each: fewer, larger units keep the overhead low).
_MIN_FILES_PER_JOB = 64
