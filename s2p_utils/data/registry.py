"""Every paper dataset behind one registry: ``load(name)`` → :class:`~s2p_utils.data.dataset.Dataset`.

Resolution order of :func:`load` (the first that works wins):

1. **cache** — ``<cache>/prepared/<name>.json.gz`` (``S2P_CACHE_DIR``, default ``~/.cache/s2p``), the
   ``s2p-prepared/1`` file written by an earlier conversion;
2. **mirror, prepared** — ``<mirror>/<name>.json.gz`` (``mirror=`` or ``S2P_DATA_MIRROR``), checked
   against its sha256 when the registry knows it;
3. **mirror, upstream** — the upstream files under ``<mirror>/<name>/`` (also accepted: the file's
   shared folder ``<mirror>/<folder>/`` — e.g. ``<mirror>/mat2spec_edos/Mat2Spec_DATA.zip`` serves
   ``mat2spec_edos``, ``mat2spec_phdos`` and the Chen split of ``e3nn_phdos``), checked when a
   checksum is known, then converted;
4. **download** — missing upstream files are fetched into ``<cache>/<folder>/`` (pooch, progress bar,
   size and sha256 / git-blob SHA-1 verified; a mismatch deletes the file and raises naming URL,
   expected and obtained value). Files without a published checksum are trusted on first use: the
   sha256 of the first copy is recorded in ``<cache>/checksums.lock.json`` and every later use is
   verified against it (:mod:`s2p_utils.data.download`); ``S2P_STRICT_CHECKSUMS=1`` refuses them.
   Archives are read member by member once before conversion (:mod:`s2p_utils.data.archives`).

A cached file that no longer verifies (a truncated prepared ``.json.gz``, an upstream file whose
digest or archive check fails) is deleted with a message and fetched again from the mirror or the
source; ``refresh=True`` (``s2p data fetch NAME --refresh``) rebuilds the prepared file regardless.

Converted datasets are saved (atomically) as ``<cache>/prepared/<name>.json.gz``; later loads take
~1–2 s for e3nn_phdos. Offline with nothing cached, one :class:`FileNotFoundError` says which file to
put where.

Offline-mirror layout (any subset)::

    <mirror>/e3nn_phdos.json.gz            prepared (sha256 checked)
    <mirror>/jarvis_edos_sample.json.gz    prepared (sha256 checked)
    <mirror>/<name>.json.gz                any other prepared dataset (e.g. copied from a cache)
    <mirror>/e3nn_phdos/data.csv, idx_train.txt, idx_valid.txt, idx_test.txt, 200801_trteva_indices.pkl
    <mirror>/mat2spec_edos/Mat2Spec_DATA.zip
    <mirror>/jarvis/edos-up_pdos-elast_interp-8-18-2021.json.zip
    <mirror>/sto_edos/sto_dos.tar.gz
    <mirror>/surface_edos/surface_DOS_dataset.tar.gz
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from s2p_utils import paths
from s2p_utils.data import chen_split, converters
from s2p_utils.data.archives import check_archive
from s2p_utils.data.dataset import Dataset, load_prepared, save_prepared
from s2p_utils.data.download import (
    DownloadError,
    TrustLock,
    UnverifiedDownloadError,
    discard_corrupt,
    download_file,
    strict_checksums,
    verify_file,
    verify_local_file,
)
from s2p_utils.data.safe_pickle import safe_load_file

__all__ = [
    "REGISTRY",
    "DatasetSpec",
    "UpstreamFile",
    "PreparedFile",
    "ConversionContext",
    "get_spec",
    "load",
    "dataset_status",
    "prepared_cache_path",
    "prepared_cache_problem",
    "registry_markdown",
    "human_size",
    "upstream_size_text",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamFile:
    """One upstream file: where it comes from and what it must hash to.

    Attributes:
        filename: the name under ``<cache>/<folder>/`` and ``<mirror>/<folder>/``.
        url: download URL, pinned to a commit or a record.
        sha256: hex sha256 when known.
        git_sha1: git blob SHA-1 when the file is pinned on GitHub.
        size: size in bytes when known.
        folder: cache/mirror sub-folder (shared by datasets that use the same file); default the dataset name.
        note: where the size or checksum comes from, or why it is unknown.
    """

    filename: str
    url: str
    sha256: str | None = None
    git_sha1: str | None = None
    size: int | None = None
    folder: str | None = None
    note: str = ""

    @property
    def verifiable(self) -> bool:
        return bool(self.sha256 or self.git_sha1)


@dataclass(frozen=True)
class PreparedFile:
    """A prepared ``s2p-prepared/1`` file in the mirror root (``<mirror>/<filename>``)."""

    filename: str
    sha256: str | None = None
    size: int | None = None


@dataclass
class ConversionContext:
    """What a registry converter gets: the local upstream files and a way to load other datasets."""

    spec: DatasetSpec
    files: dict[str, Path]
    mirror: Path | None
    cache_dir: Path
    progress: bool = True

    def path(self, filename: str) -> Path:
        return self.files[filename]

    def dependency(self, name: str) -> Dataset:
        return load(name, mirror=self.mirror, cache_dir=self.cache_dir)


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry.

    Attributes:
        name: registry name.
        title: one-line description.
        kind: ``"phdos"`` or ``"edos"``.
        n: expected number of structures (``None`` when unknown before conversion).
        n_grid: points per spectrum.
        grid: human description of the grid.
        source: human description of the upstream source.
        license: licence / terms of the data.
        citation: what to cite.
        files: upstream files the converter needs.
        prepared: a prepared file that may sit in the mirror root.
        converter: upstream files → Dataset (``None``: mirror-only).
        splits: named splits besides ``random73``.
        default_split: the split experiments use by default.
        needs: environment variable the converter needs (``"MP_API_KEY"``), if any.
    """

    name: str
    title: str
    kind: str
    n: int | None
    n_grid: int
    grid: str
    source: str
    license: str
    citation: str
    files: tuple[UpstreamFile, ...] = ()
    prepared: PreparedFile | None = None
    converter: Callable[[ConversionContext], Dataset] | None = None
    splits: tuple[str, ...] = ()
    default_split: str = "random73"
    needs: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def file_folder(self, upstream: UpstreamFile) -> str:
        return upstream.folder or self.name


