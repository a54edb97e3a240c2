"""Spectra for any crystal: one :class:`Predictor` runs every saved model, everywhere.

A :class:`Predictor` is a model on disk made ready to run: its member networks, its
:class:`~s2p_utils.model_record.ModelRecord` (config, featurisation recipe, target scaler, grid, seed of
the test-time atom orders, prediction batch size) and, for an ensemble, the calibration of its spread.
The same four steps serve the experiment's evaluation (:mod:`s2p_utils.experiment`), ``s2p predict``
(:mod:`s2p_utils.cli.predict`) and the notebooks:

1. :func:`load_predictor` — a ``.keras`` file with its ``.json`` record, an ensemble folder of
   ``member<k>.keras`` (+ ``calibration.json``), an authors' ``.h5`` (``authors:NAME``), a packaged model
   (``s2p:NAME``), or networks in memory with their record;
2. :meth:`Predictor.inputs` — featurise ``ase.Atoms`` exactly as the model was trained;
3. :meth:`Predictor.member_outputs` — run every member (length-bucketed batches, test-time atom orders)
   and undo the target scaling;
4. :func:`ensemble_mean_std` — member mean and calibrated σ.

:meth:`Predictor.predict` chains them for structures or files, chunk by chunk. TensorFlow is imported
(through :mod:`s2p_utils.model`) only when a model is loaded.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from s2p_utils.batching import predict_batched
from s2p_utils.data.structures import read_structures
from s2p_utils.inputs import model_inputs
from s2p_utils.model_record import ModelRecord
from s2p_utils.packaged_models import resolve_model_spec
from s2p_utils.uncertainty import Calibration, read_calibration

__all__ = [
    "PredictionResult",
    "Predictor",
    "load_predictor",
    "ensemble_mean_std",
    "predict",
    "parse_grid",
    "UNCALIBRATED",
]

#: Structures featurised and run through the network at a time (bounds the memory of large jobs).
CHUNK_SIZE = 1024

UNCALIBRATED = (
    "this ensemble has no calibration.json: std is the raw spread between members, not calibrated on "
    "validation data (typically several times too narrow)"
)


@dataclass
class PredictionResult:
    """Predicted spectra.

    Attributes:
        ids: one id per structure (``atoms.info["id"]``, the file stem, or ``structure_<i>``).
        grid: float64 ``(n_out,)`` common grid, or ``(n, n_out)`` per-structure grids, in ``grid_unit``.
        grid_unit: ``"cm^-1"``, ``"eV"`` or ``"bin"`` (bin indices when the model stores no grid).
        mean: float32 ``(n, n_out)`` predicted spectra (the ensemble mean), in the training targets' units.
        std: float32 ``(n, n_out)`` standard deviation σ across ensemble members, calibrated on validation
            as ``√((std_scale·σ)² + std_floor²)`` near the predicted spectrum (``std_scale·σ`` far from
            it, :func:`s2p_utils.uncertainty.floor_support`) when the ensemble has a ``calibration.json``,
            or ``None`` for one model.
        n_atoms: int ``(n,)`` atoms in each structure (before any truncation).
        timings: seconds spent ``read`` (files), ``featurize`` and ``model``.
        calibrated: for an ensemble, whether ``std`` was calibrated (``False``: raw member spread, a
            ``calibration.json`` was missing); ``None`` for one model.
    """

    ids: list[str]
    grid: np.ndarray
    grid_unit: str
    mean: np.ndarray
    std: np.ndarray | None
    n_atoms: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    calibrated: bool | None = None

    def grid_of(self, index: int) -> np.ndarray:
        """The grid of structure ``index``: float64 ``(n_out,)``."""
        return self.grid if self.grid.ndim == 1 else self.grid[index]


def parse_grid(text: str | None) -> np.ndarray | None:
    """A grid from the command line: ``"START:STOP:N"`` (``numpy.linspace``), or a ``.npy``/text file."""
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) == 3:
        try:
            return np.linspace(float(parts[0]), float(parts[1]), int(parts[2]))
        except ValueError:
            raise ValueError(f"grid {text!r}: expected START:STOP:N, e.g. -10:10:500") from None
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"grid {text!r}: neither START:STOP:N nor an existing .npy/text file")
    return np.load(path) if path.suffix == ".npy" else np.loadtxt(path)


def _check_grid_override(grid: Any, stored: Any, grid_input: bool) -> None:
    """A grid given for a model that does not take one may only restate the grid it was trained on.

    Raises:
        ValueError: the model has no grid input and ``grid`` differs from its stored grid (it would only
            relabel the outputs, e.g. −10…10 eV on a 0…1000 cm⁻¹ phonon prediction).
    """
    if grid_input or stored is None:
        return
    given, saved = np.asarray(grid, dtype=np.float64), np.asarray(stored, dtype=np.float64)
    if given.shape != saved.shape or not np.allclose(given, saved):
        raise ValueError(
            "this model predicts on the fixed grid it was trained on and takes no grid input; a grid "
            "(--grid) applies only to grid-input models"
        )


def _structure_id(atoms: Any, index: int) -> str:
    info = getattr(atoms, "info", {}) or {}
    for key in ("id", "mp_id", "material_id", "jid"):
        if info.get(key):
            return str(info[key])
    return f"structure_{index}"


def _as_atoms(
    structures: Iterable[Any], ids: Sequence[str] | None, n_jobs: int = 1
) -> tuple[list[Any], list[str], float]:
    """``(atoms, names, read seconds)``: file paths among ``structures`` are read (``n_jobs`` processes)."""
    start = time.perf_counter()
    items = list(structures)
    files = [index for index, item in enumerate(items) if isinstance(item, str | os.PathLike)]
    names = [
        _file_id(item) if isinstance(item, str | os.PathLike) else _structure_id(item, index)
        for index, item in enumerate(items)
    ]
    atoms_list = list(items)
    for index, atoms in zip(files, read_structures([items[i] for i in files], n_jobs=n_jobs), strict=True):
        if isinstance(atoms, Exception):
            raise atoms
        atoms_list[index] = atoms
    if ids is not None:
        if len(ids) != len(atoms_list):
            raise ValueError(f"{len(ids)} ids for {len(atoms_list)} structures")
        names = [str(i) for i in ids]
    return atoms_list, names, time.perf_counter() - start


def ensemble_mean_std(
    member_outputs: np.ndarray, calibration: Calibration | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Member mean and spread of ``member_outputs`` float ``(members, n, n_out)``.

    Returns:
        ``(mean, std)``: float32 ``(n, n_out)``; ``std`` is the population standard deviation across
        members (``ddof=0``), calibrated by ``calibration`` (:meth:`s2p_utils.uncertainty.Calibration.apply`)
        when given, and ``None`` for a single member.
    """
    stacked = np.asarray(member_outputs, dtype=np.float64)
    mean = stacked.mean(axis=0)
    if len(stacked) < 2:
        return mean.astype(np.float32), None
    spread = stacked.std(axis=0)
    std = spread if calibration is None else calibration.apply(mean, spread)
    return mean.astype(np.float32), np.asarray(std, dtype=np.float32)


