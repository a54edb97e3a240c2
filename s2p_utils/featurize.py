"""Featurize many crystals: chunking, joblib parallelism, a progress bar and an ``.npz`` cache.

:func:`featurize` runs either featurizer of :mod:`s2p_utils.pdf` (the definitions: :func:`~s2p_utils.pdf.atomic_pdf`,
:func:`~s2p_utils.pdf.simple_rdf`) over many structures. The structures are cut into chunks of at most
``_MAX_CHUNK_ATOMS`` atoms (one work unit each), run in this process or in parallel with joblib (any
backend, including ``"dask"`` for a ``distributed`` cluster), with a tqdm progress bar and an optional
``.npz`` cache keyed by a sha256 of the inputs and options. Neighbour lists: :mod:`s2p_utils.neighbours`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from joblib import Parallel, delayed, parallel_config
from tqdm.auto import tqdm

from s2p_utils.neighbours import System, as_system
from s2p_utils.paths import atomic_path
from s2p_utils.pdf import (
    DEPOSITS,
    FEATURIZER_VERSION,
    bin_count,
    mass_weighted_pdf_chunk,
    pdf_chunk,
    simple_rdf_chunk,
)

__all__ = ["METHODS", "featurize", "save_ragged_npz"]

METHODS = (
    "pdf",
    "simple_rdf",
    "pdf_mass",
    "pdf_mass_freq",
    "pdf_mass_period",
    "pdf_mass_bond",
    "pdf_mass_bond_freq",
)
"""The featurizers: ``"pdf"`` (:func:`s2p_utils.pdf.atomic_pdf`), ``"simple_rdf"`` (:func:`s2p_utils.pdf.simple_rdf`),
``"pdf_mass"`` (g(r) and its mass-weighted twin, :func:`s2p_utils.pdf.mass_weighted_pdf_chunk`; no legacy form),
``"pdf_mass_freq"`` (those two and the 1/√mass-weighted g(r): 3 blocks; no legacy form),
``"pdf_mass_period"`` (those three and 4 partial g(r) of the neighbours in periods 1, 2, 3 and ≥ 4: 7 blocks;
no legacy form), ``"pdf_mass_bond"`` (the three of ``"pdf_mass_freq"`` and the neighbour counts by reduced
distance d / (R_i + R_j), covalent radii: 4 blocks; no legacy form), ``"pdf_mass_bond_freq"`` (those four
and the reduced-distance counts weighted by sqrt(m̄ / 2μ), μ each pair's reduced mass: 5 blocks; no legacy
form)."""

#: Mass powers of the weighted g(r) blocks each mass featurizer appends to g(r).
MASS_POWERS = {
    "pdf_mass": (1.0,),
    "pdf_mass_freq": (1.0, -0.5),
    "pdf_mass_period": (1.0, -0.5),
    "pdf_mass_bond": (1.0, -0.5),
    "pdf_mass_bond_freq": (1.0, -0.5),
}
#: Periods of the neighbours counted by each species-resolved block (H; B–F row; Na–Cl row; heavier).
PERIOD_GROUPS = {"pdf_mass_period": ((1,), (2,), (3,), (4, 5, 6, 7))}
#: Reduced-distance blocks of each method (:func:`s2p_utils.pdf.mass_weighted_pdf_chunk`): the bond
#: lengths over the sum of covalent radii, and (2) the same weighted by the pair's reduced mass.
BOND_BLOCKS = {"pdf_mass_bond": 1, "pdf_mass_bond_freq": 2}

_MAX_CHUNK_ATOMS = 4096  # atoms per work unit (memory ~ atoms × 200 pairs × 24 bytes)


def _chunk_bounds(sizes: Sequence[int], max_atoms: int) -> list[tuple[int, int]]:
    bounds, start, atoms = [], 0, 0
    for k, n in enumerate(sizes):
        if k > start and atoms + n > max_atoms:
            bounds.append((start, k))
            start, atoms = k, 0
        atoms += n
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    return bounds


def _run_chunk(
    systems: Sequence[System],
    first_index: int,
    options: dict[str, Any],
    masses: Sequence[np.ndarray],
    numbers: Sequence[np.ndarray],
) -> list[np.ndarray]:
    """One work unit: the features of ``systems`` (``systems[0]`` is input ``first_index``; ``masses`` amu,
    ``numbers`` atomic numbers)."""
    options = dict(options)
    method = options.pop("method")
    legacy = options.pop("legacy")
    deposit = options.pop("deposit", "floor")
    # the mass-weighted methods, and a "linear" deposit (featurize() allows it for the corrected g(r) only:
    # plain "pdf" is then the chunk kernel with no mass blocks)
    if method in MASS_POWERS or deposit != "floor":
        return mass_weighted_pdf_chunk(
            systems,
            masses,
            first_index=first_index,
            mass_powers=MASS_POWERS.get(method, ()),
            numbers=numbers,
            period_groups=PERIOD_GROUPS.get(method, ()),
            bond_blocks=BOND_BLOCKS.get(method, 0),
            deposit=deposit,
            **options,
        )
    if method == "pdf":
        return pdf_chunk(systems, legacy=legacy, first_index=first_index, **options)
    return simple_rdf_chunk(systems, periodic=not legacy, first_index=first_index, **options)


def _cache_key(systems: Sequence[System], numbers: Sequence[np.ndarray], options: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"featurizer_version": FEATURIZER_VERSION, **options}, sort_keys=True).encode())
    digest.update(np.int64(len(systems)).tobytes())
    for (positions, cell, pbc), z in zip(systems, numbers, strict=True):
        digest.update(np.int64(len(positions)).tobytes())
        digest.update(positions.tobytes())
        digest.update(np.ascontiguousarray(z, dtype=np.int64).tobytes())
        digest.update(cell.tobytes())
        digest.update(pbc.astype(np.uint8).tobytes())
    return digest.hexdigest()


def save_ragged_npz(path: Path, arrays: Sequence[np.ndarray], **extra: np.ndarray) -> None:
    """Write per-structure ``(n_atoms_i, n_bins)`` arrays to the ``.npz`` file ``path``, atomically.

    Stored as ``features`` ``(total_atoms, n_bins)`` (concatenated) and int64 ``offsets`` ``(n + 1,)``
    (rows of structure ``k``: ``offsets[k]:offsets[k + 1]``), plus the ``extra`` arrays; no pickles.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = np.array([len(a) for a in arrays], dtype=np.int64)
    width = arrays[0].shape[1] if arrays else 0
    data = np.concatenate(arrays) if arrays else np.zeros((0, width))
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, features=data, offsets=np.concatenate([[0], np.cumsum(sizes)]), **extra)