# ----------------------------------------------------------------------------- upstream files

_E3NN_COMMIT = "39baaac815d414ffebff9695c6dcf62270526cb2"
_E3NN_RAW = f"https://raw.githubusercontent.com/ninarina12/phononDoS_tutorial/{_E3NN_COMMIT}/data"

E3NN_CSV = UpstreamFile(
    "data.csv",
    f"{_E3NN_RAW}/data.csv",
    git_sha1="a20428522cf81f93207db1dcdb1de22e5b1b4cd6",
    note="Git blob SHA-1 of the file at the pinned commit (as documented in the data mirror README).",
)
_E3NN_SPLIT_NOTE = (
    "Git blob SHA-1 and sha256 of the file at the pinned commit (data mirror README, section Correction)."
)
E3NN_SPLIT_FILES = (
    UpstreamFile(
        "idx_train.txt",
        f"{_E3NN_RAW}/idx_train.txt",
        sha256="23bd0d8aaa5a3879b9cf4bce395da730a54d5d190c98d0ff4b79c01d8ee2f6b6",
        git_sha1="d7adc9061205b024de500cacf375abb0a60d951b",
        size=5_070,
        note=_E3NN_SPLIT_NOTE,
    ),
    UpstreamFile(
        "idx_valid.txt",
        f"{_E3NN_RAW}/idx_valid.txt",
        sha256="a8c8065828316f375805ca675f3ec0da9045cfa02797d8d0aa52d4c2abf1bcaa",
        git_sha1="f132cd561d9d4f6ff878e19780a5c85ccd0e6eda",
        size=608,
        note=_E3NN_SPLIT_NOTE,
    ),
    UpstreamFile(
        "idx_test.txt",
        f"{_E3NN_RAW}/idx_test.txt",
        sha256="3a5699c21a80c21075769f26de976fbb738278dc7b7ff8d535e055f7edeff3f6",
        git_sha1="3288b7ddb0111850ff97bcb86884697f367e9c53",
        size=822,
        note=_E3NN_SPLIT_NOTE,
    ),
)
CHEN_SPLIT_PICKLE = UpstreamFile(
    "200801_trteva_indices.pkl",
    "https://raw.githubusercontent.com/zhantaochen/phonondos_e3nn/"
    "9575e2180d3d737f8437a13de9e250efa73c4c83/models/200801_trteva_indices.pkl",
    sha256="ea8d82da6bfdadfdd60d980625b179ccebeebdd10e45d045b7667837bb9d3cb3",
    git_sha1="95436c854cb231bdc35023359881c5b46ecbb26f",
    size=12_434,
    note=(
        "Chen's (train, val, test) index lists; read with the restricted unpickler, sizes checked against "
        "the shipped id → split table `s2p_utils/data/chen2021_split.json` (see `s2p_utils.data.chen_split`)."
    ),
)
MAT2SPEC_ZIP = UpstreamFile(
    "Mat2Spec_DATA.zip",
    "https://data.caltech.edu/records/y7nkc-g8k29/files/Mat2Spec_DATA.zip",
    size=241_557_928,
    folder="mat2spec_edos",
    note="Size as documented in the data mirror README.",
)
JARVIS_ZIP = UpstreamFile(
    "edos-up_pdos-elast_interp-8-18-2021.json.zip",
    "https://figshare.com/ndownloader/files/29216859",
    folder="jarvis",
)
STO_TARGZ = UpstreamFile(
    "sto_dos.tar.gz",
    "https://figshare.com/ndownloader/files/34517867",
)
SURFACE_TARGZ = UpstreamFile(
    "surface_DOS_dataset.tar.gz",
    "https://figshare.com/ndownloader/files/34517870",
    size=605_081_303,
    note="Size as served by figshare in March 2024 (wget log in dmamur/struct2prop add/embed_surface.ipynb).",
)

