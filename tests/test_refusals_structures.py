"""What the readers refuse (issue 12), without TensorFlow: degenerate cells, disorder, bad atomic numbers,
decompression bombs, lying pickles, and cache/results paths that are files."""

from __future__ import annotations

import gzip
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write

from s2p_utils.data import structures
from s2p_utils.data.structures import atoms_from_pymatgen_dict, read_structure, validate_structure
from s2p_utils.featurize import featurize

ELONGATED_CHILD = """
from ase import Atoms
from s2p_utils.data.structures import validate_structure
from s2p_utils.featurize import featurize
atoms = Atoms("Cu", cell=[0.6, 0.6, 1e6], pbc=True)
for check in (validate_structure, lambda a: featurize([a], progress=False)):
    try:
        check(atoms)
        print("accepted")
    except ValueError as error:
        print(error)
"""


def test_elongated_cell_is_refused_before_the_neighbour_search():
    """Item 1: vesin dies with SIGFPE (exit 136) on this cell; a child process keeps pytest alive if it does."""
    repo = Path(__file__).resolve().parents[1]
    child = subprocess.run(
        [sys.executable, "-c", ELONGATED_CHILD], capture_output=True, text=True, timeout=120, cwd=repo
    )
    assert child.returncode == 0, child.stderr[-2000:]
    lines = child.stdout.strip().splitlines()
    assert len(lines) == 2 and all("too elongated" in line for line in lines), lines


@pytest.mark.parametrize(
    ("atoms", "reason"),
    [
        (Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[1e8] * 3, pbc=True), "atoms per Å³"),
        (Atoms("Cu", cell=[[3, 0, 0], [0, 3, 0], [0, 300, 0.01]], pbc=True), "thin between two faces"),
        (Atoms("Cu", cell=[1.0, 1.0, 300.0], pbc=True), "too elongated"),
    ],
    ids=["two Cu in a 1e8 Å box", "skewed 0.01 Å-thin cell", "aspect 300"],
)
def test_degenerate_cells_are_refused_on_every_path(atoms, reason):
    """Items 1 and 13: checked by validate_structure and again by the featurizer, before vesin runs."""
    with pytest.raises(ValueError, match=reason):
        validate_structure(atoms, "x")
    with pytest.raises(ValueError, match=f"structure 0: .*{reason}"):
        featurize([atoms], progress=False)


def test_thin_but_valid_skewed_cell_is_accepted():
    """A skewed setting of a valid crystal (height 0.36 Å, no atom pair closer than 0.5 Å) still passes."""
    cell = np.array([[3.07, 0, 0], [9.4, 3.2, 0], [-5.8, 7.1, 3.4]])
    atoms = Atoms("Cu", cell=cell, pbc=True)
    assert structures.cell_heights(cell).min() < 0.5
    assert validate_structure(atoms) is atoms


@pytest.mark.parametrize("number", [-1, 999])
def test_atomic_numbers_outside_the_periodic_table(number):
    """Item 13: negative Z was accepted, Z = 999 gave an IndexError traceback later."""
    atoms = Atoms(numbers=[number], cell=[3, 3, 3], pbc=True)
    with pytest.raises(ValueError, match=f"atomic number {number}; elements have Z = 1…118"):
        validate_structure(atoms, "x")


def test_atomic_number_999_in_the_e3nn_csv(tmp_path):
    """Item 13: a CSV row with Z = 999 names the file and row instead of a traceback."""
    from upstream_fixtures import make_e3nn_csv

    from s2p_utils.data.converters import convert_e3nn_csv

    path = tmp_path / "data.csv"
    make_e3nn_csv(path, 3, split_files=False)
    text = path.read_text()
    edited = re.sub(r"(numbers['\"]?: \[)\d+", r"\g<1>999", text, count=1)
    assert edited != text
    path.write_text(edited)
    with pytest.raises(ValueError, match=r"data\.csv: data row 0 .*atomic number 999"):
        convert_e3nn_csv(path)


DISORDERED_CIF = """data_test
_cell_length_a 3.0
_cell_length_b 3.0
_cell_length_c 3.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
{sites}
"""
MIXED = "Fe1 Fe 0 0 0 0.5\nCo1 Co 0 0 0 0.5\nO1 O 0.5 0.5 0.5 1.0"
VACANCY = "Fe1 Fe 0 0 0 1.0\nO1 O 0.5 0.5 0.5 0.9"
ORDERED = re.compile(r"site \S+ .*(disordered|occupancy 0\.9).*only ordered structures are supported")


