"""Per-atom pair distribution functions (PDFs): the model's structural input.

Two featurizers, each in the authors' original form (``legacy``) and a corrected form:

:func:`atomic_pdf` (``method="pdf"``, the paper's main featurizer)
    For every atom, a histogram of the distances to all other atoms *and their periodic images*
    within ``r_max`` (10 Å), normalised by shell volume and smoothed with a Gaussian.

    ``legacy=True`` reproduces the authors' recipe (``getpdf`` of their ``create_input_data``
    notebook) bit for bit::

        r = np.arange(0, 10, 0.1)
        v = np.concatenate([[1], 4 * np.pi / 3 * (r[1:] ** 3 - r[:-1] ** 3)])
        i, d = ase.neighborlist.neighbor_list("id", atoms, 10.0, self_interaction=False)
        for k in range(len(atoms)):
            y = np.zeros(100)
            a, b = np.unique(np.round(d[i == k] * 10), return_counts=True)
            np.put(y, a.astype(int) - 1, b)
            rows.append(scipy.ndimage.gaussian_filter1d(y / v, 1))

    That is: a distance ``d`` is rounded to ``n = round(d / 0.1)`` (half to even) and counted in
    bin ``n - 1`` (``numpy.put`` semantics: ``n = 0`` would land in the last bin; distances below
    0.05 Å cannot occur after validation). Bin ``k`` therefore collects distances in
    ``[(k + 0.5) Δ, (k + 1.5) Δ)`` (centre ``(k + 1) Δ``, Δ = 0.1 Å), and is divided by
    ``v[k] = 4π/3 ((kΔ)³ − ((k − 1)Δ)³)``, the volume of the shell ``[(k − 1)Δ, kΔ)`` centred at
    ``(k − ½) Δ``: 1.5 bins inside the counted one; ``v[0] = 1`` (bin 0 is empty in practice). The
    last bin collects ``[9.95, 10.0)`` only (half a bin). The result is in Å⁻³ (counts per volume,
    not divided by the number density), then smoothed with ``gaussian_filter1d(σ = 1 bin,
    mode="reflect", truncate=4)``.

    ``legacy=False`` (the default) is the physically consistent radial distribution function of
    each atom, dimensionless::

        g_i(r_k) = n_i(k) / (ρ · 4π/3 (r_{k+1}³ − r_k³)),   r_k = k Δ,   ρ = N_cell / V_cell

    where ``n_i(k)`` counts the neighbours of atom ``i`` with ``k Δ ≤ d < (k + 1) Δ`` (bin centre
    ``(k + ½) Δ``, every bin a full Δ wide). Counts and volumes refer to the same shell, and dividing
    by the number density makes ``g_i(r) → 1`` at large ``r`` for every crystal, so the values no
    longer scale with density (the legacy rows differ by a factor ρ and the shell misalignment). The
    smoothing is ``gaussian_filter1d(σ = sigma_bins, mode="nearest", truncate=4)``: ``"nearest"``
    continues ``g ≈ 1`` past ``r_max`` and ``g = 0`` below the first neighbour instead of
    mirroring the data at the edges. ``sigma_bins=0`` switches the smoothing off; :func:`pair_counts`
    gives the integer counts ``n_i(k)``.

    Differences legacy → default, in short: bin edges (rounding → floor), shell volume of the
    counted bin instead of one 1.5 bins further in (and no ``v[0] = 1``), division by the number
    density (Å⁻³ → dimensionless), Gaussian edge mode ``reflect`` → ``nearest``.

:func:`simple_rdf` (``method="simple_rdf"``, the paper's "manual" RDF, ``embed_mat2spec_simpleRDF``)
    ``periodic=False`` (the original, and ``legacy=True`` in :func:`featurize`): distances from each
    atom to every site **of the unit cell only**, **ignoring periodic images**: an atom does not see
    its neighbours across the cell boundary, and in a one-atom cell the result is all zeros. Kept
    are ``0.3 < d ≤ r_max``; histogram edges ``0, Δ, …, r_max``; each bin divided by its own shell
    volume ``4/3 π (r_{k+1}³ − r_k³)`` (Å⁻³); Gaussian ``σ = 1 bin``, mode ``reflect``.
    ``periodic=True`` (``legacy=False`` in :func:`featurize`): the same with periodic images counted.

Speed. The original loops over atoms with boolean masks over all pairs, and ASE's neighbour list
dominates its cost. Here every structure gets one ``vesin`` half neighbour list (each pair once,
counted for both atoms), and a whole chunk of structures is binned with one ``numpy.bincount`` over
(atom, bin) and smoothed with one ``gaussian_filter1d`` call along the bins (identical, row by row, to
calling it on each row). Legacy exactness: a rounding can only differ from ASE's where a distance
lies within 1e-9 bins of a rounding boundary (``x.5 Δ``) or of the cutoff; the rare structure with
such a distance is recomputed with ASE's own neighbour list, so the legacy output equals the original
recipe to the last bit (``benchmarks/featurize.py`` checks this on 1522 crystals).

:func:`featurize` runs either featurizer over many structures, in parallel with joblib (any backend,
including ``"dask"`` for a ``distributed`` cluster), with a tqdm progress bar and an optional ``.npz``
cache keyed by a hash of the inputs and options.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from scipy.ndimage import gaussian_filter1d

from s2p_utils.data.structures import (
    MAX_CELL_ASPECT,
    MIN_CELL_HEIGHT,
    MIN_DENSITY,
    MIN_DISTANCE,
    MIN_VOLUME,
    cell_aspect,
    cell_heights,
    check_cell_arrays,
)

__all__ = [
    "FEATURIZER_VERSION",
    "METHODS",
    "atomic_pdf",
    "simple_rdf",
    "pair_counts",
    "legacy_shell_volumes",
    "shell_volumes",
    "featurize",
]

FEATURIZER_VERSION = 1
"""Bumped whenever any featurizer output changes; part of the cache key."""

METHODS = ("pdf", "simple_rdf")

SIMPLE_RDF_MIN_DISTANCE = 0.3
"""Distances at or below this (Å) are dropped by :func:`simple_rdf`, as in the original."""

_BOUNDARY_TOL = 1e-9  # in units of bins: distances this close to a rounding boundary are recomputed with ASE
_CUTOFF_MARGIN = 1e-6  # Å: the neighbour list reaches this far beyond r_max, then pairs are filtered exactly
_MAX_CHUNK_ATOMS = 4096  # atoms per work unit (memory ~ atoms × 200 pairs × 24 bytes)

System = tuple[np.ndarray, np.ndarray, np.ndarray]  # positions (n, 3) Å, cell (3, 3) Å, pbc (3,)


# ----------------------------------------------------------------------------------------- grids


def _n_bins(r_max: float, bin_width: float) -> int:
    if not (r_max > 0 and bin_width > 0):
        raise ValueError(f"r_max and bin_width must be positive, got r_max={r_max}, bin_width={bin_width}")
    n_bins = int(round(r_max / bin_width))
    if n_bins < 1 or abs(n_bins * bin_width - r_max) > 1e-9 * r_max:
        raise ValueError(f"r_max={r_max} must be a whole multiple of bin_width={bin_width}")
    return n_bins


def legacy_shell_volumes(r_max: float = 10.0, bin_width: float = 0.1) -> np.ndarray:
    """The original normalisation ``v``: float64 ``(n_bins,)`` in Å³.

    ``v[0] = 1`` and ``v[k] = 4π/3 (r_k³ − r_{k−1}³)`` with ``r_k = k·bin_width``, evaluated exactly as
    the original (``4 * np.pi / 3 * (r[1:] ** 3 - r[:-1] ** 3)`` on ``np.arange(0, 10, 0.1)``).
    """
    r = np.arange(_n_bins(r_max, bin_width)) * bin_width  # == np.arange(0, 10, 0.1) bit for bit
    return np.concatenate([[1], 4 * np.pi / 3 * (r[1:] ** 3 - r[:-1] ** 3)])


def shell_volumes(r_max: float = 10.0, bin_width: float = 0.1) -> np.ndarray:
    """Exact volumes of the shells ``[kΔ, (k+1)Δ)``: float64 ``(n_bins,)`` in Å³."""
    edges = np.arange(_n_bins(r_max, bin_width) + 1) * bin_width
    return 4.0 * np.pi / 3.0 * (edges[1:] ** 3 - edges[:-1] ** 3)


def _simple_rdf_edges(r_max: float, bin_width: float) -> np.ndarray:
    # == np.arange(0, r_max + bin_width, bin_width) of the original for the defaults (101 edges).
    return np.arange(_n_bins(r_max, bin_width) + 1) * bin_width


# ----------------------------------------------------------------------------------------- inputs


def _as_system(atoms: Any, source: str) -> System:
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{source}: expected an ase.Atoms object, got {type(atoms).__name__}")
    positions = np.ascontiguousarray(atoms.positions, dtype=np.float64)
    cell = np.ascontiguousarray(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool).copy()
    return positions, cell, pbc


def _check_systems(systems: Sequence[System], first_index: int) -> None:
    """The cheap validity checks for a chunk at once; per-structure messages only on failure.

    Run before every neighbour search: a degenerate cell must never reach vesin (see
    :func:`s2p_utils.data.structures.check_cell_arrays`).
    """
    if not systems:
        return
    sizes = np.array([len(s[0]) for s in systems])
    cells = np.stack([s[1] for s in systems])
    pbcs = np.stack([s[2] for s in systems])
    positions = np.concatenate([s[0] for s in systems]) if sizes.sum() else np.zeros((0, 3))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        volumes = np.abs(np.linalg.det(cells))
        heights = cell_heights(cells)
        ok = (
            sizes.min() > 0
            and pbcs.all()
            and np.isfinite(positions).all()
            and np.isfinite(cells).all()
            and (volumes > MIN_VOLUME).all()
            and (heights.min(axis=1) >= MIN_CELL_HEIGHT).all()
            and (cell_aspect(heights) <= MAX_CELL_ASPECT).all()
            and (sizes / volumes >= MIN_DENSITY).all()
        )
    if not ok:
        for k, (pos, cell, pbc) in enumerate(systems):
            check_cell_arrays(pos, cell, pbc, f"structure {first_index + k}")


# ------------------------------------------------------------------------------------ neighbours


class _VesinDirect:
    """vesin half neighbour lists (each unordered pair once, self-image pairs included), one thread.

    vesin's Python wrapper costs ~25 µs per call, a third of the whole search for a typical small cell, so
    when the installed vesin has the C interface this was written against, ``vesin_neighbors`` is
    called directly through ctypes. :meth:`create` checks the struct layouts and runs a self-test
    against the public ``vesin.NeighborList`` once per process; on any mismatch it returns ``None``
    and :class:`_Pairs` uses the public API instead.
    """

    _status: dict[str, Any] = {}  # per-process cache: the checked C function and struct types, or None
    _POINTERS = ("pairs", "shifts", "distances", "vectors")

    def __init__(self, cutoff: float, api: dict[str, Any]) -> None:
        import ctypes

        self._ctypes = ctypes
        self._function = api["function"]
        self._free = api["free"]
        options = api["options"]()
        values = {
            "cutoff": cutoff,
            "full": False,
            "sorted": False,
            "algorithm": 0,
            "skin": 0.0,
            "n_threads": 1,
            "return_shifts": False,
            "return_distances": True,
            "return_vectors": False,
        }
        for name, value in values.items():
            setattr(options, name, value)
        self._options = options
        self._device = api["device"](1, 0)  # VesinCPU, device 0
        self._neighbors = api["neighbors"]()
        self._neighbors_ref = ctypes.byref(self._neighbors)
        self._error = ctypes.c_char_p()
        self._error_ref = ctypes.byref(self._error)

    @classmethod
    def _load_api(cls) -> dict[str, Any] | None:
        import ctypes

        from vesin import _c_api
        from vesin._c_lib import _lib_path

        expected_options = {
            "cutoff",
            "full",
            "sorted",
            "algorithm",
            "skin",
            "n_threads",
            "return_shifts",
            "return_distances",
            "return_vectors",
        }
        if {name for name, _ in _c_api.VesinOptions._fields_} != expected_options:
            return None
        fields = _c_api.VesinNeighborList._fields_
        if [name for name, _ in fields] != [
            "length",
            "device",
            "pairs",
            "shifts",
            "distances",
            "vectors",
            "opaque",
        ]:
            return None
        neighbors = type(
            "_NeighborList",
            (ctypes.Structure,),
            {"_fields_": [(n, ctypes.c_void_p if n in cls._POINTERS else t) for n, t in fields]},
        )
        probe = ctypes.CDLL(_lib_path())
        _c_api.setup_functions(probe)
        argtypes = list(probe.vesin_neighbors.argtypes)
        if (
            len(argtypes) != 8
            or argtypes[4] is not _c_api.VesinDevice
            or argtypes[5] is not _c_api.VesinOptions
        ):
            return None
        function = probe.vesin_neighbors
        function.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_void_p,
            _c_api.VesinDevice,
            _c_api.VesinOptions,
            ctypes.POINTER(neighbors),
            ctypes.POINTER(ctypes.c_char_p),
        ]
        function.restype = ctypes.c_int
        free = probe.vesin_free
        free.argtypes = [ctypes.POINTER(neighbors)]
        free.restype = None
        return {
            "function": function,
            "free": free,
            "options": _c_api.VesinOptions,
            "device": _c_api.VesinDevice,
            "neighbors": neighbors,
            "library": probe,
        }

    @classmethod
    def _self_test(cls, api: dict[str, Any]) -> bool:
        from vesin import NeighborList

        rng = np.random.default_rng(0)
        cell = np.array([[3.1, 0.2, 0.0], [0.3, 2.9, 0.1], [0.0, 0.4, 3.3]])
        positions = rng.uniform(0, 3, size=(5, 3))
        pbc = np.ones(3, dtype=bool)
        pairs, distances, _ = cls(4.0, api).compute_many([(positions, cell, pbc)])
        public = NeighborList(cutoff=4.0, full_list=False, n_threads=1).compute(
            positions, cell, pbc, quantities="Pd"
        )
        return (
            len(distances) > 0 and np.array_equal(pairs, public[0]) and np.array_equal(distances, public[1])
        )

    @classmethod
    def create(cls, cutoff: float) -> _VesinDirect | None:
        if "api" not in cls._status:
            try:
                api = cls._load_api()
                cls._status["api"] = api if api is not None and cls._self_test(api) else None
            except Exception:  # any interface mismatch: use the public API
                cls._status["api"] = None
        api = cls._status["api"]
        return None if api is None else cls(cutoff, api)

    def compute_many(self, systems: Sequence[System]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Half lists of many structures, written straight into one growing buffer.

        Returns uint64 ``(n_pairs, 2)`` per-structure atom indices, float64 ``(n_pairs,)`` distances (Å)
        and int64 ``(n_structures,)`` pair counts. Inputs are packed once so that each structure costs a
        C call and two ``memmove`` s, no per-structure NumPy objects.
        """
        memmove = self._ctypes.memmove
        sizes = [len(s[0]) for s in systems]
        positions = np.ascontiguousarray(np.concatenate([s[0] for s in systems]), dtype=np.float64)
        cells = np.ascontiguousarray(np.stack([s[1] for s in systems]), dtype=np.float64)
        pbcs = np.ascontiguousarray(np.stack([s[2] for s in systems]), dtype=np.bool_)
        p0, c0, b0 = positions.ctypes.data, cells.ctypes.data, pbcs.ctypes.data
        capacity = max(1024, 256 * len(positions))
        pairs = np.empty((capacity, 2), dtype=np.uint64)
        distances = np.empty(capacity, dtype=np.float64)
        pa, da = pairs.ctypes.data, distances.ctypes.data
        function, device, options = self._function, self._device, self._options
        neighbors, neighbors_ref, error_ref = self._neighbors, self._neighbors_ref, self._error_ref
        counts = np.empty(len(systems), dtype=np.int64)
        total = first_atom = 0
        for k, n in enumerate(sizes):
            status = function(
                p0 + 24 * first_atom, n, c0 + 72 * k, b0 + 3 * k, device, options, neighbors_ref, error_ref
            )
            if status != 0:
                raise RuntimeError(f"vesin: {(self._error.value or b'').decode('utf8', 'replace')}")
            m = neighbors.length
            if total + m > capacity:
                capacity = max(2 * capacity, total + m)
                pairs = np.concatenate([pairs[:total], np.empty((capacity - total, 2), dtype=np.uint64)])
                distances = np.concatenate([distances[:total], np.empty(capacity - total)])
                pa, da = pairs.ctypes.data, distances.ctypes.data
            if m:
                memmove(pa + 16 * total, neighbors.pairs, 16 * m)
                memmove(da + 8 * total, neighbors.distances, 8 * m)
            counts[k] = m
            total += m
            first_atom += n
        return pairs[:total], distances[:total], counts

    def __del__(self) -> None:
        free = getattr(self, "_free", None)
        if free is not None:
            free(self._neighbors_ref)