_PETRETTO = (
    "Petretto et al., High-throughput density-functional perturbation theory phonons for inorganic "
    "materials, Sci. Data 5, 180065 (2018)"
)
_CHEN = (
    "Chen et al., Direct prediction of phonon density of states with Euclidean neural networks, "
    "Adv. Sci. 8, 2004214 (2021)"
)
_KONG = (
    "Kong et al., Density of states prediction for materials discovery via contrastive learning from "
    "probabilistic embeddings (Mat2Spec), Nat. Commun. 13, 949 (2022)"
)
_JARVIS = (
    "Choudhary et al., The joint automated repository for various integrated simulations (JARVIS) for "
    "data-driven materials design, npj Comput. Mater. 6, 173 (2020)"
)
_FUNG = (
    "Fung, Ganesh, Sumpter, Physically informed machine learning prediction of electronic density of "
    "states, Chem. Mater. 34, 4848 (2022)"
)
_MP = "Jain et al., The Materials Project, APL Mater. 1, 011002 (2013)"


# ----------------------------------------------------------------------------- converters (adapters)


def _convert_e3nn(ctx: ConversionContext) -> Dataset:
    pickle_path = ctx.path(CHEN_SPLIT_PICKLE.filename)
    pickle_parts = chen_split.parts_from_pickle(safe_load_file(pickle_path), str(pickle_path))
    chen_split.check_pickle_sizes(pickle_parts, str(pickle_path))
    dataset = converters.convert_e3nn_csv(
        ctx.path(E3NN_CSV.filename),
        tutorial_split={
            "train": ctx.path("idx_train.txt"),
            "val": ctx.path("idx_valid.txt"),
            "test": ctx.path("idx_test.txt"),
        },
        progress=ctx.progress,
    )
    dataset.splits["chen2021"] = chen_split.indices_for(dataset.ids)
    return dataset


def _convert_mat2spec_edos(ctx: ConversionContext) -> Dataset:
    return converters.convert_mat2spec_edos(ctx.path(MAT2SPEC_ZIP.filename), progress=ctx.progress)


def _convert_mat2spec_phdos(ctx: ConversionContext) -> Dataset:
    e3nn = ctx.dependency("e3nn_phdos")
    structures = dict(zip(e3nn.ids, e3nn.structures, strict=True))
    return converters.convert_mat2spec_phdos(
        ctx.path(MAT2SPEC_ZIP.filename), structures, progress=ctx.progress
    )


def _convert_jarvis_edos(ctx: ConversionContext) -> Dataset:
    return converters.convert_jarvis_zip(
        ctx.path(JARVIS_ZIP.filename), target="edos_up", progress=ctx.progress
    )


def _convert_jarvis_phdos(ctx: ConversionContext) -> Dataset:
    return converters.convert_jarvis_zip(
        ctx.path(JARVIS_ZIP.filename), target="pdos_elast", progress=ctx.progress
    )


def _convert_sto(ctx: ConversionContext) -> Dataset:
    return converters.convert_fung_targz(ctx.path(STO_TARGZ.filename), name="sto_edos", progress=ctx.progress)


def _convert_surface(ctx: ConversionContext) -> Dataset:
    return converters.convert_fung_targz(
        ctx.path(SURFACE_TARGZ.filename), name="surface_edos", progress=ctx.progress
    )


def _convert_mp(ctx: ConversionContext) -> Dataset:
    return converters.fetch_mp_phdos(os.environ.get("MP_API_KEY"), progress=ctx.progress)


# ----------------------------------------------------------------------------- the registry

