"""This package's own trained models, shipped with it as package data: ``s2p predict FILES...``.

A packaged model is an ensemble folder exactly like the ones :func:`s2p_utils.experiment.run_experiment`
writes (``member<k>.keras`` + its record ``member<k>.json`` + ``calibration.json``), so it runs through the one
prediction path (:func:`s2p_utils.prediction.load_predictor`), plus a model card: ``model_card.json``
(data, split, test metrics, date, the command that trained it, size) and ``MODEL_CARD.md``.

:func:`export_ensemble` makes one from a trained ensemble folder: the optimizer state is dropped, the
weights are rounded to float16 precision (stored as float32, so loading is unchanged) and each ``.keras``
archive is re-written with deflate compression (:func:`write_model_card` then adds the card); that brings a 5-member phonon ensemble from
27 MB to about 5 MB. The card's test metrics are computed *after* rounding, through
:func:`s2p_utils.prediction.predict`, so the shipped files reproduce them (``tests/test_packaged_models.py``).

``s2p predict my/*.cif`` (no model argument) uses :data:`DEFAULT_MODEL`; ``s2p:NAME`` names any packaged
model, ``s2p models list`` lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase.build import bulk

from s2p_utils.data.structures import read_structure
from s2p_utils.paths import atomic_path, mirror_dir

__all__ = [
    "DEFAULT_MODEL",
    "PREFIX",
    "PACKAGE_DIR",
    "packaged_names",
    "packaged_model_path",
    "model_card",
    "resolve_model_spec",
    "export_ensemble",
    "write_model_card",
    "folder_size",
    "example_structures",
]

#: Model used by ``s2p predict`` when no model is named.
DEFAULT_MODEL = "e3nn_phdos_mass"
#: Prefix of a model argument that names a packaged model.
PREFIX = "s2p:"
#: Where packaged models live (one sub-folder each).
PACKAGE_DIR = Path(__file__).resolve().parent / "pretrained"

_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def packaged_names() -> list[str]:
    """Names of the packaged models (sub-folders of :data:`PACKAGE_DIR` holding a ``model_card.json``)."""
    if not PACKAGE_DIR.is_dir():
        return []
    return sorted(p.name for p in PACKAGE_DIR.iterdir() if (p / "model_card.json").is_file())


def packaged_model_path(name: str = DEFAULT_MODEL) -> Path:
    """The ensemble folder of packaged model ``name``.

    Raises:
        ValueError: no such packaged model (the message lists the known ones).
    """
    folder = PACKAGE_DIR / name
    if not (folder / "model_card.json").is_file():
        known = ", ".join(packaged_names()) or "none"
        raise ValueError(f"no packaged model {name!r} (packaged: {known}; see `s2p models list`)")
    return folder


def model_card(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The ``model_card.json`` of packaged model ``name``."""
    return json.loads((packaged_model_path(name) / "model_card.json").read_text(encoding="utf-8"))


def resolve_model_spec(spec: str | os.PathLike) -> str | os.PathLike:
    """``s2p:NAME`` → the packaged folder; anything else unchanged."""
    if isinstance(spec, str) and spec.startswith(PREFIX):
        return str(packaged_model_path(spec[len(PREFIX) :] or DEFAULT_MODEL))
    return spec


def looks_like_model(spec: str) -> bool:
    """Whether a ``s2p predict`` argument names a model rather than a structure file."""
    if spec.startswith((PREFIX, "authors:")):
        return True
    path = Path(spec)
    return path.is_dir() or path.suffix.lower() in _MODEL_SUFFIXES


def folder_size(folder: str | os.PathLike) -> int:
    """Bytes of a model folder's model files (members and calibration; the model card not counted)."""
    cards = {"model_card.json", "MODEL_CARD.md"}
    return sum(p.stat().st_size for p in Path(folder).iterdir() if p.is_file() and p.name not in cards)


def _deflate(path: Path) -> None:
    """Re-write the zip archive ``path`` with deflate compression (``.keras`` files are stored raw)."""
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out,
    ):
        for info in source.infolist():
            out.writestr(info.filename, source.read(info.filename))


def export_ensemble(
    source: str | os.PathLike,
    name: str,
    *,
    dest_root: str | os.PathLike | None = None,
    float16: bool = True,
) -> Path:
    """Copy a trained ensemble folder into the package as model ``name`` (weights and calibration).

    Args:
        source: an ensemble folder of ``member<k>.keras`` / ``.json`` and ``calibration.json``.
        name: the packaged model's name (folder name).
        dest_root: where to create ``<name>/`` (default :data:`PACKAGE_DIR`).
        float16: round every weight to float16 precision (stored as float32).

    Returns:
        The new folder (an existing folder of that name is replaced); :func:`write_model_card` completes it.
    """
    from s2p_utils.model import load_model, save_model  # TensorFlow: loaded only when needed
    from s2p_utils.prediction import _member_paths  # prediction imports this module

    source = Path(source)
    dest = Path(dest_root or PACKAGE_DIR) / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for member in _member_paths(source):
        model, record = load_model(member)  # uncompiled: saved again without optimizer state
        if float16:
            model.set_weights(
                [
                    np.asarray(w, np.float16).astype(w.dtype) if w.dtype.kind == "f" else w
                    for w in model.get_weights()
                ]
            )
        target = dest / member.name
        save_model(model, target, record)
        _deflate(target)
    shutil.copy2(source / "calibration.json", dest / "calibration.json")
    return dest


def write_model_card(
    folder: str | os.PathLike, card: dict[str, Any], render: Callable[[dict[str, Any]], str] | None = None
) -> dict[str, Any]:
    """Write ``model_card.json`` (``card`` plus ``size_bytes``, :func:`folder_size`) and, with ``render``
    (card → Markdown), ``MODEL_CARD.md``. Returns the card as written."""
    folder = Path(folder)
    card = {**card, "size_bytes": folder_size(folder)}
    text = json.dumps(card, indent=2, allow_nan=False) + "\n"
    (folder / "model_card.json").write_text(text, encoding="utf-8")
    if render is not None:
        (folder / "MODEL_CARD.md").write_text(render(card), encoding="utf-8")
    return card


def example_structures(n: int = 3, mirror: str | os.PathLike | None = None) -> tuple[list[Any], list[str]]:
    """A few crystals to try the pretrained models on: ``(atoms list, ids)``.

    The first ``n`` Materials Project CIFs of ``<mirror>/mp_binaries_cif/`` when the data mirror
    (``mirror`` or ``$S2P_DATA_MIRROR``) has them, else ASE-built Si, NaCl and MgO.
    """
    root = mirror_dir(mirror)
    files = sorted((root / "mp_binaries_cif").glob("*.cif"))[:n] if root is not None else []
    if files:
        return [read_structure(f) for f in files], [f.stem for f in files]
    built = [bulk("Si", "diamond", a=5.43), bulk("NaCl", "rocksalt", a=5.64), bulk("MgO", "rocksalt", a=4.21)]
    return built[:n], ["Si", "NaCl", "MgO"][:n]
