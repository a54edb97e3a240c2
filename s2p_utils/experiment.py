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
    write_outputs(evaluation, data, predictor, run_name="demo", ...)  # metrics JSON, CSV, figures

Steps 1–4 live here; 5 and 6 (``calibrate``, ``evaluate``, ``write_outputs``) in :mod:`s2p_utils.evaluation`.

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

import numpy as np
import pandas as pd

from s2p_utils import paths, results
from s2p_utils.config import ExperimentConfig, Recipe, get_preset, resolve_recipe
from s2p_utils.data import Dataset, load
from s2p_utils.evaluation import Evaluation, calibrate, evaluate, write_outputs
from s2p_utils.inputs import model_inputs
from s2p_utils.model_record import ModelRecord
from s2p_utils.prediction import Predictor
from s2p_utils.train import TargetScaler, fit_target_scaler, read_history, smooth_targets

__all__ = [
    "ExperimentData",
    "RunResult",
    "select_rows",
    "build_inputs",
    "fit_scaler",
    "train_members",
    "cross_fit_folds",
    "load_members",
    "model_paths",
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
    included (the notebooks' ``scaler.fit_transform`` on the whole array; in smoke mode every selected row).

    Raises:
        ValueError: ``output_norm="max"`` (a network whose spectra peak at 1) with a target scaler, which
            would put the targets on another scale.
    """
    if config.model.output_norm != "none" and config.train.target_scaling != "none":
        raise ValueError(
            f"output_norm={config.model.output_norm!r} predicts spectra on the targets' own max-normalised "
            f"scale; it needs target_scaling='none', got {config.train.target_scaling!r}"
        )
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
    init_from: Predictor | None = None,
) -> Predictor:
    """Train ``config.train.ensemble`` members (seeds ``seed + 1000·k``) on the training rows, stopping on
    the validation rows, and save each with its :class:`~s2p_utils.model_record.ModelRecord`; an
    interrupted member resumes from its checkpoint. Returns the uncalibrated :class:`Predictor`.

    ``init_from`` fine-tunes instead of training from scratch: member ``k`` starts from the weights of
    ``init_from.networks[k mod n]`` (same architecture, else ``ValueError``), which the member's record
    (``provenance["initialised_from"]``) and checkpoint fingerprint name.

    With ``config.train.cross_fit = k`` member ``m`` trains on every fold of the training rows but fold
    ``m mod k`` (:func:`cross_fit_folds`, seeded by ``seed``) and stops early on that fold; the validation
    rows are not used. The member's record names its stopping crystals (``provenance["stopped_on"]``,
    ``provenance["stopping_ids"]``)."""
    import keras

    from s2p_utils.model import build_model, save_model
    from s2p_utils.train import train_model

    out_dir = paths.results_dir(results_dir)
    n_members = max(1, int(config.train.ensemble))
    _, member_paths, member_dirs = model_paths(run_name, out_dir, n_members)
    targets = data.targets if scaler is None else scaler.transform(data.targets)
    member_rows = _member_rows(config, data, n_members, seed)
    networks = []
    for member, (member_dir, member_path) in enumerate(zip(member_dirs, member_paths, strict=True)):
        member_seed = seed + 1000 * member
        train, val, stopped_on = member_rows[member]
        start = None if init_from is None else _initial_member(init_from, member)
        fingerprint = _fingerprint(config, recipe, data, member_seed)
        if start is not None:
            fingerprint["initialised_from"] = start[1]
        if config.train.cross_fit:
            fingerprint["stopped_on"] = stopped_on
        _prepare_run_dir(member_dir, fingerprint)
        keras.utils.set_random_seed(member_seed)
        network = build_model(config)
        if start is not None:
            _copy_weights(start[0], network, start[1])
        train_model(
            network,
            {key: value[train] for key, value in inputs.items()},
            smooth_targets(targets[train], config.train.target_smoothing, config.train.target_smoothing_norm),
            {key: value[val] for key, value in inputs.items()},
            targets[val],
            config=config.train,
            recipe=recipe,
            seed=member_seed,
            run_dir=member_dir,
            verbose=verbose,
        )
        record = _record(config, recipe, data, scaler, seed, n_members, run_name, member, member_seed)
        if start is not None:
            record.provenance["initialised_from"] = start[1]
        if config.train.cross_fit:
            record.provenance["stopped_on"] = stopped_on
            record.provenance["stopping_ids"] = np.asarray(data.ids)[val].tolist()
        save_model(network, member_path, record)
        networks.append(network)
    return Predictor(networks, record, None, [str(p) for p in member_paths])


def cross_fit_folds(n_rows: int, n_folds: int, seed: int) -> list[np.ndarray]:
    """``n_folds`` disjoint folds covering ``range(n_rows)``: int arrays, sorted, sizes within one of each
    other, from a permutation seeded by ``seed``.

    Raises:
        ValueError: fewer than 2 folds, or fewer rows than folds.
    """
    if n_folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {n_folds}")
    if n_rows < n_folds:
        raise ValueError(f"cannot cut {n_rows} training rows into {n_folds} folds")
    order = np.random.default_rng(seed).permutation(n_rows)
    return [np.sort(fold) for fold in np.array_split(order, n_folds)]


def _member_rows(
    config: ExperimentConfig, data: ExperimentData, n_members: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``(train mask, stopping mask, description)`` over ``data.rows`` for every member: the training and
    validation rows, or with ``config.train.cross_fit = k`` fold ``m mod k`` of the training rows."""
    train, val = data.mask("train"), data.mask("val")
    n_folds = int(config.train.cross_fit)
    if not n_folds:
        return [(train, val, "validation rows")] * n_members
    train_rows = np.flatnonzero(train)
    folds = cross_fit_folds(len(train_rows), n_folds, seed)
    rows = []
    for member in range(n_members):
        k = member % n_folds
        stop = np.zeros_like(train)
        stop[train_rows[folds[k]]] = True
        rows.append((train & ~stop, stop, f"fold {k} of {n_folds} of the training rows (seed {seed})"))
    return rows


def _initial_member(init_from: Predictor, member: int) -> tuple[Any, str]:
    """``(network, description)`` member ``member`` starts from when fine-tuning from ``init_from``."""
    k = member % len(init_from.networks)
    source = init_from.sources[k] if k < len(init_from.sources) else f"member {k}"
    return init_from.networks[k], str(source)


def _copy_weights(source: Any, network: Any, description: str) -> None:
    """Set ``network``'s weights to ``source``'s; ``ValueError`` naming both when the shapes differ."""
    theirs = [tuple(w.shape) for w in source.weights]
    ours = [tuple(w.shape) for w in network.weights]
    if theirs != ours:
        raise ValueError(
            f"cannot start from {description}: its weights {theirs[:4]}… do not fit this configuration's "
            f"network {ours[:4]}… ({len(theirs)} against {len(ours)} arrays)"
        )
    network.set_weights(source.get_weights())


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
    init_from: Predictor | str | os.PathLike | None = None,
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
        init_from: fine-tune: each member starts from the member weights of this predictor, or of any
            model :func:`~s2p_utils.prediction.load_predictor` reads (``"s2p:e3nn_phdos_mass"``, a saved
            run's ``models/<run>/`` folder or ``.keras`` file), instead of a fresh initialisation (see
            :func:`train_members`); its architecture must be the preset's.

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
    if init_from is not None and not isinstance(init_from, Predictor):
        from s2p_utils.prediction import load_predictor

        init_from = load_predictor(init_from)
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
                init_from=init_from,
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
        "stopped_on": f"{train.cross_fit} folds of the training rows"
        if train.cross_fit
        else "validation rows",
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