def _load_cached(path: Path, key: str, n: int) -> list[np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            data, offsets = stored["features"], stored["offsets"]
    except (OSError, ValueError, KeyError, EOFError) as error:
        warnings.warn(f"ignoring unreadable feature cache {path}: {error}", stacklevel=3)
        return None
    if len(offsets) != n + 1:
        return None
    return np.split(data, offsets[1:-1])


def featurize(
    structures: Iterable[Atoms],
    *,
    method: str = "pdf",
    legacy: bool = False,
    n_jobs: int = 1,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    backend: str | None = None,
    r_max: float = 10.0,
    bin_width: float = 0.1,
    sigma_bins: float = 1.0,
    deposit: str = "floor",
) -> list[np.ndarray]:
    """Featurize many crystals: one per-atom PDF array per structure.

    Args:
        structures: ``ase.Atoms`` crystals (positions in Å).
        method: one of :data:`METHODS`: ``"pdf"`` (:func:`s2p_utils.pdf.atomic_pdf`), ``"simple_rdf"``
            (:func:`s2p_utils.pdf.simple_rdf`), ``"pdf_mass"`` or ``"pdf_mass_freq"`` (g(r) with 1 or 2
            mass-weighted blocks, :func:`s2p_utils.pdf.mass_weighted_pdf_chunk`), ``"pdf_mass_period"``
            (``"pdf_mass_freq"`` and 4 partial g(r) by the neighbours' period), ``"pdf_mass_bond"``
            (``"pdf_mass_freq"`` and the neighbour counts by reduced distance d / (R_i + R_j)),
            ``"pdf_mass_bond_freq"`` (those and the same counts weighted by sqrt(m̄ / 2μ), μ the pair's
            reduced mass).
        legacy: the authors' original recipe. For ``"pdf"`` the bit-exact legacy PDF; for
            ``"simple_rdf"`` the original without periodic images (``periodic=False``), while
            ``legacy=False`` counts periodic images.
        n_jobs: worker processes (joblib semantics: ``-1`` = all cores); 1 runs in this process.
        progress: show a tqdm progress bar (per structure).
        cache_dir: if given, results are stored in and reused from
            ``<cache_dir>/features_<method>_<hash>.npz``, keyed by a sha256 of every structure
            (positions, numbers, cell, pbc), the method, all options and :data:`FEATURIZER_VERSION`.
        backend: joblib backend for ``n_jobs != 1`` (default ``"loky"`` processes; ``"dask"`` needs an
            active ``dask.distributed.Client``).
        r_max, bin_width, sigma_bins: as in :func:`s2p_utils.pdf.atomic_pdf` (Å, Å, bins).
        deposit: how a distance enters the bins (:data:`s2p_utils.pdf.DEPOSITS`): ``"floor"`` (the bin
            that holds it) or ``"linear"`` (shared between the two nearest bin centres, so sub-bin
            distances survive); ``"linear"`` exists for the corrected g(r) methods only (``"pdf"`` with
            ``legacy=False`` and the mass-weighted ones).

    Returns:
        list of float64 ``(n_atoms_i, n_bins)`` arrays, in the order of ``structures``.

    Raises:
        ValueError: unknown method, or an invalid structure (the message names its index).
    """
    if method not in METHODS:
        raise ValueError(f"unknown featurization method {method!r}; choose one of {METHODS}")
    if method in MASS_POWERS and legacy:
        raise ValueError(f"the mass-weighted PDF ({method!r}) has no legacy form")
    if deposit not in DEPOSITS:
        raise ValueError(f"unknown deposit {deposit!r}; choose one of {DEPOSITS}")
    if deposit != "floor" and (legacy or method == "simple_rdf"):
        raise ValueError(
            f"deposit={deposit!r} exists for the corrected g(r) only, not for method={method!r} legacy={legacy}"
        )
    structures = list(structures)
    systems = [as_system(atoms, f"structure {k}") for k, atoms in enumerate(structures)]
    masses = [np.asarray(atoms.get_masses(), dtype=np.float64) for atoms in structures]
    numbers = [np.asarray(atoms.numbers) for atoms in structures]
    options = {
        "method": method,
        "legacy": bool(legacy),
        "r_max": float(r_max),
        "bin_width": float(bin_width),
        "sigma_bins": float(sigma_bins),
    }
    if deposit != "floor":  # the default leaves the cache key (and existing caches) as they were
        options["deposit"] = deposit
    bin_count(r_max, bin_width)  # validates the grid before any work

    cache_path = key = None
    if cache_dir is not None:
        key = _cache_key(systems, numbers, options)
        cache_path = Path(cache_dir) / f"features_{method}_{key[:32]}.npz"
        if cache_path.is_file():
            cached = _load_cached(cache_path, key, len(systems))
            if cached is not None:
                return cached

    bounds = _chunk_bounds([len(s[0]) for s in systems], _MAX_CHUNK_ATOMS)

    features: list[np.ndarray] = []
    desc = f"featurize ({method}{', legacy' if legacy else ''})"
    with tqdm(total=len(systems), desc=desc, unit="structure", disable=not progress) as bar:
        if n_jobs == 1:
            for a, b in bounds:
                features.extend(_run_chunk(systems[a:b], a, options, masses[a:b], numbers[a:b]))
                bar.update(b - a)
        else:
            # parallel_config (unlike Parallel(backend=...)) also knows the external "dask" backend.
            with parallel_config(backend=backend or "loky", n_jobs=n_jobs):
                results = Parallel(return_as="generator")(
                    delayed(_run_chunk)(systems[a:b], a, options, masses[a:b], numbers[a:b])
                    for a, b in bounds
                )
                for (a, b), rows in zip(bounds, results, strict=True):
                    features.extend(rows)
                    bar.update(b - a)

    if cache_path is not None and key is not None:
        save_ragged_npz(cache_path, features, key=np.array(key))
    return features