class _Pairs:
    """Half neighbour lists of a chunk of structures, concatenated (each unordered pair once).

    Attributes:
        local_atoms: int64 ``(n_pairs, 2)`` atom indices within each structure.
        distances: float64 ``(n_pairs,)`` in Å.
        n_pairs: int64 ``(n_structures,)`` pairs per structure.
        atom_offsets: int64 ``(n_structures + 1,)`` first global atom index of each structure.
        pair_offsets: int64 ``(n_structures + 1,)`` first pair of each structure.
    """

    def __init__(self, systems: Sequence[System], cutoff: float, first_index: int) -> None:
        sizes = np.array([len(s[0]) for s in systems], dtype=np.int64)
        direct = _VesinDirect.create(cutoff)
        if direct is not None:
            pairs, self.distances, n_pairs = direct.compute_many(systems)
        else:
            from vesin import NeighborList

            nl = NeighborList(cutoff=cutoff, full_list=False, n_threads=1)
            blocks = [nl.compute(*system, quantities="Pd") for system in systems]
            n_pairs = np.array([len(b[1]) for b in blocks], dtype=np.int64)
            pairs = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros((0, 2), dtype=np.uint64)
            self.distances = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0)
        self.atom_offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.pair_offsets = np.concatenate([[0], np.cumsum(n_pairs)])
        self.n_atoms = int(self.atom_offsets[-1])
        self.local_atoms = pairs.view(np.int64) if pairs.dtype == np.uint64 else pairs.astype(np.int64)
        self.n_pairs = n_pairs
        self._check_min_distance(first_index)

    def _check_min_distance(self, first_index: int) -> None:
        if not self.distances.size or self.distances.min() >= MIN_DISTANCE:
            return
        close = np.flatnonzero(self.distances < MIN_DISTANCE)
        if close.size:
            k = int(close[0])
            s = int(np.searchsorted(self.pair_offsets, k, side="right") - 1)
            i, j = (int(a) for a in self.local_atoms[k])
            what = "a periodic image of itself" if i == j else f"atom {j}"
            raise ValueError(
                f"structure {first_index + s}: atom {i} is {self.distances[k]:.3f} Å from {what}, closer "
                f"than {MIN_DISTANCE} Å (overlapping atoms or a wrong cell)"
            )

    def structure_of_pairs(self, pair_index: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.pair_offsets, pair_index, side="right") - 1

    def bincount(self, bins: np.ndarray, keep: np.ndarray | None, n_bins: int) -> np.ndarray:
        """int64 ``(n_atoms, n_bins)``: each kept pair counted once for each of its two atoms."""
        dump = self.n_atoms * n_bins
        # key = (first_atom_of_structure + local_atom) * n_bins + bin
        per_pair = np.repeat(self.atom_offsets[:-1] * n_bins, self.n_pairs)
        per_pair += bins
        keys = self.local_atoms * n_bins
        keys += per_pair[:, None]
        if keep is not None:
            keys[~keep] = dump
        counts = np.bincount(keys.ravel(), minlength=dump + 1)[:dump]
        return counts.reshape(self.n_atoms, n_bins)


