"""One paper experiment end to end: data → features → training → test metrics, predictions, figures.

:func:`run_experiment` is what the notebooks, ``s2p train`` (:func:`cmd_train`) and the benchmarks call.
Files written (below :func:`s2p_utils.paths.results_dir`):

- ``metrics/<run>.json``      test metrics (unscaled spectra) + baseline, split sizes, epochs, seconds
- ``predictions/<run>.csv``   every train/val/test spectrum and its prediction
- ``figures/<run>_quartiles.png``, ``_learning_curves.png``, ``_cv_parity.png`` (phonon DOS only),
  ``_calibration.png`` (ensembles: observed vs nominal coverage of μ ± zσ on the test set)
- ``models/<run>.keras`` (+ ``.json`` metadata: scaler, grid, featurizer) for :func:`s2p_utils.prediction.predict`;
  an ensemble preset (``TrainConfig.ensemble`` > 1) writes ``models/<run>/member<k>.keras`` instead, and
  its predictions carry the member spread σ as a per-point standard deviation, calibrated on the
  validation split as √((a·σ)² + b²) (``models/<run>/calibration.json``, :mod:`s2p_utils.uncertainty`); the metrics
  give the test coverage after (``within_1sigma``, ``within_2sigma``) and before (``raw_within_*``)
- ``checkpoints/<run>/``      per-epoch checkpoint + ``log.csv``: an interrupted run resumes from here

Modes: ``legacy`` = the original recipe (legacy PDF, targets scaled with a scaler fitted on *all* rows
when the preset's notebook scaled them, early stopping on the training loss, the notebook's epoch count,
last-epoch weights); ``fixed`` = corrected PDF, scaler fitted on the training rows only, early stopping
on the validation loss with the best weights restored.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from s2p_utils import paths
from s2p_utils.config import ExperimentConfig, get_preset
from s2p_utils.train import check_epochs
from s2p_utils.uncertainty import Calibration, active_points, write_calibration

__all__ = ["RunResult", "run_experiment", "scaler_rows", "SMOKE_SIZES", "SMOKE_EPOCHS"]

SMOKE_SIZES = {"train": 32, "val": 8, "test": 8}
"""Rows of each split part kept in smoke mode (the first ones of each part)."""
SMOKE_EPOCHS = 2
PREDICT_BATCH_SIZE = 32  # the notebooks' model.predict(..., batch_size=32)


@dataclass
class RunResult:
    """What :func:`run_experiment` produced."""

    run_name: str
    metrics: dict[str, float]
    metrics_path: Path
    predictions_path: Path
    figures: dict[str, Path] = field(default_factory=dict)
    model_path: Path | None = None
    history: pd.DataFrame = field(default_factory=pd.DataFrame)


def _load_dataset(config: ExperimentConfig):
    try:
        from s2p_utils.data import load
    except ImportError:  # pragma: no cover - registry not installed
        load = None
    if load is not None:
        return load(config.dataset, progress=False)
    mirror = paths.mirror_dir()
    if mirror is None:
        raise FileNotFoundError(f"dataset {config.dataset!r}: no registry and no S2P_DATA_MIRROR")
    from s2p_utils.data import load_prepared

    return load_prepared(mirror / f"{config.dataset}.json.gz")


def _select_rows(parts: dict[str, np.ndarray], smoke: bool, n_train: int | None) -> dict[str, np.ndarray]:
    parts = {name: np.asarray(parts[name], dtype=int) for name in ("train", "val", "test")}
    if n_train is not None:
        if n_train < 1:
            raise ValueError(f"n_train must be positive, got {n_train}")
        parts["train"] = parts["train"][:n_train]
    if smoke:
        parts = {name: idx[: SMOKE_SIZES[name]] for name, idx in parts.items()}
    for name, idx in parts.items():
        if len(idx) == 0:
            raise ValueError(f"the {name} part of the split is empty")
    return parts


def scaler_rows(n_rows: int, parts: dict[str, np.ndarray], mode: str, smoke: bool = False) -> np.ndarray:
    """Rows the target scaler is fitted on.

    Legacy: every row of the dataset, test rows included (the notebooks' ``scaler.fit_transform`` on the
    whole array; in smoke mode every selected row); fixed: the training rows only.
    """
    if mode == "legacy":
        return np.concatenate([parts["train"], parts["val"], parts["test"]]) if smoke else np.arange(n_rows)
    return np.asarray(parts["train"], dtype=int)


def _prepare_run_dir(run_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Start afresh when ``run_dir`` holds checkpoints of a different run (other data, seed, mode...)."""
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


