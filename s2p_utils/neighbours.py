"""Neighbour lists for chunks of crystals: the only module that knows ``vesin``.

:class:`HalfPairs` holds the half neighbour lists (each unordered pair once, pairs of an atom with its own
periodic images included) of many structures, concatenated, and bins them per atom with one
``numpy.bincount``. :func:`ase_pairs` gives ASE's own neighbour list, the reference whose distances the
legacy featurizer reproduces bit for bit (see :mod:`s2p_utils.pdf`).

Engine. ``vesin``'s public ``NeighborList.compute`` costs ~25 µs of Python per call, a third of the
whole search for a typical small cell; on the 1522 ``e3nn_phdos`` crystals the public API makes the
whole legacy featurization ~20-30 % slower (measured 2026-12-02, vesin 0.6.2, one core). So, when the
installed vesin is in the tested range (:data:`TESTED_VESIN`) and its C interface has exactly the
layout this module was written against, the C function ``vesin_neighbors`` is called directly through
``ctypes``. At first use the module checks the vesin version, the C type sizes behind the byte offsets
of :meth:`_Direct.compute_many`, every field offset of the three C structs against vesin's own
declarations, the declared signature, and compares a computed list with the public API. On any
mismatch it uses the public API and says so **once per process** with a :class:`RuntimeWarning`
(``s2p_utils.neighbours.engine()`` names the engine in use).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list
from vesin import NeighborList

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

try:  # vesin's private modules: only for the direct C call, checked before use
    from vesin import _c_api
    from vesin._c_lib import _lib_path
except ImportError:  # pragma: no cover - a vesin that moved them: the public API is used
    _c_api = _lib_path = None

__all__ = ["System", "TESTED_VESIN", "HalfPairs", "as_system", "check_systems", "ase_pairs", "engine"]

System = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One crystal: positions float64 ``(n, 3)`` Å, cell float64 ``(3, 3)`` Å (rows are the cell vectors),
pbc bool ``(3,)``; all C-contiguous."""

TESTED_VESIN = ((0, 3), (0, 7))
"""vesin versions ``[low, high)`` this module is tested with (keep in step with pyproject.toml)."""


# ----------------------------------------------------------------------------------------- inputs


def as_system(atoms: Any, source: str) -> System:
    """The arrays of one ``ase.Atoms`` as a :data:`System` (``source`` names it in the error).

    Raises:
        ValueError: ``atoms`` is not an ``ase.Atoms``.
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{source}: expected an ase.Atoms object, got {type(atoms).__name__}")
    positions = np.ascontiguousarray(atoms.positions, dtype=np.float64)
    cell = np.ascontiguousarray(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool).copy()
    return positions, cell, pbc


def check_systems(systems: Sequence[System], first_index: int) -> None:
    """The cheap validity checks for a chunk at once; per-structure messages only on failure.

    Run before every neighbour search: a degenerate cell must never reach vesin (see
    :func:`s2p_utils.data.structures.check_cell_arrays`). ``first_index`` is the index of
    ``systems[0]`` among all inputs, for the message.

    Raises:
        ValueError: an empty, non-periodic, non-finite, flat, needle-like or nearly empty cell.
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


# ------------------------------------------------------------------------- vesin through ctypes


