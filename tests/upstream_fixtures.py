"""Miniature upstream files in the exact upstream layouts, built from ``ase.build`` crystals.

Used by the converter/registry/download tests and by the notebook smoke runs. Every builder writes
the file(s) and returns what it wrote (ids, structures, spectra, splits) so that tests can compare a
converter's output with independently known values.

- :func:`make_e3nn_csv` — the e3nn tutorial ``data/data.csv`` (``mp_id, structure, phfreq, phdos,
  pdos``; ``structure`` the Python-literal text of ``Atoms.todict()``-style dicts) plus
  ``idx_train.txt``, ``idx_valid.txt``, ``idx_test.txt`` beside it.
- :func:`make_mat2spec_zip` — ``Mat2Spec_DATA.zip`` with ``Mat2Spec_DATA/label_edos/{mpids.csv,
  total_dos_128.npy, train_idx.json, validate_idx.json, test_idx.json}``,
  ``Mat2Spec_DATA/materials_with_edos/dos_<mpid>.json`` (pymatgen Structure dicts + ``original_dos``)
  and ``Mat2Spec_DATA/phdos/{mpids.csv, ph_dos.npy, 200801_trteva_indices.pkl}``.
- :func:`make_jarvis_zip` — ``edos-up_pdos-elast_interp-8-18-2021.json`` (a JSON list) in a zip.
- :func:`make_fung_targz` — ``sto_dos.tar.gz`` (``data/<i>.vasp`` + ``data/<i>.npy``) or
  ``surface_DOS_dataset.tar.gz`` (``surface_DOS_dataset/<i>.vasp`` + ``.npy``).

Offline-mirror layout for smoke runs (see :mod:`s2p_utils.data.registry`)::

    <mirror>/mat2spec_edos/Mat2Spec_DATA.zip        ← make_mat2spec_zip(...)
    <mirror>/jarvis/edos-up_pdos-elast_interp-8-18-2021.json.zip
    <mirror>/sto_edos/sto_dos.tar.gz
    <mirror>/surface_edos/surface_DOS_dataset.tar.gz

e.g. ``make_mat2spec_zip(mirror / "mat2spec_edos" / "Mat2Spec_DATA.zip", n_edos=40)`` and then
``load("mat2spec_edos", mirror=mirror, cache_dir=tmp)`` gives a 40-material dataset with the
``mat2spec`` split (32/4/4).
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc111

__all__ = [
    "JARVIS_JSON_NAME",
    "crystal",
    "make_e3nn_csv",
    "make_fung_targz",
    "make_jarvis_zip",
    "make_mat2spec_zip",
    "pymatgen_structure_dict",
]

JARVIS_JSON_NAME = "edos-up_pdos-elast_interp-8-18-2021.json"

# (name, crystalstructure, a, extra kwargs) for ase.build.bulk
_BULK: tuple[tuple[str, str, float, dict[str, Any]], ...] = (
    ("Si", "diamond", 5.43, {}),
    ("Cu", "fcc", 3.61, {}),
    ("Fe", "bcc", 2.87, {}),
    ("NaCl", "rocksalt", 5.64, {}),
    ("MgO", "rocksalt", 4.21, {}),
    ("GaAs", "zincblende", 5.65, {}),
    ("Mg", "hcp", 3.21, {"c": 5.21}),
    ("ZnO", "wurtzite", 3.25, {"c": 5.21}),
    ("CsCl", "cesiumchloride", 4.12, {}),
    ("Al", "fcc", 4.05, {}),
    ("C", "diamond", 3.57, {}),
    ("Ti", "hcp", 2.95, {"c": 4.68}),
    ("KBr", "rocksalt", 6.60, {}),
    ("W", "bcc", 3.16, {}),
    ("Ge", "diamond", 5.66, {"cubic": True}),
    ("LiF", "rocksalt", 4.03, {"cubic": True}),
)


def crystal(i: int, rng: np.random.Generator | None = None) -> Atoms:
    """The ``i``-th test crystal: cycles through varied ``ase.build.bulk`` structures, strained by ±3 %."""
    name, kind, a, extra = _BULK[i % len(_BULK)]
    scale = 1.0 if rng is None else float(rng.uniform(0.97, 1.03))
    kwargs = dict(extra)
    if "c" in kwargs:
        kwargs["c"] = kwargs["c"] * scale
    return bulk(name, kind, a=a * scale, **kwargs)


def _plain(value: np.ndarray) -> list:
    return np.asarray(value, dtype=float).tolist()


# ----------------------------------------------------------------------------- e3nn tutorial CSV


def make_e3nn_csv(
    path: str | Path,
    n: int,
    *,
    seed: int = 0,
    split_files: bool = True,
    ids: list[str] | None = None,
) -> dict[str, Any]:
    """Write an ``n``-row e3nn tutorial ``data.csv`` (and its ``idx_*.txt`` split files beside it).

    Returns ``{"ids", "structures", "phfreq" (51,), "phdos" (n, 51), "splits": {"train", "val", "test"}}``.
    Ids are ``ids`` when given, else ``mp-100``, ``mp-101``, ...
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    phfreq = np.linspace(0.0, 1000.0, 51)
    if ids is not None and len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} rows")
    given_ids = ids
    ids, structures, spectra = [], [], []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mp_id", "structure", "phfreq", "phdos", "pdos"])
        for i in range(n):
            atoms = crystal(i, rng)
            material = given_ids[i] if given_ids is not None else f"mp-{100 + i}"
            dos = rng.random(51)
            dos /= dos.max()
            structure = {
                "numbers": atoms.numbers.tolist(),
                "positions": _plain(atoms.positions),
                "cell": _plain(atoms.cell.array),
                "pbc": [True, True, True],
            }
            pdos = {symbol: _plain(dos * 0.5) for symbol in sorted(set(atoms.get_chemical_symbols()))}
            writer.writerow([material, repr(structure), repr(_plain(phfreq)), repr(_plain(dos)), repr(pdos)])
            ids.append(material)
            structures.append(atoms)
            spectra.append(dos)
    order = rng.permutation(n)
    a, b = int(0.8 * n), int(0.9 * n)
    splits = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    if split_files:
        for part, filename in (
            ("train", "idx_train.txt"),
            ("val", "idx_valid.txt"),
            ("test", "idx_test.txt"),
        ):
            (path.parent / filename).write_text("".join(f"{i}\n" for i in splits[part]), encoding="utf-8")
    return {
        "ids": ids,
        "structures": structures,
        "phfreq": phfreq,
        "phdos": np.asarray(spectra),
        "splits": splits,
    }