def _grids_for(dataset, rows: np.ndarray) -> np.ndarray:
    if dataset.grids is not None:
        return dataset.grids[rows]
    return np.broadcast_to(np.asarray(dataset.grid, dtype=np.float32), (len(rows), len(dataset.grid)))


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
    dataset=None,
    n_train: int | None = None,
    verbose: int = 0,
    n_jobs: int | None = None,
    evaluate_on: str = "test",
) -> RunResult:
    """Train (or reload) and evaluate one preset on one split.

    Args:
        preset: preset name (see :data:`s2p_utils.config.PRESETS`) or an ``ExperimentConfig``.
        split: split name of the dataset (default: the preset's ``default_split``).
        mode: ``"legacy"`` (original recipe) or ``"fixed"`` (corrected).
        epochs: maximum epochs (default: ``legacy_epochs`` in legacy mode, ``max_epochs`` otherwise).
        seed: weight initialisation, batch order and dropout seed.
        smoke: tiny run (first 32/8/8 rows of train/val/test, 2 epochs); default ``$S2P_SMOKE``.
        train: ``False`` reloads ``models/<run>.keras`` instead of training.
        run_name: file stem of every output (default ``f"{preset}_{split}_{mode}"``).
        results_dir: output folder (default :func:`s2p_utils.paths.results_dir`).
        dataset: an already loaded :class:`~s2p_utils.data.Dataset` (default: the registry's).
        n_train: use only the first ``n_train`` training rows (learning curves).
        verbose: Keras ``fit`` verbosity.
        n_jobs: featurisation workers (default ``$S2P_N_JOBS`` or 1).
        evaluate_on: the part that ``metrics`` and the figures score, ``"test"`` (default) or ``"val"``
            (for choosing a configuration without looking at the test set; the predictions CSV still
            holds every part, so read only its ``val`` rows then).

    Returns:
        :class:`RunResult`; ``metrics`` holds the ``evaluate_on`` scores of
        :func:`s2p_utils.metrics.spectrum_metrics` (with ``baseline_*`` for the training-mean spectrum)
        plus ``train_mae`` and ``val_mae``.

    Raises:
        RuntimeError: another process is running the same ``run_name`` in the same results folder (the
            run holds ``checkpoints/.<run_name>.lock`` while it works).
        ValueError: ``epochs`` below 1, an unknown mode, a run name with path separators.
    """
    from s2p_utils import metrics as metrics_module
    from s2p_utils import plots, results
    from s2p_utils.inputs import model_inputs
    from s2p_utils.train import MODES, TargetScaler, fit_target_scaler, smooth_targets

    config = get_preset(preset) if isinstance(preset, str) else preset
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if evaluate_on not in ("test", "val"):
        raise ValueError(f"evaluate_on must be 'test' or 'val', got {evaluate_on!r}")
    smoke = paths.smoke_mode() if smoke is None else bool(smoke)
    legacy = mode == "legacy"
    split = split or config.default_split
    run_name = run_name or f"{config.name}_{split}_{mode}"
    if not run_name or any(sep in run_name for sep in ("/", "\\", os.sep)) or run_name.startswith("."):
        raise ValueError(f"run name {run_name!r} must be a plain file name (no path separators)")
    out_dir = paths.results_dir(results_dir)
    n_jobs = int(os.environ.get("S2P_N_JOBS", "1")) if n_jobs is None else n_jobs
    if epochs is None:
        epochs = (
            SMOKE_EPOCHS if smoke else (config.train.legacy_epochs if legacy else config.train.max_epochs)
        )
    check_epochs(epochs)

    lock = out_dir / "checkpoints" / f".{run_name}.lock"
    with paths.exclusive_lock(lock, f"run {run_name!r} in {out_dir}"):  # one training per run name at a time
        dataset = dataset if dataset is not None else _load_dataset(config)
        parts = _select_rows(dataset.split(split), smoke, n_train)
        rows = np.concatenate([parts["train"], parts["val"], parts["test"]])
        part_of = np.array(
            ["train"] * len(parts["train"]) + ["val"] * len(parts["val"]) + ["test"] * len(parts["test"])
        )
        structures = [dataset.structures[i] for i in rows]
        inputs = model_inputs(
            structures,
            config,
            legacy=legacy,
            grids=_grids_for(dataset, rows) if config.model.grid_input else None,
            n_jobs=n_jobs,
            progress=verbose > 0,
        )
        targets = np.asarray(dataset.targets[rows], dtype=np.float32)
        scaler = fit_target_scaler(
            dataset.targets[scaler_rows(len(dataset), parts, mode, smoke)], config.train.target_scaling
        )
        scaled = scaler.transform(targets) if scaler is not None else targets
        masks = {name: part_of == name for name in ("train", "val", "test")}

        def take(name: str) -> dict[str, np.ndarray]:
            return {key: value[masks[name]] for key, value in inputs.items()}

        n_members = max(1, int(config.train.ensemble))
        if n_members == 1:
            model_path = out_dir / "models" / f"{run_name}.keras"
            member_paths = [model_path]
            member_dirs = [out_dir / "checkpoints" / run_name]
        else:  # an ensemble is a folder of member models (s2p_utils.prediction.predict loads it as one)
            model_path = out_dir / "models" / run_name
            member_paths = [model_path / f"member{k}.keras" for k in range(n_members)]
            member_dirs = [out_dir / "checkpoints" / run_name / f"member{k}" for k in range(n_members)]
        started = time.perf_counter()
        from s2p_utils.batching import predict_batched
        from s2p_utils.model import build_model, load_model, save_model

        members, histories = [], []
        if train:
            import keras

            from s2p_utils.train import train_model

            for member, (member_dir, member_path) in enumerate(zip(member_dirs, member_paths, strict=True)):
                member_seed = seed + 1000 * member
                fingerprint = {
                    "preset": config.name,
                    "dataset": dataset.name,
                    "split": split,
                    "mode": mode,
                    "seed": member_seed,
                    "smoke": smoke,
                    "rows": {
                        name: [str(dataset.ids[i]) for i in idx[:3]] + [len(idx)]
                        for name, idx in parts.items()
                    },
                    "train_config": json.loads(json.dumps(config.train.__dict__)),
                    "model_config": json.loads(json.dumps(config.model.__dict__)),
                    "features": [config.featurizer, config.element_descriptors, config.pdf_scale],
                }
                _prepare_run_dir(member_dir, fingerprint)
                keras.utils.set_random_seed(member_seed)
                model = build_model(config)
                history = train_model(
                    model,
                    take("train"),
                    smooth_targets(scaled[masks["train"]], config.train.target_smoothing),
                    take("val"),
                    scaled[masks["val"]],
                    config=config.train,
                    mode=mode,
                    seed=member_seed,
                    run_dir=member_dir,
                    max_epochs=epochs,
                    verbose=verbose,
                )
                metadata = {
                    "preset": config.name,
                    "featurizer": config.featurizer,
                    "legacy": legacy,
                    "max_atoms": config.model.max_atoms,
                    "grid": np.asarray(dataset.grid).tolist(),
                    "grid_unit": dataset.grid_unit,
                    "kind": dataset.kind,
                    "unit": dataset.unit,
                    "target_scaler": scaler.to_dict() if scaler is not None else None,
                    "members": n_members,
                    "member": member,
                    "test_time_permutations": config.train.test_time_permutations,
                    "element_descriptors": config.element_descriptors,
                    "mode": mode,
                    "split": split,
                    "seed": member_seed,
                    "run_name": run_name,
                }
                save_model(model, member_path, metadata)
                members.append(model)
                histories.append(history.assign(member=member))
        else:
            from s2p_utils.train import read_history

            for member_dir, member_path in zip(member_dirs, member_paths, strict=True):
                if not member_path.is_file():
                    raise FileNotFoundError(
                        f"{member_path}: no saved model for run {run_name!r}; train it first"
                    )
                model, metadata = load_model(member_path)
                members.append(model)
                histories.append(read_history(member_dir))
            scaler = TargetScaler.from_dict(metadata.get("target_scaler"))
        history = histories[0]
        train_seconds = time.perf_counter() - started

        member_predictions = []
        for model in members:
            raw = predict_batched(
                model,
                inputs,
                batch_size=PREDICT_BATCH_SIZE if legacy else 256,
                permutations=config.train.test_time_permutations,
                seed=seed,
            )
            member_predictions.append(scaler.inverse_transform(raw) if scaler is not None else raw)
        stacked = np.stack(member_predictions).astype(np.float32)
        predictions = stacked.mean(axis=0)
        spread = stacked.std(axis=0) if n_members > 1 else None
        raw_spread, calibration = spread, None
        if spread is not None:  # scale and floor on σ, fitted on the validation split (s2p_utils.uncertainty)
            calibration, calibration_info = _calibrate_spread(
                targets[masks["val"]], predictions[masks["val"]], spread[masks["val"]], split=split
            )
            write_calibration(model_path, calibration, **calibration_info)
            spread = calibration.apply(predictions, spread).astype(np.float32)

        test, train_part = masks[evaluate_on], masks["train"]
        grid = _grids_for(dataset, rows[test]) if dataset.grids is not None else dataset.grid
        scores = metrics_module.spectrum_metrics(
            targets[test],
            predictions[test],
            grid=grid,
            kind=dataset.kind,
            train_targets=targets[train_part],
            grid_unit=dataset.grid_unit,
        )
        for name in ("train", "val"):
            scores[f"{name}_mae"] = float(np.mean(np.abs(targets[masks[name]] - predictions[masks[name]])))
        if spread is not None:
            # active points (all but exact zeros with no spread) come from the raw spread: a floor is never 0
            active_test = active_points(targets[test], predictions[test], raw_spread[test])
            scores.update(
                metrics_module.calibration(targets[test], predictions[test], spread[test], active=active_test)
            )
            raw = metrics_module.calibration(targets[test], predictions[test], raw_spread[test])
            scores.update({f"raw_{key}": value for key, value in raw.items()})
            scores["std_scale"], scores["std_floor"], scores["floor_margin"] = calibration
            for k, member_prediction in enumerate(member_predictions):
                scores[f"member{k}_mae"] = float(np.mean(np.abs(targets[test] - member_prediction[test])))
        epochs_run = int(len(history))
        best_epoch = None
        if epochs_run and "val_loss" in history:
            best_epoch = int(history["epoch"].iloc[int(np.argmin(history["val_loss"].to_numpy()))]) + 1
        training_seconds = round(train_seconds, 1) if train else _previous_training_seconds(out_dir, run_name)
        metrics_path = results.write_metrics(
            run_name,
            scores,
            results_dir=out_dir,
            preset=config.name,
            dataset=dataset.name,
            split=split,
            split_sizes={name: int(len(idx)) for name, idx in parts.items()},
            mode=mode,
            seed=seed,
            smoke=smoke,
            epochs=epochs_run,
            max_epochs=int(epochs),
            best_val_epoch=best_epoch,
            weights="best validation epoch" if mode == "fixed" else "last epoch",
            members=n_members,
            test_time_permutations=config.train.test_time_permutations,
            member_epochs=[int(len(h)) for h in histories],
            target_scaling=config.train.target_scaling,
            batch_size=config.train.batch_size,
            seconds=round(train_seconds, 1),
            training_seconds=training_seconds,
            trained=bool(train),
            evaluated_on=evaluate_on,
        )
        ids = [str(dataset.ids[i]) for i in rows]
        predictions_path = results.write_predictions(
            run_name, ids, list(part_of), targets, predictions, results_dir=out_dir, std=spread
        )

        figures: dict[str, Path] = {}
        test_rows = rows[test]
        figures["quartiles"] = results.figure_path(run_name, "quartiles", out_dir)
        _close(
            plots.quartile_figure(
                [str(dataset.ids[i]) for i in test_rows],
                [str(dataset.formulas[i]) for i in test_rows],
                grid,
                targets[test],
                predictions[test],
                std=None if spread is None else spread[test],
                grid_unit=dataset.grid_unit,
                seed=seed,
                path=figures["quartiles"],
            )
        )
        if epochs_run:
            figures["learning_curves"] = results.figure_path(run_name, "learning_curves", out_dir)
            _close(plots.learning_curves(history, path=figures["learning_curves"], title=run_name))
        if spread is not None:
            from s2p_utils.uncertainty import coverage_curve

            levels, observed_raw = coverage_curve(targets[test], predictions[test], raw_spread[test])
            _, observed = coverage_curve(targets[test], predictions[test], spread[test], active=active_test)
            figures["calibration"] = results.figure_path(run_name, "calibration", out_dir)
            _close(
                plots.calibration_curve(
                    levels,
                    {
                        "member σ": observed_raw,
                        _calibration_label(calibration): observed,
                    },
                    path=figures["calibration"],
                    title=f"{run_name}: {evaluate_on} set, active points",
                )
            )
        if dataset.kind == "phdos" and dataset.grid_unit in ("cm^-1", "cm-1", "1/cm"):
            cv_true = metrics_module.heat_capacity(grid, targets[test])
            cv_pred = metrics_module.heat_capacity(grid, predictions[test])
            figures["cv_parity"] = results.figure_path(run_name, "cv_parity", out_dir)
            _close(plots.cv_parity(cv_true, cv_pred, path=figures["cv_parity"], title=run_name))
        return RunResult(
            run_name=run_name,
            metrics=scores,
            metrics_path=Path(metrics_path),
            predictions_path=Path(predictions_path),
            figures=figures,
            model_path=model_path,
            history=history,
        )


