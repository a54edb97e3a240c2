"""The paper authors' published pretrained models, pinned by git blob: ``s2p models list|fetch``.

Beside the dataset registry (:mod:`s2p_utils.data.registry`), :data:`MODELS` lists the trained legacy
Keras-2 ``.h5`` files of `dmamur/struct2prop <https://github.com/dmamur/struct2prop>`_ at commit
:data:`AUTHORS_COMMIT`. Each entry says what the model predicts, on which grid and in which units,
how its inputs are built, which target scaling must be undone, its source and licence — and, in
``unverified``, what could not be checked (the three ``models/`` files are not in the offline mirror,
so their shapes, grids and scaling are taken from the authors' notebooks and file names only).

:func:`fetch_model` finds a file in the cache (``<cache>/models/authors/``), else the mirror
(``<mirror>/authors_weights/``), else downloads it from ``raw.githubusercontent.com``; every copy is
checked against the git blob SHA-1 (and the sha256 and size where known). ``s2p predict
authors:NAME FILES...`` (and ``predict("authors:NAME", ...)``) runs it through the authors'-weights
loader :func:`s2p_utils.model.load_authors_model` with the metadata from
:func:`resolve_authors_model` (grid, units, target scaler when it can be rebuilt).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2p_utils import paths
from s2p_utils.data.download import ChecksumError, DownloadError, discard_corrupt, download_file, verify_file
from s2p_utils.data.registry import dataset_status, load
from s2p_utils.train import fit_target_scaler
from s2p_utils.weights import read_authors_file

__all__ = [
    "AUTHORS_COMMIT",
    "AUTHORS_REPO",
    "MODELS",
    "PretrainedModel",
    "fetch_model",
    "get_model",
    "models_markdown",
    "resolve_authors_model",
]

AUTHORS_REPO = "dmamur/struct2prop"
AUTHORS_COMMIT = "905980dde130f899304a58a05244f717f084772e"
_RAW = f"https://raw.githubusercontent.com/{AUTHORS_REPO}/{AUTHORS_COMMIT}"
#: Prefix of a model argument that names an entry of :data:`MODELS`.
PREFIX = "authors:"

_SOURCE = f"{AUTHORS_REPO} @ {AUTHORS_COMMIT[:12]}"
_LICENSE = (
    "no licence file in the authors' repository listing at this commit (so all rights reserved by default); "
    "cite Shermukhamedov et al., ChemRxiv 2023, doi 10.26434/chemrxiv-2023-gq77g"
)
_LEGACY_INPUTS = (
    "legacy per-atom PDF (100 bins of 0.1 Å up to 10 Å, Gaussian-smoothed, the authors' `getpdf`) and element "
    "tokens of the 94-token vocabulary, post-padded to the file's atom length"
)
_FUNG_GRID = (
    "takes the energy grid as a third input: 500 energies in eV per structure (the Fung et al. site-projected "
    "grids, every 4th point); pass it with `--grid START:STOP:500` or per-structure grids in the Python API"
)
_FUNG_SCALING = (
    "not recorded in the file: the authors' notebook imports sklearn's MinMaxScaler (add/embed_sto.ipynb) but "
    "whether the saved model predicts scaled targets is not verified; outputs are given as the network "
    "produces them"
)
_UNDOCUMENTED_GRID = (
    "not documented (the output length is read from the file; the output is labelled by bin index)"
)
_NOT_IN_MIRROR = (
    "the file is not in the offline mirror: its shapes, grid length and scaling were not checked here "
    "(`s2p models fetch NAME` prints the shapes read from the file)",
    "sha256 and size unknown; verified by git blob SHA-1 only",
)


@dataclass(frozen=True)
class PretrainedModel:
    """One published model file and what is known about it.

    Attributes:
        name: registry name (``authors:<name>`` on the command line).
        repo_path: path in the authors' repository, e.g. ``add/edosBulk_pdf.h5``.
        git_sha1: git blob SHA-1 of the file at :data:`AUTHORS_COMMIT`.
        url: raw download URL pinned to that commit.
        predicts: what the output is.
        grid: the output grid and its units, as far as known.
        inputs: how the inputs are built.
        target_scaling: the scaling to undo, and how it is undone.
        grid_unit: unit of the output grid (``"eV"``, ``"cm^-1"``, ``""`` unknown).
        default_grid: ``(start, stop, n)`` of ``numpy.linspace`` for the output grid of a model without grid
            input, when known; ``None`` otherwise.
        scaler_dataset: dataset whose targets (all rows, as the authors' notebook) give the per-bin MinMax
            scaler to undo; ``None`` when no scaler is to be rebuilt.
        scaled_output: the outputs are known or named to be scaled and no scaler can be rebuilt.
        sha256: hex sha256 when known. size: bytes when known.
        verified: what was checked about the file.
        unverified: what could not be checked (said, not guessed).
        source, license: provenance and terms.
    """

    name: str
    repo_path: str
    git_sha1: str
    predicts: str
    grid: str
    inputs: str
    target_scaling: str
    grid_unit: str = ""
    default_grid: tuple[float, float, int] | None = None
    scaler_dataset: str | None = None
    scaled_output: bool = False
    sha256: str | None = None
    size: int | None = None
    verified: str = ""
    unverified: tuple[str, ...] = ()
    source: str = _SOURCE
    license: str = _LICENSE
    url: str = ""

    @property
    def filename(self) -> str:
        return Path(self.repo_path).name


def _entry(**fields: Any) -> PretrainedModel:
    return PretrainedModel(url=f"{_RAW}/{fields['repo_path']}", **fields)


MODELS: dict[str, PretrainedModel] = {
    entry.name: entry
    for entry in (
        _entry(
            name="mat2spec_pdf",
            repo_path="models/mat2spec_pdf.h5",
            git_sha1="36591ad8205b01f4098bf18834f4eb8e6fc32072",
            predicts="electronic DOS of bulk crystals (Mat2Spec / Materials Project eDOS, the paper's main model)",
            grid="128 points on −4…4 eV around the Fermi level (Mat2Spec's grid; point positions ±½ bin)",
            grid_unit="eV",
            default_grid=(-4.0, 4.0, 128),
            inputs=_LEGACY_INPUTS,
            target_scaling=(
                "per-bin MinMax (sklearn MinMaxScaler fitted on all rows of the Mat2Spec eDOS targets, the authors' "
                "embed_mat2spec.ipynb): undone with a scaler fitted on `mat2spec_edos` when that dataset is in the "
                "cache or the mirror; otherwise the output stays scaled to [0, 1] per bin and is flagged"
            ),
            scaler_dataset="mat2spec_edos",
            unverified=_NOT_IN_MIRROR,
        ),
        _entry(
            name="mp2022_pdf",
            repo_path="models/mp2022_pdf.h5",
            git_sha1="0c80d64467c5e291080b391107212e31e11b0fd3",
            predicts=(
                "undocumented at this commit; the name and the repository's data/edos_ids_MP2022.txt suggest "
                "eDOS of the authors' extended Materials Project 2022 set"
            ),
            grid=_UNDOCUMENTED_GRID,
            inputs=_LEGACY_INPUTS,
            target_scaling="not documented; outputs are given as the network produces them",
            unverified=(*_NOT_IN_MIRROR, "what it predicts, its grid and its scaling (see above)"),
        ),
        _entry(
            name="mp2022_pdf_MinMaxNorm",
            repo_path="models/mp2022_pdf_MinMaxNorm.h5",
            git_sha1="e28766bda7efe18994dd6abca81e97fcc13e1dc1",
            predicts="as `mp2022_pdf`, trained on min-max normalised targets (by its name; not documented)",
            grid=_UNDOCUMENTED_GRID,
            inputs=_LEGACY_INPUTS,
            target_scaling=(
                "min-max normalised (by the file name); the scaler is not published, so outputs stay scaled "
                "and are flagged"
            ),
            scaled_output=True,
            unverified=(*_NOT_IN_MIRROR, "what it predicts, its grid and the scaler (see above)"),
        ),
        _entry(
            name="edosBulk_pdf",
            repo_path="add/edosBulk_pdf.h5",
            git_sha1="17f830d00ffab57ccb029a1593ff9acee944bc7d",
            sha256="f7647570ba0ca9d9cc44c767f8dd6daa47cde01f4e980479cf6d7db905b2c06d",
            size=3_361_600,
            predicts=(
                "site-projected electronic DOS of alloy surfaces (Fung et al., Chem. Mater. 2022 surface dataset; the "
                "authors' README, section Surface-eDOS)"
            ),
            grid=_FUNG_GRID,
            grid_unit="eV",
            inputs=_LEGACY_INPUTS + " (128 atoms)",
            target_scaling=_FUNG_SCALING,
            verified=(
                "file in the mirror: inputs PDF (128, 100), tokens (128,), grid (500,); BiLSTM(8) with masking, "
                "Embedding(94, 128), LSTM(128), Dense(500, relu); outputs match the authors' TensorFlow 2.15 run "
                "to 1e-4 (tests/test_predict.py)"
            ),
            unverified=("the energy range of the training grids", "the target scaling (see above)"),
        ),
        _entry(
            name="edosSrTiO3_pdf",
            repo_path="add/edosSrTiO3_pdf.h5",
            git_sha1="0f4fe0e6294a7e24130e4f566f6d4e1ac985e40f",
            sha256="f9b3c39e73a227d41d34f623f5ead288a1c182628c2cbb438d5739940d48ef84",
            size=3_361_600,
            predicts=(
                "site-projected electronic DOS of SrTiO₃ structures (Fung et al., Chem. Mater. 2022 SrTiO₃ "
                "dataset; the authors' README, section STO-eDOS)"
            ),
            grid=_FUNG_GRID,
            grid_unit="eV",
            inputs=_LEGACY_INPUTS + " (128 atoms)",
            target_scaling=_FUNG_SCALING,
            verified="file in the mirror: same architecture and shapes as `edosBulk_pdf`",
            unverified=("the energy range of the training grids", "the target scaling (see above)"),
        ),
    )
}


def get_model(name: str) -> PretrainedModel:
    """The entry ``name`` (``authors:`` prefix allowed); ``ValueError`` listing the known names otherwise."""
    key = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    try:
        return MODELS[key]
    except KeyError:
        raise ValueError(f"unknown pretrained model {name!r}; known: {', '.join(MODELS)}") from None


def _pins(entry: PretrainedModel) -> dict[str, Any]:
    return {"sha256": entry.sha256, "git_sha1": entry.git_sha1, "size": entry.size}


def _cached_copy(entry: PretrainedModel, dest: Path) -> Path | None:
    """``dest`` if it verifies; a corrupt copy is deleted (to be fetched again)."""
    if not dest.is_file():
        return None
    try:
        verify_file(dest, **_pins(entry), origin=f"cached file {dest}")
    except ChecksumError as error:
        discard_corrupt(dest, str(error))
        return None
    return dest


def fetch_model(
    name: str,
    *,
    mirror: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """A verified local copy of model ``name``: cache → mirror (``authors_weights/``) → download.

    Raises:
        ValueError: unknown name; :class:`~s2p_utils.data.download.ChecksumError` when a mirror copy or a
            download does not match the pinned git blob (naming file, expected, actual).
        FileNotFoundError: offline and nowhere to be found (says which file to put where).
    """
    entry = get_model(name)
    dest = paths.cache_dir(cache_dir) / "models" / "authors" / entry.filename
    if (found := _cached_copy(entry, dest)) is not None:
        return found
    mirror_root = paths.mirror_dir(mirror)
    if mirror_root is not None:
        candidate = mirror_root / "authors_weights" / entry.filename
        if candidate.is_file():
            verify_file(candidate, **_pins(entry), origin=f"mirror file {candidate}")
            return candidate
    try:
        return download_file(entry.url, dest, **_pins(entry), progress=progress)
    except DownloadError as error:
        root = mirror_root or "$S2P_DATA_MIRROR"
        raise FileNotFoundError(
            f"pretrained model {entry.name!r} is not available: {error}. Offline, put {entry.url} "
            f"(git blob {entry.git_sha1}) at {root}/authors_weights/{entry.filename}"
            + ("" if mirror_root else " and set S2P_DATA_MIRROR")
        ) from error


def _scaler(entry: PretrainedModel, n_out: int, mirror: Any, cache_dir: Any) -> dict[str, list[float]] | None:
    """The per-bin MinMax scaler of ``entry.scaler_dataset`` (all rows), when that dataset is local."""
    status = dataset_status(entry.scaler_dataset, mirror=mirror, cache_dir=cache_dir)  # type: ignore[arg-type]
    if status not in {"cached", "mirror (prepared)", "mirror (upstream)"}:
        return None
    dataset = load(entry.scaler_dataset, mirror=mirror, cache_dir=cache_dir, progress=False)  # type: ignore[arg-type]
    if dataset.targets.shape[1] != n_out:
        raise ValueError(
            f"authors:{entry.name}: the model predicts {n_out} points but {entry.scaler_dataset} has "
            f"{dataset.targets.shape[1]}; cannot rebuild its target scaler"
        )
    scaler = fit_target_scaler(dataset.targets, "minmax")
    return None if scaler is None else scaler.to_dict()


def resolve_authors_model(
    spec: str,
    *,
    mirror: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[Path, dict[str, Any]]:
    """``"authors:NAME"`` → (verified local ``.h5`` path, prediction metadata).

    The metadata gives what the file does not store: the output grid and unit when known, and the target
    scaler when it can be rebuilt (:attr:`PretrainedModel.scaler_dataset` available locally). A
    ``UserWarning`` says when the outputs stay scaled or their scaling is unknown.
    """
    entry = get_model(spec)
    path = fetch_model(entry.name, mirror=mirror, cache_dir=cache_dir)
    config = read_authors_file(path).config
    meta: dict[str, Any] = {"kind": "edos", "grid_unit": entry.grid_unit}
    if entry.default_grid is not None and not config.grid_input:
        start, stop, n = entry.default_grid
        if n == config.n_out:
            meta["grid"] = np.linspace(start, stop, n).tolist()
        else:
            warnings.warn(
                f"authors:{entry.name} predicts {config.n_out} points, not the documented {n}; "
                "its output is labelled by bin index",
                UserWarning,
                stacklevel=2,
            )
            meta["grid_unit"] = "bin"
    if entry.scaler_dataset:
        meta["target_scaler"] = _scaler(entry, config.n_out, mirror, cache_dir)
        if meta["target_scaler"] is None:
            warnings.warn(
                f"authors:{entry.name}: outputs are MinMax-scaled per bin to [0, 1]; the scaler is rebuilt from "
                f"the {entry.scaler_dataset} targets, which are not in the cache or the mirror "
                f"(`s2p data fetch {entry.scaler_dataset}` makes them available)",
                UserWarning,
                stacklevel=2,
            )
    elif entry.scaled_output:
        warnings.warn(
            f"authors:{entry.name}: outputs are min-max scaled and the scaler is not published",
            UserWarning,
            stacklevel=2,
        )
    return path, meta


# ----------------------------------------------------------------------------- command line and docs


def _status(entry: PretrainedModel, mirror: Any, cache_dir: Any) -> str:
    if (paths.cache_dir(cache_dir) / "models" / "authors" / entry.filename).is_file():
        return "cached"
    mirror_root = paths.mirror_dir(mirror)
    if mirror_root is not None and (mirror_root / "authors_weights" / entry.filename).is_file():
        return "mirror"
    return "download"


def _scaling_text(entry: PretrainedModel) -> str:
    if entry.scaler_dataset:
        return f"MinMax, undone from {entry.scaler_dataset}"
    return "scaled (flagged)" if entry.scaled_output else "unknown"


def models_markdown() -> str:
    """The *Pretrained models* section of ``data/README.md``, generated from :data:`MODELS`."""
    lines = [
        "## Pretrained models",
        "",
        f"The paper authors' trained legacy Keras-2 models, files of `{AUTHORS_REPO}` at commit `{AUTHORS_COMMIT}`,",
        "pinned by git blob. `s2p models list`, `s2p models fetch NAME` (cache `<cache>/models/authors/`, else the",
        "mirror's `authors_weights/`, else a verified download) and `s2p predict authors:NAME FILES...`.",
        "",
    ]
    for entry in MODELS.values():
        lines += [
            f"### `authors:{entry.name}`",
            "",
            f"- file: `{entry.repo_path}` ← <{entry.url}> (git blob `{entry.git_sha1}`"
            + (f", sha256 `{entry.sha256}`" if entry.sha256 else "")
            + (f", {entry.size:,} B" if entry.size else "")
            + ")",
            f"- predicts: {entry.predicts}",
            f"- grid: {entry.grid}",
            f"- inputs: {entry.inputs}",
            f"- target scaling: {entry.target_scaling}",
        ]
        if entry.verified:
            lines.append(f"- verified: {entry.verified}")
        lines += [f"- not verified: {item}" for item in entry.unverified]
        lines += [f"- source: {entry.source}; licence: {entry.license}", ""]
    return "\n".join(lines)
