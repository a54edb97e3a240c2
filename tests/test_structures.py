"""Reading and validating crystal structures (s2p_utils.data.structures)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from s2p_utils.data import read_structure as reexported_read_structure
from s2p_utils.data.structures import atoms_from_pymatgen_dict, read_structure, validate_structure


def pymatgen_dict(atoms: Atoms, labels: list[str] | None = None, species: bool = True) -> dict:
    """A pymatgen ``Structure.as_dict()``-style dictionary written by hand (no pymatgen needed)."""
    frac = atoms.get_scaled_positions(wrap=False)
    sites = []
    for k, (symbol, xyz) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)):
        site = {
            "label": labels[k] if labels else symbol,
            "xyz": xyz.tolist(),
            "abc": frac[k].tolist(),
            "properties": {},
        }
        if species:
            site["species"] = [{"element": symbol, "occu": 1}]
        sites.append(site)
    return {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0,
        "lattice": {"matrix": atoms.cell.array.tolist(), "pbc": [True, True, True]},
        "sites": sites,
    }


def assert_same_structure(a: Atoms, b: Atoms) -> None:
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_allclose(a.cell.array, b.cell.array, atol=1e-6)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)
    assert a.pbc.all() and b.pbc.all()


@pytest.fixture()
def nacl() -> Atoms:
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


def test_reexport():
    assert reexported_read_structure is read_structure


@pytest.mark.parametrize("filename,fmt", [("s.cif", "cif"), ("POSCAR", "vasp"), ("s.extxyz", "extxyz")])
def test_reads_ase_formats(tmp_path, nacl, filename, fmt):
    path = tmp_path / filename
    ase.io.write(path, nacl, format=fmt)
    atoms = read_structure(path)
    assert isinstance(atoms, Atoms)
    assert atoms.get_chemical_formula() == nacl.get_chemical_formula()
    assert abs(atoms.get_volume() - nacl.get_volume()) < 1e-4
    np.testing.assert_allclose(
        np.sort(atoms.get_all_distances(mic=True).ravel()),
        np.sort(nacl.get_all_distances(mic=True).ravel()),
        atol=1e-5,
    )


def test_reads_pymatgen_json(tmp_path, nacl):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(pymatgen_dict(nacl)))
    assert_same_structure(read_structure(path), nacl)


def test_reads_mat2spec_wrapper_and_gzip(tmp_path, nacl):
    wrapper = {"structure": pymatgen_dict(nacl), "original_dos": [[0.0, 1.0], [0.0, 0.5]]}
    path = tmp_path / "dos_mp-22862.json"
    path.write_text(json.dumps(wrapper))
    assert_same_structure(read_structure(path), nacl)
    gz = tmp_path / "dos_mp-22862.json.gz"
    gz.write_bytes(gzip.compress(json.dumps(wrapper).encode()))
    assert_same_structure(read_structure(gz), nacl)


def test_pymatgen_labels_with_charges_and_ordinals(nacl):
    labels = ["Na+" if s == "Na" else "Cl1" for s in nacl.get_chemical_symbols()]
    atoms = atoms_from_pymatgen_dict(pymatgen_dict(nacl, labels=labels, species=False))
    assert atoms.get_chemical_symbols() == nacl.get_chemical_symbols()
    # species[0].element wins over a misleading label
    atoms = atoms_from_pymatgen_dict(pymatgen_dict(nacl, labels=["X"] * len(nacl)))
    assert atoms.get_chemical_symbols() == nacl.get_chemical_symbols()


def test_pymatgen_fractional_coordinates_only(nacl):
    d = pymatgen_dict(nacl)
    for site in d["sites"]:
        del site["xyz"]
    assert_same_structure(atoms_from_pymatgen_dict(d), nacl)


def test_pymatgen_fe2plus_species():
    fe = bulk("Fe", "bcc", a=2.87, cubic=True)
    d = pymatgen_dict(fe, labels=["Fe2+", "Fe1"])
    d["sites"][0]["species"] = [{"element": "Fe", "oxidation_state": 2.0, "occu": 1}]
    assert atoms_from_pymatgen_dict(d).get_chemical_symbols() == ["Fe", "Fe"]


def test_validate_returns_same_object(nacl):
    assert validate_structure(nacl) is nacl


# ------------------------------------------------------------------------------- bad input


def write_json(path: Path, content) -> Path:
    path.write_text(json.dumps(content))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.cif.*no such file"):
        read_structure(tmp_path / "nope.cif")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.cif"
    path.write_text("  \n")
    with pytest.raises(ValueError, match=r"empty\.cif.*empty file"):
        read_structure(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "garbage.cif"
    path.write_text("this is not a crystal structure\n" * 3)
    with pytest.raises(ValueError, match=r"garbage\.cif.*unreadable"):
        read_structure(path)


def test_unreadable_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"lattice": ')
    with pytest.raises(ValueError, match=r"broken\.json.*unreadable JSON"):
        read_structure(path)


def test_no_atoms(tmp_path, nacl):
    d = pymatgen_dict(nacl)
    d["sites"] = []
    with pytest.raises(ValueError, match=r"none\.json.*no atoms"):
        read_structure(write_json(tmp_path / "none.json", d))


def test_non_periodic(tmp_path):
    path = tmp_path / "molecule.xyz"
    ase.io.write(path, Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), format="xyz")
    with pytest.raises(ValueError, match=r"molecule\.xyz.*not periodic"):
        read_structure(path)
    with pytest.raises(ValueError, match="not periodic"):
        validate_structure(Atoms("Cu", cell=[3, 3, 3], pbc=[True, True, False]))


def test_zero_volume(tmp_path, nacl):
    d = pymatgen_dict(nacl)
    d["lattice"]["matrix"][2] = [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"flat\.json.*zero volume"):
        read_structure(write_json(tmp_path / "flat.json", d))


def test_nan_coordinates(tmp_path, nacl):
    d = pymatgen_dict(nacl)
    d["sites"][3]["xyz"][1] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(d))  # Python's json writes NaN
    with pytest.raises(ValueError, match=r"nan\.json.*NaN.*atom 3"):
        read_structure(path)


def test_atoms_too_close(tmp_path):
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [0.3, 0, 0]], cell=[5, 5, 5], pbc=True)
    path = tmp_path / "close.json"
    write_json(path, pymatgen_dict(atoms))
    with pytest.raises(ValueError, match=r"close\.json.*0\.300 Å.*closer than 0\.5"):
        read_structure(path)


def test_atom_too_close_to_its_own_image():
    with pytest.raises(ValueError, match="periodic image of itself"):
        validate_structure(Atoms("Cu", cell=[0.4, 4, 4], pbc=True), "tiny cell")


def test_disordered_site(nacl):
    d = pymatgen_dict(nacl)
    d["sites"][0]["species"] = [{"element": "Na", "occu": 0.5}, {"element": "K", "occu": 0.5}]
    with pytest.raises(ValueError, match="disordered"):
        atoms_from_pymatgen_dict(d, "x.json")


def test_unknown_element_label(nacl):
    d = pymatgen_dict(nacl, labels=["Qq"] * len(nacl), species=False)
    with pytest.raises(ValueError, match="cannot determine the element of site 0"):
        atoms_from_pymatgen_dict(d, "x.json")


def test_reads_mirror_cifs(mirror):
    """Materials Project CIFs of the mirror read and validate; where the e3nn set has the same mp-id,
    the formula agrees and the volume is close (different DFT functionals: within 15 %)."""
    with gzip.open(mirror / "e3nn_phdos.json.gz", "rt") as stream:
        records = {r["id"]: r for r in json.load(stream)["records"]}
    checked = 0
    for path in sorted((mirror / "mp_binaries_cif").glob("*.cif"))[:40]:
        atoms = read_structure(path)
        record = records.get(path.stem)
        if record is None or len(record["structure"]["numbers"]) != len(atoms):
            continue
        reference = Atoms(numbers=record["structure"]["numbers"], cell=record["structure"]["cell"], pbc=True)
        assert atoms.get_chemical_formula() == reference.get_chemical_formula()
        assert abs(atoms.get_volume() - reference.get_volume()) < 0.15 * reference.get_volume()
        checked += 1
    assert checked >= 1


def test_read_structures_keeps_order_and_names_each_refused_file_in_one_or_two_processes(tmp_path):
    from s2p_utils.data.structures import read_structures

    crystals = [bulk("Cu", "fcc", a=3.6), bulk("NaCl", "rocksalt", a=5.64), bulk("Si", "diamond", a=5.43)]
    paths = []
    for k in range(70):  # enough for more than one work unit per process
        path = tmp_path / f"s{k}.cif"
        ase.io.write(path, crystals[k % 3], format="cif")
        paths.append(path)
    (tmp_path / "bad.cif").write_text("data_x\n_cell_length_a oops\n")
    paths[40:40] = [tmp_path / "bad.cif", tmp_path / "missing.cif"]
    serial = read_structures(paths)
    parallel = read_structures(paths, n_jobs=2)
    assert len(serial) == len(parallel) == 72
    for one, two, path in zip(serial, parallel, paths, strict=True):
        if path.name in ("bad.cif", "missing.cif"):
            assert isinstance(one, ValueError) and isinstance(two, ValueError)
            assert str(path) in str(one) and str(one) == str(two)
        else:
            assert one.get_chemical_formula() == two.get_chemical_formula()
            np.testing.assert_allclose(one.cell[:], two.cell[:])
    assert serial[42].get_chemical_formula() == crystals[40 % 3].get_chemical_formula()  # s40, after the two
