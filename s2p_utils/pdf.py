"""Per-atom pair distribution functions (PDFs), the model's structural input: the definitions.

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
    ``periodic=False`` (the original, and ``legacy=True`` in :func:`s2p_utils.featurize.featurize`):
    distances from each atom to every site **of the unit cell only**, **ignoring periodic images**: an
    atom does not see its neighbours across the cell boundary, and in a one-atom cell the result is all
    zeros. Kept are ``0.3 < d ≤ r_max``; histogram edges ``0, Δ, …, r_max``; each bin divided by its own
    shell volume ``4/3 π (r_{k+1}³ − r_k³)`` (Å⁻³); Gaussian ``σ = 1 bin``, mode ``reflect``.
    ``periodic=True`` (``legacy=False`` in :func:`s2p_utils.featurize.featurize`): the same with
    periodic images counted.

Units: distances and ``r_max``/``bin_width`` in Å; the legacy PDF and :func:`simple_rdf` in Å⁻³ (counts
per shell volume); the default PDF ``g_i(r)`` dimensionless.

Computation. Every structure gets one half neighbour list (each pair once, counted for both atoms;
:class:`s2p_utils.neighbours.HalfPairs`), a whole chunk of structures is binned with one
``numpy.bincount`` over (atom, bin) and smoothed with one ``gaussian_filter1d`` call along the bins
(identical, row by row, to calling it on each row). Legacy exactness: a rounding can only differ from
ASE's where a distance lies within 1e-9 bins of a rounding boundary (``x.5 Δ``) or of the cutoff; the
rare structure with such a distance is recomputed with ASE's own neighbour list
(:func:`s2p_utils.neighbours.ase_pairs`), so the legacy output equals the original recipe to the last
bit (``benchmarks/featurize.py`` checks this on 1522 crystals). :func:`pdf_chunk` and
:func:`simple_rdf_chunk` are the chunk kernels that :func:`s2p_utils.featurize.featurize` runs in
parallel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.distance import cdist

from s2p_utils.element_features import element_period
from s2p_utils.neighbours import HalfPairs, System, as_system, ase_pairs, check_systems

__all__ = [
    "FEATURIZER_VERSION",
    "atomic_pdf",
    "simple_rdf",
    "pair_counts",
    "legacy_shell_volumes",
    "shell_volumes",
    "bin_count",
    "DEPOSITS",
    "pdf_chunk",
    "simple_rdf_chunk",
]

FEATURIZER_VERSION = 1
"""Bumped whenever any featurizer output changes; part of the feature cache key."""

SIMPLE_RDF_MIN_DISTANCE = 0.3
"""Distances at or below this (Å) are dropped by :func:`simple_rdf`, as in the original."""

_BOUNDARY_TOL = 1e-9  # in units of bins: distances this close to a rounding boundary are recomputed with ASE
_CUTOFF_MARGIN = 1e-6  # Å: the neighbour list reaches this far beyond r_max, then pairs are filtered exactly


# ----------------------------------------------------------------------------------------- grids


def bin_count(r_max: float, bin_width: float) -> int:
    """Number of bins ``r_max / bin_width``.

    Raises:
        ValueError: ``r_max`` or ``bin_width`` (Å) not positive, or ``r_max`` not a whole multiple of it.
    """
    if not (r_max > 0 and bin_width > 0):
        raise ValueError(f"r_max and bin_width must be positive, got r_max={r_max}, bin_width={bin_width}")
    n_bins = int(round(r_max / bin_width))
    if n_bins < 1 or abs(n_bins * bin_width - r_max) > 1e-9 * r_max:
        raise ValueError(f"r_max={r_max} must be a whole multiple of bin_width={bin_width}")
    return n_bins


def _edges(r_max: float, bin_width: float) -> np.ndarray:
    """float64 ``(n_bins + 1,)`` bin edges ``kΔ`` in Å (== ``np.arange(0, r_max + Δ, Δ)`` for the defaults)."""
    return np.arange(bin_count(r_max, bin_width) + 1) * bin_width


def legacy_shell_volumes(r_max: float = 10.0, bin_width: float = 0.1) -> np.ndarray:
    """The original normalisation ``v``: float64 ``(n_bins,)`` in Å³.

    ``v[0] = 1`` and ``v[k] = 4π/3 (r_k³ − r_{k−1}³)`` with ``r_k = k·bin_width``, evaluated exactly as
    the original (``4 * np.pi / 3 * (r[1:] ** 3 - r[:-1] ** 3)`` on ``np.arange(0, 10, 0.1)``).
    """
    r = _edges(r_max, bin_width)[:-1]  # == np.arange(0, 10, 0.1) bit for bit
    return np.concatenate([[1], 4 * np.pi / 3 * (r[1:] ** 3 - r[:-1] ** 3)])


def shell_volumes(r_max: float = 10.0, bin_width: float = 0.1) -> np.ndarray:
    """Exact volumes of the shells ``[kΔ, (k+1)Δ)``: float64 ``(n_bins,)`` in Å³."""
    edges = _edges(r_max, bin_width)
    return 4.0 * np.pi / 3.0 * (edges[1:] ** 3 - edges[:-1] ** 3)


# ---------------------------------------------------------------------------------------- binning


def _put_bins(nearest: np.ndarray, n_bins: int) -> np.ndarray:
    """Legacy bin of each rounded distance ``n = round(d / Δ)``: ``n - 1``, ``numpy.put`` semantics
    (index -1 is the last bin). int64, shape of ``nearest``."""
    bins = nearest.astype(np.int64)
    bins -= 1
    if bins.size and bins.min() < 0:
        bins[bins < 0] += n_bins
    return bins


def _legacy_counts_ase(system: System, r_max: float, bin_width: float, n_bins: int) -> np.ndarray:
    """Legacy counts int64 ``(n_atoms, n_bins)`` from ASE's own neighbour list (the reference distances)."""
    i, d = ase_pairs(system, r_max)
    keys = i * n_bins + _put_bins(np.rint(d * (1.0 / bin_width)), n_bins)
    n_atoms = len(system[0])
    return np.bincount(keys, minlength=n_atoms * n_bins).reshape(n_atoms, n_bins)