@dataclass
class Predictor:
    """Member networks with their record: everything needed to predict a crystal's spectrum.

    Attributes:
        networks: the member ``keras.Model`` objects (one for a single model).
        record: the :class:`~s2p_utils.model_record.ModelRecord` every member shares.
        calibration: scale and floor of the ensemble spread (``calibration.json``), or ``None``.
        sources: where each member was loaded from (for messages).
    """

    networks: list[Any]
    record: ModelRecord
    calibration: Calibration | None = None
    sources: list[str] = field(default_factory=list)

    @property
    def max_atoms(self) -> int:
        return self.record.model.max_atoms

    @property
    def n_out(self) -> int:
        return self.record.model.n_out

    @property
    def grid_input(self) -> bool:
        return self.record.model.grid_input

    @property
    def grid(self) -> np.ndarray | None:
        """The output grid float64 ``(n_out,)``; ``None`` when it must come with each call."""
        if self.record.grid is None and not self.grid_input:
            return np.arange(self.n_out, dtype=np.float64)  # bin indices
        return self.record.grid_array()

    @property
    def grid_unit(self) -> str:
        return "bin" if self.record.grid is None and not self.grid_input else self.record.grid_unit

    @property
    def ensemble(self) -> bool:
        return len(self.networks) > 1

    def with_grid(self, grid: np.ndarray | Sequence[float]) -> Predictor:
        """The same model on another output grid ``(n_out,)`` (grid-input networks only).

        Raises:
            ValueError: the wrong length, or a network without grid input given a grid other than its own
                (that would only relabel its outputs, e.g. −10…10 eV on a 0…1000 cm⁻¹ phonon prediction).
        """
        _check_grid_override(grid, self.record.grid, self.grid_input)
        grid = np.asarray(grid, dtype=np.float64)
        if grid.shape != (self.n_out,):
            raise ValueError(f"grid has shape {grid.shape} but the model predicts {self.n_out} points")
        return replace(self, record=self.record.with_grid(grid))

    def inputs(
        self,
        structures: Sequence[Any],
        *,
        truncate: bool = False,
        grids: np.ndarray | None = None,
        n_jobs: int = 1,
        progress: bool = False,
        cache: bool = False,
    ) -> dict[str, np.ndarray]:
        """Network inputs for ``structures`` (``ase.Atoms``), featurised as the model was trained.

        Returns the dict of :func:`s2p_utils.inputs.model_inputs`: ``pdf`` float32
        ``(n, max_atoms, n_features)``, ``tokens`` int32 ``(n, max_atoms)`` and, for grid-input models,
        ``grid`` float32 ``(n, n_out)`` (``grids``, or the record's grid). ``cache=True`` stores/reuses the
        features in the feature cache.

        Raises:
            ValueError: a structure above ``max_atoms`` without ``truncate`` (named), an invalid structure,
                or a grid-input model without a grid.
        """
        if not truncate:
            for index, atoms in enumerate(structures):
                if len(atoms) > self.max_atoms:
                    raise ValueError(
                        f"{_structure_id(atoms, index)}: {len(atoms)} atoms exceed the model's max_atoms="
                        f"{self.max_atoms} (use truncate / --truncate to cut)"
                    )
        if self.grid_input:
            if grids is None:
                if self.record.grid is None:
                    raise ValueError(
                        "this model takes the energy/frequency grid as input: pass grid= (or --grid)"
                    )
                grids = self.record.grid_array()
            grids = np.broadcast_to(np.asarray(grids, dtype=np.float32), (len(structures), self.n_out))
        return model_inputs(
            list(structures),
            self.record.config,
            legacy=self.record.recipe.legacy_features,
            grids=grids if self.grid_input else None,
            truncate="post" if truncate else "error",
            n_jobs=n_jobs,
            progress=progress,
            cache=cache,
        )

    def member_outputs(
        self, inputs: Mapping[str, np.ndarray], *, batch_size: int | None = None
    ) -> np.ndarray:
        """Every member's spectra for ``inputs``, unscaled: float64 ``(members, n, n_out)``.

        Batches of ``batch_size`` (default: the record's ``predict_batch_size``) sorted by length and cut
        to their longest structure; averaged over the listed atom order and the config's
        ``test_time_permutations`` random orders seeded by the record's ``prediction_seed`` (with the config's
        ``member_orders``, member k averages its own orders ``k·(P+1) … k·(P+1)+P`` instead: one network
        pass per member when ``P = 0``).
        """
        batch_size = self.record.recipe.predict_batch_size if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch size must be a positive integer, got {batch_size}")
        n = len(next(iter(inputs.values())))
        if n == 0:
            return np.zeros((len(self.networks), 0, self.n_out), dtype=np.float64)
        train = self.record.config.train
        # with member_orders, member k averages its own orders k·(P+1) … k·(P+1)+P instead of the shared 0 … P
        stride = train.test_time_permutations + 1 if train.member_orders else 0
        outputs = [
            self.record.unscale(
                predict_batched(
                    network,
                    dict(inputs),
                    batch_size=batch_size,
                    permutations=train.test_time_permutations,
                    seed=self.record.prediction_seed,
                    first_order=member * stride,
                )
            )
            for member, network in enumerate(self.networks)
        ]
        return np.stack(outputs)

    def run(
        self, inputs: Mapping[str, np.ndarray], *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(mean, std)`` float32 ``(n, n_out)`` of :func:`ensemble_mean_std` for ``inputs``."""
        return ensemble_mean_std(self.member_outputs(inputs, batch_size=batch_size), self.calibration)

    def predict(
        self,
        structures: Iterable[Any],
        *,
        batch_size: int | None = None,
        truncate: bool = False,
        ids: Sequence[str] | None = None,
        grid: np.ndarray | Sequence[float] | None = None,
        n_jobs: int = 1,
        progress: bool = False,
    ) -> PredictionResult:
        """Predict the spectra of ``structures`` (``ase.Atoms`` or structure file paths); see :func:`predict`."""
        predictor = self
        grids = None
        atoms_list, names, read_seconds = _as_atoms(structures, ids, n_jobs)
        n = len(atoms_list)
        if grid is not None and np.ndim(grid) == 2:
            grids = np.asarray(grid, dtype=np.float64)
            if grids.shape != (n, self.n_out):
                raise ValueError(f"per-structure grid of shape {grids.shape}; expected {(n, self.n_out)}")
        elif grid is not None:
            predictor = self.with_grid(grid)
        elif self.grid_input and self.record.grid is None:
            raise ValueError(
                "this model takes the energy/frequency grid as input and stores none: pass grid="
            )
        timings = {"read": read_seconds, "featurize": 0.0, "model": 0.0}
        means, stds = [], []
        for start in range(0, n, CHUNK_SIZE):
            tick = time.perf_counter()
            inputs = predictor.inputs(
                atoms_list[start : start + CHUNK_SIZE],
                truncate=truncate,
                grids=None if grids is None else grids[start : start + CHUNK_SIZE],
                n_jobs=n_jobs,
                progress=progress,
            )
            tock = time.perf_counter()
            mean, std = predictor.run(inputs, batch_size=batch_size)
            timings["featurize"] += tock - tick
            timings["model"] += time.perf_counter() - tock
            means.append(mean)
            stds.append(std)
        mean = np.concatenate(means) if means else np.zeros((0, self.n_out), dtype=np.float32)
        std = (np.concatenate(stds) if stds else np.zeros_like(mean)) if self.ensemble else None
        return PredictionResult(
            ids=names,
            grid=grids if grids is not None else predictor.grid,
            grid_unit=predictor.grid_unit,
            mean=mean,
            std=std,
            n_atoms=np.array([len(a) for a in atoms_list], dtype=np.int64),
            timings=timings,
            calibrated=self.calibration is not None if self.ensemble else None,
        )


def _member_paths(path: Path) -> list[Path]:
    if path.is_dir():
        members = sorted(path.glob("*.keras"))
        if not members:
            raise ValueError(f"{path}: an ensemble directory must hold member .keras files; found none")
        return members
    return [path]


def _shared_part(record: ModelRecord) -> dict[str, Any]:
    """What every member of an ensemble must agree on (all but provenance and versions)."""
    data = record.to_dict()
    return {key: value for key, value in data.items() if key not in ("provenance", "versions", "members")}


def _load_files(paths: Sequence[Path]) -> tuple[list[Any], ModelRecord, list[str]]:
    from s2p_utils.model import load_model

    networks, records = [], []
    for path in paths:
        network, record = load_model(path)
        networks.append(network)
        records.append(record)
    first = _shared_part(records[0])
    for path, record in zip(paths[1:], records[1:], strict=True):
        other = _shared_part(record)
        differing = sorted(key for key in first if first[key] != other.get(key))
        if differing:
            raise ValueError(f"ensemble member {path} differs from {paths[0]} in {differing}")
    return networks, replace(records[0], members=len(networks)), [str(p) for p in paths]


def _authors_predictor(spec: str) -> Predictor:
    """``authors:NAME``: the verified ``.h5`` with what the model registry knows (grid, unit, scaler)."""
    from s2p_utils.model import load_model
    from s2p_utils.models_registry import resolve_authors_model

    path, known = resolve_authors_model(spec)
    network, record = load_model(path)
    grid = known.get("grid")
    record = replace(
        record,
        grid=None if grid is None else tuple(float(x) for x in grid),
        grid_unit=str(known.get("grid_unit") or ""),
        kind=str(known.get("kind") or ""),
        target_scaler=known.get("target_scaler"),
        provenance={**record.provenance, "spec": spec},
    )
    return Predictor(networks=[network], record=record, sources=[str(path)])


def load_predictor(
    model: Any,
    *,
    record: ModelRecord | None = None,
    grid: np.ndarray | Sequence[float] | None = None,
    calibration: Calibration | None = None,
) -> Predictor:
    """Load a model (or ensemble) for prediction.

    Args:
        model: a ``.keras`` path (record from its ``.json`` sidecar), an authors' ``.h5`` path,
            ``"authors:NAME"`` (a published model of :mod:`s2p_utils.models_registry`, fetched and verified),
            ``"s2p:NAME"`` (a model shipped with the package, :mod:`s2p_utils.packaged_models`), a directory
            of ensemble members (with its ``calibration.json``), a list of member paths, a ``keras.Model``
            or a list of them (with ``record``), or a :class:`Predictor` (returned as is, or on ``grid``).
        record: the record of in-memory networks (required for them, ignored for files).
        grid: the output grid ``(n_out,)``, for a grid-input model whose record stores none (the authors'
            ``.h5`` files) or to restate the stored one.
        calibration: the spread calibration of in-memory ensemble networks.

    Raises:
        ValueError: an unreadable model, members that disagree on their record, a grid of the wrong
            length, in-memory networks without a record.
    """
    if isinstance(model, Predictor):
        predictor = model
    elif isinstance(model, str) and model.startswith("authors:"):
        predictor = _authors_predictor(model)
    else:
        model = resolve_model_spec(model)  # "s2p:NAME" → the packaged folder
        is_path = isinstance(model, str | os.PathLike)
        if is_path or (isinstance(model, list | tuple) and model and isinstance(model[0], str | os.PathLike)):
            paths = _member_paths(Path(model)) if is_path else [Path(p) for p in model]
            networks, loaded_record, sources = _load_files(paths)
            if is_path and Path(model).is_dir():
                calibration = read_calibration(model)
            predictor = Predictor(networks, loaded_record, calibration, sources)
        else:
            networks = list(model) if isinstance(model, list | tuple) else [model]
            if not networks:
                raise ValueError("no model given")
            if record is None:
                raise ValueError(
                    "networks in memory need their ModelRecord: load_predictor(network, record=...)"
                )
            from s2p_utils.model import check_network_matches

            for network in networks:
                check_network_matches(network, record.model, f"network {network.name!r}")
            predictor = Predictor(networks, replace(record, members=len(networks)), calibration)
    if grid is not None:
        predictor = predictor.with_grid(grid)
    if predictor.ensemble and predictor.calibration is None:
        warnings.warn(UNCALIBRATED, UserWarning, stacklevel=2)
    return predictor


def predict(
    model: Any,
    structures: Iterable[Any],
    *,
    batch_size: int | None = None,
    truncate: bool = False,
    ids: Sequence[str] | None = None,
    grid: np.ndarray | Sequence[float] | None = None,
    record: ModelRecord | None = None,
    n_jobs: int = 1,
    progress: bool = False,
) -> PredictionResult:
    """Predict the spectra of ``structures``.

    Args:
        model: see :func:`load_predictor` (path, ensemble folder, ``s2p:NAME``, ``authors:NAME``, networks).
        structures: ``ase.Atoms`` objects or structure file paths (any format of
            :func:`s2p_utils.data.structures.read_structure`).
        batch_size: network batch size (default: the record's ``predict_batch_size``; the result does not
            depend on it beyond float rounding).
        truncate: cut structures with more than the model's ``max_atoms`` atoms (keeping the first
            ``max_atoms``, with a warning) instead of raising.
        ids: names of the structures (default: ``atoms.info["id"]`` or the file stem).
        grid: ``(n_out,)`` or per-structure ``(n, n_out)`` output grid (required for an authors' grid-input
            ``.h5``; otherwise the saved one is used).
        record: the record of in-memory networks.
        n_jobs: processes that read the structure files and featurise them.
        progress: show progress bars.

    Returns:
        :class:`PredictionResult` (``std`` set for ensembles), in the training targets' units.

    Raises:
        ValueError: an unreadable file or invalid structure (named), a structure above ``max_atoms``
            without ``truncate``, or a missing grid.
    """
    predictor = load_predictor(model, record=record)
    return predictor.predict(
        structures,
        batch_size=batch_size,
        truncate=truncate,
        ids=ids,
        grid=grid,
        n_jobs=n_jobs,
        progress=progress,
    )


def _file_id(path: str | os.PathLike) -> str:
    """``mp-1.cif`` → ``mp-1``, ``POSCAR`` → ``POSCAR``, ``x.json.gz`` → ``x``."""
    name = Path(path).name
    name = name[:-3] if name.endswith(".gz") else name
    return Path(name).stem or name