def _previous_training_seconds(results_dir: Path, run_name: str) -> float | None:
    """Training wall time recorded by the earlier metrics file of ``run_name`` (``None`` if unknown)."""
    from s2p_utils.results import read_metrics

    path = results_dir / "metrics" / f"{run_name}.json"
    if not path.is_file():
        return None
    try:
        info = read_metrics(path).get("info", {})
    except (ValueError, OSError):
        return None
    value = info.get("training_seconds")
    if value is None and info.get("trained"):
        value = info.get("seconds")
    return None if value is None else float(value)


def _calibrate_spread(
    targets: np.ndarray, mean: np.ndarray, std: np.ndarray, *, split: str
) -> tuple[Calibration, dict[str, Any]]:
    """Calibration of an ensemble's spread, fitted on validation spectra ``(n, n_grid)``, and its record.

    Returns ``(calibration, info)``: the scale and floor of
    :func:`s2p_utils.uncertainty.fit_std_calibration` (floor on :func:`s2p_utils.uncertainty.floor_support`),
    and what :func:`s2p_utils.uncertainty.write_calibration` stores beside them (form, fitted points,
    validation coverage before and after). Falls back to scale 1, floor 0 (and says why in ``note``) when no
    finite scale exists, e.g. for members of a smoke run that predict identical zeros.
    """
    from s2p_utils.metrics import calibration as coverage
    from s2p_utils.uncertainty import (
        FLOOR_MARGIN,
        GAUSSIAN_1SIGMA,
        GAUSSIAN_2SIGMA,
        fit_std_calibration,
        floor_support,
    )

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
    raw = coverage(targets, mean, std)
    calibrated = coverage(targets, mean, fitted.apply(mean, std), active=active_points(targets, mean, std))
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


def _calibration_label(calibration: Calibration) -> str:
    """Legend text of the calibrated curve, e.g. ``√((2.10σ)² + 0.140²) (fitted on validation)``."""
    if calibration.floor > 0:
        return f"√(({calibration.scale:.2f}σ)² + {calibration.floor:.3f}²) (fitted on validation)"
    return f"σ × {calibration.scale:.2f} (fitted on validation)"


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)
