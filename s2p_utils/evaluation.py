"""Steps 5 and 6 of an experiment (:mod:`s2p_utils.experiment`): calibrate and evaluate a trained
:class:`~s2p_utils.prediction.Predictor` on the rows of a split, and write what it found.

- :func:`calibrate` fits the ensemble's σ scale and floor on the validation rows (``calibration.json``);
- :func:`evaluate` scores the test (or validation) rows against the unscaled targets;
- :func:`write_outputs` writes the metrics JSON, the per-material predictions CSV and the figures
  (:func:`write_figures`, :func:`coverage_figure`) under ``results/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from s2p_utils import metrics as metrics_module
from s2p_utils import paths, plots, results
from s2p_utils.prediction import Predictor, ensemble_mean_std
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

if TYPE_CHECKING:
    from s2p_utils.experiment import ExperimentData

__all__ = [
    "Evaluation",
    "EvaluatedPart",
    "evaluated_part",
    "calibrate",
    "evaluate",
    "write_outputs",
    "write_figures",
    "coverage_figure",
]


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


@dataclass
class EvaluatedPart:
    """The rows of ``data`` that an :class:`Evaluation` scored (its ``evaluated_on`` part).

    Attributes:
        ids, formulas: of each crystal.
        targets, predictions: float32 ``(n, n_out)``, unscaled.
        std, raw_std: calibrated and member σ ``(n, n_out)``, ``None`` for a single network.
        grid: ``(n_out,)`` shared or ``(n, n_out)`` per-crystal grid.
    """

    ids: list[str]
    formulas: list[str]
    targets: np.ndarray
    predictions: np.ndarray
    std: np.ndarray | None
    raw_std: np.ndarray | None
    grid: np.ndarray


def evaluated_part(evaluation: Evaluation, data: ExperimentData) -> EvaluatedPart:
    """The crystals, spectra and σ of the part ``evaluation`` scored."""
    part = data.mask(evaluation.evaluated_on)
    rows, dataset = data.rows[part], data.dataset
    return EvaluatedPart(
        ids=[str(dataset.ids[i]) for i in rows],
        formulas=[str(dataset.formulas[i]) for i in rows],
        targets=data.targets[part],
        predictions=evaluation.predictions[part],
        std=None if evaluation.std is None else evaluation.std[part],
        raw_std=None if evaluation.raw_std is None else evaluation.raw_std[part],
        grid=data.grids(evaluation.evaluated_on),
    )


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
    scored, dataset = evaluated_part(evaluation, data), data.dataset
    figures = {
        name: results.figure_path(run_name, name, out_dir) for name in ("quartiles", "learning_curves")
    }
    figure = plots.quartile_figure(
        scored.ids,
        scored.formulas,
        scored.grid,
        scored.targets,
        scored.predictions,
        std=scored.std,
        grid_unit=dataset.grid_unit,
        seed=predictor.record.prediction_seed,
        path=figures["quartiles"],
    )
    plt.close(figure)
    if len(history):
        plt.close(plots.learning_curves(history, path=figures["learning_curves"], title=run_name))
    else:
        del figures["learning_curves"]
    if evaluation.std is not None:
        figures["calibration"] = results.figure_path(run_name, "calibration", out_dir)
        plt.close(
            coverage_figure(evaluation, data, predictor.calibration, run_name, path=figures["calibration"])
        )
    if dataset.kind == "phdos" and dataset.grid_unit in ("cm^-1", "cm-1", "1/cm"):
        figures["cv_parity"] = results.figure_path(run_name, "cv_parity", out_dir)
        cv_true, cv_pred = (
            metrics_module.heat_capacity(scored.grid, scored.targets),
            metrics_module.heat_capacity(scored.grid, scored.predictions),
        )
        plt.close(plots.cv_parity(cv_true, cv_pred, path=figures["cv_parity"], title=run_name))
    return figures


def coverage_figure(
    evaluation: Evaluation,
    data: ExperimentData,
    calibration: Calibration | None,
    run_name: str,
    *,
    path: str | os.PathLike | None = None,
) -> Figure | None:
    """Observed against nominal coverage of μ ± zσ on the evaluated part, for the member spread and the
    calibrated σ (active points); ``None`` for a single network. ``path`` also saves it as PNG."""
    if evaluation.std is None:
        return None
    scored = evaluated_part(evaluation, data)
    targets, predictions, raw_std = scored.targets, scored.predictions, scored.raw_std
    levels, observed_raw = coverage_curve(targets, predictions, raw_std)
    active = active_points(targets, predictions, raw_std)
    _, observed = coverage_curve(targets, predictions, scored.std, active=active)
    curves = {"member σ": observed_raw, _calibration_label(calibration): observed}
    title = f"{run_name}: {evaluation.evaluated_on} set, active points"
    return plots.calibration_curve(levels, curves, title=title, path=path)


def _calibration_label(calibration: Calibration | None) -> str:
    """Legend text of the calibrated curve, e.g. ``√((2.10σ)² + 0.140²) (fitted on validation)``."""
    calibration = calibration or Calibration(1.0)
    if calibration.floor > 0:
        return f"√(({calibration.scale:.2f}σ)² + {calibration.floor:.3f}²) (fitted on validation)"
    return f"σ × {calibration.scale:.2f} (fitted on validation)"