class _Device(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _Options(ctypes.Structure):
    _fields_ = [
        ("cutoff", ctypes.c_double),
        ("full", ctypes.c_bool),
        ("sorted", ctypes.c_bool),
        ("algorithm", ctypes.c_int),
        ("skin", ctypes.c_double),
        ("n_threads", ctypes.c_int32),
        ("return_shifts", ctypes.c_bool),
        ("return_distances", ctypes.c_bool),
        ("return_vectors", ctypes.c_bool),
    ]


class _NeighborList(ctypes.Structure):  # vesin's, with untyped pointers (read by memmove only)
    _fields_ = [
        ("length", ctypes.c_size_t),
        ("device", _Device),
        ("pairs", ctypes.c_void_p),
        ("shifts", ctypes.c_void_p),
        ("distances", ctypes.c_void_p),
        ("vectors", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
    ]


_CPU = 1  # VesinCPU
# The byte strides used by _Direct.compute_many, and the C types they assume.
_STRIDES = {ctypes.c_double: 8, ctypes.c_size_t: 8, ctypes.c_bool: 1}


def _layout(struct: type[ctypes.Structure]) -> list[tuple[str, int, int]]:
    return [(name, getattr(struct, name).offset, getattr(struct, name).size) for name, _ in struct._fields_]


class _Direct:
    """One thread of ``vesin_neighbors`` called through ctypes, for one cutoff (half lists, distances)."""

    def __init__(self, cutoff: float, function: Any, free: Any) -> None:
        self._function, self._free = function, free
        self._options = _Options(
            cutoff=cutoff, full=False, sorted=False, algorithm=0, skin=0.0, n_threads=1, return_distances=True
        )
        self._device = _Device(_CPU, 0)
        self._neighbors = _NeighborList()
        self._neighbors_ref = ctypes.byref(self._neighbors)
        self._error = ctypes.c_char_p()
        self._error_ref = ctypes.byref(self._error)

    def compute_many(self, systems: Sequence[System]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Half lists of many structures, written straight into one growing buffer.

        Returns uint64 ``(n_pairs, 2)`` per-structure atom indices, float64 ``(n_pairs,)`` distances (Å)
        and int64 ``(n_structures,)`` pair counts. Inputs are packed once so that each structure costs a
        C call and two ``memmove`` s, no per-structure NumPy objects.
        """
        memmove = ctypes.memmove
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
            # positions: 3 doubles per atom; cell: 9 doubles; pbc: 3 bools; pairs: 2 size_t; distance: 1 double
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


def _load_direct() -> tuple[Any, Any]:
    """vesin's C functions ``(vesin_neighbors, vesin_free)``, typed for :class:`_Direct`.

    Raises:
        RuntimeError: the installed vesin is not the one this was written against (the reason).
    """
    version = importlib.metadata.version("vesin")
    parsed = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    low, high = TESTED_VESIN
    if not low <= parsed < high:
        raise RuntimeError(
            f"vesin {version} is outside the tested range >={low[0]}.{low[1]},<{high[0]}.{high[1]}"
        )
    if _c_api is None or _lib_path is None:
        raise RuntimeError("vesin._c_api / vesin._c_lib not found")
    for ctype, size in _STRIDES.items():
        if ctypes.sizeof(ctype) != size:
            raise RuntimeError(f"sizeof({ctype.__name__}) is {ctypes.sizeof(ctype)}, expected {size}")
    for ours, theirs in (
        (_Device, _c_api.VesinDevice),
        (_Options, _c_api.VesinOptions),
        (_NeighborList, _c_api.VesinNeighborList),
    ):
        if _layout(ours) != _layout(theirs) or ctypes.sizeof(ours) != ctypes.sizeof(theirs):
            raise RuntimeError(f"the layout of {theirs.__name__} changed: {_layout(theirs)}")
    library = ctypes.CDLL(_lib_path())  # a handle of our own: typing its functions leaves vesin's alone
    _c_api.setup_functions(library)
    declared = list(library.vesin_neighbors.argtypes)
    if len(declared) != 8 or declared[4] is not _c_api.VesinDevice or declared[5] is not _c_api.VesinOptions:
        raise RuntimeError(f"the signature of vesin_neighbors changed: {declared}")
    function = library.vesin_neighbors
    function.argtypes = [
        ctypes.c_void_p,  # points (n, 3) double
        ctypes.c_size_t,  # n
        ctypes.c_void_p,  # box (3, 3) double
        ctypes.c_void_p,  # periodic (3,) bool
        _Device,
        _Options,
        ctypes.POINTER(_NeighborList),
        ctypes.POINTER(ctypes.c_char_p),
    ]
    function.restype = ctypes.c_int
    free = library.vesin_free
    free.argtypes = [ctypes.POINTER(_NeighborList)]
    free.restype = None
    return function, free


def _self_test(functions: tuple[Any, Any]) -> None:
    """Compare the direct call with the public API on a small triclinic cell (raises on a difference)."""
    rng = np.random.default_rng(0)
    cell = np.array([[3.1, 0.2, 0.0], [0.3, 2.9, 0.1], [0.0, 0.4, 3.3]])
    positions = rng.uniform(0, 3, size=(5, 3))
    pbc = np.ones(3, dtype=bool)
    pairs, distances, _ = _Direct(4.0, *functions).compute_many([(positions, cell, pbc)])
    public = NeighborList(cutoff=4.0, full_list=False, n_threads=1).compute(
        positions, cell, pbc, quantities="Pd"
    )
    if not (len(distances) and np.array_equal(pairs, public[0]) and np.array_equal(distances, public[1])):
        raise RuntimeError("the direct call disagrees with vesin.NeighborList")


_UNCHECKED: Any = object()
_direct_functions: Any = _UNCHECKED  # per process: (vesin_neighbors, vesin_free), or None for the public API
_fallback_warned = False


def _fall_back(reason: str) -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        warnings.warn(
            f"s2p_utils.neighbours: {reason}; using vesin's public Python API instead of the direct C call "
            "(same results, featurization ~25 % slower)",
            RuntimeWarning,
            stacklevel=3,
        )


def _direct(cutoff: float) -> _Direct | None:
    global _direct_functions
    if _direct_functions is _UNCHECKED:
        try:
            functions = _load_direct()
            _self_test(functions)
            _direct_functions = functions
        except Exception as error:  # any mismatch: the public API, said once
            _direct_functions = None
            _fall_back(f"{type(error).__name__}: {error}")
    return None if _direct_functions is None else _Direct(cutoff, *_direct_functions)


def engine() -> str:
    """The neighbour-list engine this process uses: ``"vesin (direct C call)"`` or ``"vesin (public API)"``."""
    return "vesin (direct C call)" if _direct(1.0) is not None else "vesin (public API)"


def _public_many(systems: Sequence[System], cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nl = NeighborList(cutoff=cutoff, full_list=False, n_threads=1)
    blocks = [nl.compute(*system, quantities="Pd") for system in systems]
    counts = np.array([len(b[1]) for b in blocks], dtype=np.int64)
    pairs = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros((0, 2), dtype=np.uint64)
    distances = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0)
    return pairs, distances, counts


# ----------------------------------------------------------------------------------- public API


class HalfPairs:
    """Half neighbour lists of a chunk of structures, concatenated (each unordered pair once).

    Args:
        systems: the structures (checked here with :func:`check_systems` before vesin sees them).
        cutoff: neighbour cutoff in Å (pairs with ``d <= cutoff`` may be included; filter exactly).
        first_index: index of ``systems[0]`` among all inputs, for error messages.

    Attributes:
        local_atoms: int64 ``(n_pairs, 2)`` atom indices within each structure.
        distances: float64 ``(n_pairs,)`` in Å.
        n_pairs: int64 ``(n_structures,)`` pairs per structure.
        atom_offsets: int64 ``(n_structures + 1,)`` first global atom index of each structure.
        pair_offsets: int64 ``(n_structures + 1,)`` first pair of each structure.
        n_atoms: total atoms of the chunk.

    Raises:
        ValueError: an invalid cell (:func:`check_systems`), or two atoms (or an atom and its image)
            closer than ``MIN_DISTANCE`` Å.
    """

    def __init__(self, systems: Sequence[System], cutoff: float, first_index: int) -> None:
        check_systems(systems, first_index)
        sizes = np.array([len(s[0]) for s in systems], dtype=np.int64)
        direct = _direct(cutoff)
        if direct is not None:
            pairs, self.distances, n_pairs = direct.compute_many(systems)
        else:
            pairs, self.distances, n_pairs = _public_many(systems, cutoff)
        self.atom_offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.pair_offsets = np.concatenate([[0], np.cumsum(n_pairs)])
        self.n_atoms = int(self.atom_offsets[-1])
        self.local_atoms = pairs.view(np.int64) if pairs.dtype == np.uint64 else pairs.astype(np.int64)
        self.n_pairs = n_pairs
        self._check_min_distance(first_index)

    def _check_min_distance(self, first_index: int) -> None:
        if not self.distances.size or self.distances.min() >= MIN_DISTANCE:
            return
        k = int(np.flatnonzero(self.distances < MIN_DISTANCE)[0])
        s = int(self.structure_of_pairs(np.array(k)))
        i, j = (int(a) for a in self.local_atoms[k])
        what = "a periodic image of itself" if i == j else f"atom {j}"
        raise ValueError(
            f"structure {first_index + s}: atom {i} is {self.distances[k]:.3f} Å from {what}, closer "
            f"than {MIN_DISTANCE} Å (overlapping atoms or a wrong cell)"
        )

    @property
    def pair_atoms(self) -> np.ndarray:
        """int64 ``(n_pairs, 2)``: the two atoms of each pair as indices over the chunk's atoms (global
        order, ``local_atoms`` shifted by their structure's first atom)."""
        return self.local_atoms + np.repeat(self.atom_offsets[:-1], self.n_pairs)[:, None]

    def structure_of_pairs(self, pair_index: np.ndarray) -> np.ndarray:
        """int64, shape of ``pair_index``: the structure (0-based within the chunk) of each pair."""
        return np.searchsorted(self.pair_offsets, pair_index, side="right") - 1

    def bincount(
        self, bins: np.ndarray, keep: np.ndarray | None, n_bins: int, pair_weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Per-atom histograms: int64 ``(n_atoms, n_bins)``, each kept pair counted for both its atoms.

        Args:
            bins: int64 ``(n_pairs,)`` bin of each pair, in ``[0, n_bins)``.
            keep: bool ``(n_pairs,)`` pairs to count, or ``None`` for all.
            n_bins: number of bins.
            pair_weights: float ``(n_pairs,)``: each pair adds its weight (to both atoms) instead of 1;
                the histograms are then float64.
        """
        dump = self.n_atoms * n_bins
        # key = (first_atom_of_structure + local_atom) * n_bins + bin
        per_pair = np.repeat(self.atom_offsets[:-1] * n_bins, self.n_pairs)
        per_pair += bins
        keys = self.local_atoms * n_bins
        keys += per_pair[:, None]
        if keep is not None:
            keys[~keep] = dump
        weights = None if pair_weights is None else np.repeat(np.asarray(pair_weights, dtype=np.float64), 2)
        counts = np.bincount(keys.ravel(), weights=weights, minlength=dump + 1)[:dump]
        return counts.reshape(self.n_atoms, n_bins)

    def weighted_bincount(
        self,
        bins: np.ndarray,
        keep: np.ndarray | None,
        n_bins: int,
        atom_weights: np.ndarray,
        pair_weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per-atom histograms weighted by the *other* atom of each pair: float64 ``(n_atoms, n_bins)``.

        Atom ``i`` of pair ``(i, j)`` receives ``atom_weights[j]`` in the pair's bin and ``j`` receives
        ``atom_weights[i]``. ``atom_weights``: float ``(n_atoms,)`` over the chunk's atoms (global order);
        ``pair_weights``: float ``(n_pairs,)``, a further factor per pair (both atoms), or ``None``.
        """
        dump = self.n_atoms * n_bins
        first, second = self.pair_atoms.T
        keys = np.stack([first * n_bins + bins, second * n_bins + bins], axis=1)
        weights = np.stack([atom_weights[second], atom_weights[first]], axis=1).astype(np.float64)
        if pair_weights is not None:
            weights *= np.asarray(pair_weights, dtype=np.float64)[:, None]
        if keep is not None:
            keys[~keep] = dump
        counts = np.bincount(keys.ravel(), weights=weights.ravel(), minlength=dump + 1)[:dump]
        return counts.reshape(self.n_atoms, n_bins)


def ase_pairs(system: System, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """ASE's full neighbour list (each pair twice): int ``(n_pairs,)`` first atoms, float64 distances (Å).

    The reference of the legacy featurizer: its distances are the ones the authors' recipe rounded.
    """
    positions, cell, pbc = system
    return neighbor_list("id", Atoms(positions=positions, cell=cell, pbc=pbc), cutoff, self_interaction=False)
