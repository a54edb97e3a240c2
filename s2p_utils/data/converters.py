"""Upstream formats → :class:`~s2p_utils.data.dataset.Dataset`, read safely.

Each converter takes local paths of upstream files (in their exact upstream layout) and returns a
``Dataset``; the registry adds name, description, licence and citation and caches the result as an
``s2p-prepared/1`` file. Nothing downloaded is ever ``eval``-ed or unpickled freely:

* Python-literal text (the e3nn tutorial CSV) goes through :func:`ast.literal_eval`;
* JSON through :mod:`json`; ``.npy`` through ``numpy.load(allow_pickle=False)``;
* the one upstream pickle (Mat2Spec's Chen split) through :mod:`s2p_utils.data.safe_pickle`;
* archives are read member by member in memory, never extracted to disk, each member within the
  decompression limits of :mod:`s2p_utils.data.archives` (2 GiB, 200× by default).

Shapes and units:

===================  ==========================  =====================  ==============================
dataset              targets                     grid                   notes
===================  ==========================  =====================  ==============================
e3nn_phdos           float32 (n, 51)             0…1000 cm⁻¹ (20 step)  max-normalised phonon DOS
mat2spec_edos        float32 (n, 128)            −4…4 eV (linspace)     Mat2Spec ``total_dos_128.npy``
mat2spec_phdos       float32 (n, 51)             0…1000 cm⁻¹            Mat2Spec ``ph_dos.npy``
jarvis_edos          float32 (n, 300)            bins 0…299             ``edos_up``
jarvis_phdos         float32 (n, 200)            bins 0…199             ``pdos_elast``, "na" dropped
sto_edos/surface     float32 (n, 500)            eV, per structure      see :func:`convert_fung_targz`
mp_phdos             float32 (n, 128)            cm⁻¹, per structure    see :func:`phdos_from_mp_docs`
===================  ==========================  =====================  ==============================
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read as ase_read
from scipy.interpolate import interp1d
from tqdm.auto import tqdm

from s2p_utils.data import chen_split
from s2p_utils.data.archives import read_tar_member, read_zip_member
from s2p_utils.data.dataset import SPLIT_PARTS, Dataset
from s2p_utils.data.safe_pickle import safe_loads
from s2p_utils.data.structures import atoms_from_pymatgen_dict, validate_structure

__all__ = [
    "E3NN_GRID",
    "MAT2SPEC_EDOS_GRID",
    "THZ_TO_CM1",
    "convert_e3nn_csv",
    "convert_fung_targz",
    "convert_jarvis_zip",
    "convert_mat2spec_edos",
    "convert_mat2spec_phdos",
    "fetch_mp_phdos",
    "normalize_mp_id",
    "phdos_from_mp_docs",
    "read_index_file",
    "read_mat2spec_chen_split",
]

logger = logging.getLogger(__name__)

#: The e3nn / Chen 2021 phonon grid: 51 points, 0…1000 cm⁻¹.
E3NN_GRID = np.linspace(0.0, 1000.0, 51)
#: Mat2Spec's eDOS grid. Upstream stores no energies, only "128 points from −4 to 4 eV around the
#: Fermi level"; we use ``linspace(-4, 4, 128)`` (point positions are approximate to ±1/2 bin).
MAT2SPEC_EDOS_GRID = np.linspace(-4.0, 4.0, 128)
#: 1 THz in cm⁻¹.
THZ_TO_CM1 = 33.35640951981521


# ----------------------------------------------------------------------------- helpers


def normalize_mp_id(value: Any) -> str:
    """``"mp-149"`` for ``149``, ``"149"`` or ``"mp-149"``; other ids unchanged (stripped)."""
    text = str(value).strip()
    return f"mp-{text}" if text.isdigit() else text


def _validated(atoms: Atoms, source: str) -> Atoms:
    return validate_structure(atoms, source=source)


def _atoms_from_ase_dict(value: Any, source: str) -> Atoms:
    """An ``Atoms.todict()``-style dict (``numbers``, ``positions`` Å, ``cell`` Å, ``pbc``) → Atoms."""
    if not isinstance(value, dict) or not {"numbers", "positions", "cell"} <= set(value):
        raise ValueError(
            f"{source}: expected a dict with 'numbers', 'positions' and 'cell', got {type(value).__name__}"
        )
    try:
        atoms = Atoms(
            numbers=np.asarray(value["numbers"], dtype=int),
            positions=np.asarray(value["positions"], dtype=float),
            cell=np.asarray(value["cell"], dtype=float),
            pbc=value.get("pbc", True),
        )
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{source}: not a valid structure ({error})") from error
    return _validated(atoms, source)


def _float_vector(value: Any, source: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: expected a list of numbers ({error})") from error
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ValueError(f"{source}: expected a finite 1-D list of numbers, got shape {array.shape}")
    return array


def _index_array(value: Any, source: str) -> np.ndarray:
    try:
        array = np.asarray(value).ravel()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: expected a list of row indices ({error})") from error
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(array == np.round(array)):
            raise ValueError(f"{source}: expected integer row indices, got dtype {array.dtype}")
    return array.astype(int)


def _check_indices(idx: np.ndarray, n: int, source: str) -> np.ndarray:
    """Range-checked indices, sorted ascending (the order an ``s2p-prepared/1`` round trip gives)."""
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"{source}: row index out of range 0..{n - 1} (min {idx.min()}, max {idx.max()})")
    if len(np.unique(idx)) != len(idx):
        raise ValueError(f"{source}: repeated row indices")
    return np.sort(idx)


def _splits_from_ids(
    ids: Sequence[str], split_ids: Sequence[str], parts: Mapping[str, np.ndarray], source: str
) -> dict[str, np.ndarray]:
    """Re-index ``parts`` (indices into ``split_ids``) onto ``ids`` by id; unknown ids are skipped."""
    position = {normalize_mp_id(i): k for k, i in enumerate(ids)}
    out: dict[str, np.ndarray] = {}
    missing = 0
    for part in SPLIT_PARTS:
        rows = []
        for j in parts[part]:
            k = position.get(normalize_mp_id(split_ids[int(j)]))
            if k is None:
                missing += 1
            else:
                rows.append(k)
        out[part] = np.sort(np.asarray(rows, dtype=int))
    if missing:
        logger.warning("%s: %d split entries have no matching material and were skipped", source, missing)
    return out


def _pad_post(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, bool]:
    """Stack 1-D arrays, post-padding shorter ones with zeros; also return whether padding happened."""
    width = max(len(r) for r in rows)
    out = np.zeros((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out, any(len(r) != width for r in rows)


@contextmanager
def _csv_field_limit(limit: int = 2**31 - 1):
    previous = csv.field_size_limit()
    csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def read_index_file(path: str | os.PathLike) -> np.ndarray:
    """Row indices from a text file, whitespace separated (the e3nn ``idx_*.txt`` files)."""
    path = Path(path)
    tokens = path.read_text(encoding="utf-8").split()
    try:
        return np.asarray([int(t) for t in tokens], dtype=int)
    except ValueError as error:
        raise ValueError(f"{path}: expected integer row indices, one per line ({error})") from error


# ----------------------------------------------------------------------------- e3nn tutorial CSV


def _literal(text: str, *, path: Path, row: int, material: str, column: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        raise ValueError(
            f"{path}: data row {row} ({material}), column {column!r} is not a plain Python literal "
            f"({type(error).__name__}: {error}); it was not evaluated"
        ) from None


def convert_e3nn_csv(
    csv_path: str | os.PathLike,
    *,
    tutorial_split: Mapping[str, str | os.PathLike] | None = None,
    chen_split: tuple[Sequence[str], Mapping[str, np.ndarray]] | None = None,
    progress: bool = True,
) -> Dataset:
    """The e3nn phonon-DOS tutorial ``data/data.csv`` → ``e3nn_phdos``.

    Columns ``mp_id, structure, phfreq, phdos[, pdos]``; ``structure`` is the Python-literal text of an
    ASE ``Atoms.todict()`` (parsed with :func:`ast.literal_eval`, never ``eval``), ``phfreq`` the
    common frequency grid (cm⁻¹) and ``phdos`` the max-normalised DOS. ``pdos`` is not read.

    Args:
        tutorial_split: ``{"train": idx_train.txt, "val": idx_valid.txt, "test": idx_test.txt}``
            (row indices into the CSV) → split ``"tutorial"``.
        chen_split: ``(ids, {"train", "val", "test"} → indices into ids)``, e.g. from
            :func:`read_mat2spec_chen_split`; mapped onto the CSV by material id → split ``"chen2021"``.

    Raises:
        ValueError: naming file, row and column for any malformed or non-literal field.
    """
    path = Path(csv_path)
    ids: list[str] = []
    structures: list[Atoms] = []
    targets: list[np.ndarray] = []
    grid: np.ndarray | None = None
    with _csv_field_limit(), open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"mp_id", "structure", "phfreq", "phdos"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
        for row_number, row in enumerate(tqdm(reader, desc="e3nn_phdos", unit="row", disable=not progress)):
            material = (row["mp_id"] or "").strip()
            where = f"{path}: data row {row_number} ({material})"
            fields = {
                column: _literal(
                    row[column] or "", path=path, row=row_number, material=material, column=column
                )
                for column in ("structure", "phfreq", "phdos")
            }
            structures.append(_atoms_from_ase_dict(fields["structure"], f"{where}, column 'structure'"))
            freq = _float_vector(fields["phfreq"], f"{where}, column 'phfreq'")
            dos = _float_vector(fields["phdos"], f"{where}, column 'phdos'")
            if len(freq) != len(dos):
                raise ValueError(f"{where}: phfreq has {len(freq)} points but phdos {len(dos)}")
            if grid is None:
                grid = freq
            elif len(freq) != len(grid) or not np.allclose(freq, grid):
                raise ValueError(f"{where}: phfreq differs from the first row's grid")
            ids.append(material)
            targets.append(dos)
    if not ids:
        raise ValueError(f"{path}: no data rows")
    splits: dict[str, dict[str, np.ndarray]] = {}
    if tutorial_split is not None:
        splits["tutorial"] = {
            part: _check_indices(read_index_file(tutorial_split[part]), len(ids), str(tutorial_split[part]))
            for part in SPLIT_PARTS
        }
    if chen_split is not None:
        split_ids, parts = chen_split
        splits["chen2021"] = _splits_from_ids(ids, split_ids, parts, f"{path} (chen2021 split)")
    return Dataset(
        name="e3nn_phdos",
        ids=ids,
        formulas=[a.get_chemical_formula() for a in structures],
        structures=structures,
        targets=np.asarray(targets),
        grid=grid,
        grid_unit="cm^-1",
        kind="phdos",
        unit="max-normalised",
        splits=splits,
    )


# ----------------------------------------------------------------------------- Mat2Spec zip


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(
            f"{path}: not a readable zip archive ({error}); the file is truncated or corrupted — "
            "delete it and fetch it again"
        ) from error


def _zip_read(zf: zipfile.ZipFile, member: str, path: Path) -> bytes:
    """A member's bytes within the decompression limits of :mod:`s2p_utils.data.archives`."""
    try:
        return read_zip_member(zf, member, path)
    except KeyError:
        raise ValueError(f"{path}: missing member {member!r} (not the documented upstream layout)") from None


