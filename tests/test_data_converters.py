"""Converters on miniature upstream files built by the tests (exact upstream layouts), offline."""

from __future__ import annotations

import csv
import gzip
import json
import os
import pickle
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from upstream_fixtures import (
    crystal,
    make_e3nn_csv,
    make_fung_targz,
    make_jarvis_zip,
    make_mat2spec_zip,
    pymatgen_structure_dict,
)

from s2p_utils.data import converters
from s2p_utils.data.safe_pickle import safe_loads


def _assert_same_structure(got, expected, atol=1e-8):
    assert got.numbers.tolist() == expected.numbers.tolist()
    np.testing.assert_allclose(got.cell.array, expected.cell.array, atol=atol)
    np.testing.assert_allclose(got.positions, expected.positions, atol=atol)
    assert got.pbc.all()


def _tutorial_paths(folder: Path) -> dict[str, Path]:
    return {
        "train": folder / "idx_train.txt",
        "val": folder / "idx_valid.txt",
        "test": folder / "idx_test.txt",
    }


# ----------------------------------------------------------------------------- e3nn CSV


def test_e3nn_csv_fixture_round_trip(tmp_path):
    info = make_e3nn_csv(tmp_path / "data.csv", 12)
    ds = converters.convert_e3nn_csv(
        tmp_path / "data.csv", tutorial_split=_tutorial_paths(tmp_path), progress=False
    )
    assert ds.ids == info["ids"]
    assert ds.targets.dtype == np.float32 and ds.targets.shape == (12, 51)
    np.testing.assert_allclose(ds.targets, info["phdos"], rtol=1e-6)
    np.testing.assert_allclose(ds.grid, np.arange(0, 1001, 20))
    assert ds.grid_unit == "cm^-1" and ds.kind == "phdos"
    for got, expected in zip(ds.structures, info["structures"], strict=True):
        _assert_same_structure(got, expected)
    assert ds.formulas == [a.get_chemical_formula() for a in info["structures"]]
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(ds.split("tutorial")[part], np.sort(info["splits"][part]))
    assert set(ds.splits) == {"tutorial", "random73"}


def test_e3nn_fixture_has_upstream_columns(tmp_path, mirror):
    make_e3nn_csv(tmp_path / "data.csv", 3)
    with open(mirror / "upstream_samples" / "e3nn_tutorial_data_head20.csv", newline="") as handle:
        upstream_header = next(csv.reader(handle))
    with open(tmp_path / "data.csv", newline="") as handle:
        fixture_header = next(csv.reader(handle))
    # upstream has a pdos column that the sample lacks (README); the fixture writes all five
    assert fixture_header == [*upstream_header, "pdos"] or fixture_header == upstream_header


def test_e3nn_upstream_sample_matches_prepared_mirror_file(mirror):
    """The real upstream rows convert to exactly the records of the prepared e3nn_phdos.json.gz."""
    ds = converters.convert_e3nn_csv(
        mirror / "upstream_samples" / "e3nn_tutorial_data_head20.csv", progress=False
    )
    assert len(ds) == 20
    with gzip.open(mirror / "e3nn_phdos.json.gz", "rt") as handle:
        records = {r["id"]: r for r in json.load(handle)["records"]}
    for i, material in enumerate(ds.ids):
        record = records[material]
        assert ds.formulas[i] == record["formula"]
        np.testing.assert_allclose(ds.targets[i], record["target"], rtol=1e-6, atol=1e-7)
        assert ds.structures[i].numbers.tolist() == record["structure"]["numbers"]
        np.testing.assert_allclose(ds.structures[i].positions, record["structure"]["positions"], atol=1e-10)
        np.testing.assert_allclose(ds.structures[i].cell.array, record["structure"]["cell"], atol=1e-10)


