"""One paper experiment in named steps: rows → inputs → scaler → members → evaluation → files.

Each step is a public function a notebook can call and show on its own; :func:`run_experiment` composes
them and returns every intermediate object::

    config = get_preset("e3nn_phdos")
    recipe = resolve_recipe(config, "fixed")                      # legacy/fixed → explicit fields
    data = select_rows(config, "chen2021")                        # which crystals, in which part
    inputs = build_inputs(config, recipe, data)                   # per-atom PDF rows + element tokens
    scaler = fit_scaler(config, recipe, data)                     # target scaling (None for e3nn)
    predictor = train_members(config, recipe, data, inputs, scaler, run_name="demo")  # or load_members
    evaluation = evaluate(predictor, data, inputs)                # mean, calibrated σ, metrics
    result = write_outputs(evaluation, data, predictor, run_name="demo")

Files written (below :func:`s2p_utils.paths.results_dir`):

- ``metrics/<run>.json``      scores of the evaluated part (unscaled spectra) + baseline, split sizes, epochs
- ``predictions/<run>.csv``   every train/val/test spectrum and its prediction (``std`` for an ensemble)
- ``figures/<run>_quartiles.png``, ``_learning_curves.png``, ``_cv_parity.png`` (phonon DOS),
  ``_calibration.png`` (ensembles: observed vs nominal coverage of μ ± zσ)
- ``models/<run>.keras`` + ``.json`` (the :class:`~s2p_utils.model_record.ModelRecord`), or for an ensemble
  ``models/<run>/member<k>.keras`` + ``.json`` and ``calibration.json`` (σ scale and floor fitted on the
  validation split, :mod:`s2p_utils.uncertainty`); :func:`s2p_utils.prediction.load_predictor` reads both
- ``checkpoints/<run>/``      per-epoch checkpoint + ``log.csv``: an interrupted run resumes from here

The evaluation runs the saved model through the same :class:`~s2p_utils.prediction.Predictor` as
``s2p predict``, so ``s2p predict`` on the test crystals reproduces the predictions CSV.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from s2p_utils import metrics as metrics_module
from s2p_utils import paths, plots, results
from s2p_utils.config import ExperimentConfig, Recipe, get_preset, resolve_recipe
from s2p_utils.data import Dataset, load
from s2p_utils.inputs import model_inputs
from s2p_utils.model_record import ModelRecord
from s2p_utils.prediction import Predictor, ensemble_mean_std
from s2p_utils.train import TargetScaler, fit_target_scaler, read_history, smooth_targets
from s2p_utils.uncertainty import (
    FLOOR_MARGIN,
    GAUSSIAN_1SIGMA,
    GAUSSIAN_2SIGMA,
    Calibration,
    active_points,
    coverage_curve,
    fit_std_calibration,
    floor_support,
    write_calibration,
)

__all__ = [
    "ExperimentData",
    "Evaluation",
    "RunResult",
    "select_rows",
    "build_inputs",
    "fit_scaler",
    "train_members",
    "load_members",
    "evaluate",
    "write_outputs",
    "run_experiment",
    "SMOKE_SIZES",
]

SMOKE_SIZES = {"train": 32, "val": 8, "test": 8}
"""Rows of each split part kept in smoke mode (the first ones of each part)."""
PARTS = ("train", "val", "test")


@dataclass
class ExperimentData:
    """The crystals of one split, in the order train, val, test.

    Attributes:
        dataset: the whole :class:`~s2p_utils.data.Dataset`.
        split: the split's name.
        parts: dataset row indices of each part ``{"train", "val", "test"}``.
        smoke: rows cut to :data:`SMOKE_SIZES`.
    """

    dataset: Dataset
    split: str
    parts: dict[str, np.ndarray]
    smoke: bool = False

    @property
    def rows(self) -> np.ndarray:
        """Dataset rows int ``(n,)``: train, then val, then test."""
        return np.concatenate([self.parts[name] for name in PARTS])

    @property
    def part_of(self) -> np.ndarray:
        """The part of each of :attr:`rows`: str ``(n,)``."""
        return np.concatenate([[name] * len(self.parts[name]) for name in PARTS])

    def mask(self, part: str) -> np.ndarray:
        """Boolean ``(n,)`` over :attr:`rows`: the rows of ``part``."""
        return self.part_of == part

    @property
    def targets(self) -> np.ndarray:
        """Target spectra float32 ``(n, n_out)`` of :attr:`rows`, unscaled."""
        return np.asarray(self.dataset.targets[self.rows], dtype=np.float32)

    @property
    def ids(self) -> list[str]:
        return [str(self.dataset.ids[i]) for i in self.rows]

    def grids(self, part: str | None = None) -> np.ndarray:
        """The output grid: ``(n_out,)`` shared, or per-structure ``(n, n_out)`` (of ``part``'s rows)."""
        rows = self.rows if part is None else self.rows[self.mask(part)]
        if self.dataset.grids is not None:
            return self.dataset.grids[rows]
        return np.asarray(self.dataset.grid, dtype=np.float64)


@dataclass
class Evaluation:
    """What :func:`evaluate` computed, over :attr:`ExperimentData.rows`.

    Attributes:
        predictions: float32 ``(n, n_out)`` ensemble mean (the one network's output for a single model).
        std: float32 ``(n, n_out)`` calibrated σ, or ``None`` for a single model.
        raw_std: the uncalibrated member spread, or ``None``.
        member_outputs: float64 ``(members, n, n_out)``.
        scores: the metrics of the ``evaluated_on`` part (:func:`s2p_utils.metrics.spectrum_metrics` and,
            for an ensemble, coverage before and after calibration).
        evaluated_on: ``"test"`` or ``"val"``.
    """

    predictions: np.ndarray
    std: np.ndarray | None
    raw_std: np.ndarray | None
    member_outputs: np.ndarray
    scores: dict[str, float]
    evaluated_on: str


@dataclass
class RunResult:
    """What :func:`run_experiment` produced: the files and every intermediate object."""

    run_name: str
    metrics: dict[str, float]
    metrics_path: Path
    predictions_path: Path
    figures: dict[str, Path] = field(default_factory=dict)
    model_path: Path | None = None
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    data: ExperimentData | None = None
    inputs: dict[str, np.ndarray] | None = None
    predictor: Predictor | None = None
    evaluation: Evaluation | None = None


# ------------------------------------------------------------------------------------------ 1. rows
def select_rows(
    config: ExperimentConfig,
    split: str | None = None,
    *,
    dataset: Dataset | None = None,
    smoke: bool = False,
    n_train: int | None = None,
) -> ExperimentData:
    """The crystals of ``split`` (default: the preset's), loaded from the registry unless ``dataset`` is given.

    ``n_train`` keeps the first training rows only (learning curves); ``smoke`` the first rows of each
    part (:data:`SMOKE_SIZES`).

    Raises:
        ValueError: an unknown split, ``n_train`` < 1, an empty part.
    """
    dataset = dataset if dataset is not None else load(config.dataset, progress=False)
    split = split or config.default_split
    parts = {name: np.asarray(idx, dtype=int) for name, idx in dataset.split(split).items() if name in PARTS}
    if n_train is not None:
        if n_train < 1:
            raise ValueError(f"n_train must be positive, got {n_train}")
        parts["train"] = parts["train"][:n_train]
    if smoke:
        parts = {name: idx[: SMOKE_SIZES[name]] for name, idx in parts.items()}
    for name in PARTS:
        if len(parts.get(name, ())) == 0:
            raise ValueError(f"the {name} part of split {split!r} is empty")
    return ExperimentData(dataset=dataset, split=split, parts=parts, smoke=smoke)


# ---------------------------------------------------------------------------------------- 2. inputs
def build_inputs(
    config: ExperimentConfig, recipe: Recipe, data: ExperimentData, *, n_jobs: int = 1, progress: bool = False
) -> dict[str, np.ndarray]:
    """Network inputs of every row of ``data`` (:func:`s2p_utils.inputs.model_inputs`): ``pdf`` float32
    ``(n, max_atoms, n_features)``, ``tokens`` int32 ``(n, max_atoms)`` [, ``grid`` float32 ``(n, n_out)``],
    featurised with ``recipe.legacy_features``; cached under the feature cache."""
    structures = [data.dataset.structures[i] for i in data.rows]
    grids = None
    if config.model.grid_input:
        grids = np.broadcast_to(
            np.asarray(data.grids(), dtype=np.float32), (len(structures), config.model.n_out)
        )
    return model_inputs(
        structures, config, legacy=recipe.legacy_features, grids=grids, n_jobs=n_jobs, progress=progress
    )


# ---------------------------------------------------------------------------------------- 3. scaler
def fit_scaler(config: ExperimentConfig, recipe: Recipe, data: ExperimentData) -> TargetScaler | None:
    """The target scaler of ``config.train.target_scaling`` (``None`` for ``"none"``), fitted on the
    training rows, or with ``recipe.scaler_fit_on == "all_rows"`` on every row of the dataset, test rows
    included (the notebooks' ``scaler.fit_transform`` on the whole array; in smoke mode every selected row)."""
    if recipe.scaler_fit_on == "all_rows":
        rows = data.rows if data.smoke else np.arange(len(data.dataset))
    else:
        rows = data.parts["train"]
    return fit_target_scaler(data.dataset.targets[rows], config.train.target_scaling)


# --------------------------------------------------------------------------------------- 4. members
def model_paths(run_name: str, out_dir: Path, members: int) -> tuple[Path, list[Path], list[Path]]:
    """``(model_path, member files, member checkpoint folders)``: one ``.keras`` file for one member,
    a folder of ``member<k>.keras`` for an ensemble."""
    if members == 1:
        return (
            out_dir / "models" / f"{run_name}.keras",
            [out_dir / "models" / f"{run_name}.keras"],
            [out_dir / "checkpoints" / run_name],
        )
    folder = out_dir / "models" / run_name
    return (
        folder,
        [folder / f"member{k}.keras" for k in range(members)],
        [out_dir / "checkpoints" / run_name / f"member{k}" for k in range(members)],
    )


def train_members(
    config: ExperimentConfig,
    recipe: Recipe,
    data: ExperimentData,
    inputs: dict[str, np.ndarray],
    scaler: TargetScaler | None,
    *,
    run_name: str,
    seed: int = 0,
    results_dir: str | os.PathLike | None = None,
    verbose: int = 0,
) -> Predictor:
    """Train ``config.train.ensemble`` members (seeds ``seed + 1000·k``) on the training rows, stopping on
    the validation rows, and save each with its :class:`~s2p_utils.model_record.ModelRecord`; an
    interrupted member resumes from its checkpoint. Returns the uncalibrated :class:`Predictor`."""
    import keras

    from s2p_utils.model import build_model, save_model
    from s2p_utils.train import train_model

    out_dir = paths.results_dir(results_dir)
    n_members = max(1, int(config.train.ensemble))
    _, member_paths, member_dirs = model_paths(run_name, out_dir, n_members)
    targets = data.targets if scaler is None else scaler.transform(data.targets)
    train, val = data.mask("train"), data.mask("val")
    networks = []
    for member, (member_dir, member_path) in enumerate(zip(member_dirs, member_paths, strict=True)):
        member_seed = seed + 1000 * member
        _prepare_run_dir(member_dir, _fingerprint(config, recipe, data, member_seed))
        keras.utils.set_random_seed(member_seed)
        network = build_model(config)
        train_model(
            network,
            {key: value[train] for key, value in inputs.items()},
            smooth_targets(targets[train], config.train.target_smoothing),
            {key: value[val] for key, value in inputs.items()},
            targets[val],
            config=config.train,
            recipe=recipe,
            seed=member_seed,
            run_dir=member_dir,
            verbose=verbose,
        )
        record = _record(config, recipe, data, scaler, seed, n_members, run_name, member, member_seed)
        save_model(network, member_path, record)
        networks.append(network)
    return Predictor(networks, record, None, [str(p) for p in member_paths])


def load_members(run_name: str, results_dir: str | os.PathLike | None = None) -> Predictor:
    """The saved members of ``run_name`` (:func:`s2p_utils.prediction.load_predictor`), uncalibrated.

    Raises:
        FileNotFoundError: no saved model for ``run_name``.
    """
    from s2p_utils.prediction import load_predictor

    out_dir = paths.results_dir(results_dir)
    for path in (out_dir / "models" / f"{run_name}.keras", out_dir / "models" / run_name):
        if path.exists():
            with warnings.catch_warnings():  # calibrated again by evaluate()
                warnings.filterwarnings("ignore", message="this ensemble has no calibration.json")
                predictor = load_predictor(path)
            return Predictor(predictor.networks, predictor.record, None, predictor.sources)
    raise FileNotFoundError(f"{out_dir / 'models'}: no saved model for run {run_name!r}; train it first")


def _record(
    config: ExperimentConfig,
    recipe: Recipe,
    data: ExperimentData,
    scaler: TargetScaler | None,
    seed: int,
    members: int,
    run_name: str,
    member: int,
    member_seed: int,
) -> ModelRecord:
    dataset = data.dataset
    return ModelRecord(
        config=config,
        recipe=recipe,
        grid=None if dataset.grids is not None else tuple(float(x) for x in dataset.grid),
        grid_unit=dataset.grid_unit,
        kind=dataset.kind,
        unit=dataset.unit,
        target_scaler=scaler.to_dict() if scaler is not None else None,
        prediction_seed=seed,
        members=members,
        provenance={
            "run_name": run_name,
            "dataset": dataset.name,
            "split": data.split,
            "smoke": data.smoke,
            "member": member,
            "seed": member_seed,
        },
    )


def _fingerprint(config: ExperimentConfig, recipe: Recipe, data: ExperimentData, seed: int) -> dict[str, Any]:
    """What a checkpoint folder must have been trained with to be resumed."""
    return json.loads(
        json.dumps(
            {
                "config": asdict(config),
                "recipe": asdict(recipe),
                "dataset": data.dataset.name,
                "split": data.split,
                "seed": seed,
                "smoke": data.smoke,
                "rows": {
                    name: [str(data.dataset.ids[i]) for i in idx[:3]] + [len(idx)]
                    for name, idx in data.parts.items()
                },
            }
        )
    )


def _prepare_run_dir(run_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Start afresh when ``run_dir`` holds checkpoints of a different run (other data, seed, recipe...)."""
    marker = run_dir / "run.json"
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text())
        except json.JSONDecodeError:
            previous = None
        if previous == fingerprint:
            return
        warnings.warn(
            f"{run_dir}: checkpoints of a different run; starting from scratch", UserWarning, stacklevel=3
        )
        shutil.rmtree(run_dir)
    elif run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(fingerprint, indent=1))


# ------------------------------------------------------------------------------------- 5. evaluate
def calibrate(
    predictor: Predictor, data: ExperimentData, member_outputs: np.ndarray, model_path: Path
) -> Predictor:
    """Fit the ensemble's σ scale and floor on the validation rows, write ``calibration.json`` into the
    ensemble folder ``model_path`` and return the calibrated predictor (unchanged for one member)."""
    if not predictor.ensemble:
        return predictor
    val = data.mask("val")
    mean, spread = ensemble_mean_std(member_outputs[:, val])
    calibration, info = _fit_calibration(data.targets[val], mean, spread, split=data.split)
    write_calibration(model_path, calibration, **info)
    return Predictor(predictor.networks, predictor.record, calibration, predictor.sources)


def evaluate(
    predictor: Predictor,
    data: ExperimentData,
    inputs: dict[str, np.ndarray],
    *,
    evaluate_on: str = "test",
    member_outputs: np.ndarray | None = None,
) -> Evaluation:
    """Run ``predictor`` on every row and score the ``evaluate_on`` part (``"test"`` or ``"val"``) against
    the unscaled targets, with the training-mean baseline, train/val MAE and, for an ensemble, the
    coverage of μ ± zσ before and after calibration (on active points and on all)."""
    if evaluate_on not in ("test", "val"):
        raise ValueError(f"evaluate_on must be 'test' or 'val', got {evaluate_on!r}")
    outputs = predictor.member_outputs(inputs) if member_outputs is None else member_outputs
    predictions, std = ensemble_mean_std(outputs, predictor.calibration)
    _, raw_std = ensemble_mean_std(outputs)
    targets, part, dataset = data.targets, data.mask(evaluate_on), data.dataset
    scores = metrics_module.spectrum_metrics(
        targets[part],
        predictions[part],
        grid=data.grids(evaluate_on),
        kind=dataset.kind,
        train_targets=targets[data.mask("train")],
        grid_unit=dataset.grid_unit,
    )
    for name in ("train", "val"):
        scores[f"{name}_mae"] = float(
            np.mean(np.abs(targets[data.mask(name)] - predictions[data.mask(name)]))
        )
    if std is not None:
        # active points (all but exact zeros with no spread) come from the raw spread: a floor is never 0
        active = active_points(targets[part], predictions[part], raw_std[part])
        scores.update(metrics_module.calibration(targets[part], predictions[part], std[part], active=active))
        raw = metrics_module.calibration(targets[part], predictions[part], raw_std[part])
        scores.update({f"raw_{key}": value for key, value in raw.items()})
        scores["std_scale"], scores["std_floor"], scores["floor_margin"] = (
            predictor.calibration or Calibration(1.0)
        )
        for k, member in enumerate(outputs):
            scores[f"member{k}_mae"] = float(np.mean(np.abs(targets[part] - member[part])))
    return Evaluation(predictions, std, raw_std, outputs, scores, evaluate_on)


def _fit_calibration(
    targets: np.ndarray, mean: np.ndarray, std: np.ndarray, *, split: str
) -> tuple[Calibration, dict[str, Any]]:
    """Calibration of an ensemble's spread, fitted on validation spectra ``(n, n_grid)``, and its record.

    Returns ``(calibration, info)``: the scale and floor of :func:`s2p_utils.uncertainty.fit_std_calibration`
    (floor on :func:`s2p_utils.uncertainty.floor_support`), and what :func:`write_calibration` stores
    beside them (form, fitted points, validation coverage before and after). Falls back to scale 1, floor 0
    (and says why in ``note``) when no finite scale exists, e.g. for members that predict identical zeros.
    """
    info: dict[str, Any] = {
        "form": "sqrt((std_scale * sigma)**2 + std_floor**2) within floor_margin grid points of the "
        "points any member predicts non-zero, std_scale * sigma elsewhere",
        "fitted_on": f"active points of the validation split of {split!r}",
        "coverage": [GAUSSIAN_1SIGMA, GAUSSIAN_2SIGMA],
    }
    try:
        support = floor_support(mean, std, FLOOR_MARGIN)
        fitted = Calibration(*fit_std_calibration(targets, mean, std, support=support), FLOOR_MARGIN)
    except ValueError as error:
        fitted = Calibration(1.0, 0.0, FLOOR_MARGIN)
        info["note"] = f"not calibrated: {error}"
    info["n_points"] = int(targets.size)
    raw = metrics_module.calibration(targets, mean, std)
    calibrated = metrics_module.calibration(
        targets, mean, fitted.apply(mean, std), active=active_points(targets, mean, std)
    )
    keys = (
        "within_1sigma_active",
        "within_2sigma_active",
        "within_1sigma",
        "within_2sigma",
        "active_fraction",
    )
    info["validation_raw"] = {k: raw[k] for k in keys}
    info["validation_calibrated"] = {k: calibrated[k] for k in keys}
    return fitted, info


# -------------------------------------------------------------------------------------- 6. outputs
def write_outputs(
    evaluation: Evaluation,
    data: ExperimentData,
    predictor: Predictor,
    *,
    run_name: str,
    history: pd.DataFrame,
    info: dict[str, Any],
    results_dir: str | os.PathLike | None = None,
) -> tuple[Path, Path, dict[str, Path]]:
    """Write the metrics JSON (scores + ``info``), the predictions CSV of every row and the figures.

    Returns ``(metrics_path, predictions_path, figures)``.
    """
    out_dir = paths.results_dir(results_dir)
    metrics_path = results.write_metrics(
        run_name,
        evaluation.scores,
        results_dir=out_dir,
        preset=predictor.record.config.name,
        dataset=data.dataset.name,
        split=data.split,
        split_sizes={name: int(len(idx)) for name, idx in data.parts.items()},
        evaluated_on=evaluation.evaluated_on,
        **info,
    )
    predictions_path = results.write_predictions(
        run_name,
        data.ids,
        list(data.part_of),
        data.targets,
        evaluation.predictions,
        results_dir=out_dir,
        std=evaluation.std,
    )
    figures = write_figures(evaluation, data, predictor, run_name=run_name, history=history, out_dir=out_dir)
    return Path(metrics_path), Path(predictions_path), figures


def write_figures(
    evaluation: Evaluation,
    data: ExperimentData,
    predictor: Predictor,
    *,
    run_name: str,
    history: pd.DataFrame,
    out_dir: Path,
) -> dict[str, Path]:
    """The run's PNG figures: quartile spectra, learning curves, coverage (ensembles), C_V parity (phDOS)."""
    part = data.mask(evaluation.evaluated_on)
    rows, dataset = data.rows[part], data.dataset
    targets, predictions = data.targets[part], evaluation.predictions[part]
    grid = data.grids(evaluation.evaluated_on)
    std = None if evaluation.std is None else evaluation.std[part]
    figures = {
        name: results.figure_path(run_name, name, out_dir) for name in ("quartiles", "learning_curves")
    }
    figure = plots.quartile_figure(
        [str(dataset.ids[i]) for i in rows],
        [str(dataset.formulas[i]) for i in rows],
        grid,
        targets,
        predictions,
        std=std,
        grid_unit=dataset.grid_unit,
        seed=predictor.record.prediction_seed,
        path=figures["quartiles"],
    )
    plt.close(figure)
    if len(history):
        plt.close(plots.learning_curves(history, path=figures["learning_curves"], title=run_name))
    else:
        del figures["learning_curves"]
    coverage = coverage_figure(evaluation, data, predictor.calibration, run_name)
    if coverage is not None:
        figures["calibration"] = results.figure_path(run_name, "calibration", out_dir)
        coverage.savefig(figures["calibration"], dpi=150)
        plt.close(coverage)
    if dataset.kind == "phdos" and dataset.grid_unit in ("cm^-1", "cm-1", "1/cm"):
        figures["cv_parity"] = results.figure_path(run_name, "cv_parity", out_dir)
        cv_true, cv_pred = (
            metrics_module.heat_capacity(grid, targets),
            metrics_module.heat_capacity(grid, predictions),
        )
        plt.close(plots.cv_parity(cv_true, cv_pred, path=figures["cv_parity"], title=run_name))
    return figures


def coverage_figure(
    evaluation: Evaluation, data: ExperimentData, calibration: Calibration | None, run_name: str
) -> Figure | None:
    """Observed against nominal coverage of μ ± zσ on the evaluated part, for the member spread and the
    calibrated σ (active points); ``None`` for a single network."""
    if evaluation.std is None:
        return None
    part = data.mask(evaluation.evaluated_on)
    targets, predictions = data.targets[part], evaluation.predictions[part]
    raw_std = evaluation.raw_std[part]
    levels, observed_raw = coverage_curve(targets, predictions, raw_std)
    active = active_points(targets, predictions, raw_std)
    _, observed = coverage_curve(targets, predictions, evaluation.std[part], active=active)
    curves = {"member σ": observed_raw, _calibration_label(calibration): observed}
    title = f"{run_name}: {evaluation.evaluated_on} set, active points"
    return plots.calibration_curve(levels, curves, title=title)


def _calibration_label(calibration: Calibration | None) -> str:
    """Legend text of the calibrated curve, e.g. ``√((2.10σ)² + 0.140²) (fitted on validation)``."""
    calibration = calibration or Calibration(1.0)
    if calibration.floor > 0:
        return f"√(({calibration.scale:.2f}σ)² + {calibration.floor:.3f}²) (fitted on validation)"
    return f"σ × {calibration.scale:.2f} (fitted on validation)"


# --------------------------------------------------------------------------------------- composed
def run_experiment(
    preset: str | ExperimentConfig,
    *,
    split: str | None = None,
    mode: str = "fixed",
    epochs: int | None = None,
    seed: int = 0,
    smoke: bool | None = None,
    train: bool = True,
    run_name: str | None = None,
    results_dir: str | os.PathLike | None = None,
    dataset: Dataset | None = None,
    n_train: int | None = None,
    verbose: int = 0,
    n_jobs: int | None = None,
    evaluate_on: str = "test",
) -> RunResult:
    """Train (or reload) and evaluate one preset on one split: the six steps of this module in order.

    Args:
        preset: preset name (see :data:`s2p_utils.config.PRESETS`) or an ``ExperimentConfig``.
        split: split name of the dataset (default: the preset's ``default_split``).
        mode: ``"legacy"`` (original recipe) or ``"fixed"`` (corrected), resolved by
            :func:`s2p_utils.config.resolve_recipe`.
        epochs: maximum epochs (default: ``legacy_epochs`` in legacy mode, ``max_epochs`` otherwise).
        seed: weight initialisation, batch order, dropout and test-time atom-order seed.
        smoke: tiny run (first 32/8/8 rows of train/val/test, 2 epochs); default ``$S2P_SMOKE``.
        train: ``False`` reloads the saved model of ``run_name`` instead of training.
        run_name: file stem of every output (default ``f"{preset}_{split}_{mode}"``).
        results_dir: output folder (default :func:`s2p_utils.paths.results_dir`).
        dataset: an already loaded :class:`~s2p_utils.data.Dataset` (default: the registry's).
        n_train: use only the first ``n_train`` training rows (learning curves).
        verbose: Keras ``fit`` verbosity (and progress bars when > 0).
        n_jobs: featurisation workers (default ``$S2P_N_JOBS`` or 1).
        evaluate_on: the part that ``metrics`` and the figures score, ``"test"`` (default) or ``"val"``
            (for choosing a configuration without looking at the test set; the predictions CSV still
            holds every part, so read only its ``val`` rows then).

    Returns:
        :class:`RunResult` with the files written and the intermediate objects (``data``, ``inputs``,
        ``predictor``, ``evaluation``).

    Raises:
        RuntimeError: another process is running the same ``run_name`` in the same results folder.
        ValueError: ``epochs`` below 1, an unknown mode or part, a run name with path separators.
        FileNotFoundError: ``train=False`` without a saved model.
    """
    config = get_preset(preset) if isinstance(preset, str) else preset
    smoke = paths.smoke_mode() if smoke is None else bool(smoke)
    recipe = resolve_recipe(config, mode, epochs=epochs, smoke=smoke)
    if evaluate_on not in ("test", "val"):
        raise ValueError(f"evaluate_on must be 'test' or 'val', got {evaluate_on!r}")
    run_name = run_name or f"{config.name}_{split or config.default_split}_{mode}"
    if not run_name or any(sep in run_name for sep in ("/", "\\", os.sep)) or run_name.startswith("."):
        raise ValueError(f"run name {run_name!r} must be a plain file name (no path separators)")
    out_dir = paths.results_dir(results_dir)
    n_jobs = int(os.environ.get("S2P_N_JOBS", "1")) if n_jobs is None else n_jobs
    with paths.exclusive_lock(
        out_dir / "checkpoints" / f".{run_name}.lock", f"run {run_name!r} in {out_dir}"
    ):
        data = select_rows(config, split, dataset=dataset, smoke=smoke, n_train=n_train)
        inputs = build_inputs(config, recipe, data, n_jobs=n_jobs, progress=verbose > 0)
        started = time.perf_counter()
        if train:
            scaler = fit_scaler(config, recipe, data)
            predictor = train_members(
                config,
                recipe,
                data,
                inputs,
                scaler,
                run_name=run_name,
                seed=seed,
                results_dir=out_dir,
                verbose=verbose,
            )
        else:
            predictor = load_members(run_name, out_dir)
        seconds = time.perf_counter() - started
        model_path, _, member_dirs = model_paths(run_name, out_dir, len(predictor.networks))
        outputs = predictor.member_outputs(inputs)
        predictor = calibrate(predictor, data, outputs, model_path)
        evaluation = evaluate(predictor, data, inputs, evaluate_on=evaluate_on, member_outputs=outputs)
        histories = [read_history(d) for d in member_dirs]
        info = _run_info(predictor, recipe, histories, seed, smoke, train, seconds, out_dir, run_name)
        metrics_path, predictions_path, figures = write_outputs(
            evaluation,
            data,
            predictor,
            run_name=run_name,
            history=histories[0],
            info=info,
            results_dir=out_dir,
        )
    return RunResult(
        run_name, evaluation.scores, metrics_path, predictions_path, figures, model_path, histories[0],
        data, inputs, predictor, evaluation,
    )  # fmt: skip


def _run_info(
    predictor: Predictor,
    recipe: Recipe,
    histories: list[pd.DataFrame],
    seed: int,
    smoke: bool,
    trained: bool,
    seconds: float,
    out_dir: Path,
    run_name: str,
) -> dict[str, Any]:
    """The bookkeeping of the metrics file: recipe, epochs, members, wall time."""
    history, train = histories[0], predictor.record.config.train
    best_epoch = None
    if len(history) and "val_loss" in history:
        best_epoch = int(history["epoch"].iloc[int(np.argmin(history["val_loss"].to_numpy()))]) + 1
    return {
        "mode": recipe.mode,
        "seed": seed,
        "smoke": smoke,
        "epochs": int(len(history)),
        "max_epochs": recipe.epochs,
        "best_val_epoch": best_epoch,
        "weights": "best validation epoch" if recipe.restore_best else "last epoch",
        "members": len(predictor.networks),
        "test_time_permutations": train.test_time_permutations,
        "member_epochs": [int(len(h)) for h in histories],
        "target_scaling": train.target_scaling,
        "batch_size": train.batch_size,
        "seconds": round(seconds, 1),
        "training_seconds": round(seconds, 1) if trained else _previous_training_seconds(out_dir, run_name),
        "trained": bool(trained),
    }


def _previous_training_seconds(results_dir: Path, run_name: str) -> float | None:
    """Training wall time recorded by the earlier metrics file of ``run_name`` (``None`` if unknown)."""
    path = results_dir / "metrics" / f"{run_name}.json"
    if not path.is_file():
        return None
    try:
        info = results.read_metrics(path).get("info", {})
    except (ValueError, OSError):
        return None
    value = info.get("training_seconds")
    if value is None and info.get("trained"):
        value = info.get("seconds")
    return None if value is None else float(value)