# ------------------------------------------------------------------------------------ kernels


def _legacy_bins(distances: np.ndarray, bin_width: float, n_bins: int) -> np.ndarray:
    """Original binning: ``round(d / Δ) - 1`` with ``d * 10`` as the original computes it."""
    bins = np.rint(distances * (1.0 / bin_width)).astype(np.int64) - 1
    if bins.size and bins.min() < 0:  # numpy.put semantics: index -1 is the last bin
        bins[bins < 0] += n_bins
    return bins


def _legacy_counts_ase(system: System, r_max: float, bin_width: float, n_bins: int) -> np.ndarray:
    """Legacy counts from ASE's own neighbour list (the reference distances, bit for bit)."""
    from ase.neighborlist import neighbor_list

    positions, cell, pbc = system
    i, d = neighbor_list("id", Atoms(positions=positions, cell=cell, pbc=pbc), r_max, self_interaction=False)
    keys = i * n_bins + _legacy_bins(d, bin_width, n_bins)
    return np.bincount(keys, minlength=len(positions) * n_bins).reshape(len(positions), n_bins)


def _pdf_counts(
    systems: Sequence[System], *, r_max: float, bin_width: float, legacy: bool, first_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pair counts of a chunk: int64 ``(total_atoms, n_bins)`` and the atom offsets."""
    n_bins = _n_bins(r_max, bin_width)
    pairs = _Pairs(systems, r_max + _CUTOFF_MARGIN, first_index)
    d = pairs.distances
    tolerance = _BOUNDARY_TOL * bin_width
    high = d > r_max - tolerance
    keep = (d < r_max) if high.any() else None  # None: every pair is inside the cutoff
    if legacy:
        x = d * (1.0 / bin_width)  # == d * 10 of the original for bin_width = 0.1
        nearest = np.rint(x)  # numpy.round: half to even
        # Roundings (and cutoff tests) that a last-ulp difference from ASE's distance could flip.
        off_centre = np.abs(np.subtract(x, nearest, out=x), out=x)
        ambiguous = None
        if off_centre.size and off_centre.max() > 0.5 - _BOUNDARY_TOL:
            ambiguous = off_centre > 0.5 - _BOUNDARY_TOL
        if keep is not None:
            near_cutoff = high & (d < r_max + tolerance)
            ambiguous = near_cutoff if ambiguous is None else ambiguous | near_cutoff
        bins = nearest.astype(np.int64)
        bins -= 1
        if bins.size and bins.min() < 0:  # numpy.put semantics: index -1 is the last bin
            bins[bins < 0] += n_bins
    else:
        bins = np.minimum((d / bin_width).astype(np.int64), n_bins - 1)
        ambiguous = None
    counts = pairs.bincount(bins, keep, n_bins)
    if ambiguous is not None and ambiguous.any():
        for s in np.unique(pairs.structure_of_pairs(np.flatnonzero(ambiguous))):
            a, b = pairs.atom_offsets[s], pairs.atom_offsets[s + 1]
            counts[a:b] = _legacy_counts_ase(systems[s], r_max, bin_width, n_bins)
    return counts, pairs.atom_offsets


def _pdf_chunk(
    systems: Sequence[System],
    *,
    r_max: float,
    bin_width: float,
    sigma_bins: float,
    legacy: bool,
    first_index: int = 0,
) -> list[np.ndarray]:
    _check_systems(systems, first_index)
    counts, offsets = _pdf_counts(
        systems, r_max=r_max, bin_width=bin_width, legacy=legacy, first_index=first_index
    )
    if legacy:
        rows = counts / legacy_shell_volumes(r_max, bin_width)
        mode = "reflect"
    else:
        volumes = np.array([abs(np.linalg.det(s[1])) for s in systems])
        density = (offsets[1:] - offsets[:-1]) / volumes  # atoms per Å³ of each structure
        rows = (
            counts / shell_volumes(r_max, bin_width) / np.repeat(density, offsets[1:] - offsets[:-1])[:, None]
        )
        mode = "nearest"
    if sigma_bins > 0:
        rows = gaussian_filter1d(rows, sigma_bins, axis=-1, mode=mode, truncate=4.0)
    return _split_rows(rows, offsets)


def _simple_rdf_chunk(
    systems: Sequence[System],
    *,
    r_max: float,
    bin_width: float,
    sigma_bins: float,
    periodic: bool,
    first_index: int = 0,
) -> list[np.ndarray]:
    _check_systems(systems, first_index)
    n_bins = _n_bins(r_max, bin_width)
    edges = _simple_rdf_edges(r_max, bin_width)
    volume_shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)  # the original's expression
    upper = min(r_max, float(edges[-1]))  # the original keeps d <= r_max, numpy.histogram d <= last edge

    def histogram_bins(d: np.ndarray) -> np.ndarray:
        # numpy.histogram with explicit edges: [e_k, e_k+1), the last bin closed.
        return np.minimum(np.searchsorted(edges, d, side="right") - 1, n_bins - 1)

    if periodic:
        pairs = _Pairs(systems, r_max + _CUTOFF_MARGIN, first_index)
        d = pairs.distances
        keep = (d <= upper) & (d > SIMPLE_RDF_MIN_DISTANCE)
        counts = pairs.bincount(histogram_bins(d), keep, n_bins)
        offsets = pairs.atom_offsets
    else:
        from scipy.spatial.distance import cdist

        blocks = []
        for positions, _, _ in systems:
            d = cdist(positions, positions)
            keep = (d <= upper) & (d > SIMPLE_RDF_MIN_DISTANCE)
            atom = np.broadcast_to(np.arange(len(positions))[:, None], d.shape)[keep]
            keys = atom * n_bins + histogram_bins(d[keep])
            blocks.append(np.bincount(keys, minlength=len(positions) * n_bins).reshape(-1, n_bins))
        counts = np.concatenate(blocks)
        offsets = np.concatenate([[0], np.cumsum([len(s[0]) for s in systems])])
    rows = counts / volume_shell
    if sigma_bins > 0:
        rows = gaussian_filter1d(rows, sigma_bins, axis=-1, mode="reflect", truncate=4.0)
    return _split_rows(rows, offsets)


def _split_rows(rows: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    bounds = offsets.tolist()
    return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# ----------------------------------------------------------------------------------- public API


def atomic_pdf(
    atoms: Atoms,
    *,
    r_max: float = 10.0,
    bin_width: float = 0.1,
    sigma_bins: float = 1.0,
    legacy: bool = False,
) -> np.ndarray:
    """Per-atom PDF of one crystal (see the module docstring for both definitions).

    Args:
        atoms: a periodic crystal, positions in Å (validated: see
            :func:`s2p_utils.data.structures.validate_structure`).
        r_max: cutoff radius in Å (a whole multiple of ``bin_width``).
        bin_width: bin width Δ in Å.
        sigma_bins: Gaussian smoothing width in bins (0: none).
        legacy: the authors' original recipe, bit for bit (Å⁻³, misaligned shells); default: the
            dimensionless per-atom radial distribution function ``g_i(r)``.

    Returns:
        float64 ``(n_atoms, n_bins)``, ``n_bins = r_max / bin_width`` (100 by default). Legacy bin
        ``k`` is centred at ``(k + 1) Δ``; default bin ``k`` at ``(k + ½) Δ``.

    Raises:
        ValueError: an invalid structure (no atoms, not periodic, zero volume, NaN, atoms < 0.5 Å apart).
    """
    system = _as_system(atoms, "<atoms>")
    return _pdf_chunk([system], r_max=r_max, bin_width=bin_width, sigma_bins=sigma_bins, legacy=legacy)[0]


def pair_counts(atoms: Atoms, r_max: float = 10.0, bin_width: float = 0.1) -> np.ndarray:
    """Integer neighbour counts per atom and shell: int64 ``(n_atoms, n_bins)``.

    ``counts[i, k]`` is the number of atoms (periodic images included, the atom itself excluded) at
    distance ``k Δ ≤ d < (k + 1) Δ`` Å from atom ``i``: the unsmoothed, unnormalised histogram behind
    the default :func:`atomic_pdf`. ``counts[i, :k].sum()`` is the coordination number within ``k Δ``.
    """
    system = _as_system(atoms, "<atoms>")
    _check_systems([system], 0)
    counts, _ = _pdf_counts([system], r_max=r_max, bin_width=bin_width, legacy=False, first_index=0)
    return counts


def simple_rdf(
    atoms: Atoms,
    *,
    periodic: bool = False,
    r_max: float = 10.0,
    bin_width: float = 0.1,
    sigma_bins: float = 1.0,
) -> np.ndarray:
    """The paper's "manual" per-atom RDF (``embed_mat2spec_simpleRDF`` notebook).

    With ``periodic=False`` (the original) **periodic images are ignored**: only the sites of the
    unit cell itself are counted, so small cells see few or no neighbours (a one-atom cell gives all
    zeros) and the result depends on the choice of cell. ``periodic=True`` counts periodic images.
    Both keep ``0.3 < d ≤ r_max``, use bins ``[kΔ, (k+1)Δ)`` (the last one closed), divide each bin by
    its own shell volume and smooth with a Gaussian of ``sigma_bins`` bins (mode ``reflect``).

    Returns:
        float64 ``(n_atoms, n_bins)`` in Å⁻³; ``periodic=False`` equals the original bit for bit.
    """
    system = _as_system(atoms, "<atoms>")
    return _simple_rdf_chunk(
        [system], r_max=r_max, bin_width=bin_width, sigma_bins=sigma_bins, periodic=periodic
    )[0]


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


def _run_chunk(systems: Sequence[System], first_index: int, options: dict[str, Any]) -> list[np.ndarray]:
    options = dict(options)
    method = options.pop("method")
    legacy = options.pop("legacy")
    if method == "pdf":
        return _pdf_chunk(systems, legacy=legacy, first_index=first_index, **options)
    return _simple_rdf_chunk(systems, periodic=not legacy, first_index=first_index, **options)


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


def _save_ragged_npz(path: Path, arrays: Sequence[np.ndarray], **extra: np.ndarray) -> None:
    """Write ``arrays`` as one concatenated array + offsets, atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = np.array([len(a) for a in arrays], dtype=np.int64)
    width = arrays[0].shape[1] if arrays else 0
    data = np.concatenate(arrays) if arrays else np.zeros((0, width))
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, features=data, offsets=np.concatenate([[0], np.cumsum(sizes)]), **extra)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
) -> list[np.ndarray]:
    """Featurize many crystals: one per-atom PDF array per structure.

    Args:
        structures: ``ase.Atoms`` crystals (positions in Å).
        method: ``"pdf"`` (:func:`atomic_pdf`) or ``"simple_rdf"`` (:func:`simple_rdf`).
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
        r_max, bin_width, sigma_bins: as in :func:`atomic_pdf`.

    Returns:
        list of float64 ``(n_atoms_i, n_bins)`` arrays, in the order of ``structures``.

    Raises:
        ValueError: unknown method, or an invalid structure (the message names its index).
    """
    if method not in METHODS:
        raise ValueError(f"unknown featurization method {method!r}; choose one of {METHODS}")
    structures = list(structures)
    systems = [_as_system(atoms, f"structure {k}") for k, atoms in enumerate(structures)]
    options = {
        "method": method,
        "legacy": bool(legacy),
        "r_max": float(r_max),
        "bin_width": float(bin_width),
        "sigma_bins": float(sigma_bins),
    }
    _n_bins(r_max, bin_width)

    cache_path = key = None
    if cache_dir is not None:
        key = _cache_key(systems, [np.asarray(a.numbers) for a in structures], options)
        cache_path = Path(cache_dir) / f"features_{method}_{key[:32]}.npz"
        if cache_path.is_file():
            cached = _load_cached(cache_path, key, len(systems))
            if cached is not None:
                return cached

    bounds = _chunk_bounds([len(s[0]) for s in systems], _MAX_CHUNK_ATOMS)
    from tqdm.auto import tqdm

    features: list[np.ndarray] = []
    desc = f"featurize ({method}{', legacy' if legacy else ''})"
    with tqdm(total=len(systems), desc=desc, unit="structure", disable=not progress) as bar:
        if n_jobs == 1:
            for a, b in bounds:
                features.extend(_run_chunk(systems[a:b], a, options))
                bar.update(b - a)
        else:
            from joblib import Parallel, delayed, parallel_config

            # parallel_config (unlike Parallel(backend=...)) also knows the external "dask" backend.
            with parallel_config(backend=backend or "loky", n_jobs=n_jobs):
                results = Parallel(return_as="generator")(
                    delayed(_run_chunk)(systems[a:b], a, options) for a, b in bounds
                )
                for (a, b), rows in zip(bounds, results, strict=True):
                    features.extend(rows)
                    bar.update(b - a)

    if cache_path is not None and key is not None:
        _save_ragged_npz(cache_path, features, key=np.array(key))
    return features
