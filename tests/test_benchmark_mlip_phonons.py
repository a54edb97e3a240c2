"""``benchmarks/mlip_phonons.py``: finite-displacement phonon DOS of a crystal under an ASE calculator, on the
dataset's grid (checked with ASE's EMT, which needs no machine-learned potential)."""

from __future__ import annotations

import numpy as np
import pytest


def test_emt_copper_phonon_dos_is_physical_and_scales_as_one_over_root_mass(benchmark_script):
    """fcc Cu under EMT: a peak-normalised DOS with its top below 300 cm⁻¹ (Cu's measured maximum is
    ~240 cm⁻¹) and ω̄ near 175 cm⁻¹; the same crystal with four times the mass has ω̄ halved (harmonic
    frequencies scale as 1/√m, the same force constants), and the input crystal is left unrelaxed."""
    from ase.build import bulk

    from s2p_utils.metrics import mean_frequency

    module = benchmark_script("mlip_phonons")
    grid = np.linspace(0.0, 1000.0, 51)
    copper = bulk("Cu", "fcc", a=3.6)
    copper.rattle(0.02, seed=1)
    positions = copper.positions.copy()
    dos = module.phonon_dos(copper, module.load_calculator("emt"), grid, min_length=7.0, kpts=8)
    np.testing.assert_array_equal(copper.positions, positions)
    assert dos.shape == (51,) and dos.max() == pytest.approx(1.0) and dos.min() >= 0.0
    assert np.all(dos[grid > 300.0] < 1e-3) and dos[grid < 300.0].sum() > 5.0
    omega = mean_frequency(grid, dos)
    assert 140.0 < omega < 210.0
    heavy = bulk("Cu", "fcc", a=3.6)
    heavy.set_masses(4.0 * heavy.get_masses())
    heavy_dos = module.phonon_dos(heavy, module.load_calculator("emt"), grid, min_length=7.0, kpts=8)
    assert mean_frequency(grid, heavy_dos) / mean_frequency(grid, dos) == pytest.approx(0.5, rel=0.05)


def test_supercell_sample_and_calculator_choices(benchmark_script):
    module = benchmark_script("mlip_phonons")
    assert module.supercell_for(np.array([2.5, 9.0, 12.0]), 9.0) == (4, 1, 1)
    rows = np.arange(100, 152)
    drawn = module.sample_rows(rows, 10, seed=3)
    assert len(drawn) == 10 and len(set(drawn)) == 10 and set(drawn) <= set(rows)
    np.testing.assert_array_equal(drawn, module.sample_rows(rows, 10, seed=3))
    np.testing.assert_array_equal(module.sample_rows(rows, 80, seed=3), rows)
    with pytest.raises(ValueError, match="unknown calculator"):
        module.load_calculator("vasp")


def test_score_table_adds_the_plain_mean_of_the_spectra(benchmark_script):
    """Two predictions whose errors cancel: each scores an MSE of 0.01, their unweighted mean is exact."""
    module = benchmark_script("mlip_phonons")
    grid = np.linspace(0.0, 1000.0, 51)
    targets = np.exp(-(((grid - 300.0) / 80.0) ** 2))[None, :].repeat(3, axis=0)
    table = module.score_table(targets, grid, {"low": targets - 0.1, "high": targets + 0.1})
    lines = table.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| low", "| high", "| mean of the above"]
    mse = [float(line.split(" | ")[1]) for line in lines[2:]]
    assert mse[2] == pytest.approx(0.0, abs=1e-6) and mse[0] > 0.005 and mse[1] > 0.005
    shifted = np.exp(-(((grid - 340.0) / 80.0) ** 2))[None, :].repeat(3, axis=0)  # 40 cm⁻¹ stiffer
    bias = float(module.score_table(targets, grid, {"stiff": shifted}).splitlines()[2].split(" | ")[-1][:-2])
    assert bias == pytest.approx(40.0, abs=3.0)
    assert len(module.score_table(targets, grid, {"only": targets}).splitlines()) == 3


class CountingEMT:
    """ASE's EMT, counting force evaluations (a subclass would be cached by ASE the same way)."""

    def __new__(cls):
        from ase.calculators.emt import EMT

        class Counting(EMT):
            calls = 0

            def calculate(self, *args, **kwargs):
                type(self).calls += 1
                super().calculate(*args, **kwargs)

        return Counting()


def test_phonopy_backend_matches_ase_with_fewer_force_calls(benchmark_script):
    """fcc Cu under EMT: phonopy's symmetry-reduced displacements give the spectrum ASE's six per atom give
    (same force constants, same mesh and width), from fewer force evaluations; an unknown backend is refused."""
    pytest.importorskip("phonopy")
    from ase.build import bulk

    from s2p_utils.metrics import mean_frequency

    module = benchmark_script("mlip_phonons")
    grid = np.linspace(0.0, 1000.0, 51)
    spectra, calls = {}, {}
    for backend in ("ase", "phonopy"):
        calculator = CountingEMT()
        spectra[backend] = module.phonon_dos(
            bulk("Cu", "fcc", a=3.6), calculator, grid, min_length=7.0, kpts=8, backend=backend
        )
        calls[backend] = type(calculator).calls
    assert spectra["phonopy"].max() == pytest.approx(1.0)
    assert np.abs(spectra["phonopy"] - spectra["ase"]).max() < 0.05
    assert mean_frequency(grid, spectra["phonopy"]) == pytest.approx(
        mean_frequency(grid, spectra["ase"]), rel=0.01
    )
    assert calls["phonopy"] < calls["ase"]
    with pytest.raises(ValueError, match="unknown backend"):
        module.phonon_dos(bulk("Cu", "fcc", a=3.6), CountingEMT(), grid, backend="vasp")


def test_gaussian_dos_is_a_normalised_gaussian_per_mode(benchmark_script):
    """One mode at 300 cm⁻¹ with weight 1 and one imaginary mode (−50 cm⁻¹, off a grid starting at 0):
    a unit-area Gaussian of the given width centred on 300 cm⁻¹; weights scale the q-points."""
    module = benchmark_script("mlip_phonons")
    grid = np.linspace(0.0, 1000.0, 1001)
    dos = module.gaussian_dos(np.array([[300.0, -50.0]]), np.array([1.0]), grid, 10.0)
    assert grid[np.argmax(dos)] == pytest.approx(300.0)
    assert np.trapezoid(dos, grid) == pytest.approx(1.0, abs=1e-3)
    at_one_sigma = dos[np.searchsorted(grid, 310.0)] / dos.max()
    assert at_one_sigma == pytest.approx(np.exp(-0.5), rel=1e-3)
    two_points = module.gaussian_dos(np.array([[300.0], [600.0]]), np.array([0.25, 0.75]), grid, 10.0)
    assert two_points[600] / two_points[300] == pytest.approx(3.0, rel=1e-6)


def test_shard_is_parsed_and_range_checked(benchmark_script):
    module = benchmark_script("mlip_phonons")
    assert module.parse_shard("0/1") == (0, 1) and module.parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="--shard must be I/N"):
            module.parse_shard(bad)
    assert module.THZ_TO_CM == pytest.approx(33.35641, rel=1e-6)  # 1 THz = 10¹² s⁻¹ / c in cm⁻¹
    assert module.EV_TO_CM == pytest.approx(8065.544, rel=1e-6)