def _mat2spec_root(zf: zipfile.ZipFile, path: Path) -> str:
    for name in zf.namelist():
        if name.endswith("label_edos/mpids.csv") or name.endswith("phdos/mpids.csv"):
            return name.rsplit("label_edos/", 1)[0] if "label_edos/" in name else name.rsplit("phdos/", 1)[0]
    raise ValueError(
        f"{path}: no label_edos/mpids.csv or phdos/mpids.csv inside; not the Mat2Spec_DATA.zip layout"
    )


def _zip_npy(zf: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    try:
        return np.load(io.BytesIO(_zip_read(zf, member, path)), allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path}:{member}: not a plain numeric .npy array ({error})") from error


_ID_COLUMNS = ("mpid", "mp_id", "mpids", "material_id", "id")


def _zip_first_column(zf: zipfile.ZipFile, member: str, path: Path) -> list[str]:
    """Material ids from a CSV with a header row: the column named ``mpid`` (or ``mp_id``,
    ``material_id``, ...) when there is one, else the first column (as ``pandas.read_csv(...).iloc[:, 0]``).
    """
    text = _zip_read(zf, member, path).decode("utf-8")
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise ValueError(f"{path}:{member}: empty CSV")
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(name) for name in _ID_COLUMNS if name in header), 0)
    try:
        return [row[column].strip() for row in rows[1:]]
    except IndexError:
        raise ValueError(f"{path}:{member}: a row has fewer columns than the header") from None