_FUNG_NOTE = (
    "Target = site 2, projection row 2, every 4th energy of each `<i>.npy` (as the paper authors' "
    "notebooks); the per-structure energy grid is kept in `Dataset.grids`."
)

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="e3nn_phdos",
            title="Phonon DOS of 1522 crystals (Chen 2021 / e3nn tutorial), max-normalised",
            kind="phdos",
            n=1522,
            n_grid=51,
            grid="0…1000 cm⁻¹ (51 points)",
            source=(
                f"ninarina12/phononDoS_tutorial data/data.csv @ {_E3NN_COMMIT[:12]}; Chen split "
                "zhantaochen/phonondos_e3nn models/200801_trteva_indices.pkl @ 9575e2180d3d"
            ),
            license="Petretto et al. 2018 data, CC BY 4.0",
            citation=f"{_PETRETTO}; {_CHEN}",
            files=(E3NN_CSV, *E3NN_SPLIT_FILES, CHEN_SPLIT_PICKLE),
            prepared=PreparedFile(
                "e3nn_phdos.json.gz",
                "f7fb6730a144a58dd72c22cc70368f0a3992c55804b0a9eab3334553575b6fbb",
                681_077,
            ),
            converter=_convert_e3nn,
            splits=("chen2021", "tutorial"),
            default_split="chen2021",
            notes=(
                "`chen2021` (1218/152/151; Mg3Bi2, mp-569018, is in none) is the split E3NN and Mat2Spec "
                "report on: test = the third list of Chen's pickle (see `s2p_utils.data.chen_split`); "
                "`tutorial` (1192/141/189) is the e3nn tutorial's.",
                "The mirror's first `e3nn_phdos.json.gz` (sha256 `ba6f7855…3189`) had `chen2021` val and test "
                "swapped; it is refused by checksum. Numbers measured on it before 2026-12-01 are on the wrong set.",
            ),
        ),
        DatasetSpec(
            name="mat2spec_edos",
            title="Mat2Spec electronic DOS, 128 points around the Fermi level",
            kind="edos",
            n=None,
            n_grid=128,
            grid="−4…4 eV (128 points)",
            source="CaltechDATA y7nkc-g8k29 Mat2Spec_DATA.zip (label_edos/, materials_with_edos/)",
            license="CaltechDATA record terms; Materials Project data, CC BY 4.0",
            citation=f"{_KONG}; {_MP}",
            files=(MAT2SPEC_ZIP,),
            converter=_convert_mat2spec_edos,
            splits=("mat2spec",),
            default_split="mat2spec",
            notes=(
                "About 38.7k materials; split `mat2spec` from train_idx.json / validate_idx.json / test_idx.json.",
            ),
        ),
        DatasetSpec(
            name="mat2spec_phdos",
            title="Mat2Spec phonon DOS (Chen 2021 data) with the Chen split",
            kind="phdos",
            n=None,
            n_grid=51,
            grid="0…1000 cm⁻¹ (51 points)",
            source="CaltechDATA y7nkc-g8k29 Mat2Spec_DATA.zip (phdos/); structures from e3nn_phdos",
            license="Petretto et al. 2018 data, CC BY 4.0",
            citation=f"{_PETRETTO}; {_CHEN}; {_KONG}",
            files=(MAT2SPEC_ZIP,),
            converter=_convert_mat2spec_phdos,
            splits=("chen2021",),
            default_split="chen2021",
            notes=(
                "Upstream keeps these structures only as a pymatgen pickle (not read); they are matched "
                "by mp-id from e3nn_phdos.",
            ),
        ),
        DatasetSpec(
            name="jarvis_edos",
            title="JARVIS-DFT electronic DOS (edos_up), OptB88vdW",
            kind="edos",
            n=None,
            n_grid=300,
            grid="300 bins (energies not stored)",
            source="figshare 29216859 edos-up_pdos-elast_interp-8-18-2021.json.zip",
            license="JARVIS-DFT (NIST) public data",
            citation=_JARVIS,
            files=(JARVIS_ZIP,),
            converter=_convert_jarvis_edos,
        ),
        DatasetSpec(
            name="jarvis_phdos",
            title="JARVIS-DFT phonon DOS (pdos_elast), rows with 'na' dropped",
            kind="phdos",
            n=None,
            n_grid=200,
            grid="200 bins (frequencies not stored)",
            source="figshare 29216859 edos-up_pdos-elast_interp-8-18-2021.json.zip",
            license="JARVIS-DFT (NIST) public data",
            citation=_JARVIS,
            files=(JARVIS_ZIP,),
            converter=_convert_jarvis_phdos,
        ),
        DatasetSpec(
            name="sto_edos",
            title="SrTiO₃ electronic DOS with per-structure energy grid (Fung et al.)",
            kind="edos",
            n=4986,
            n_grid=500,
            grid="per structure, eV (500 points)",
            source="figshare 34517867 sto_dos.tar.gz (data/<i>.vasp + <i>.npy)",
            license="figshare record terms (MatDeepLearn_DOS data, article 19426772)",
            citation=_FUNG,
            files=(STO_TARGZ,),
            converter=_convert_sto,
            notes=(_FUNG_NOTE,),
        ),
        DatasetSpec(
            name="surface_edos",
            title="Alloy-surface electronic DOS with per-structure energy grid (Fung et al.)",
            kind="edos",
            n=1913,
            n_grid=500,
            grid="per structure, eV (500 points)",
            source="figshare 34517870 surface_DOS_dataset.tar.gz (surface_DOS_dataset/<i>.vasp + <i>.npy)",
            license="figshare record terms (MatDeepLearn_DOS data, article 19426772)",
            citation=_FUNG,
            files=(SURFACE_TARGZ,),
            converter=_convert_surface,
            notes=(_FUNG_NOTE,),
        ),
        DatasetSpec(
            name="mp_phdos",
            title="Materials Project phonon DOS through mp-api (needs MP_API_KEY)",
            kind="phdos",
            n=None,
            n_grid=128,
            grid="per structure, 0…min(1200, ω_max) cm⁻¹ (128 points)",
            source="Materials Project API (mp-api MPRester.materials.phonon)",
            license="Materials Project data, CC BY 4.0",
            citation=f"{_MP}; {_PETRETTO}",
            converter=_convert_mp,
            needs="MP_API_KEY",
        ),
        DatasetSpec(
            name="jarvis_edos_sample",
            title="50 JARVIS-DFT eDOS records (toy size, pipeline tests only)",
            kind="edos",
            n=50,
            n_grid=300,
            grid="300 bins (energies not stored)",
            source="offline mirror only (usnistgov/alignn sample_data_multi_prop)",
            license="JARVIS-DFT (NIST) public data",
            citation=_JARVIS,
            prepared=PreparedFile(
                "jarvis_edos_sample.json.gz",
                "2853832ec89207b1672322a58f2afacfd5a058f8f3b15ecfb59c8e0f93a92317",
                124_664,
            ),
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    """The registry entry ``name`` (``ValueError`` listing the known names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def prepared_cache_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/prepared/<name>.json.gz``."""
    return paths.cache_dir(cache_dir) / "prepared" / f"{name}.json.gz"


# ----------------------------------------------------------------------------- load


def _mirror_candidates(spec: DatasetSpec, upstream: UpstreamFile, mirror: Path) -> list[Path]:
    folders = dict.fromkeys([spec.name, spec.file_folder(upstream)])
    return [mirror / folder / upstream.filename for folder in folders]


def _cache_candidates(spec: DatasetSpec, upstream: UpstreamFile, cache: Path) -> list[Path]:
    folders = dict.fromkeys([spec.file_folder(upstream), spec.name])
    return [cache / folder / upstream.filename for folder in folders]


def _finish(dataset: Dataset, spec: DatasetSpec, origin: str) -> Dataset:
    dataset.name = spec.name
    defaults = {
        "description": spec.title,
        "source": spec.source,
        "license": spec.license,
        "citation": spec.citation,
    }
    for key, value in defaults.items():
        if not dataset.meta.get(key):
            dataset.meta[key] = value
    dataset.meta["origin"] = origin
    n_grid = dataset.targets.shape[1] if dataset.targets.ndim == 2 else None
    if n_grid != spec.n_grid:
        raise ValueError(
            f"dataset {spec.name!r} from {origin}: targets have shape {dataset.targets.shape}, expected (n, {spec.n_grid})"
        )
    return dataset


def _offline_message(spec: DatasetSpec, mirror: Path | None, cache: Path, reasons: list[str]) -> str:
    root = str(mirror) if mirror else "$S2P_DATA_MIRROR"
    lines = [
        f"dataset {spec.name!r} is not available: nothing in the cache ({cache / 'prepared' / (spec.name + '.json.gz')})"
        + (f" or the mirror ({mirror})" if mirror else ", no mirror configured (S2P_DATA_MIRROR)"),
    ]
    lines += [f"  - {reason}" for reason in reasons]
    if spec.prepared:
        digest = f" (sha256 {spec.prepared.sha256})" if spec.prepared.sha256 else ""
        lines.append(
            f"Put the prepared file {spec.prepared.filename}{digest} at {root}/{spec.prepared.filename}"
        )
        if spec.files:
            lines.append("or the upstream files:")
    elif spec.files:
        lines.append("Put the upstream files here:")
    for upstream in spec.files:
        lines.append(f"  {upstream.url}  ->  {root}/{spec.file_folder(upstream)}/{upstream.filename}")
    if mirror is None:
        lines.append("and set S2P_DATA_MIRROR (or pass mirror=) to that folder.")
    return "\n".join(lines)


def _archive_check(upstream: UpstreamFile) -> Callable[[Path], object]:
    """Integrity check of an upstream archive (every member read once), by its upstream file name."""

    def check(path: Path) -> object:
        return check_archive(path, name=upstream.filename)

    return check


def _verify_upstream(upstream: UpstreamFile, path: Path, lock: TrustLock | None, origin: str) -> None:
    """Pinned checksum, else the trust-on-first-use lock; then the archive integrity check.

    ``lock=None`` for a mirror copy: the user's own copy (possibly a miniature test fixture) is checked
    against pinned digests only, not against the size or the digest recorded for downloads.
    """
    verify_local_file(
        path,
        upstream.url,
        sha256=upstream.sha256,
        git_sha1=upstream.git_sha1,
        size=upstream.size if lock is not None else None,
        lock=lock,
        origin=origin,
        check=_archive_check(upstream),
    )


def _verified_cache_copy(
    spec: DatasetSpec, upstream: UpstreamFile, cache: Path, lock: TrustLock
) -> Path | None:
    """The cached copy of ``upstream`` if it verifies; a corrupt copy is deleted (to be fetched again)."""
    for path in _cache_candidates(spec, upstream, cache):
        if not path.is_file():
            continue
        try:
            _verify_upstream(upstream, path, lock, f"cached file {path}")
        except UnverifiedDownloadError:
            raise
        except ValueError as error:  # ChecksumError, ArchiveError: a corrupt copy
            discard_corrupt(path, str(error))
            continue
        return path
    return None


def prepared_cache_problem(path: Path) -> str | None:
    """Why the prepared cache file ``path`` is unusable (unreadable gzip stream), or ``None`` if it reads.

    Decompresses the whole file (no JSON parsing): catches truncation and corruption cheaply.
    """
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _load_cached_prepared(path: Path, spec: DatasetSpec) -> Dataset | None:
    """The prepared cache file as a dataset; a corrupt one is deleted (``None``: prepare it again)."""
    if not path.is_file():
        return None
    try:
        return _finish(load_prepared(path), spec, f"cache {path}")
    except ValueError as error:
        discard_corrupt(path, f"cached dataset {path} is corrupt ({error})", "preparing it again")
        return None


def load(
    name: str,
    *,
    mirror: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    refresh: bool = False,
    progress: bool = True,
) -> Dataset:
    """Load dataset ``name``: cache → mirror (prepared, then upstream files) → verified download.

    Args:
        name: a key of :data:`REGISTRY`.
        mirror: offline mirror folder (default ``$S2P_DATA_MIRROR``).
        cache_dir: cache folder (default ``$S2P_CACHE_DIR`` or ``~/.cache/s2p``).
        refresh: delete the prepared cache file and prepare it again (cached upstream files are kept
            when they still verify).
        progress: progress bars for downloads and conversion.

    Returns:
        The :class:`Dataset` (``meta["origin"]`` says where it came from).

    Raises:
        ValueError: unknown name, checksum mismatch (:class:`~s2p_utils.data.download.ChecksumError`),
            a file not pinned in strict mode (:class:`~s2p_utils.data.download.UnverifiedDownloadError`),
            a bad archive member (:class:`~s2p_utils.data.archives.ArchiveError`), malformed content.
        FileNotFoundError: offline and nothing cached — the message says which file to put where.
        RuntimeError: ``mp_phdos`` without ``MP_API_KEY``.
    """
    spec = get_spec(name)
    cache = paths.cache_dir(cache_dir)
    mirror_root = paths.mirror_dir(mirror)
    prepared_cache = prepared_cache_path(name, cache)
    if refresh:
        prepared_cache.unlink(missing_ok=True)
    cached = _load_cached_prepared(prepared_cache, spec)
    if cached is not None:
        return cached

    if mirror_root is not None:
        for filename in dict.fromkeys([spec.prepared.filename if spec.prepared else None, f"{name}.json.gz"]):
            candidate = mirror_root / filename if filename else None
            if candidate is not None and candidate.is_file():
                if spec.prepared and filename == spec.prepared.filename and spec.prepared.sha256:
                    verify_file(candidate, sha256=spec.prepared.sha256, origin=f"mirror file {candidate}")
                elif strict_checksums():
                    raise UnverifiedDownloadError(
                        f"refusing mirror file {candidate}: S2P_STRICT_CHECKSUMS is set and no sha256 of it "
                        "is pinned in the package registry"
                    )
                return _finish(load_prepared(candidate), spec, f"mirror {candidate}")

    if spec.converter is None:
        raise FileNotFoundError(
            _offline_message(spec, mirror_root, cache, [f"{name} is distributed only as a prepared file"])
        )

    lock = TrustLock.in_cache(cache)
    local: dict[str, Path] = {}
    missing: list[UpstreamFile] = []
    for upstream in spec.files:
        found = _verified_cache_copy(spec, upstream, cache, lock)
        if found is None and mirror_root is not None:
            found = next((p for p in _mirror_candidates(spec, upstream, mirror_root) if p.is_file()), None)
            if found is not None:
                _verify_upstream(upstream, found, None, f"mirror file {found}")
        if found is None:
            missing.append(upstream)
        else:
            local[upstream.filename] = found
    unpinned = [f for f in missing if not f.verifiable]
    if unpinned and strict_checksums():
        raise UnverifiedDownloadError(
            f"dataset {name!r}: S2P_STRICT_CHECKSUMS is set and no checksum is pinned in the package for "
            + ", ".join(f.url for f in unpinned)
            + "; pin them in s2p_utils/data/registry.py or unset S2P_STRICT_CHECKSUMS"
        )
    downloaded: list[Path] = []
    reasons = []
    for upstream in missing:
        dest = cache / spec.file_folder(upstream) / upstream.filename
        try:
            local[upstream.filename] = download_file(
                upstream.url,
                dest,
                sha256=upstream.sha256,
                git_sha1=upstream.git_sha1,
                size=upstream.size,
                progress=progress,
                lock=lock,
                check=_archive_check(upstream),
            )
        except DownloadError as error:
            reasons.append(str(error))
            _remove_empty_dir(dest.parent, cache)
            continue
        except ValueError:
            _remove_empty_dir(dest.parent, cache)
            raise
        downloaded.append(local[upstream.filename])
    if reasons:
        raise FileNotFoundError(_offline_message(spec, mirror_root, cache, reasons))

    context = ConversionContext(
        spec=spec, files=local, mirror=mirror_root, cache_dir=cache, progress=progress
    )
    try:
        dataset = spec.converter(context)
    except ValueError:
        for path in downloaded:  # a corrupt download must not poison the cache
            path.unlink(missing_ok=True)
            _remove_empty_dir(path.parent, cache)
        raise
    origin = "converted from " + (", ".join(str(p) for p in local.values()) or spec.source)
    dataset = _finish(dataset, spec, origin)
    save_prepared(dataset, prepared_cache)
    logger.info("saved %s (%d structures) to %s", name, len(dataset), prepared_cache)
    return dataset


def _remove_empty_dir(folder: Path, cache: Path) -> None:
    try:
        if folder != cache and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass


# ----------------------------------------------------------------------------- status and docs


def dataset_status(
    name: str, *, mirror: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> str:
    """Where ``name`` would load from right now: ``"cached"``, ``"corrupt cache: ..."`` (the prepared
    cache file does not decompress; the next load rebuilds it), ``"mirror (prepared)"``,
    ``"mirror (upstream)"``, ``"download"``, ``"download (trust on first use)"``, ``"needs MP_API_KEY"``
    or ``"unavailable"``."""
    spec = get_spec(name)
    cache = paths.cache_dir(cache_dir)
    mirror_root = paths.mirror_dir(mirror)
    prepared = prepared_cache_path(name, cache)
    if prepared.is_file():
        if prepared_cache_problem(prepared) is None:
            return "cached"
        return f"corrupt cache: `s2p data fetch {name} --refresh` rebuilds it"
    if mirror_root is not None:
        names = [spec.prepared.filename] if spec.prepared else []
        if any((mirror_root / n).is_file() for n in [*names, f"{name}.json.gz"]):
            return "mirror (prepared)"
        if spec.files and all(
            any(
                p.is_file()
                for p in _cache_candidates(spec, f, cache) + _mirror_candidates(spec, f, mirror_root)
            )
            for f in spec.files
        ):
            return "mirror (upstream)"
    if spec.converter is None:
        return "unavailable (mirror only)"
    if spec.needs and not os.environ.get(spec.needs):
        return f"needs {spec.needs}"
    if spec.files and not all(f.verifiable for f in spec.files):
        if strict_checksums():
            return "refused (not pinned; S2P_STRICT_CHECKSUMS)"
        return "download (trust on first use)"
    return "download"


def human_size(size: int | None) -> str:
    """``680.8 kB`` style; ``"?"`` for ``None``."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _checksum_text(upstream: UpstreamFile) -> str:
    if upstream.sha256:
        return f"sha256 `{upstream.sha256}`"
    if upstream.git_sha1:
        return f"git blob SHA-1 `{upstream.git_sha1}`"
    return "no published checksum: sha256 recorded at first use and verified after"


def upstream_size_text(spec: DatasetSpec) -> str:
    """Total upstream download size: ``"241.6 MB"``, ``"≥ 241.6 MB"`` (some sizes unknown) or ``"unknown"``."""
    known = [f.size for f in spec.files if f.size is not None]
    if not spec.files:
        return ""
    if len(known) == len(spec.files):
        return human_size(sum(known))
    return f"≥ {human_size(sum(known))}" if known else "unknown"


_TRUST_MODEL = (
    "## Trust model",
    "",
    "- **Pinned files** (a sha256 or git blob SHA-1 in `s2p_utils/data/registry.py`, plus the size where known)",
    "  are verified on every download and every use from the mirror or the cache.",
    "- **Files whose publisher gives no checksum** (`Mat2Spec_DATA.zip`, the JARVIS zip, the Fung et al.",
    "  tarballs): what is known is pinned (URL at a fixed record, size where known) and the sha256 of the first",
    "  download is recorded in the lock file `<cache>/checksums.lock.json` (*trust on first use*) and printed with",
    "  the line to add to the registry to pin it. Every later download or use of the cached copy is verified",
    "  against the lock; a mismatch is an error naming the file, the expected and the actual digest (delete the",
    "  lock entry only if the upstream change is legitimate). A mirror copy is the user's own trusted copy: it",
    "  is checked against pinned digests and for archive integrity, not against the lock.",
    "- **Strict mode**: `S2P_STRICT_CHECKSUMS=1` refuses every file not pinned in the package (downloads, upstream",
    "  files in the mirror or cache, unpinned prepared mirror files). The old `S2P_ALLOW_UNVERIFIED` is no longer",
    "  needed and is ignored (with a deprecation warning).",
    "- **Downloads** go to a hidden `.<file>.tmp<pid>-<thread>` with a progress bar and are renamed into place only after the size,",
    "  digest and archive checks pass; an interrupted or refused transfer leaves nothing behind and the next",
    "  attempt starts cleanly. A zip or tarball is read member by member once before it is accepted or",
    "  converted; a bad member is an error naming it.",
    "- **Decompression limits**: an archive member may not inflate beyond 2 GiB (`S2P_MAX_DECOMPRESSED_BYTES`) or",
    "  200 times its compressed size (`S2P_MAX_COMPRESSION_RATIO`; members under 1 MiB exempt), checked against",
    "  the declared size and while reading.",
    "- **Corrupt cache**: a prepared `<cache>/prepared/<name>.json.gz` that does not decode, or a cached upstream",
    "  file that no longer verifies, is deleted with a message and fetched again from the mirror or the source.",
    "  `s2p data list` shows such an entry as `corrupt cache`; `s2p data fetch NAME --refresh` rebuilds it.",
    "- Nothing downloaded is `eval`-ed or unpickled freely (see `s2p_utils/data/converters.py`).",
    "",
)


def registry_markdown() -> str:
    """The dataset table of ``data/README.md``, generated from :data:`REGISTRY`."""
    lines = [
        "# Datasets",
        "",
        "<!-- Generated by s2p_utils.data.registry.registry_markdown(); do not edit by hand. Regenerate with",
        "     python -c \"from s2p_utils.data.registry import registry_markdown as m; open('data/README.md','w').write(m())\" -->",
        "",
        "Every dataset of the paper loads with one call, `s2p_utils.data.load(name)` (or `s2p data fetch NAME`):",
        "from the cache (`S2P_CACHE_DIR`, default `~/.cache/s2p`), else the offline mirror (`S2P_DATA_MIRROR`),",
        "else a verified download (see *Trust model* below). No data is stored in this repository. `s2p data list`",
        "shows what is cached.",
        "",
        "| dataset | what | n | grid | size | licence | cite |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in REGISTRY.values():
        upstream_size = upstream_size_text(spec)
        if spec.prepared and spec.prepared.size and not spec.files:
            size_text = f"{human_size(spec.prepared.size)} (prepared)"
        elif spec.prepared and spec.prepared.size:
            size_text = f"{human_size(spec.prepared.size)} prepared; upstream {upstream_size}"
        elif spec.files:
            size_text = upstream_size
        else:
            size_text = "API"
        n_text = str(spec.n) if spec.n is not None else "–"
        lines.append(
            f"| `{spec.name}` | {spec.title} | {n_text} | {spec.grid} | {size_text} | {spec.license} | {spec.citation} |"
        )
    lines += ["", "## Sources and checksums", ""]
    for spec in REGISTRY.values():
        splits = ", ".join(f"`{s}`" for s in (*spec.splits, "random73"))
        lines.append(f"### `{spec.name}`")
        lines.append("")
        lines.append(f"- source: {spec.source}")
        lines.append(f"- splits: {splits} (default `{spec.default_split}`)")
        if spec.prepared:
            digest = f"sha256 `{spec.prepared.sha256}`" if spec.prepared.sha256 else "no checksum"
            lines.append(
                f"- prepared mirror file: `{spec.prepared.filename}` ({human_size(spec.prepared.size)}, {digest})"
            )
        for upstream in spec.files:
            lines.append(
                f"- `{spec.file_folder(upstream)}/{upstream.filename}` ← <{upstream.url}> "
                f"({'size unknown' if upstream.size is None else human_size(upstream.size)}; "
                f"{_checksum_text(upstream)})" + (f". {upstream.note}" if upstream.note else "")
            )
        if spec.needs:
            lines.append(
                f"- needs the environment variable `{spec.needs}` and `pip install 'struct2prop[mp]'`"
            )
        lines += [f"- {note}" for note in spec.notes]
        lines.append("")
    lines += [
        "## Offline mirror layout",
        "",
        "```",
        "<mirror>/<name>.json.gz                    a prepared dataset (s2p-prepared/1), e.g. e3nn_phdos.json.gz",
        "<mirror>/<folder>/<file>                   an upstream file, folder as in the list above",
        "```",
        "",
        "Prepared files use the `s2p-prepared/1` format described in `s2p_utils/data/dataset.py`.",
        "",
        *_TRUST_MODEL,
    ]
    from s2p_utils.models_registry import models_markdown  # it imports this module

    return "\n".join(lines) + "\n" + models_markdown()