def test_e3nn_chen_split_is_mapped_by_material_id(tmp_path):
    info = make_e3nn_csv(tmp_path / "data.csv", 10)
    m2s = make_mat2spec_zip(tmp_path / "Mat2Spec_DATA.zip", n_edos=2, n_phdos=10)  # ids reversed
    split_ids, parts = converters.read_mat2spec_chen_split(tmp_path / "Mat2Spec_DATA.zip")
    assert split_ids == m2s["phdos_ids"]
    ds = converters.convert_e3nn_csv(tmp_path / "data.csv", chen_split=(split_ids, parts), progress=False)
    for part in ("train", "val", "test"):
        expected_ids = {m2s["phdos_ids"][j] for j in m2s["chen_split"][part]}
        assert {ds.ids[k] for k in ds.split("chen2021")[part]} == expected_ids
    assert ds.ids == info["ids"]
    assert sorted(np.concatenate([ds.split("chen2021")[p] for p in ("train", "val", "test")])) == list(
        range(10)
    )


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch {sentinel}')",
        "exec(\"open('{sentinel}', 'w').close()\")",
        "[c for c in ().__class__.__base__.__subclasses__()]",
    ],
)
def test_malicious_structure_string_is_rejected(tmp_path, payload):
    make_e3nn_csv(tmp_path / "data.csv", 3, split_files=False)
    sentinel = tmp_path / "SENTINEL"
    with open(tmp_path / "data.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    rows[2][1] = payload.format(sentinel=sentinel)
    with open(tmp_path / "data.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(ValueError, match=r"data\.csv: data row 1 \(mp-101\), column 'structure'") as error:
        converters.convert_e3nn_csv(tmp_path / "data.csv", progress=False)
    assert "not a plain Python literal" in str(error.value)
    assert not sentinel.exists()


def test_e3nn_bad_split_index_is_rejected(tmp_path):
    make_e3nn_csv(tmp_path / "data.csv", 5)
    (tmp_path / "idx_test.txt").write_text("0\n7\n")
    with pytest.raises(ValueError, match="idx_test.txt: row index out of range"):
        converters.convert_e3nn_csv(
            tmp_path / "data.csv", tutorial_split=_tutorial_paths(tmp_path), progress=False
        )


# ----------------------------------------------------------------------------- Mat2Spec


def test_mat2spec_zip_has_documented_tree(tmp_path):
    make_mat2spec_zip(tmp_path / "Mat2Spec_DATA.zip", n_edos=3, n_phdos=2)
    names = set(zipfile.ZipFile(tmp_path / "Mat2Spec_DATA.zip").namelist())
    for member in (
        "label_edos/mpids.csv",
        "label_edos/total_dos_128.npy",
        "label_edos/train_idx.json",
        "label_edos/validate_idx.json",
        "label_edos/test_idx.json",
        "materials_with_edos/dos_mp-2000.json",
        "phdos/mpids.csv",
        "phdos/ph_dos.npy",
        "phdos/200801_trteva_indices.pkl",
    ):
        assert "Mat2Spec_DATA/" + member in names


def test_mat2spec_edos(tmp_path):
    info = make_mat2spec_zip(tmp_path / "Mat2Spec_DATA.zip", n_edos=40, n_phdos=4)
    ds = converters.convert_mat2spec_edos(tmp_path / "Mat2Spec_DATA.zip", progress=False)
    assert ds.ids == info["edos_ids"]
    assert ds.targets.shape == (40, 128) and ds.targets.dtype == np.float32
    np.testing.assert_allclose(ds.targets, info["edos_targets"], rtol=1e-6)
    np.testing.assert_allclose(ds.grid[[0, -1]], [-4.0, 4.0])
    assert len(ds.grid) == 128 and ds.grid_unit == "eV" and ds.kind == "edos"
    for part, size in (("train", 32), ("val", 4), ("test", 4)):
        np.testing.assert_array_equal(ds.split("mat2spec")[part], np.sort(info["edos_split"][part]))
        assert len(ds.split("mat2spec")[part]) == size
    for got, expected in zip(ds.structures, info["edos_structures"], strict=True):
        _assert_same_structure(got, expected)
    assert ds.formulas[0] == info["edos_structures"][0].get_chemical_formula()


def test_mat2spec_phdos_takes_structures_by_id_and_drops_unknown(tmp_path):
    e3nn_info = make_e3nn_csv(tmp_path / "data.csv", 6, split_files=False)
    # phonon ids: the six e3nn materials (reversed) plus one without any structure source
    m2s = make_mat2spec_zip(
        tmp_path / "Mat2Spec_DATA.zip", n_edos=2, phdos_ids=[105, 104, 999, 103, 102, 101, 100]
    )
    structures = dict(zip(e3nn_info["ids"], e3nn_info["structures"], strict=True))
    ds = converters.convert_mat2spec_phdos(tmp_path / "Mat2Spec_DATA.zip", structures, progress=False)
    assert ds.ids == ["mp-105", "mp-104", "mp-103", "mp-102", "mp-101", "mp-100"]
    assert ds.meta["dropped_ids"] == ["mp-999"]
    kept_rows = [0, 1, 3, 4, 5, 6]
    np.testing.assert_allclose(ds.targets, m2s["phdos_targets"][kept_rows], rtol=1e-6)
    for material, atoms in zip(ds.ids, ds.structures, strict=True):
        _assert_same_structure(atoms, structures[material])
    for part in ("train", "val", "test"):
        expected = {m2s["phdos_ids"][j] for j in m2s["chen_split"][part]} - {"mp-999"}
        assert {ds.ids[k] for k in ds.split("chen2021")[part]} == expected
    np.testing.assert_allclose(ds.grid, np.linspace(0, 1000, 51))


def test_truncated_zip_gives_clear_error(tmp_path):
    make_mat2spec_zip(tmp_path / "full.zip", n_edos=3, n_phdos=2)
    data = (tmp_path / "full.zip").read_bytes()
    (tmp_path / "Mat2Spec_DATA.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable zip archive.*truncated or corrupted"):
        converters.convert_mat2spec_edos(tmp_path / "Mat2Spec_DATA.zip", progress=False)


# ----------------------------------------------------------------------------- restricted unpickler


def test_safe_pickle_reads_lists_and_numpy():
    triple = ([1, 2, 3], np.array([4, 5]), [np.int64(6)])
    for protocol in (2, 4, 5):
        value = safe_loads(pickle.dumps(triple, protocol=protocol))
        assert value[0] == [1, 2, 3]
        np.testing.assert_array_equal(value[1], [4, 5])
        assert int(value[2][0]) == 6


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_safe_pickle_refuses_code(tmp_path):
    sentinel = tmp_path / "PWNED"
    with pytest.raises(ValueError, match=r"evil\.pkl: refused or unreadable pickle \(forbidden global"):
        safe_loads(pickle.dumps([_Exploit(sentinel)]), source="evil.pkl")
    assert not sentinel.exists()
    with pytest.raises(ValueError, match="forbidden global builtins.eval"):
        safe_loads(b"cbuiltins\neval\n(S'1+1'\ntR.")


def test_chen_pickle_with_code_is_refused(tmp_path):
    make_mat2spec_zip(tmp_path / "Mat2Spec_DATA.zip", n_edos=2, n_phdos=4)
    sentinel = tmp_path / "PWNED"
    with (
        zipfile.ZipFile(tmp_path / "evil.zip", "w") as out,
        zipfile.ZipFile(tmp_path / "Mat2Spec_DATA.zip") as src,
    ):
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("200801_trteva_indices.pkl"):
                data = pickle.dumps(([0], [1], _Exploit(sentinel)))
            out.writestr(item, data)
    with pytest.raises(ValueError, match="200801_trteva_indices.pkl: refused"):
        converters.read_mat2spec_chen_split(tmp_path / "evil.zip")
    assert not sentinel.exists()


# ----------------------------------------------------------------------------- JARVIS


@pytest.mark.parametrize("cartesian", [True, False])
def test_jarvis_edos_and_phdos(tmp_path, cartesian):
    info = make_jarvis_zip(tmp_path / "jarvis.zip", 9, cartesian=cartesian)
    edos = converters.convert_jarvis_zip(tmp_path / "jarvis.zip", target="edos_up", progress=False)
    assert edos.ids == info["ids"] and edos.targets.shape == (9, 300)
    np.testing.assert_allclose(edos.targets, info["edos"], rtol=1e-6)
    np.testing.assert_array_equal(edos.grid, np.arange(300))
    for got, expected in zip(edos.structures, info["structures"], strict=True):
        _assert_same_structure(got, expected, atol=1e-8)
    phdos = converters.convert_jarvis_zip(tmp_path / "jarvis.zip", target="pdos_elast", progress=False)
    keep = [i for i, p in enumerate(info["pdos"]) if p is not None]
    assert phdos.ids == [info["ids"][i] for i in keep] and phdos.meta["n_dropped"] == 9 - len(keep)
    np.testing.assert_allclose(phdos.targets, np.asarray([info["pdos"][i] for i in keep]), rtol=1e-6)
    assert phdos.targets.shape == (len(keep), 200) and phdos.kind == "phdos"


# ----------------------------------------------------------------------------- Fung et al. tarballs


@pytest.mark.parametrize("kind", ["sto", "surface"])
def test_fung_targz(tmp_path, kind):
    info = make_fung_targz(tmp_path / "dos.tar.gz", 4, kind)
    ds = converters.convert_fung_targz(tmp_path / "dos.tar.gz", name=f"{kind}_edos", progress=False)
    assert ds.ids == info["ids"]
    expected_targets = np.asarray([a[2, 2, ::4] for a in info["arrays"]])
    expected_grids = np.asarray([a[2, 0, ::4] for a in info["arrays"]])
    assert ds.targets.shape == (4, 500) and ds.grids.shape == (4, 500)
    np.testing.assert_allclose(ds.targets, expected_targets, rtol=1e-6)
    np.testing.assert_allclose(ds.grids, expected_grids, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ds.grid, np.median(expected_grids, axis=0), rtol=1e-6, atol=1e-6)
    for got, expected in zip(ds.structures, info["structures"], strict=True):
        _assert_same_structure(got, expected, atol=1e-6)
    if kind == "sto":
        assert ds.structures[0].get_chemical_symbols() == ["Sr", "O", "O", "O", "Ti"]


def test_truncated_targz_gives_clear_error(tmp_path):
    make_fung_targz(tmp_path / "full.tar.gz", 3, "sto", n_energies=400)
    data = (tmp_path / "full.tar.gz").read_bytes()
    (tmp_path / "sto_dos.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ValueError,
        match=r"sto_dos.tar.gz(:data/\d+\.(npy|vasp): bad archive member|: not a readable .tar.gz).*truncated or corrupted",
    ):
        converters.convert_fung_targz(tmp_path / "sto_dos.tar.gz", progress=False)


def test_fung_npy_with_pickled_objects_is_refused(tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as tar:
        for name, data in (("data/0.npy", buffer.getvalue()), ("data/0.vasp", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match=r"data/0\.npy: not a plain numeric \.npy array"):
        converters.convert_fung_targz(tmp_path / "x.tar.gz", progress=False)


# ----------------------------------------------------------------------------- Materials Project


def test_phdos_from_mp_docs_matches_authors_interpolation():
    rng = np.random.default_rng(1)
    docs, structures, expected = [], {}, []
    for i, top_thz in enumerate([20.0, 50.0]):  # 667 cm^-1 (< 1200) and 1668 cm^-1 (> 1200)
        freq = np.linspace(0.0, top_thz, 300)
        dens = rng.random(300)
        material = f"mp-{i + 1}"
        docs.append(
            SimpleNamespace(material_id=material, ph_dos=SimpleNamespace(frequencies=freq, densities=dens))
        )
        structures[material] = pymatgen_structure_dict(crystal(i))
        top = min(1200.0, top_thz * 33.35640951981521)
        x = np.linspace(0.0, top, 128)
        expected.append(
            (x, np.convolve(np.interp(x, freq * 33.35640951981521, dens), np.ones(3) / 3, mode="same"))
        )
    ds = converters.phdos_from_mp_docs(docs, structures, progress=False)
    assert ds.targets.shape == (2, 128) and ds.grids.shape == (2, 128)
    for i, (x, y) in enumerate(expected):
        np.testing.assert_allclose(ds.grids[i], x, rtol=1e-6)
        np.testing.assert_allclose(ds.targets[i], y, rtol=1e-5, atol=1e-6)
    assert ds.grids[1, -1] == pytest.approx(1200.0)
    _assert_same_structure(ds.structures[0], crystal(0))


def test_fetch_mp_phdos_without_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="MP_API_KEY"):
        converters.fetch_mp_phdos(None)


def test_mat2spec_ids_csv_with_index_column(tmp_path):
    """A pandas ``to_csv`` file with an unnamed index column still yields the ``mpid`` column."""
    m2s = make_mat2spec_zip(tmp_path / "plain.zip", n_edos=2, n_phdos=4)
    with (
        zipfile.ZipFile(tmp_path / "indexed.zip", "w") as out,
        zipfile.ZipFile(tmp_path / "plain.zip") as src,
    ):
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("phdos/mpids.csv"):
                ids = data.decode().split()[1:]
                data = ("," + "mpid\n" + "".join(f"{k},{i}\n" for k, i in enumerate(ids))).encode()
            out.writestr(item, data)
    split_ids, _ = converters.read_mat2spec_chen_split(tmp_path / "indexed.zip")
    assert split_ids == m2s["phdos_ids"]