@pytest.mark.parametrize("sites", [MIXED, VACANCY], ids=["Fe 0.5 / Co 0.5", "O 0.9"])
def test_partial_occupancy_is_refused_on_every_reader_path(tmp_path, sites):
    """Item 3: CIF (whose reader silently kept one species), extxyz and pymatgen JSON, one rule."""
    cif = tmp_path / "x.cif"
    cif.write_text(DISORDERED_CIF.format(sites=sites))
    with pytest.raises(ValueError, match=ORDERED):
        read_structure(cif)
    import ase.io

    xyz = tmp_path / "x.xyz"
    write(xyz, ase.io.read(cif), format="extxyz")  # ASE keeps the occupancies in the extxyz comment line
    with pytest.raises(ValueError, match=ORDERED):
        read_structure(xyz)
    species = (
        [{"element": "Fe", "occu": 0.5}, {"element": "Co", "occu": 0.5}]
        if sites is MIXED
        else [{"element": "O", "occu": 0.9}]
    )
    site = {"species": species, "xyz": [0.0, 0.0, 0.0], "label": species[0]["element"]}
    document = {"lattice": {"matrix": np.diag([3.0, 3.0, 3.0]).tolist()}, "sites": [site]}
    with pytest.raises(ValueError, match=ORDERED):
        atoms_from_pymatgen_dict(document, "x.json")


def test_ordered_cif_with_full_occupancy_is_read(tmp_path):
    cif = tmp_path / "ok.cif"
    cif.write_text(DISORDERED_CIF.format(sites="Fe1 Fe 0 0 0 1.0\nO1 O 0.5 0.5 0.5 1.0"))
    assert read_structure(cif).get_chemical_formula() == "FeO"


def test_structure_file_size_and_decompression_limit(tmp_path, monkeypatch):
    """Item 11: a .gz is decompressed in a stream and abandoned past the limit (a 0.5 MB bomb used 1.1 GB)."""
    good = tmp_path / "nacl.cif"
    write(good, bulk("NaCl", "rocksalt", a=5.64), format="cif")
    padded = good.read_text() + "#" + "x" * 20_000 + "\n"
    bomb = tmp_path / "bomb.cif.gz"
    bomb.write_bytes(gzip.compress(padded.encode()))
    big = tmp_path / "big.cif"
    big.write_text(padded)
    assert bomb.stat().st_size < 2000
    monkeypatch.setattr(structures, "MAX_STRUCTURE_BYTES", 10_000)
    with pytest.raises(ValueError, match=r"bomb\.cif\.gz: decompresses to more than 10000 bytes"):
        read_structure(bomb)
    with pytest.raises(ValueError, match=r"big\.cif: holds more than 10000 bytes"):
        read_structure(big)
    assert len(read_structure(good)) == 2


class _HugeArray:
    """Pickles as numpy's array reconstructor declaring 10¹² elements (and 8 bytes of data)."""

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (10**12,), b"b"), (1, (10**12,), np.dtype("f8"), False, b"\0" * 8))


class _LyingArray:
    """An empty array whose state claims 10¹² elements backed by 8 bytes."""

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (10**12,), np.dtype("f8"), False, b"\0" * 8))


@pytest.mark.parametrize("payload", [_HugeArray(), _LyingArray()], ids=["huge shape", "lying shape"])
def test_pickled_array_declaring_a_huge_shape_is_refused(payload):
    """Item 13: refused before numpy allocates, as a ValueError naming the source."""
    pytest.importorskip("numpy._core")
    from s2p_utils.data.safe_pickle import safe_loads

    with pytest.raises(ValueError, match=r"split\.pkl: refused or unreadable pickle"):
        safe_loads(pickle.dumps(payload, protocol=2), "split.pkl")
    assert safe_loads(pickle.dumps(np.arange(4.0), protocol=2)).tolist() == [0, 1, 2, 3]


def test_cache_or_results_path_that_is_a_file(tmp_path, monkeypatch, capsys):
    """Item 13: a clear message naming the variable, not a FileExistsError traceback."""
    from s2p_utils import paths
    from s2p_utils.cli import main

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("S2P_CACHE_DIR", str(blocker))
    with pytest.raises(ValueError, match=r"cache directory \(S2P_CACHE_DIR\) .*a_file is not a directory"):
        paths.cache_dir()
    with pytest.raises(ValueError, match=r"results directory .*a_file/sub is not a directory"):
        paths.results_dir(blocker / "sub")
    assert main(["train", "e3nn_phdos", "--results-dir", str(blocker), "--epochs", "1"]) == 2
    assert "a_file is not a directory" in capsys.readouterr().err
