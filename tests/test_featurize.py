"""Per-atom PDFs (s2p_utils.pdf, s2p_utils.neighbours, s2p_utils.featurize): legacy bit-exactness, physics of the corrected PDF, batching."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.distance import cdist

import s2p_utils.featurize as featurize_module
import s2p_utils.neighbours as neighbours
import s2p_utils.pdf as pdf_module
from s2p_utils.cli.featurize import cmd_featurize
from s2p_utils.featurize import featurize
from s2p_utils.pdf import FEATURIZER_VERSION, atomic_pdf, pair_counts, shell_volumes, simple_rdf

# ------------------------------------------------------------------ the original recipes (references)

_R = np.arange(0, 10, 0.1)
_V = np.concatenate([[1], 4 * np.pi / 3 * (_R[1:] ** 3 - _R[:-1] ** 3)])


def original_pdf(atoms: Atoms) -> np.ndarray:
    """The authors' ``getpdf`` (create_input_data.ipynb), verbatim in substance."""
    i, d = neighbor_list("id", atoms, 10.0, self_interaction=False)
    rows = []
    for k in range(len(atoms)):
        y = np.zeros(100)
        dist = np.round(d[i == k] * 10)
        a, b = np.unique(dist, return_counts=True)
        np.put(y, a.astype(int) - 1, b)
        rows.append(gaussian_filter1d(y / _V, 1))
    return np.asarray(rows)


def original_simple_rdf(coordinates: np.ndarray) -> np.ndarray:
    """The authors' ``calculate_rdf`` (embed_mat2spec_simpleRDF.ipynb) for every atom."""

    def calculate_rdf(coordinates, reference_index, bin_width=0.1, cutoff_radius=10):
        reference_particle = coordinates[reference_index]
        distances = cdist([reference_particle], coordinates).flatten()
        valid_distances = distances[(distances <= cutoff_radius) & (distances > 0.3)]
        rdf, edges = np.histogram(valid_distances, bins=np.arange(0, cutoff_radius + bin_width, bin_width))
        volume_shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
        rdf = rdf / (volume_shell)
        return gaussian_filter1d(rdf, 1)

    return np.array([calculate_rdf(coordinates, c) for c in range(len(coordinates))])


