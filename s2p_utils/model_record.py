"""What a saved model is: one self-describing record beside its weights.

A trained network is useless without what surrounds it: how its inputs were featurised, how its outputs
were scaled, on which grid they lie, how the ensemble spread is calibrated. :class:`ModelRecord` holds all
of it — the whole :class:`~s2p_utils.config.ExperimentConfig`, the resolved
:class:`~s2p_utils.config.Recipe` (featurisation and prediction batch size among its fields), the target
scaler, the output grid and unit, the seed of the test-time atom orders, where the model came from and the
versions that wrote it. It is written as JSON beside each ``.keras`` file (``member<k>.json`` /
``<name>.json``) and read back by the one prediction path (:mod:`s2p_utils.prediction`), so a model
predicts the same wherever it runs. An ensemble folder adds ``calibration.json``
(:mod:`s2p_utils.uncertainty`), fitted after training on the validation split.

The authors' Keras-2 ``.h5`` files carry no such record: :func:`authors_record` writes one from the
shapes read off the file (:mod:`s2p_utils.weights`) and what the model registry knows (grid, scaler).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field, replace
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np

from s2p_utils.config import (
    ExperimentConfig,
    ModelConfig,
    Recipe,
    config_from_dict,
    config_to_dict,
    recipe_from_dict,
    resolve_recipe,
)
from s2p_utils.paths import atomic_write_text

__all__ = ["ModelRecord", "RECORD_FORMAT", "authors_record", "versions"]

RECORD_FORMAT = "s2p-model-record/1"
"""Format tag of the JSON record; a file without it (or with another) is refused with a clear message."""


def versions() -> dict[str, str]:
    """Versions of what trains and runs a model: struct2prop, Keras, TensorFlow, NumPy, ASE, Python."""
    found = {"python": platform.python_version()}
    for name, distribution in (
        ("struct2prop", "struct2prop"),
        ("keras", "keras"),
        ("tensorflow", "tensorflow"),
        ("tensorflow", "tensorflow-cpu"),
        ("numpy", "numpy"),
        ("ase", "ase"),
    ):
        try:
            found.setdefault(name, package_metadata.version(distribution))
        except package_metadata.PackageNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class ModelRecord:
    """Everything needed to run a saved network on new crystals.

    Attributes:
        config: the whole experiment config (network shape, featuriser, ``pdf_scale``, element descriptors,
            training recipe, ``test_time_permutations``).
        recipe: the resolved legacy/fixed choices (``legacy_features``, ``predict_batch_size``, ...).
        grid: the output grid ``(n_out,)`` in ``grid_unit``, or ``None`` for a grid-input network whose grid
            comes with every call.
        grid_unit: ``"cm^-1"``, ``"eV"``, ``"bin"`` or ``""``.
        kind: ``"phdos"`` or ``"edos"`` (or ``""`` when unknown).
        unit: unit of the predicted spectrum (e.g. ``"states/eV"``, ``"max-normalised"``), ``""`` if unknown.
        target_scaler: ``{"min": [...], "scale": [...]}`` (outputs are unscaled as ``(y − min) / scale``) or
            ``None``.
        prediction_seed: seed of the test-time random atom orders (:func:`s2p_utils.batching.predict_batched`).
        members: number of ensemble members saved together.
        provenance: where the model came from (run name, dataset, split, seed, member, or the source file).
        versions: :func:`versions` of the process that wrote the record.
    """

    config: ExperimentConfig
    recipe: Recipe
    grid: tuple[float, ...] | None
    grid_unit: str = ""
    kind: str = ""
    unit: str = ""
    target_scaler: dict[str, list[float]] | None = None
    prediction_seed: int = 0
    members: int = 1
    provenance: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=versions)

    @property
    def model(self) -> ModelConfig:
        """The network shape (``config.model``)."""
        return self.config.model

    def grid_array(self) -> np.ndarray | None:
        """The output grid as float64 ``(n_out,)``, or ``None``."""
        return None if self.grid is None else np.asarray(self.grid, dtype=np.float64)

    def unscale(self, outputs: np.ndarray) -> np.ndarray:
        """Network outputs ``(..., n_out)`` → spectra in the training targets' units (float64)."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if not self.target_scaler:
            return outputs
        minimum = np.asarray(self.target_scaler["min"], dtype=np.float64)
        scale = np.asarray(self.target_scaler["scale"], dtype=np.float64)
        return (outputs - minimum) / scale

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``format`` tag first)."""
        return {
            "format": RECORD_FORMAT,
            "config": config_to_dict(self.config),
            "recipe": config_to_dict(self.recipe),
            "grid": None if self.grid is None else [float(x) for x in self.grid],
            "grid_unit": self.grid_unit,
            "kind": self.kind,
            "unit": self.unit,
            "target_scaler": self.target_scaler,
            "prediction_seed": int(self.prediction_seed),
            "members": int(self.members),
            "provenance": _jsonable(self.provenance),
            "versions": dict(self.versions),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "model record") -> ModelRecord:
        """Read the JSON form back.

        Raises:
            ValueError: naming ``source``: not a record of this format (e.g. the metadata of a model saved
                by an earlier struct2prop, which did not describe itself fully), or an invalid field.
        """
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(
                f"{source}: not a struct2prop model record (format {found!r}, expected {RECORD_FORMAT!r}); "
                "models saved before the self-describing record cannot be loaded: retrain, or ask for the "
                "packaged models (`s2p models list`)"
            )
        try:
            scaler = data.get("target_scaler")
            if scaler is not None and (not isinstance(scaler, dict) or set(scaler) != {"min", "scale"}):
                raise ValueError(f"target_scaler must be null or {{'min', 'scale'}}, got {scaler!r:.100}")
            grid = data.get("grid")
            return cls(
                config=config_from_dict(data["config"]),
                recipe=recipe_from_dict(data["recipe"]),
                grid=None if grid is None else tuple(float(x) for x in grid),
                grid_unit=str(data.get("grid_unit") or ""),
                kind=str(data.get("kind") or ""),
                unit=str(data.get("unit") or ""),
                target_scaler=scaler,
                prediction_seed=int(data.get("prediction_seed", 0)),
                members=int(data.get("members", 1)),
                provenance=dict(data.get("provenance") or {}),
                versions=dict(data.get("versions") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: invalid model record ({type(error).__name__}: {error})") from None

    @classmethod
    def of(
        cls, config: ExperimentConfig, mode: str = "fixed", *, grid: Any = None, **fields: Any
    ) -> ModelRecord:
        """A record for ``config`` with the recipe of ``mode`` (:func:`~s2p_utils.config.resolve_recipe`);
        ``grid`` any float sequence ``(n_out,)``; other fields as in the class."""
        grid = None if grid is None else tuple(float(x) for x in np.asarray(grid, dtype=np.float64).ravel())
        return cls(config=config, recipe=resolve_recipe(config, mode), grid=grid, **fields)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the record as JSON to ``path`` (atomically)."""
        return atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1))

    @classmethod
    def read(cls, path: str | os.PathLike) -> ModelRecord:
        """Read a record written by :meth:`write`; ``ValueError`` naming the file when it is not one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: model record is not valid JSON ({error})") from None
        return cls.from_dict(data, source=str(path))

    def with_grid(self, grid: np.ndarray | None, grid_unit: str | None = None) -> ModelRecord:
        """A copy with another output grid (grid-input networks) and unit."""
        return replace(
            self,
            grid=None if grid is None else tuple(float(x) for x in np.asarray(grid).ravel()),
            grid_unit=self.grid_unit if grid_unit is None else grid_unit,
        )


def authors_record(
    model_config: ModelConfig,
    *,
    name: str,
    grid: np.ndarray | None = None,
    grid_unit: str = "",
    kind: str = "",
    unit: str = "",
    target_scaler: dict[str, list[float]] | None = None,
    source: str = "",
) -> ModelRecord:
    """The record of an authors' ``.h5`` network of shape ``model_config``: legacy featurisation and
    prediction batch size (the notebooks' ``getpdf`` and ``model.predict(..., batch_size=32)``)."""
    config = ExperimentConfig(name=name, dataset="", model=model_config, featurizer="pdf")
    return ModelRecord(
        config=config,
        recipe=resolve_recipe(config, "legacy"),
        grid=None if grid is None else tuple(float(x) for x in np.asarray(grid).ravel()),
        grid_unit=grid_unit,
        kind=kind,
        unit=unit,
        target_scaler=target_scaler,
        provenance={"source": source, "authors_h5": True},
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.floating | np.integer | np.bool_):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