def _zip_json_indices(zf: zipfile.ZipFile, member: str, path: Path, n: int) -> np.ndarray:
    source = f"{path}:{member}"
    try:
        value = json.loads(_zip_read(zf, member, path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not valid JSON ({error})") from error
    return _check_indices(_index_array(value, source), n, source)


def read_mat2spec_chen_split(zip_path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray]]:
    """Chen et al.'s phonon split from ``Mat2Spec_DATA.zip``.

    Returns the ids of ``phdos/mpids.csv`` (normalised to ``mp-<n>``) and
    ``{"train", "val", "test"}`` → row indices into them, read from ``phdos/200801_trteva_indices.pkl``
    with the restricted unpickler, in the list order of :data:`~s2p_utils.data.chen_split.PICKLE_PARTS`.
    """
    path = Path(zip_path)
    with _open_zip(path) as zf:
        root = _mat2spec_root(zf, path)
        ids = [normalize_mp_id(i) for i in _zip_first_column(zf, root + "phdos/mpids.csv", path)]
        member = root + "phdos/200801_trteva_indices.pkl"
        value = safe_loads(_zip_read(zf, member, path), source=f"{path}:{member}")
    raw = chen_split.parts_from_pickle(value, f"{path}:{member}")
    parts = {part: _check_indices(raw[part], len(ids), f"{path}:{member}") for part in SPLIT_PARTS}
    return ids, parts


def _pymatgen_atoms(value: Any, source: str) -> Atoms:
    atoms = atoms_from_pymatgen_dict(value, source)
    return _validated(atoms, source)


def convert_mat2spec_edos(zip_path: str | os.PathLike, *, progress: bool = True) -> Dataset:
    """``Mat2Spec_DATA.zip`` → ``mat2spec_edos``: 128-point eDOS on −4…4 eV, split ``"mat2spec"``.

    Reads ``label_edos/mpids.csv`` (column ``mpid``), ``label_edos/total_dos_128.npy`` (N × 128),
    ``label_edos/{train,validate,test}_idx.json`` and, per material,
    ``materials_with_edos/dos_<mpid>.json`` (its ``structure``: a pymatgen Structure dict).
    """
    path = Path(zip_path)
    with _open_zip(path) as zf:
        root = _mat2spec_root(zf, path)
        ids = _zip_first_column(zf, root + "label_edos/mpids.csv", path)
        targets = _zip_npy(zf, root + "label_edos/total_dos_128.npy", path)
        if targets.ndim != 2 or targets.shape[0] != len(ids):
            raise ValueError(
                f"{path}: total_dos_128.npy has shape {targets.shape}, expected ({len(ids)}, n_grid) to match mpids.csv"
            )
        split = {
            part: _zip_json_indices(zf, root + f"label_edos/{stem}_idx.json", path, len(ids))
            for part, stem in zip(SPLIT_PARTS, ("train", "validate", "test"), strict=True)
        }
        structures = []
        for material in tqdm(ids, desc="mat2spec_edos", unit="material", disable=not progress):
            member = root + f"materials_with_edos/dos_{material}.json"
            try:
                record = json.loads(_zip_read(zf, member, path))
                structure = record["structure"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(
                    f"{path}:{member}: expected JSON with a 'structure' key ({error})"
                ) from error
            structures.append(_pymatgen_atoms(structure, f"{path}:{member}"))
    grid = MAT2SPEC_EDOS_GRID if targets.shape[1] == 128 else np.linspace(-4.0, 4.0, targets.shape[1])
    return Dataset(
        name="mat2spec_edos",
        ids=ids,
        formulas=[a.get_chemical_formula() for a in structures],
        structures=structures,
        targets=targets,
        grid=grid,
        grid_unit="eV",
        kind="edos",
        unit="states/eV (Mat2Spec total_dos_128)",
        splits={"mat2spec": split},
    )


def convert_mat2spec_phdos(
    zip_path: str | os.PathLike,
    structures_by_id: Mapping[str, Atoms] | None = None,
    *,
    progress: bool = True,
) -> Dataset:
    """``Mat2Spec_DATA.zip`` ``phdos/`` → ``mat2spec_phdos`` (51 points, 0…1000 cm⁻¹, split ``chen2021``).

    Upstream keeps these structures only in ``phdos/ph_structures.pkl``, a pickle of pymatgen objects
    that cannot be read safely; structures are therefore taken from ``structures_by_id`` (the same
    Chen 2021 / Petretto materials as ``e3nn_phdos``, matched by ``mp-`` id) or, failing that, from
    ``materials_with_edos/dos_<mpid>.json`` in the same zip. Materials with neither are dropped (logged,
    listed in ``meta["dropped_ids"]``) and the split re-indexed.
    """
    path = Path(zip_path)
    lookup = {normalize_mp_id(k): v for k, v in (structures_by_id or {}).items()}
    split_ids, split_parts = read_mat2spec_chen_split(path)
    with _open_zip(path) as zf:
        root = _mat2spec_root(zf, path)
        targets = _zip_npy(zf, root + "phdos/ph_dos.npy", path)
        if targets.ndim != 2 or targets.shape[0] != len(split_ids):
            raise ValueError(
                f"{path}: ph_dos.npy has shape {targets.shape}, expected ({len(split_ids)}, 51) to match phdos/mpids.csv"
            )
        names = set(zf.namelist())
        keep, structures, dropped = [], [], []
        for row, material in enumerate(
            tqdm(split_ids, desc="mat2spec_phdos", unit="material", disable=not progress)
        ):
            atoms = lookup.get(material)
            member = root + f"materials_with_edos/dos_{material}.json"
            if atoms is None and member in names:
                atoms = _pymatgen_atoms(
                    json.loads(_zip_read(zf, member, path))["structure"], f"{path}:{member}"
                )
            if atoms is None:
                dropped.append(material)
                continue
            keep.append(row)
            structures.append(atoms.copy())
    if dropped:
        logger.warning(
            "%s: %d phonon materials have no structure source and were dropped", path, len(dropped)
        )
    position = {old: new for new, old in enumerate(keep)}
    chen = {
        part: np.asarray([position[int(i)] for i in idx if int(i) in position], dtype=int)
        for part, idx in split_parts.items()
    }
    grid = E3NN_GRID if targets.shape[1] == 51 else np.linspace(0.0, 1000.0, targets.shape[1])
    return Dataset(
        name="mat2spec_phdos",
        ids=[split_ids[i] for i in keep],
        formulas=[a.get_chemical_formula() for a in structures],
        structures=structures,
        targets=targets[keep],
        grid=grid,
        grid_unit="cm^-1",
        kind="phdos",
        unit="max-normalised",
        splits={"chen2021": chen},
        meta={"dropped_ids": dropped},
    )


# ----------------------------------------------------------------------------- JARVIS


def _jarvis_atoms(value: Any, source: str) -> Atoms:
    """A JARVIS ``atoms`` dict (``elements``, ``coords``, ``lattice_mat``, ``cartesian``) → Atoms.

    ``coords`` are Cartesian Å when ``cartesian`` is true or absent, fractional when it is false.
    """
    if not isinstance(value, dict) or not {"elements", "coords", "lattice_mat"} <= set(value):
        raise ValueError(f"{source}: expected an atoms dict with 'elements', 'coords', 'lattice_mat'")
    try:
        cell = np.asarray(value["lattice_mat"], dtype=float)
        coords = np.asarray(value["coords"], dtype=float)
        symbols = [str(s).strip() for s in value["elements"]]
        if value.get("cartesian", True):
            atoms = Atoms(symbols=symbols, positions=coords, cell=cell, pbc=True)
        else:
            atoms = Atoms(symbols=symbols, scaled_positions=coords, cell=cell, pbc=True)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{source}: not a valid JARVIS structure ({error})") from error
    return _validated(atoms, source)


def convert_jarvis_zip(
    zip_path: str | os.PathLike, *, target: str = "edos_up", progress: bool = True
) -> Dataset:
    """The JARVIS DOS zip (one JSON list of records) → ``jarvis_edos`` or ``jarvis_phdos``.

    Args:
        target: ``"edos_up"`` (300-point eDOS) or ``"pdos_elast"`` (200-point phonon DOS); records whose
            value is ``"na"`` (or missing) are dropped, their number in ``meta["n_dropped"]``.
    """
    if target not in {"edos_up", "pdos_elast"}:
        raise ValueError(f"target must be 'edos_up' or 'pdos_elast', got {target!r}")
    path = Path(zip_path)
    with _open_zip(path) as zf:
        members = [
            n
            for n in zf.namelist()
            if n.lower().endswith(".json") and not PurePosixPath(n).name.startswith("._")
        ]
        if len(members) != 1:
            raise ValueError(f"{path}: expected exactly one .json member, found {members}")
        text = _zip_read(zf, members[0], path)
        try:
            records = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}:{members[0]}: not valid JSON ({error})") from error
        del text
    if not isinstance(records, list):
        raise ValueError(
            f"{path}:{members[0]}: expected a JSON list of records, got {type(records).__name__}"
        )
    ids, structures, targets = [], [], []
    dropped = 0
    for k, record in enumerate(tqdm(records, desc=f"jarvis {target}", unit="record", disable=not progress)):
        source = f"{path}:{members[0]} record {k}"
        if not isinstance(record, dict):
            raise ValueError(f"{source}: expected an object, got {type(record).__name__}")
        value = record.get(target)
        if value is None or isinstance(value, str):
            if isinstance(value, str) and value.strip().lower() != "na":
                raise ValueError(f"{source}: {target} is the string {value[:40]!r}, expected a list or 'na'")
            dropped += 1
            continue
        jid = str(record.get("jid", "")).strip()
        targets.append(_float_vector(value, f"{source} ({jid}) {target}"))
        structures.append(_jarvis_atoms(record.get("atoms"), f"{source} ({jid}) atoms"))
        ids.append(jid)
    if not ids:
        raise ValueError(f"{path}: no record has a usable {target!r}")
    lengths = {len(t) for t in targets}
    if len(lengths) != 1:
        raise ValueError(f"{path}: {target} lengths differ between records: {sorted(lengths)}")
    n_grid = lengths.pop()
    return Dataset(
        name="jarvis_edos" if target == "edos_up" else "jarvis_phdos",
        ids=ids,
        formulas=[a.get_chemical_formula() for a in structures],
        structures=structures,
        targets=np.asarray(targets),
        grid=np.arange(n_grid, dtype=float),
        grid_unit="bin",
        kind="edos" if target == "edos_up" else "phdos",
        unit="normalised",
        meta={"n_dropped": dropped},
    )


# ----------------------------------------------------------------------------- Fung et al. tarballs

_FUNG_MEMBER = re.compile(r"^(\d+)\.(vasp|npy)$")


def convert_fung_targz(
    targz_path: str | os.PathLike,
    *,
    name: str = "sto_edos",
    site: int = 2,
    channel: int = 2,
    stride: int = 4,
    progress: bool = True,
) -> Dataset:
    """A Fung et al. (Chem. Mater. 2022) tarball → ``sto_edos`` / ``surface_edos``.

    Layout: pairs ``<dir>/<i>.vasp`` (POSCAR) and ``<dir>/<i>.npy`` (``<dir>`` is ``data`` for SrTiO₃,
    ``surface_DOS_dataset`` for the alloy surfaces). Each ``.npy`` is a float array
    ``(n_atoms, 1 + n_projections, n_energies)`` — per site, row 0 the energies (eV) and the other rows
    projected DOS (MatDeepLearn_DOS ``process.py`` reads it this way). Following the paper authors'
    notebooks (``add/embed_sto.ipynb``, ``add/embed_surface.ipynb``), the target is
    ``array[site, channel, ::stride]`` and the per-structure energy grid ``array[site, 0, ::stride]``
    (defaults 2, 2, 4: 2000 → 500 points); both are kept unscaled. Rows of unequal length are
    post-padded with zeros, as the notebooks' ``pad_sequences`` did (logged). ``Dataset.grids`` holds
    the per-structure energies; ``Dataset.grid`` is their median over structures (for plots).

    The archive is streamed member by member; nothing is extracted to disk and ``.npy`` files are read
    with ``allow_pickle=False``.
    """
    path = Path(targz_path)
    poscars: dict[int, str] = {}
    energies: dict[int, np.ndarray] = {}
    spectra: dict[int, np.ndarray] = {}
    read_so_far = 0
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tqdm(tar, desc=name, unit="file", disable=not progress):
                if not member.isfile():
                    continue
                match = _FUNG_MEMBER.match(PurePosixPath(member.name).name)
                if match is None:
                    continue
                key, suffix = int(match.group(1)), match.group(2)
                data = read_tar_member(tar, member, path, read_so_far=read_so_far)
                read_so_far += len(data)
                if suffix == "vasp":
                    poscars[key] = data.decode("utf-8", errors="strict")
                    continue
                source = f"{path}:{member.name}"
                try:
                    array = np.load(io.BytesIO(data), allow_pickle=False)
                except ValueError as error:
                    raise ValueError(f"{source}: not a plain numeric .npy array ({error})") from error
                if array.ndim != 3 or site >= array.shape[0] or max(channel, 0) >= array.shape[1]:
                    raise ValueError(
                        f"{source}: expected (n_atoms, 1 + n_projections, n_energies) with site {site} and "
                        f"channel {channel}, got shape {array.shape}"
                    )
                energies[key] = np.asarray(array[site, 0, ::stride], dtype=np.float64)
                spectra[key] = np.asarray(array[site, channel, ::stride], dtype=np.float64)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ValueError(
            f"{path}: not a readable .tar.gz ({type(error).__name__}: {error}); the file is truncated or "
            "corrupted — delete it and fetch it again"
        ) from error
    keys = sorted(set(poscars) | set(spectra))
    unpaired = [k for k in keys if k not in poscars or k not in spectra]
    if unpaired:
        raise ValueError(
            f"{path}: {len(unpaired)} structures lack their .vasp/.npy partner, e.g. {unpaired[:5]}"
        )
    if not keys:
        raise ValueError(f"{path}: no <i>.vasp / <i>.npy pairs found")
    structures = []
    for k in keys:
        source = f"{path}:{k}.vasp"
        try:
            atoms = ase_read(io.StringIO(poscars[k]), format="vasp")
        except Exception as error:  # ASE raises many types on malformed POSCARs
            raise ValueError(f"{source}: not a readable POSCAR ({type(error).__name__}: {error})") from error
        structures.append(_validated(atoms, source))
    targets, padded = _pad_post([spectra[k] for k in keys])
    grids, _ = _pad_post([energies[k] for k in keys])
    if padded:
        logger.warning("%s: spectra of unequal length were post-padded with zeros", path)
    return Dataset(
        name=name,
        ids=[str(k) for k in keys],
        formulas=[a.get_chemical_formula() for a in structures],
        structures=structures,
        targets=targets,
        grid=np.median(grids, axis=0),
        grid_unit="eV",
        kind="edos",
        unit="states/eV (site-projected, unscaled)",
        grids=grids,
        meta={"site": site, "channel": channel, "stride": stride, "padded": padded},
    )


# ----------------------------------------------------------------------------- Materials Project


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if not isinstance(obj, Mapping) and hasattr(obj, name):
            return getattr(obj, name)
    return None


def phdos_from_mp_docs(
    docs: Iterable[Any],
    structures: Mapping[str, Any],
    *,
    n_points: int = 128,
    max_freq: float = 1200.0,
    box: int = 3,
    progress: bool = True,
) -> Dataset:
    """Materials Project phonon documents → ``mp_phdos``.

    Each doc needs ``material_id`` and a phonon DOS (``ph_dos`` / ``phonon_dos`` / ``dos``: an object
    or dict with ``frequencies`` in THz and ``densities``). ``structures`` maps material ids to an
    ``ase.Atoms``, a pymatgen ``Structure`` or its ``as_dict()``. As in the authors' notebook
    (``getInterp``): frequencies are converted to cm⁻¹, the DOS is interpolated (linear, extrapolating)
    onto ``linspace(0, min(max_freq, max frequency), n_points)`` and smoothed with a ``box``-point
    moving average (``mode="same"``). The per-structure grids go to ``Dataset.grids``.
    """
    ids, atoms_list, targets, grids = [], [], [], []
    for doc in tqdm(list(docs), desc="mp_phdos", unit="material", disable=not progress):
        material = str(_get(doc, "material_id"))
        dos = _get(doc, "ph_dos", "phonon_dos", "dos")
        freq = _get(dos, "frequencies")
        dens = _get(dos, "densities")
        if dos is None or freq is None or dens is None:
            raise ValueError(
                f"Materials Project doc {material}: no phonon DOS with frequencies and densities"
            )
        freq = _float_vector(freq, f"{material} frequencies") * THZ_TO_CM1
        dens = _float_vector(dens, f"{material} densities")
        top = min(max_freq, float(np.max(freq)))
        xnew = np.linspace(0.0, top, n_points)
        ynew = interp1d(freq, dens, fill_value="extrapolate")(xnew)
        ynew = np.convolve(ynew, np.ones(box) / box, mode="same")
        structure = structures.get(material)
        if structure is None:
            raise ValueError(f"Materials Project doc {material}: no structure given")
        if not isinstance(structure, Atoms):
            as_dict = structure.as_dict() if hasattr(structure, "as_dict") else structure
            structure = _pymatgen_atoms(as_dict, f"Materials Project {material} structure")
        ids.append(material)
        atoms_list.append(structure)
        targets.append(ynew)
        grids.append(xnew)
    if not ids:
        raise ValueError("no Materials Project phonon documents")
    grids_arr = np.asarray(grids)
    return Dataset(
        name="mp_phdos",
        ids=ids,
        formulas=[a.get_chemical_formula() for a in atoms_list],
        structures=atoms_list,
        targets=np.asarray(targets),
        grid=np.median(grids_arr, axis=0),
        grid_unit="cm^-1",
        kind="phdos",
        unit="states/cm^-1 (interpolated, box-smoothed)",
        grids=grids_arr,
    )


def fetch_mp_phdos(
    api_key: str | None = None, *, material_ids: Sequence[str] | None = None, progress: bool = True
) -> Dataset:
    """Download all (or ``material_ids``) Materials Project phonon DOS through ``mp-api``.

    Raises:
        RuntimeError: without an API key (argument or ``MP_API_KEY``) or without the ``mp-api`` package.
    """
    api_key = api_key or os.environ.get("MP_API_KEY")
    if not api_key:
        raise RuntimeError(
            "mp_phdos is fetched from the Materials Project API and needs an API key: set the environment "
            "variable MP_API_KEY (get one at https://next-gen.materialsproject.org/api) and install the "
            "client with `pip install 'struct2prop[mp]'`; or put a prepared mp_phdos.json.gz in the mirror"
        )
    try:
        from mp_api.client import MPRester
    except ImportError as error:
        raise RuntimeError("mp_phdos needs the mp-api client: pip install 'struct2prop[mp]'") from error
    with MPRester(api_key) as mpr:
        docs = mpr.materials.phonon.search(material_ids=material_ids)
        ids = [str(_get(d, "material_id")) for d in docs]
        summaries = mpr.materials.summary.search(material_ids=ids, fields=["material_id", "structure"])
        structures = {str(_get(s, "material_id")): _get(s, "structure") for s in summaries}
    return phdos_from_mp_docs(docs, structures, progress=progress)