def image_distances(atoms: Atoms, r_max: float) -> list[np.ndarray]:
    """Brute force: for each atom, distances to every other atom and periodic image closer than r_max.

    (The test cells avoid distances on bin edges, where the last ulp could move a count by one bin.)
    """
    cell = atoms.cell.array
    positions = atoms.get_positions(wrap=True)
    reach = np.ceil(r_max * np.linalg.norm(np.linalg.inv(cell).T, axis=1)).astype(int) + 1
    grid = np.stack(np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij"), -1).reshape(-1, 3)
    images = (positions[None, :, :] + (grid @ cell)[:, None, :]).reshape(-1, 3)
    out = []
    for p in positions:
        d = np.linalg.norm(images - p, axis=1)
        out.append(d[(d > 1e-8) & (d < r_max)])
    return out


# --------------------------------------------------------------------------------- test crystals


def random_crystal(seed: int, n_atoms: int, cell: np.ndarray, min_distance: float = 1.3) -> Atoms:
    rng = np.random.default_rng(seed)
    atoms = Atoms(cell=cell, pbc=True)
    symbols = ["Mg", "O", "Si", "Ti", "Ba", "N"]
    while len(atoms) < n_atoms:
        trial = atoms.copy()
        trial.append(symbols[len(atoms) % len(symbols)])
        trial.positions[-1] = rng.random(3) @ cell
        if len(trial) == 1 or (trial.get_distances(-1, range(len(trial) - 1), mic=True) > min_distance).all():
            if len(trial) == 1 or _min_image_distance(trial) > min_distance:
                atoms = trial
    return atoms


def _min_image_distance(atoms: Atoms) -> float:
    _, d = neighbor_list("id", atoms, 3.0, self_interaction=False)
    return float(d.min()) if len(d) else np.inf


def varied_crystals() -> dict[str, Atoms]:
    rng = np.random.default_rng(7)
    crystals = {
        "Cu fcc (1 atom)": bulk("Cu", "fcc", a=3.615),
        "Fe bcc (1 atom)": bulk("Fe", "bcc", a=2.87),
        "Po simple cubic (1 atom)": bulk("Po", "sc", a=3.35),
        "Cu fcc conventional": bulk("Cu", "fcc", a=3.615, cubic=True),
        "NaCl rocksalt": bulk("NaCl", "rocksalt", a=5.64),
        "CsCl": bulk("CsCl", "cesiumchloride", a=4.12),
        "Si diamond": bulk("Si", "diamond", a=5.431),
        "ZnS zincblende": bulk("ZnS", "zincblende", a=5.41),
        "ZnO wurtzite": bulk("ZnO", "wurtzite", a=3.25, c=5.2),
        "Mg hcp": bulk("Mg", "hcp", a=3.21, c=5.21),
        "Ti hcp": bulk("Ti", "hcp", a=2.95, c=4.68),
        "Al orthorhombic": bulk("Al", "fcc", a=4.05, orthorhombic=True),
        "random triclinic": random_crystal(1, 6, np.array([[5.13, 0, 0], [1.3, 4.71, 0], [0.8, -1.1, 5.93]])),
        "needle cell": random_crystal(2, 5, np.array([[2.63, 0, 0], [0.4, 2.81, 0], [0.3, 0.2, 14.52]]), 1.2),
        "flat cell": random_crystal(3, 7, np.array([[9.04, 0, 0], [-3.1, 8.2, 0], [0.5, 0.4, 2.33]]), 1.2),
        "skewed (unreduced) cell": random_crystal(
            4, 3, np.array([[3.07, 0, 0], [9.4, 3.2, 0], [-5.8, 7.1, 3.4]])
        ),
        "large random cell": random_crystal(5, 24, np.diag([8.53, 9.07, 7.46]), 1.4),
        # a distance exactly on a rounding boundary (2.55 Å: 25.5 bins), and 2.45 Å (24.5 bins)
        "sc a=2.55 (rounding boundary)": bulk("Cu", "sc", a=2.55),
        "fcc nn=2.45 (rounding boundary)": bulk("Cu", "fcc", a=2.45 * np.sqrt(2)),
    }
    rattled = bulk("Si", "diamond", a=5.431, cubic=True).repeat((2, 1, 1))
    rattled.rattle(stdev=0.05, seed=3)
    crystals["Si rattled supercell"] = rattled
    nacl = bulk("NaCl", "rocksalt", a=5.64).repeat((2, 2, 2))
    nacl.rattle(stdev=0.08, seed=4)
    crystals["NaCl rattled 2x2x2"] = nacl
    unwrapped = bulk("ZnO", "wurtzite", a=3.25, c=5.2)
    unwrapped.positions += np.array([1.5, -2.0, 0.7]) @ unwrapped.cell.array + rng.normal(
        0, 0.01, (len(unwrapped), 3)
    )
    crystals["atoms outside the cell"] = unwrapped
    graphite = Atoms(
        "C4",
        scaled_positions=[[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
        cell=[[2.46, 0, 0], [-1.23, 2.13, 0], [0, 0, 6.7]],
        pbc=True,
    )
    crystals["graphite (layered)"] = graphite
    return crystals


CRYSTALS = varied_crystals()


def test_enough_varied_crystals():
    assert len(CRYSTALS) >= 20


# ------------------------------------------------------------------------------- legacy exactness


@pytest.mark.parametrize("name", list(CRYSTALS))
def test_legacy_pdf_equals_original_recipe(name):
    atoms = CRYSTALS[name]
    ours = atomic_pdf(atoms, legacy=True)
    reference = original_pdf(atoms)
    assert ours.dtype == np.float64 and ours.shape == (len(atoms), 100)
    assert np.array_equal(ours, reference)


def test_legacy_batch_equals_original_recipe():
    structures = list(CRYSTALS.values())
    batch = featurize(structures, legacy=True, progress=False)
    for atoms, rows in zip(structures, batch, strict=True):
        assert np.array_equal(rows, original_pdf(atoms))


def test_rounding_boundary_uses_ase_distances(monkeypatch):
    calls = []
    real = pdf_module._legacy_counts_ase

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf_module, "_legacy_counts_ase", spy)
    atoms = CRYSTALS["sc a=2.55 (rounding boundary)"]
    assert np.array_equal(atomic_pdf(atoms, legacy=True), original_pdf(atoms))
    assert calls, "a distance on a rounding boundary must be recomputed with ASE's neighbour list"
    calls.clear()
    atomic_pdf(CRYSTALS["random triclinic"], legacy=True)
    assert not calls


def test_public_vesin_fallback_gives_same_result(monkeypatch):
    structures = [CRYSTALS[k] for k in ("Cu fcc (1 atom)", "random triclinic", "NaCl rattled 2x2x2")]
    fast = featurize(structures, legacy=True, progress=False)
    monkeypatch.setattr(neighbours, "_direct_functions", None)
    slow = featurize(structures, legacy=True, progress=False)
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(a, b)


def test_direct_vesin_call_is_in_use():
    """The installed vesin is the tested one: the fast path must not be lost silently."""
    assert neighbours.engine() == "vesin (direct C call)"


def test_fallback_warns_once(monkeypatch):
    def broken():
        raise RuntimeError("the layout of VesinOptions changed")

    monkeypatch.setattr(neighbours, "_direct_functions", neighbours._UNCHECKED)
    monkeypatch.setattr(neighbours, "_fallback_warned", False)
    monkeypatch.setattr(neighbours, "_load_direct", broken)
    atoms = CRYSTALS["NaCl rocksalt"]
    with pytest.warns(RuntimeWarning, match="VesinOptions changed.*public Python API") as record:
        first = atomic_pdf(atoms, legacy=True)
        atomic_pdf(atoms, legacy=True)
        featurize([atoms] * 3, legacy=True, progress=False)
    assert len([w for w in record if "public Python API" in str(w.message)]) == 1
    assert neighbours.engine() == "vesin (public API)"
    assert np.array_equal(first, original_pdf(atoms))


def test_legacy_matches_original_on_e3nn_structures(mirror):
    with gzip.open(mirror / "e3nn_phdos.json.gz", "rt") as stream:
        records = json.load(stream)["records"]
    structures = [
        Atoms(**{k: r["structure"][k] for k in ("numbers", "positions", "cell", "pbc")}) for r in records
    ]
    sample = structures[::40]  # 39 structures across the set
    for atoms, rows in zip(sample, featurize(sample, legacy=True, progress=False), strict=True):
        assert np.array_equal(rows, original_pdf(atoms))


# ----------------------------------------------------------------------- physics of the corrected PDF

PHYSICS = {
    # name: (crystal, nearest-neighbour distance Å, coordination number)
    "Cu": (bulk("Cu", "fcc", a=3.615), 3.615 / np.sqrt(2), 12),
    "NaCl": (bulk("NaCl", "rocksalt", a=5.64), 5.64 / 2, 6),
    "Si": (bulk("Si", "diamond", a=5.431), 5.431 * np.sqrt(3) / 4, 4),
}


@pytest.mark.parametrize("name", list(PHYSICS))
def test_first_shell_and_coordination(name):
    atoms, d_nn, coordination = PHYSICS[name]
    counts = pair_counts(atoms)
    assert counts.dtype == np.int64 and counts.shape == (len(atoms), 100)
    for row in counts:
        first = int(np.argmax(row > 0))
        centre = (first + 0.5) * 0.1
        assert abs(centre - d_nn) <= 0.05 + 1e-12  # the first occupied bin holds the nearest neighbour
        end = first + int(np.argmax(row[first:] == 0))  # first minimum after the first shell
        assert row[:end].sum() == coordination
    g = atomic_pdf(atoms, sigma_bins=0)
    density = len(atoms) / atoms.get_volume()
    # ∫ 4π r² ρ g(r) dr over the first shell = coordination number
    integral = (g * density * shell_volumes()).cumsum(axis=1)
    end = int(np.argmax(counts[0] > 0)) + 1
    np.testing.assert_allclose(integral[:, end], coordination, rtol=1e-12)
    smoothed = atomic_pdf(atoms)
    for row in smoothed:
        peak = next(
            k
            for k in range(1, 99)
            if row[k] > 0.5 * row.max() and row[k] >= row[k - 1] and row[k] >= row[k + 1]
        )
        assert abs((peak + 0.5) * 0.1 - d_nn) <= 0.1  # first peak within one bin of the nearest neighbour


@pytest.mark.parametrize("name", list(PHYSICS))
def test_g_tends_to_one(name):
    atoms = PHYSICS[name][0]
    g = atomic_pdf(atoms, sigma_bins=0)
    density = len(atoms) / atoms.get_volume()
    # neighbours within 10 Å ≈ ρ 4π/3 r³, i.e. g averages to 1
    neighbours = (g * density * shell_volumes()).sum(axis=1)
    np.testing.assert_allclose(neighbours / (density * 4 / 3 * np.pi * 10.0**3), 1.0, atol=0.1)


@pytest.mark.parametrize(
    "name", ["Po simple cubic (1 atom)", "Fe bcc (1 atom)", "random triclinic", "skewed (unreduced) cell"]
)
def test_pair_counts_match_brute_force_images(name):
    atoms = CRYSTALS[name]
    counts = pair_counts(atoms)
    for row, d in zip(counts, image_distances(atoms, 10.0), strict=True):
        expected = np.bincount(np.floor(d / 0.1).astype(int), minlength=100)
        np.testing.assert_array_equal(row, expected)


def test_one_atom_cell_counts_periodic_images():
    atoms = bulk("Po", "sc", a=3.35)
    counts = pair_counts(atoms)[0]
    shells = {3.35: 6, 3.35 * np.sqrt(2): 12, 3.35 * np.sqrt(3): 8, 6.7: 6}
    for distance, n in shells.items():
        assert counts[int(distance / 0.1)] == n
    assert atomic_pdf(atoms, legacy=True).any() and atomic_pdf(atoms).any()


def test_corrected_pdf_is_density_independent():
    small, large = bulk("Cu", "fcc", a=3.615), bulk("Cu", "fcc", a=3.615 * 1.001)
    # same shells, 0.3 % lower density: the legacy rows scale with ρ, g does not (up to binning)
    g_small, g_large = atomic_pdf(small)[0], atomic_pdf(large)[0]
    assert abs(g_small[60:].mean() - g_large[60:].mean()) < 0.05


def test_smoothing_options():
    atoms = CRYSTALS["NaCl rocksalt"]
    raw = atomic_pdf(atoms, sigma_bins=0)
    np.testing.assert_allclose(atomic_pdf(atoms, sigma_bins=2.0), gaussian_filter1d(raw, 2.0, mode="nearest"))
    density = len(atoms) / atoms.get_volume()
    np.testing.assert_allclose(raw * density * shell_volumes(), pair_counts(atoms), atol=1e-9)


def test_other_grids():
    atoms = CRYSTALS["Cu fcc (1 atom)"]
    assert atomic_pdf(atoms, r_max=6.0, bin_width=0.05).shape == (1, 120)
    np.testing.assert_array_equal(
        pair_counts(atoms, r_max=6.0, bin_width=0.2)[0, :20].sum(), 12 + 6
    )  # within 4 Å
    with pytest.raises(ValueError, match="multiple of bin_width"):
        atomic_pdf(atoms, r_max=10.0, bin_width=0.3)


# ------------------------------------------------------------------------------------- simple RDF


@pytest.mark.parametrize(
    "name", ["NaCl rocksalt", "random triclinic", "large random cell", "Cu fcc conventional"]
)
def test_simple_rdf_equals_original(name):
    atoms = CRYSTALS[name]
    assert np.array_equal(simple_rdf(atoms), original_simple_rdf(atoms.positions))


def test_simple_rdf_ignores_images_unless_periodic():
    atoms = CRYSTALS["Po simple cubic (1 atom)"]
    assert not simple_rdf(atoms).any()  # one atom, no images: nothing to count
    periodic = simple_rdf(atoms, periodic=True)
    (d,) = image_distances(atoms, 10.0 + 1e-9)
    d = d[(d > 0.3) & (d <= 10.0)]
    edges = np.arange(0, 10.1, 0.1)
    expected = np.histogram(d, bins=edges)[0] / (4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3))
    np.testing.assert_allclose(periodic[0], gaussian_filter1d(expected, 1), rtol=1e-12)


def test_featurize_simple_rdf_legacy_flag():
    structures = [CRYSTALS["NaCl rocksalt"], CRYSTALS["Mg hcp"]]
    legacy = featurize(structures, method="simple_rdf", legacy=True, progress=False)
    fixed = featurize(structures, method="simple_rdf", legacy=False, progress=False)
    for atoms, a, b in zip(structures, legacy, fixed, strict=True):
        assert np.array_equal(a, simple_rdf(atoms, periodic=False))
        assert np.array_equal(b, simple_rdf(atoms, periodic=True))


# ------------------------------------------------------------------------------------- bad input


def test_bad_structures_raise():
    with pytest.raises(ValueError, match="closer than 0.5"):
        atomic_pdf(Atoms("Cu2", positions=[[0, 0, 0], [0.2, 0, 0]], cell=[5, 5, 5], pbc=True))
    with pytest.raises(ValueError, match="not periodic"):
        atomic_pdf(Atoms("Cu", cell=[5, 5, 5], pbc=False))
    with pytest.raises(ValueError, match="no atoms"):
        atomic_pdf(Atoms(cell=[5, 5, 5], pbc=True))
    with pytest.raises(ValueError, match="zero volume"):
        atomic_pdf(Atoms("Cu", cell=[[5, 0, 0], [0, 5, 0], [5, 5, 0]], pbc=True))
    with pytest.raises(ValueError, match="NaN"):
        atomic_pdf(Atoms("Cu", positions=[[np.nan, 0, 0]], cell=[5, 5, 5], pbc=True))
    good = CRYSTALS["Cu fcc (1 atom)"]
    bad = Atoms("Cu2", positions=[[0, 0, 0], [0.2, 0, 0]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(ValueError, match="structure 2: atom 0 is 0.200 Å from atom 1"):
        featurize([good, good, bad], progress=False)
    with pytest.raises(ValueError, match="unknown featurization method"):
        featurize([good], method="soap", progress=False)


# ------------------------------------------------------------------------- parallelism and caching


def test_n_jobs_2_equals_n_jobs_1(monkeypatch):
    monkeypatch.setattr(featurize_module, "_MAX_CHUNK_ATOMS", 16)  # several chunks
    structures = list(CRYSTALS.values())
    for legacy in (True, False):
        serial = featurize(structures, legacy=legacy, n_jobs=1, progress=False)
        parallel = featurize(structures, legacy=legacy, n_jobs=2, progress=False)
        assert len(parallel) == len(structures)
        for a, b in zip(serial, parallel, strict=True):
            assert np.array_equal(a, b)


def test_dask_backend(monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    monkeypatch.setattr(featurize_module, "_MAX_CHUNK_ATOMS", 16)
    structures = list(CRYSTALS.values())[:8]
    serial = featurize(structures, legacy=True, progress=False)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster):
            result = featurize(structures, legacy=True, n_jobs=2, backend="dask", progress=False)
    for a, b in zip(serial, result, strict=True):
        assert np.array_equal(a, b)


def test_progress_bar(capsys):
    featurize([CRYSTALS["Cu fcc (1 atom)"]] * 3, progress=True)
    assert "3/3" in capsys.readouterr().err


def test_cache_roundtrip(tmp_path, monkeypatch):
    structures = [CRYSTALS[k] for k in ("NaCl rocksalt", "graphite (layered)", "Ti hcp")]
    first = featurize(structures, legacy=True, progress=False, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("features_pdf_")

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(featurize_module, "_run_chunk", fail)
    second = featurize(structures, legacy=True, progress=False, cache_dir=tmp_path)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)
    with np.load(files[0], allow_pickle=False) as stored:
        assert stored["offsets"].tolist() == [0, 2, 6, 8]
    # any change of inputs or options is a different key
    monkeypatch.undo()
    featurize(structures, legacy=False, progress=False, cache_dir=tmp_path)
    moved = [s.copy() for s in structures]
    moved[0].positions[0, 0] += 0.01
    featurize(moved, legacy=True, progress=False, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".npz"]  # no temporary files left behind
    assert FEATURIZER_VERSION >= 1


def test_corrupt_cache_is_recomputed(tmp_path):
    structures = [CRYSTALS["CsCl"]]
    featurize(structures, progress=False, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable feature cache"):
        again = featurize(structures, progress=False, cache_dir=tmp_path)
    assert np.array_equal(again[0], atomic_pdf(structures[0]))


# ------------------------------------------------------------------------------------------- CLI


def test_cmd_featurize(tmp_path, capsys):
    ase.io.write(tmp_path / "nacl.cif", bulk("NaCl", "rocksalt", a=5.64))
    ase.io.write(tmp_path / "POSCAR", bulk("Si", "diamond", a=5.431), format="vasp")
    (tmp_path / "bad.cif").write_text("")
    out = tmp_path / "features.npz"
    args = argparse.Namespace(
        files=[str(tmp_path / "nacl.cif"), str(tmp_path / "bad.cif"), str(tmp_path / "POSCAR")],
        out=str(out),
        method="pdf",
        legacy=True,
        n_jobs=1,
    )
    assert cmd_featurize(args) == 1  # one file failed
    assert "bad.cif: empty file" in capsys.readouterr().err
    with np.load(out, allow_pickle=False) as stored:
        assert [Path(p).name for p in stored["ids"]] == ["nacl.cif", "POSCAR"]
        assert stored["offsets"].tolist() == [0, 2, 4]
        assert stored["features"].shape == (4, 100)
        assert stored["tokens"].dtype == np.int32 and stored["tokens"].shape == (4,)
        np.testing.assert_array_equal(
            stored["features"][:2], original_pdf(ase.io.read(tmp_path / "nacl.cif"))
        )


def test_mass_weighted_pdf_equals_g_of_r_for_an_element_and_tells_heavy_from_light_neighbours():
    """``pdf_mass``: g(r) beside the neighbour-mass-weighted g(r) (weights m_j / mean mass)."""
    from ase.build import bulk

    copper = bulk("Cu", "fcc", a=3.61)
    plain, weighted = np.split(featurize([copper], method="pdf_mass", progress=False)[0], 2, axis=1)
    np.testing.assert_allclose(plain, atomic_pdf(copper), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weighted, plain, rtol=1e-12, atol=1e-12)
    salt = bulk("NaCl", "rocksalt", a=5.64)  # Na (23 u) first shell: Cl (35.45 u); Cl first shell: Na
    plain, weighted = np.split(featurize([salt], method="pdf_mass", progress=False)[0], 2, axis=1)
    first_shell = int(2.82 / 0.1)  # Na–Cl at a/2 = 2.82 Å (the Na–Na shell at 3.99 Å is as high)
    mean_mass = np.mean(salt.get_masses())
    na, cl = salt.get_masses()
    assert weighted[0, first_shell] / plain[0, first_shell] == pytest.approx(cl / mean_mass, rel=0.02)
    assert weighted[1, first_shell] / plain[1, first_shell] == pytest.approx(na / mean_mass, rel=0.02)
    with pytest.raises(ValueError, match="no legacy form"):
        featurize([salt], method="pdf_mass", legacy=True, progress=False)


def test_pdf_mass_freq_adds_the_inverse_sqrt_mass_block_which_separates_a_ternary():
    """``pdf_mass_freq``: g(r), the mass-weighted and the 1/√m-weighted g(r); for three elements the third
    block is not a linear combination of the first two (it is for one or two elements)."""
    from ase import Atoms
    from ase.build import bulk

    copper = bulk("Cu", "fcc", a=3.61)
    blocks = np.split(featurize([copper], method="pdf_mass_freq", progress=False)[0], 3, axis=1)
    for block in blocks[1:]:
        np.testing.assert_allclose(block, blocks[0], rtol=1e-12, atol=1e-12)
    salt = bulk("NaCl", "rocksalt", a=5.64)
    two = featurize([salt], method="pdf_mass", progress=False)[0]
    plain, weighted, light = np.split(featurize([salt], method="pdf_mass_freq", progress=False)[0], 3, axis=1)
    np.testing.assert_allclose(np.hstack([plain, weighted]), two, rtol=1e-12, atol=1e-12)
    first_shell = int(2.82 / 0.1)
    inverse = 1 / np.sqrt(salt.get_masses())
    assert light[0, first_shell] / plain[0, first_shell] == pytest.approx(
        inverse[1] / inverse.mean(), rel=0.02
    )

    def rank(structure) -> int:  # rank of the atoms' rows of the three blocks, stacked as vectors
        g, m, f = np.split(featurize([structure], method="pdf_mass_freq", progress=False)[0], 3, axis=1)
        return np.linalg.matrix_rank(np.stack([g.ravel(), m.ravel(), f.ravel()]), tol=1e-8 * np.abs(g).max())

    assert rank(salt) == 2
    perovskite = Atoms(  # cubic SrTiO3: Sr corner, Ti centre, O face centres
        "SrTiO3",
        scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)],
        cell=[3.9, 3.9, 3.9],
        pbc=True,
    )
    assert rank(perovskite) == 3
    with pytest.raises(ValueError, match="no legacy form"):
        featurize([salt], method="pdf_mass_freq", legacy=True, progress=False)


def blocks_beyond_pdf_mass_freq(atoms, method: str, n_blocks: int) -> list[np.ndarray]:
    """``method``'s rows of ``atoms`` split into ``n_blocks`` blocks, after checking that the first three are
    the rows of ``pdf_mass_freq``."""
    blocks = np.split(featurize([atoms], method=method, progress=False)[0], n_blocks, axis=1)
    expected = featurize([atoms], method="pdf_mass_freq", progress=False)[0]
    np.testing.assert_allclose(np.hstack(blocks[:3]), expected, rtol=1e-12, atol=1e-12)
    return blocks


def test_pdf_mass_period_adds_partial_pdfs_by_neighbour_period_which_sum_to_the_pdf():
    """``pdf_mass_period``: the 3 blocks of ``pdf_mass_freq`` and 4 partial g(r), one per neighbour period
    group (1; 2; 3; ≥ 4); the partials sum to g(r), and in NaCl an Na atom's first shell (Cl, period 3)
    is all in the period-3 block and its second shell (Na, period 3) too, while LiF splits them."""
    from ase.build import bulk

    salt = bulk("NaCl", "rocksalt", a=5.64)
    blocks = blocks_beyond_pdf_mass_freq(salt, "pdf_mass_period", 7)
    np.testing.assert_allclose(sum(blocks[3:]), blocks[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(blocks[5], blocks[0], rtol=1e-10, atol=1e-10)  # Na and Cl: both period 3
    lithium_fluoride = bulk("LiF", "rocksalt", a=4.03)  # Li and F: both period 2
    hydride = bulk("LiH", "rocksalt", a=4.08)  # Li period 2, H period 1
    g, _, _, period1, period2, period3, heavy = np.split(
        featurize([lithium_fluoride, hydride], method="pdf_mass_period", progress=False)[1], 7, axis=1
    )
    first_shell = int(2.04 / 0.1)  # Li–H at a/2
    assert period1[0, first_shell] == pytest.approx(g[0, first_shell], rel=1e-6)  # Li sees H first
    assert period2[0, first_shell] < 1e-3 * g[0, first_shell]
    assert np.abs(period3).max() == 0 and np.abs(heavy).max() == 0
    with pytest.raises(ValueError, match="no legacy form"):
        featurize([salt], method="pdf_mass_period", legacy=True, progress=False)


def reduced_distance_block_by_brute_force(atoms, reduced_mass_weighted: bool = False) -> np.ndarray:
    """Each atom's neighbours by d / (R_i + R_j) (covalent radii) in 100 bins over [0, 2), smoothed like the
    featurizer's blocks, by a loop over ASE's neighbour list: float ``(n_atoms, 100)``; with
    ``reduced_mass_weighted`` each pair counts sqrt(m̄ / 2μ_ij), μ_ij its reduced mass."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list
    from scipy.ndimage import gaussian_filter1d

    first, second, distance = neighbor_list("ijd", atoms, 10.0)
    radii, masses = covalent_radii[atoms.numbers], atoms.get_masses()
    rows = []
    for atom in range(len(atoms)):
        mine = first == atom
        reduced = distance[mine] / (radii[atom] + radii[second[mine]])
        weights = np.ones(len(reduced))
        if reduced_mass_weighted:
            mu = masses[atom] * masses[second[mine]] / (masses[atom] + masses[second[mine]])
            weights = np.sqrt(masses.mean() / (2 * mu))
        inside = reduced < 2.0
        counts = np.bincount((reduced[inside] / 0.02).astype(int), weights=weights[inside], minlength=100)
        rows.append(gaussian_filter1d(counts[:100], 1.0, mode="nearest", truncate=4.0))
    return np.array(rows)


def test_pdf_mass_bond_counts_neighbours_by_reduced_distance():
    """``pdf_mass_bond``: the 3 blocks of ``pdf_mass_freq`` and the counts of each atom's neighbours by
    d / (R_i + R_j) (covalent radii) in 100 bins over [0, 2), smoothed like the other blocks; a brute-force
    loop over ASE's neighbour list gives the same block, and a compressed crystal moves it to shorter x."""
    from ase.build import bulk

    salt = bulk("NaCl", "rocksalt", a=5.64) * (1, 1, 2)
    blocks = blocks_beyond_pdf_mass_freq(salt, "pdf_mass_bond", 4)
    np.testing.assert_allclose(blocks[3], reduced_distance_block_by_brute_force(salt), rtol=1e-9, atol=1e-9)
    copper = featurize(
        [bulk("Cu", "fcc", a=3.61), bulk("Cu", "fcc", a=3.45)], method="pdf_mass_bond", progress=False
    )
    relaxed, squeezed = (int(np.argmax(np.split(c, 4, axis=1)[3][0])) for c in copper)
    assert squeezed < relaxed  # 12 nearest neighbours at a/√2 = 2.44 Å vs 2.55 Å, 2 R_Cu = 2.64 Å
    with pytest.raises(ValueError, match="no legacy form"):
        featurize([salt], method="pdf_mass_bond", legacy=True, progress=False)


def test_pdf_mass_bond_freq_weights_the_bond_block_by_the_pairs_reduced_mass():
    """``pdf_mass_bond_freq``: the 4 blocks of ``pdf_mass_bond`` and the reduced-distance counts with each
    pair weighted by sqrt(m̄ / 2μ_ij) (brute force over ASE's neighbour list); for an element crystal the
    fifth block equals the fourth, and in LiH it differs from it."""
    from ase.build import bulk

    hydride = bulk("LiH", "rocksalt", a=4.08) * (1, 1, 2)
    blocks = np.split(featurize([hydride], method="pdf_mass_bond_freq", progress=False)[0], 5, axis=1)
    bond = featurize([hydride], method="pdf_mass_bond", progress=False)[0]
    np.testing.assert_allclose(np.hstack(blocks[:4]), bond, rtol=1e-12, atol=1e-12)
    expected = reduced_distance_block_by_brute_force(hydride, reduced_mass_weighted=True)
    np.testing.assert_allclose(blocks[4], expected, rtol=1e-9, atol=1e-9)
    assert not np.allclose(blocks[4], blocks[3])
    copper = np.split(
        featurize([bulk("Cu", "fcc", a=3.61)], method="pdf_mass_bond_freq", progress=False)[0], 5, axis=1
    )
    np.testing.assert_allclose(copper[4], copper[3], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="no legacy form"):
        featurize([hydride], method="pdf_mass_bond_freq", legacy=True, progress=False)
    from s2p_utils.pdf import mass_weighted_pdf_chunk

    system = (hydride.positions, hydride.cell.array, hydride.pbc)
    for bad in (3, True, -1):  # a count of reduced-distance blocks, 0, 1 or 2
        with pytest.raises(ValueError, match="bond_blocks must be 0, 1 or 2"):
            mass_weighted_pdf_chunk(
                [system],
                [hydride.get_masses()],
                numbers=[hydride.numbers],
                r_max=10.0,
                bin_width=0.1,
                sigma_bins=1.0,
                bond_blocks=bad,
            )
    with pytest.raises(ValueError, match="need the atomic numbers"):
        mass_weighted_pdf_chunk(
            [system], [hydride.get_masses()], r_max=10.0, bin_width=0.1, sigma_bins=1.0, bond_blocks=1
        )


def linear_deposit(distances: np.ndarray, n_bins: int = 100, width: float = 0.1) -> np.ndarray:
    """Brute force cloud-in-cell: each distance split between the two nearest bin centres (k + ½)Δ."""
    out = np.zeros(n_bins)
    for d in distances:
        x = d / width - 0.5
        k = int(np.floor(x))
        upper = x - k
        out[min(max(k, 0), n_bins - 1)] += 1 - upper
        out[min(max(k + 1, 0), n_bins - 1)] += upper
    return out


@pytest.mark.parametrize("name", ["Fe bcc (1 atom)", "random triclinic", "skewed (unreduced) cell"])
def test_linear_deposit_matches_brute_force_cloud_in_cell(name):
    """``deposit="linear"``: every neighbour image within r_max shares one count between the two bin
    centres that bracket it (checked against a brute-force loop over images), for g(r) and the
    mass-weighted blocks alike; ``"floor"`` stays :func:`atomic_pdf`."""
    atoms = CRYSTALS[name]
    density = len(atoms) / atoms.get_volume()
    rows = featurize([atoms], method="pdf_mass_freq", deposit="linear", progress=False)[0]
    assert rows.shape == (len(atoms), 300)
    unsmoothed = pdf_module.mass_weighted_pdf_chunk(
        [neighbours.as_system(atoms, "x")],
        [atoms.get_masses()],
        r_max=10.0,
        bin_width=0.1,
        sigma_bins=0.0,
        mass_powers=(),
        deposit="linear",
    )[0]
    for row, d in zip(unsmoothed * density * shell_volumes(), image_distances(atoms, 10.0), strict=True):
        np.testing.assert_allclose(row, linear_deposit(d), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        rows[:, :100], gaussian_filter1d(unsmoothed, 1.0, mode="nearest", truncate=4.0), atol=1e-12
    )
    floor = featurize([atoms], method="pdf", deposit="floor", progress=False)[0]
    np.testing.assert_array_equal(floor, atomic_pdf(atoms))
    assert not np.allclose(floor, featurize([atoms], method="pdf", deposit="linear", progress=False)[0])


def test_linear_deposit_keeps_sub_bin_bond_lengths():
    """Floor binning cannot tell NaCl at a = 5.64 and 5.68 Å apart (equal pair counts up to 3.5 Å: both
    first shells, 2.82 and 2.84 Å, fall in the bin [2.8, 2.9)); the linear deposit places each first
    shell's weighted bin centre on the bond length itself, and keeps the coordination number."""
    centres = (np.arange(100) + 0.5) * 0.1
    first_shell = slice(26, 31)
    floor_rows, linear_centres = [], []
    for a in (5.64, 5.68):
        salt = bulk("NaCl", "rocksalt", a=a)
        density = len(salt) / salt.get_volume()
        floor_rows.append(pair_counts(salt))
        counts = featurize([salt], method="pdf", deposit="linear", sigma_bins=0, progress=False)[0][0]
        counts = counts * density * shell_volumes()
        assert counts[first_shell].sum() == pytest.approx(6.0, rel=1e-12)
        linear_centres.append((counts[first_shell] * centres[first_shell]).sum() / 6.0)
    np.testing.assert_array_equal(floor_rows[0][:, :35], floor_rows[1][:, :35])  # up to 3.5 Å
    np.testing.assert_allclose(linear_centres, [2.82, 2.84], atol=1e-9)


def test_linear_deposit_refuses_the_legacy_and_simple_rdf_featurizers():
    salt = bulk("NaCl", "rocksalt", a=5.64)
    with pytest.raises(ValueError, match="corrected g\\(r\\) only"):
        featurize([salt], method="pdf", legacy=True, deposit="linear", progress=False)
    with pytest.raises(ValueError, match="corrected g\\(r\\) only"):
        featurize([salt], method="simple_rdf", deposit="linear", progress=False)
    with pytest.raises(ValueError, match="unknown deposit"):
        featurize([salt], method="pdf", deposit="nearest", progress=False)
