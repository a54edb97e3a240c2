"""Spectra for any crystal: structures in, predicted DOS out (``s2p predict``).

:func:`predict` takes a trained model — a saved ``.keras`` file (with its ``.json`` metadata sidecar), an
ensemble (a directory of member ``.keras`` files, or a list of them), an authors' legacy ``.h5`` file, or
an in-memory ``keras.Model`` — and structures (``ase.Atoms`` or file paths), featurises them the way the
model was trained (PDF or simple RDF, legacy or corrected, ``max_atoms`` padding), runs the network in
batches and undoes the target scaling. An ensemble returns the member mean and the per-point standard
deviation across members, scaled by the factor fitted on the validation split when the ensemble folder
holds a ``calibration.json`` (:mod:`s2p_utils.uncertainty`).

The command line ``s2p predict`` is :mod:`s2p_utils.cli.predict`.

TensorFlow is imported here (through :mod:`s2p_utils.model`) only when a model is loaded or run.
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

from s2p_utils.config import PRESETS, ExperimentConfig, ModelConfig
from s2p_utils.packaged_models import resolve_model_spec

__all__ = [
    "PredictionResult",
    "LoadedModel",
    "load_predictor",
    "structure_inputs",
    "run_model",
    "predict",
    "parse_grid",
]

#: Structures featurised and run through the network at a time (bounds the memory of large jobs).
CHUNK_SIZE = 1024


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


@dataclass
class LoadedModel:
    """One network or an ensemble of identical networks, with what is needed to feed it.

    Attributes:
        models: the member ``keras.Model`` objects (one for a single model).
        metadata: the saved metadata (see :func:`s2p_utils.model.save_model`), ``members`` set to
            ``len(models)``.
        config: an :class:`ExperimentConfig` whose ``model`` matches the network's input shapes and whose
            ``featurizer`` is the metadata's; handed to :func:`s2p_utils.inputs.model_inputs`.
        grid: float64 ``(n_out,)`` grid of the output, or ``None`` when it must be given per call.
        grid_unit: unit of ``grid``.
    """

    models: list[Any]
    metadata: dict[str, Any]
    config: ExperimentConfig
    grid: np.ndarray | None
    grid_unit: str

    @property
    def max_atoms(self) -> int:
        return self.config.model.max_atoms

    @property
    def n_out(self) -> int:
        return self.config.model.n_out

    @property
    def grid_input(self) -> bool:
        return self.config.model.grid_input


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


def _model_config(
    model: Any, featurizer: str, preset: str | None, max_atoms: int | None = None
) -> ExperimentConfig:
    """An ExperimentConfig matching the network's actual input/output shapes.

    A free-length network (atom axis ``None``) takes its ``max_atoms`` from the metadata, else from
    its preset; with neither, the longest structure of each call sets the padding. The structure
    encoder (``"lstm"`` or ``"set"`` and its sizes) is read off the network's layers
    (:func:`s2p_utils.model.encoder_fields`).
    """
    from s2p_utils.model import encoder_fields

    shapes = {tensor.name.split(":")[0]: tuple(tensor.shape) for tensor in model.inputs}
    if "pdf" not in shapes or "tokens" not in shapes:
        raise ValueError(f"model {model.name!r} has inputs {sorted(shapes)}; expected 'pdf' and 'tokens'")
    n_out = int(model.outputs[0].shape[-1])
    try:
        lstm_units = int(model.get_layer("structure_lstm").units)
    except ValueError:
        lstm_units = 0
    steps = shapes.get("tokens", (None, None))[1]
    if steps is None:
        steps = max_atoms or (PRESETS[preset].model.max_atoms if preset in PRESETS else 0)
    model_config = ModelConfig(
        max_atoms=int(steps),
        lstm_units=lstm_units,
        n_out=n_out,
        grid_input="grid" in shapes,
        n_pdf_bins=int(shapes["pdf"][2]),
        **encoder_fields(model),
    )
    base = PRESETS.get(preset or "")
    if base is not None:
        return replace(base, model=replace(base.model, **_fields(model_config)), featurizer=featurizer)
    return ExperimentConfig(name=preset or "model", dataset="", model=model_config, featurizer=featurizer)


def _fields(config: ModelConfig) -> dict[str, Any]:
    return {
        "max_atoms": config.max_atoms,
        "lstm_units": config.lstm_units,
        "n_out": config.n_out,
        "grid_input": config.grid_input,
        "n_pdf_bins": config.n_pdf_bins,
        "structure_encoder": config.structure_encoder,
        "set_width": config.set_width,
        "set_heads": config.set_heads,
        "set_blocks": config.set_blocks,
        "set_pdf_units": config.set_pdf_units,
    }


def _member_paths(path: Path) -> list[Path]:
    if path.is_dir():
        members = sorted(path.glob("*.keras"))
        if not members:
            raise ValueError(f"{path}: an ensemble directory must hold member .keras files; found none")
        return members
    return [path]


def _load_members(source: Any) -> tuple[list[Any], list[dict[str, Any]], list[str]]:
    from s2p_utils.model import load_model

    if isinstance(source, str | os.PathLike):
        paths = _member_paths(Path(source))
    else:
        paths = [Path(p) for p in source]
    models, metas, sources = [], [], []
    for path in paths:
        loaded, meta = load_model(path)
        members = list(loaded) if isinstance(loaded, list | tuple) else [loaded]
        models.extend(members)
        metas.extend([meta] * len(members))
        sources.extend([str(path)] * len(members))
    return models, metas, sources


_MUST_AGREE = ("featurizer", "legacy", "max_atoms", "grid", "grid_unit", "target_scaler", "kind")


def load_predictor(
    model_or_path: Any,
    *,
    metadata: Mapping[str, Any] | None = None,
    grid: np.ndarray | Sequence[float] | None = None,
) -> LoadedModel:
    """Load a model (or ensemble) for prediction.

    Args:
        model_or_path: a ``.keras`` path (metadata from its ``.json`` sidecar), an authors' ``.h5`` path,
            ``"authors:NAME"`` (a published model of :mod:`s2p_utils.models_registry`, fetched and verified),
            ``"s2p:NAME"`` (a model shipped with the package, :mod:`s2p_utils.packaged_models`),
            a directory of ensemble members, a list of member paths, a ``keras.Model``, a list of models,
            a ``(model, metadata)`` tuple or an existing :class:`LoadedModel`.
        metadata: metadata for in-memory models (default: corrected PDF features, no target scaling,
            bin-index grid).
        grid: the output grid ``(n_out,)``, overriding the metadata's; required for a grid-input model
            whose metadata stores none (the authors' ``.h5`` files).

    Raises:
        ValueError: unreadable model, members that disagree on features/grid/scaling, or a grid of the
            wrong length.
    """
    if isinstance(model_or_path, LoadedModel):
        loaded = model_or_path
        if grid is None:
            return loaded
        return load_predictor(loaded.models, metadata=loaded.metadata, grid=grid)
    if isinstance(model_or_path, tuple) and len(model_or_path) == 2 and isinstance(model_or_path[1], Mapping):
        model_or_path, metadata = model_or_path
    model_or_path = resolve_model_spec(model_or_path)  # "s2p:NAME" → the packaged folder
    if isinstance(model_or_path, str) and model_or_path.startswith("authors:"):
        from s2p_utils.models_registry import resolve_authors_model

        model_or_path, authors_meta = resolve_authors_model(model_or_path)
        metadata = {**authors_meta, **(dict(metadata) if metadata else {})}
    is_path = isinstance(model_or_path, str | os.PathLike)
    is_path_list = isinstance(model_or_path, list | tuple) and all(
        isinstance(m, str | os.PathLike) for m in model_or_path
    )
    if is_path or is_path_list:
        models, metas, sources = _load_members(model_or_path)
        first = metas[0]
        for source, meta in zip(sources[1:], metas[1:], strict=True):
            differing = [key for key in _MUST_AGREE if meta.get(key) != first.get(key)]
            if differing:
                raise ValueError(f"ensemble member {source} differs from {sources[0]} in {differing}")
        meta = {**first, **(dict(metadata) if metadata else {})}
        if is_path and Path(model_or_path).is_dir() and "calibration" not in (metadata or {}):
            from s2p_utils.uncertainty import read_calibration

            meta["calibration"] = read_calibration(model_or_path)
    else:
        models = list(model_or_path) if isinstance(model_or_path, list | tuple) else [model_or_path]
        meta = dict(metadata or {})
    if not models:
        raise ValueError("no model given")
    meta.setdefault("featurizer", "pdf")
    meta.setdefault("legacy", False)
    meta["members"] = len(models)
    config = _model_config(models[0], str(meta["featurizer"]), meta.get("preset"), meta.get("max_atoms"))
    for other in models[1:]:
        other_config = _model_config(other, config.featurizer, None, config.model.max_atoms)
        if _fields(other_config.model) != _fields(config.model):
            raise ValueError(f"ensemble member {other.name!r} has different input/output shapes")
    if grid is not None:
        _check_grid_override(grid, meta.get("grid"), config.model.grid_input)
        grid_array, unit = np.asarray(grid, dtype=np.float64), meta.get("grid_unit") or ""
    elif meta.get("grid") is not None:
        grid_array, unit = np.asarray(meta["grid"], dtype=np.float64), meta.get("grid_unit") or ""
    elif config.model.grid_input:
        grid_array, unit = None, meta.get("grid_unit") or ""  # must come with each call
    else:
        grid_array, unit = np.arange(config.model.n_out, dtype=np.float64), "bin"
    if grid_array is not None and grid_array.shape[-1] != config.model.n_out:
        raise ValueError(
            f"grid has {grid_array.shape[-1]} points but the model predicts {config.model.n_out}"
        )
    if len(models) > 1 and meta.get("calibration") is None:
        warnings.warn(UNCALIBRATED, UserWarning, stacklevel=2)
    return LoadedModel(models=models, metadata=meta, config=config, grid=grid_array, grid_unit=unit)


UNCALIBRATED = (
    "this ensemble has no calibration.json: std is the raw spread between members, not calibrated on "
    "validation data (typically several times too narrow)"
)


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


def structure_inputs(
    loaded: LoadedModel,
    structures: Sequence[Any],
    *,
    truncate: bool = False,
    grids: np.ndarray | None = None,
    n_jobs: int = 1,
    progress: bool = False,
    cache: bool = False,
) -> dict[str, np.ndarray]:
    """Network inputs for ``structures`` (``ase.Atoms``) featurised as the model was trained.

    ``cache=True`` stores/reuses the features in the feature cache (off by default: arbitrary user
    structures are rarely featurised twice).

    Returns the dict of :func:`s2p_utils.inputs.model_inputs`: ``pdf`` float32 ``(n, max_atoms, n_bins)``,
    ``tokens`` int32 ``(n, max_atoms)`` and, for grid-input models, ``grid`` float32 ``(n, n_out)``.

    Raises:
        ValueError: a structure has more than ``max_atoms`` atoms and ``truncate`` is False (the message
            names it), or it cannot be featurised.
    """
    from s2p_utils.inputs import model_inputs

    if not truncate:
        for index, atoms in enumerate(structures):
            if len(atoms) > loaded.max_atoms:
                raise ValueError(
                    f"{_structure_id(atoms, index)}: {len(atoms)} atoms exceed the model's max_atoms="
                    f"{loaded.max_atoms} (use truncate / --truncate to cut)"
                )
    if loaded.grid_input:
        if grids is None:
            if loaded.grid is None:
                raise ValueError(
                    "this model takes the energy/frequency grid as input: pass grid= (or --grid)"
                )
            grids = loaded.grid
        grids = np.broadcast_to(np.asarray(grids, dtype=np.float32), (len(structures), loaded.n_out))
    return model_inputs(
        list(structures),
        loaded.config,
        legacy=bool(loaded.metadata.get("legacy", False)),
        grids=grids if loaded.grid_input else None,
        truncate="post" if truncate else "error",
        n_jobs=n_jobs,
        progress=progress,
        cache=cache,
    )


def _unscale(prediction: np.ndarray, scaler: Mapping[str, Any] | None) -> np.ndarray:
    """Undo sklearn-MinMaxScaler-style scaling: ``(pred − min) / scale``."""
    if not scaler:
        return prediction
    minimum = np.asarray(scaler["min"], dtype=np.float64)
    scale = np.asarray(scaler["scale"], dtype=np.float64)
    return (prediction - minimum) / scale


def run_model(
    loaded: LoadedModel, inputs: Mapping[str, np.ndarray], *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run every member on ``inputs`` and undo the target scaling.

    Returns:
        ``(mean, std)``: float32 ``(n, n_out)`` member mean, and the member standard deviation σ
        (population, ``ddof=0``) calibrated by ``metadata["calibration"]`` (a
        :class:`s2p_utils.uncertainty.Calibration`, read from the ensemble's ``calibration.json``;
        uncalibrated when absent or ``None``), or ``None`` for a single model.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch size must be a positive integer, got {batch_size}")
    n = len(next(iter(inputs.values())))
    if n == 0:
        empty = np.zeros((0, loaded.n_out), dtype=np.float32)
        return empty, (empty.copy() if len(loaded.models) > 1 else None)
    from s2p_utils.batching import predict_batched

    scaler = loaded.metadata.get("target_scaler")
    permutations = int(loaded.metadata.get("test_time_permutations", 0) or 0)
    outputs = []
    for model in loaded.models:
        # length-sorted batches cut to their longest structure (same outputs, fewer LSTM steps)
        raw = predict_batched(model, dict(inputs), batch_size=batch_size, permutations=permutations)
        outputs.append(_unscale(np.asarray(raw, dtype=np.float64), scaler))
    stacked = np.stack(outputs)
    mean = stacked.mean(axis=0).astype(np.float32)
    std = None
    if len(outputs) > 1:
        spread = stacked.std(axis=0)
        calibration = loaded.metadata.get("calibration")  # an s2p_utils.uncertainty.Calibration or None
        std = (spread if calibration is None else calibration.apply(mean, spread)).astype(np.float32)
    return mean, std


def _as_atoms(structures: Iterable[Any], ids: Sequence[str] | None) -> tuple[list[Any], list[str], float]:
    from s2p_utils.data.structures import read_structure

    start = time.perf_counter()
    atoms_list, names = [], []
    for index, item in enumerate(structures):
        if isinstance(item, str | os.PathLike):
            atoms_list.append(read_structure(item))
            names.append(_file_id(item))
        else:
            atoms_list.append(item)
            names.append(_structure_id(item, index))
    if ids is not None:
        if len(ids) != len(atoms_list):
            raise ValueError(f"{len(ids)} ids for {len(atoms_list)} structures")
        names = [str(i) for i in ids]
    return atoms_list, names, time.perf_counter() - start


def predict(
    model_or_path: Any,
    structures: Iterable[Any],
    *,
    batch_size: int = 64,
    truncate: bool = False,
    ids: Sequence[str] | None = None,
    grid: np.ndarray | Sequence[float] | None = None,
    metadata: Mapping[str, Any] | None = None,
    n_jobs: int = 1,
    progress: bool = False,
) -> PredictionResult:
    """Predict the spectra of ``structures``.

    Args:
        model_or_path: see :func:`load_predictor` (path, ensemble directory/list, ``keras.Model``, ...).
        structures: ``ase.Atoms`` objects or structure file paths (any format of
            :func:`s2p_utils.data.structures.read_structure`).
        batch_size: network batch size.
        truncate: cut structures with more than the model's ``max_atoms`` atoms (keeping the first
            ``max_atoms``, with a warning) instead of raising.
        ids: names of the structures (default: ``atoms.info["id"]`` or the file stem).
        grid: ``(n_out,)`` or per-structure ``(n, n_out)`` output grid (required for an authors' grid-input
            ``.h5``; otherwise the saved one is used).
        metadata: metadata of an in-memory model (see :func:`load_predictor`).
        n_jobs: featurisation processes.
        progress: show progress bars.

    Returns:
        :class:`PredictionResult` (``std`` set for ensembles). Unscaled with the model's ``target_scaler``.

    Raises:
        ValueError: an unreadable file or invalid structure (named), a structure above ``max_atoms``
            without ``truncate``, or a missing grid.
    """
    per_structure_grid = grid is not None and np.ndim(grid) == 2
    loaded = load_predictor(model_or_path, metadata=metadata, grid=None if per_structure_grid else grid)
    atoms_list, names, read_seconds = _as_atoms(structures, ids)
    n = len(atoms_list)
    grids = None
    if per_structure_grid:
        grids = np.asarray(grid, dtype=np.float64)
        if grids.shape != (n, loaded.n_out):
            raise ValueError(f"per-structure grid of shape {grids.shape}; expected {(n, loaded.n_out)}")
    elif loaded.grid is None:
        raise ValueError("this model takes the energy/frequency grid as input and stores none: pass grid=")
    timings = {"read": read_seconds, "featurize": 0.0, "model": 0.0}
    means, stds = [], []
    for start in range(0, n, CHUNK_SIZE):
        chunk = atoms_list[start : start + CHUNK_SIZE]
        tick = time.perf_counter()
        inputs = structure_inputs(
            loaded,
            chunk,
            truncate=truncate,
            grids=None if grids is None else grids[start : start + CHUNK_SIZE],
            n_jobs=n_jobs,
            progress=progress,
        )
        tock = time.perf_counter()
        mean, std = run_model(loaded, inputs, batch_size=batch_size)
        timings["featurize"] += tock - tick
        timings["model"] += time.perf_counter() - tock
        means.append(mean)
        stds.append(std)
    ensemble = len(loaded.models) > 1
    mean = np.concatenate(means) if means else np.zeros((0, loaded.n_out), dtype=np.float32)
    std = (np.concatenate(stds) if stds else np.zeros_like(mean)) if ensemble else None
    return PredictionResult(
        ids=names,
        grid=grids if grids is not None else np.asarray(loaded.grid, dtype=np.float64),
        grid_unit=loaded.grid_unit,
        mean=mean,
        std=std,
        n_atoms=np.array([len(a) for a in atoms_list], dtype=np.int64),
        timings=timings,
        calibrated=loaded.metadata.get("calibration") is not None if ensemble else None,
    )


def _file_id(path: str | os.PathLike) -> str:
    """``mp-1.cif`` → ``mp-1``, ``POSCAR`` → ``POSCAR``, ``x.json.gz`` → ``x``."""
    name = Path(path).name
    name = name[:-3] if name.endswith(".gz") else name
    return Path(name).stem or name