def _pdf_counts(
    systems: Sequence[System], *, r_max: float, bin_width: float, legacy: bool, first_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pair counts of a chunk: int64 ``(total_atoms, n_bins)`` and int64 ``(n + 1,)`` atom offsets."""
    n_bins = bin_count(r_max, bin_width)
    pairs = HalfPairs(systems, r_max + _CUTOFF_MARGIN, first_index)
    d = pairs.distances
    tolerance = _BOUNDARY_TOL * bin_width
    high = d > r_max - tolerance
    keep = (d < r_max) if high.any() else None  # None: every pair is inside the cutoff
    ambiguous = None
    if legacy:
        x = d * (1.0 / bin_width)  # == d * 10 of the original for bin_width = 0.1
        nearest = np.rint(x)  # numpy.round: half to even
        # Roundings (and cutoff tests) that a last-ulp difference from ASE's distance could flip.
        off_centre = np.abs(np.subtract(x, nearest, out=x), out=x)
        if off_centre.size and off_centre.max() > 0.5 - _BOUNDARY_TOL:
            ambiguous = off_centre > 0.5 - _BOUNDARY_TOL
        if keep is not None:
            near_cutoff = high & (d < r_max + tolerance)
            ambiguous = near_cutoff if ambiguous is None else ambiguous | near_cutoff
        bins = _put_bins(nearest, n_bins)
    else:
        bins = _corrected_bins(d, bin_width, n_bins)
    counts = pairs.bincount(bins, keep, n_bins)
    if ambiguous is not None and ambiguous.any():
        for s in np.unique(pairs.structure_of_pairs(np.flatnonzero(ambiguous))):
            a, b = pairs.atom_offsets[s], pairs.atom_offsets[s + 1]
            counts[a:b] = _legacy_counts_ase(systems[s], r_max, bin_width, n_bins)
    return counts, pairs.atom_offsets


def _split_rows(rows: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    bounds = offsets.tolist()
    return [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# ------------------------------------------------------------------------------------ chunk kernels


def _corrected_bins(distances: np.ndarray, bin_width: float, n_bins: int) -> np.ndarray:
    """Bin ``k`` of the corrected g(r) holds ``k Δ ≤ d < (k + 1) Δ``: int64, the shape of ``distances``."""
    return np.minimum((distances / bin_width).astype(np.int64), n_bins - 1)


DEPOSITS = ("floor", "linear")
"""How a distance enters the corrected g(r) bins (:func:`mass_weighted_pdf_chunk`): ``"floor"`` counts it in
the bin ``[kΔ, (k + 1)Δ)`` that holds it (the default, :func:`atomic_pdf`); ``"linear"`` shares it between
the two bins whose centres ``(k + ½)Δ`` bracket it, in proportion to its closeness to each (cloud-in-cell),
so a row keeps each distance to well below a bin width (its weighted centre of bins is the distance itself)."""


def _linear_bins(
    distances: np.ndarray, bin_width: float, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cloud-in-cell deposition of ``distances`` (Å, ``(n_pairs,)``): int64 lower and upper bins and the
    float64 weight of the upper one (the lower gets 1 − that), each ``(n_pairs,)``.

    A distance ``d`` between the centres ``(k + ½)Δ`` and ``(k + 1.5)Δ`` gives bin ``k`` the weight
    ``(k + 1.5) − d/Δ`` and bin ``k + 1`` the rest; below the first centre or above the last, all of it
    goes to the edge bin, so every pair still adds exactly 1.
    """
    x = distances / bin_width - 0.5
    lower = np.floor(x)
    upper_weight = x - lower
    lower = lower.astype(np.int64)
    upper = lower + 1
    lower = np.clip(lower, 0, n_bins - 1)
    upper = np.clip(upper, 0, n_bins - 1)
    return lower, upper, upper_weight


def _per_density(
    counts: np.ndarray, systems: Sequence[System], offsets: np.ndarray, r_max: float, bin_width: float
) -> np.ndarray:
    """Pair counts ``(total_atoms, n_bins)`` → g(r): divided by the shell volume (Å³) and by the number
    density of each atom's structure (atoms per Å³), so g → 1 at large r."""
    volumes = np.array([abs(np.linalg.det(s[1])) for s in systems])
    density = (offsets[1:] - offsets[:-1]) / volumes  # atoms per Å³ of each structure
    return counts / shell_volumes(r_max, bin_width) / np.repeat(density, offsets[1:] - offsets[:-1])[:, None]


def pdf_chunk(
    systems: Sequence[System],
    *,
    r_max: float,
    bin_width: float,
    sigma_bins: float,
    legacy: bool,
    first_index: int = 0,
) -> list[np.ndarray]:
    """:func:`atomic_pdf` of many structures at once: float64 ``(n_atoms_i, n_bins)`` per structure.

    ``first_index`` is the index of ``systems[0]`` among all inputs (for error messages).
    """
    counts, offsets = _pdf_counts(
        systems, r_max=r_max, bin_width=bin_width, legacy=legacy, first_index=first_index
    )
    if legacy:
        rows = counts / legacy_shell_volumes(r_max, bin_width)
        mode = "reflect"
    else:
        rows = _per_density(counts, systems, offsets, r_max, bin_width)
        mode = "nearest"
    if sigma_bins > 0:
        rows = gaussian_filter1d(rows, sigma_bins, axis=-1, mode=mode, truncate=4.0)
    return _split_rows(rows, offsets)


def mass_weighted_pdf_chunk(
    systems: Sequence[System],
    masses: Sequence[np.ndarray],
    *,
    r_max: float,
    bin_width: float,
    sigma_bins: float,
    first_index: int = 0,
    mass_powers: Sequence[float] = (1.0,),
    numbers: Sequence[np.ndarray] | None = None,
    period_groups: Sequence[Sequence[int]] = (),
    deposit: str = "floor",
    bond_blocks: int = 0,
) -> list[np.ndarray]:
    """The corrected per-atom g(r) beside mass-weighted twins: float64 ``(n_atoms_i, (1 + P + G + B)·n_bins)``.

    Columns ``0…n_bins−1`` are :func:`atomic_pdf` (``legacy=False``); block ``k`` of the ``P =
    len(mass_powers)`` further blocks counts each neighbour ``j`` with weight ``m_j^p / mean(m^p)``
    (``p = mass_powers[k]``, the mean over the structure's atoms), normalised the same way, so every block
    equals the first for an element crystal and tells which shells hold heavy or light atoms otherwise —
    the mass information that sets phonon frequencies (not in the paper; the ``e3nn_phdos`` levers in
    ``benchmarks/README.md``). ``p = 1`` weights by mass (featurizer ``"pdf_mass"``); ``p = −½`` by
    ``1/√m``, the scale of a light atom's frequency (``"pdf_mass_freq"`` adds it: for crystals of three or
    more elements it is not a linear combination of the other two blocks). ``masses``: amu
    ``(n_atoms_i,)`` per structure.

    The last ``G = len(period_groups)`` blocks are species-resolved partial g(r): block ``k`` counts only
    the neighbours whose element sits in a period (row of the periodic table) listed in
    ``period_groups[k]``, so blocks whose groups cover every period sum to g(r) (featurizer
    ``"pdf_mass_period"``). They need ``numbers``, the atomic numbers ``(n_atoms_i,)`` per structure.

    ``bond_blocks = 1`` (B = 1) appends the histogram of every neighbour's *reduced* distance
    ``x = d_ij / (R_i + R_j)`` (``R``: ASE's covalent radii, Å), ``n_bins`` bins over ``0 ≤ x < 2``: pair
    counts, not divided by shell volume or density (featurizer ``"pdf_mass_bond"``). A bond shorter than
    the sum of its atoms' radii (x < 1) is a stiff one, which g(r) in Å shows only through the elements at
    either end. It needs ``numbers``.

    ``bond_blocks = 2`` (B = 2) adds one more block after that bond block: the same
    reduced-distance histogram with each pair weighted by ``sqrt(m̄ / (2 μ_ij))``, ``μ_ij = m_i m_j / (m_i +
    m_j)`` the pair's reduced mass and ``m̄`` the structure's mean mass: a stiff bond between light atoms
    counts more, as its vibration is faster (ω ∝ sqrt(k / μ)); for an element crystal it equals the bond
    block (featurizer ``"pdf_mass_bond_freq"``).

    ``deposit`` (:data:`DEPOSITS`): ``"floor"`` bins each distance as :func:`atomic_pdf` does;
    ``"linear"`` shares it between the two nearest bin centres (cloud-in-cell), in every g(r) block alike
    (the reduced-distance block always counts a pair in the bin that holds it).
    With ``mass_powers=()`` and no groups the result is :func:`atomic_pdf` (``legacy=False``) itself.
    """
    if isinstance(bond_blocks, bool) or bond_blocks not in (0, 1, 2):
        raise ValueError(f"bond_blocks must be 0, 1 or 2 reduced-distance blocks, got {bond_blocks!r}")
    if (period_groups or bond_blocks) and numbers is None:
        raise ValueError("period_groups and bond_blocks need the atomic numbers of every structure")
    if deposit not in DEPOSITS:
        raise ValueError(f"unknown deposit {deposit!r}; choose one of {DEPOSITS}")
    n_bins = bin_count(r_max, bin_width)
    pairs = HalfPairs(systems, r_max + _CUTOFF_MARGIN, first_index)
    keep = pairs.distances < r_max
    if deposit == "floor":
        shares = [(_corrected_bins(pairs.distances, bin_width, n_bins), None)]
    else:
        lower, upper, upper_weight = _linear_bins(pairs.distances, bin_width, n_bins)
        shares = [(lower, 1.0 - upper_weight), (upper, upper_weight)]

    def histogram(atom_weights: np.ndarray | None) -> np.ndarray:
        if atom_weights is None:
            return sum(pairs.bincount(bins, keep, n_bins, weights) for bins, weights in shares)
        return sum(
            pairs.weighted_bincount(bins, keep, n_bins, atom_weights, weights) for bins, weights in shares
        )

    def relative_masses(power: float) -> np.ndarray:
        """``m^p / mean(m^p)`` over each structure's atoms, float64 over the chunk's atoms."""
        scaled = [np.asarray(m, dtype=np.float64) ** float(power) for m in masses]
        return np.concatenate([m / np.mean(m) for m in scaled])

    blocks = [histogram(None)]
    for power in mass_powers:
        blocks.append(histogram(relative_masses(power)))
    if period_groups:
        periods = element_period(np.concatenate([np.asarray(z) for z in numbers]))
        for group in period_groups:
            blocks.append(histogram(np.isin(periods, group).astype(np.float64)))
    rows = [_per_density(c, systems, pairs.atom_offsets, r_max, bin_width) for c in blocks]
    if bond_blocks:
        relative = relative_masses(1.0) if bond_blocks == 2 else None
        rows.extend(_reduced_distance_blocks(pairs, numbers, keep, n_bins, relative))
    rows = np.stack(rows, axis=1)
    if sigma_bins > 0:  # each block smoothed along its own bins: (atoms, blocks, n_bins)
        rows = gaussian_filter1d(rows, sigma_bins, axis=-1, mode="nearest", truncate=4.0)
    rows = rows.reshape(len(rows), rows.shape[1] * n_bins)
    return _split_rows(rows, pairs.atom_offsets)


#: Upper end of the reduced distances ``d_ij / (R_i + R_j)`` that :func:`mass_weighted_pdf_chunk` bins.
REDUCED_DISTANCE_MAX = 2.0


def _reduced_distance_blocks(
    pairs: HalfPairs,
    numbers: Sequence[np.ndarray],
    keep: np.ndarray,
    n_bins: int,
    relative_masses: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Per-atom counts float64 ``(n_atoms, n_bins)`` of neighbours by reduced distance ``d_ij / (R_i + R_j)``
    (covalent radii) in ``n_bins`` equal bins over ``[0, REDUCED_DISTANCE_MAX)``; pairs beyond it, or not in
    ``keep`` (outside the g(r) cutoff), are left out. With ``relative_masses`` (``m / m̄`` per atom, each
    over its structure's mean; float ``(n_atoms,)``) a second block follows, the same counts with each pair
    weighted by ``sqrt(m̄ / (2 μ_ij)) = sqrt((r_i + r_j) / (2 r_i r_j))``, ``μ_ij`` its reduced mass: 1 for
    every pair of an element crystal."""
    pair_atoms = pairs.pair_atoms
    radii = covalent_radii[np.concatenate([np.asarray(z, dtype=np.int64) for z in numbers])]
    reduced = pairs.distances / radii[pair_atoms].sum(axis=1)
    bins = np.minimum((reduced * (n_bins / REDUCED_DISTANCE_MAX)).astype(np.int64), n_bins - 1)
    counted = keep & (reduced < REDUCED_DISTANCE_MAX)
    pair_weights = [None]
    if relative_masses is not None:
        first, second = relative_masses[pair_atoms].T
        pair_weights.append(np.sqrt((first + second) / (2.0 * first * second)))
    return [pairs.bincount(bins, counted, n_bins, w).astype(np.float64) for w in pair_weights]


def simple_rdf_chunk(
    systems: Sequence[System],
    *,
    r_max: float,
    bin_width: float,
    sigma_bins: float,
    periodic: bool,
    first_index: int = 0,
) -> list[np.ndarray]:
    """:func:`simple_rdf` of many structures at once: float64 ``(n_atoms_i, n_bins)`` per structure (Å⁻³)."""
    n_bins = bin_count(r_max, bin_width)
    edges = _edges(r_max, bin_width)
    volume_shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)  # the original's expression
    upper = min(r_max, float(edges[-1]))  # the original keeps d <= r_max, numpy.histogram d <= last edge

    def histogram_bins(d: np.ndarray) -> np.ndarray:
        # numpy.histogram with explicit edges: [e_k, e_k+1), the last bin closed.
        return np.minimum(np.searchsorted(edges, d, side="right") - 1, n_bins - 1)

    if periodic:
        pairs = HalfPairs(systems, r_max + _CUTOFF_MARGIN, first_index)
        d = pairs.distances
        keep = (d <= upper) & (d > SIMPLE_RDF_MIN_DISTANCE)
        counts = pairs.bincount(histogram_bins(d), keep, n_bins)
        offsets = pairs.atom_offsets
    else:
        check_systems(systems, first_index)  # as HalfPairs does: the same inputs refused on both paths
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


# ----------------------------------------------------------------------------------- one crystal


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
    system = as_system(atoms, "<atoms>")
    return pdf_chunk([system], r_max=r_max, bin_width=bin_width, sigma_bins=sigma_bins, legacy=legacy)[0]


def pair_counts(atoms: Atoms, r_max: float = 10.0, bin_width: float = 0.1) -> np.ndarray:
    """Integer neighbour counts per atom and shell: int64 ``(n_atoms, n_bins)``.

    ``counts[i, k]`` is the number of atoms (periodic images included, the atom itself excluded) at
    distance ``k Δ ≤ d < (k + 1) Δ`` Å from atom ``i``: the unsmoothed, unnormalised histogram behind
    the default :func:`atomic_pdf`. ``counts[i, :k].sum()`` is the coordination number within ``k Δ``.
    """
    system = as_system(atoms, "<atoms>")
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
    system = as_system(atoms, "<atoms>")
    return simple_rdf_chunk(
        [system], r_max=r_max, bin_width=bin_width, sigma_bins=sigma_bins, periodic=periodic
    )[0]