# ----------------------------------------------------------------------------- Mat2Spec zip


def pymatgen_structure_dict(atoms: Atoms) -> dict[str, Any]:
    """A pymatgen ``Structure.as_dict()``-style dict of ``atoms`` (as in Mat2Spec's ``dos_<mpid>.json``)."""
    cell = atoms.cell
    a, b, c, alpha, beta, gamma = cell.cellpar()
    return {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0,
        "lattice": {
            "matrix": _plain(cell.array),
            "pbc": [True, True, True],
            "a": float(a),
            "b": float(b),
            "c": float(c),
            "alpha": float(alpha),
            "beta": float(beta),
            "gamma": float(gamma),
            "volume": float(atoms.get_volume()),
        },
        "properties": {},
        "sites": [
            {
                "species": [{"element": symbol, "occu": 1}],
                "abc": _plain(frac),
                "xyz": _plain(xyz),
                "label": symbol,
                "properties": {},
            }
            for symbol, frac, xyz in zip(
                atoms.get_chemical_symbols(),
                atoms.get_scaled_positions(wrap=False),
                atoms.positions,
                strict=True,
            )
        ],
    }


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def make_mat2spec_zip(
    path: str | Path,
    *,
    n_edos: int = 40,
    n_phdos: int = 10,
    phdos_ids: list[int] | None = None,
    chen_split: dict[str, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write a miniature ``Mat2Spec_DATA.zip`` in the documented upstream tree.

    eDOS materials are ``mp-2000``, ``mp-2001``, ...; the phonon ids (``phdos/mpids.csv``, integers as
    upstream) default to ``100 … 100 + n_phdos - 1``, i.e. the ids of :func:`make_e3nn_csv` in
    reverse order. The Chen split pickle is ``pickle.dumps((train, val, test))`` of plain lists
    (``chen_split`` gives the three index arrays into ``phdos_ids``; random 80/10/10 otherwise).

    Returns ``{"edos_ids", "edos_structures", "edos_targets" (n_edos, 128), "edos_split",
    "phdos_ids", "phdos_targets" (n_phdos, 51), "chen_split"}``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    root = "Mat2Spec_DATA/"
    edos_ids = [f"mp-{2000 + i}" for i in range(n_edos)]
    edos_structures = [crystal(i, rng) for i in range(n_edos)]
    edos_targets = rng.random((n_edos, 128)) * 3.0
    order = rng.permutation(n_edos)
    a, b = int(0.8 * n_edos), int(0.9 * n_edos)
    edos_split = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    if phdos_ids is None:
        phdos_ids = [100 + i for i in reversed(range(n_phdos))]
    n_phdos = len(phdos_ids)
    phdos_targets = rng.random((n_phdos, 51))
    phdos_targets /= phdos_targets.max(axis=1, keepdims=True)
    if chen_split is None:
        order = rng.permutation(n_phdos)
        a, b = int(0.8 * n_phdos), int(0.9 * n_phdos)
        chen_split = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for folder in ("", "label_edos/", "materials_with_edos/", "phdos/"):
            zf.writestr(root + folder, b"")
        zf.writestr(root + "label_edos/mpids.csv", "mpid\n" + "".join(f"{m}\n" for m in edos_ids))
        zf.writestr(root + "label_edos/total_dos_128.npy", _npy_bytes(edos_targets))
        for part, stem in (("train", "train"), ("val", "validate"), ("test", "test")):
            zf.writestr(root + f"label_edos/{stem}_idx.json", json.dumps(edos_split[part].tolist()))
        energies = np.linspace(-10.0, 10.0, 21)
        for material, atoms in zip(edos_ids, edos_structures, strict=True):
            record = {
                "structure": pymatgen_structure_dict(atoms),
                "original_dos": [_plain(energies), _plain(rng.random(21))],
            }
            zf.writestr(root + f"materials_with_edos/dos_{material}.json", json.dumps(record))
        zf.writestr(root + "phdos/mpids.csv", "mpid\n" + "".join(f"{m}\n" for m in phdos_ids))
        zf.writestr(root + "phdos/ph_dos.npy", _npy_bytes(phdos_targets))
        triple = tuple(chen_split[p].tolist() for p in ("train", "val", "test"))
        zf.writestr(root + "phdos/200801_trteva_indices.pkl", pickle.dumps(triple))
    return {
        "edos_ids": edos_ids,
        "edos_structures": edos_structures,
        "edos_targets": edos_targets,
        "edos_split": edos_split,
        "phdos_ids": [f"mp-{i}" for i in phdos_ids],
        "phdos_targets": phdos_targets,
        "chen_split": chen_split,
    }


# ----------------------------------------------------------------------------- JARVIS zip


def make_jarvis_zip(path: str | Path, n: int, *, seed: int = 0, cartesian: bool = True) -> dict[str, Any]:
    """Write the JARVIS DOS zip: one JSON list of ``n`` records (every third ``pdos_elast`` is ``"na"``).

    Returns ``{"ids", "structures", "edos" (n, 300), "pdos": list of (200,) arrays or None}``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records, ids, structures, edos, pdos = [], [], [], [], []
    for i in range(n):
        atoms = crystal(i, rng)
        jid = f"JVASP-{1000 + i}"
        e = rng.random(300)
        p = rng.random(200) if i % 3 != 2 else None
        cellpar = atoms.cell.cellpar()
        records.append(
            {
                "jid": jid,
                "atoms": {
                    "lattice_mat": _plain(atoms.cell.array),
                    "coords": _plain(
                        atoms.positions if cartesian else atoms.get_scaled_positions(wrap=False)
                    ),
                    "elements": atoms.get_chemical_symbols(),
                    "abc": _plain(cellpar[:3]),
                    "angles": _plain(cellpar[3:]),
                    "cartesian": cartesian,
                    "props": [""] * len(atoms),
                },
                "edos_up": _plain(e),
                "pdos_elast": "na" if p is None else _plain(p),
            }
        )
        ids.append(jid)
        structures.append(atoms)
        edos.append(e)
        pdos.append(p)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(JARVIS_JSON_NAME, json.dumps(records))
    return {"ids": ids, "structures": structures, "edos": np.asarray(edos), "pdos": pdos}


# ----------------------------------------------------------------------------- Fung et al. tarballs


def _perovskite(a: float, rng: np.random.Generator) -> Atoms:
    """Cubic SrTiO₃ (Sr, O, O, O, Ti, as the upstream files) with small random displacements."""
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5], [0.5, 0.5, 0.5]], dtype=float)
    frac += rng.normal(0.0, 0.01, frac.shape)
    return Atoms("SrO3Ti", scaled_positions=frac, cell=np.eye(3) * a, pbc=True)


def _alloy_slab(rng: np.random.Generator) -> Atoms:
    slab = fcc111("Pt", size=(2, 2, 3), vacuum=6.0)
    symbols = slab.get_chemical_symbols()
    for k in rng.choice(len(slab), size=4, replace=False):
        symbols[int(k)] = str(rng.choice(["Ni", "Cu", "Pd"]))
    slab.set_chemical_symbols(symbols)
    slab.pbc = True
    return slab


def make_fung_targz(
    path: str | Path, n: int, kind: str = "sto", *, n_energies: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Write a Fung et al. tarball: ``n`` pairs ``<dir>/<i>.vasp`` + ``<dir>/<i>.npy``.

    ``kind="sto"`` → ``data/`` with 5-atom SrTiO₃ cells; ``kind="surface"`` → ``surface_DOS_dataset/``
    with 12-atom alloy slabs. Each ``.npy`` is float64 ``(n_atoms, 4, n_energies)``: row 0 the energies
    (``linspace(-10, 10)`` shifted per structure), rows 1–3 random projected DOS. Members are written in
    shuffled order, as upstream.

    Returns ``{"ids", "structures", "arrays"}`` (arrays: the full ``.npy`` contents).
    """
    if kind not in {"sto", "surface"}:
        raise ValueError(f"kind must be 'sto' or 'surface', got {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    folder = "data" if kind == "sto" else "surface_DOS_dataset"
    import ase.io

    files: list[tuple[str, bytes]] = []
    structures, arrays = [], []
    for i in range(n):
        atoms = _perovskite(float(rng.uniform(3.8, 4.0)), rng) if kind == "sto" else _alloy_slab(rng)
        text = io.StringIO()
        ase.io.write(text, atoms, format="vasp", direct=False)
        energies = np.linspace(-10.0, 10.0, n_energies) + float(rng.uniform(-1.0, 1.0))
        array = np.empty((len(atoms), 4, n_energies))
        array[:, 0, :] = energies
        array[:, 1:, :] = rng.random((len(atoms), 3, n_energies))
        files += [(f"{folder}/{i}.vasp", text.getvalue().encode()), (f"{folder}/{i}.npy", _npy_bytes(array))]
        structures.append(atoms)
        arrays.append(array)
    order = rng.permutation(len(files))
    with tarfile.open(path, "w:gz") as tar:
        directory = tarfile.TarInfo(folder)
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        tar.addfile(directory)
        for k in order:
            name, data = files[int(k)]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {"ids": [str(i) for i in range(n)], "structures": structures, "arrays": arrays}


# ----------------------------------------------------------------------------- Chen's split pickle


def make_chen_pickle(path: str | Path, parts: dict[str, list[int]]) -> bytes:
    """Write ``200801_trteva_indices.pkl`` as upstream: ``pickle.dumps((train, val, test))`` of int lists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = pickle.dumps(tuple(list(map(int, parts[p])) for p in ("train", "val", "test")))
    path.write_bytes(payload)
    return payload
