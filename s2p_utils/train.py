"""Training: the paper's recipe (MAE, Adam, step-decayed learning rate), resumable and seeded.

What to monitor, for how long and which weights to keep come from a :class:`s2p_utils.config.Recipe`
(:func:`s2p_utils.config.resolve_recipe`): the original notebooks stop on the *training* loss
(``min_delta`` 0.01, ``patience`` 50, which in practice never fires) and keep the last-epoch weights; the
corrected recipe stops on the validation loss and restores the best-epoch weights.

Resuming: every epoch writes ``run_dir/epoch_<n>.keras`` (model + optimizer state) and then, atomically,
``run_dir/state.json`` pointing at it; the previous checkpoint is deleted afterwards. A run started again
with the same ``run_dir`` continues at the next epoch. The batch order of epoch ``e`` is a fixed function
of ``(seed, e)``, so an interrupted and resumed run ends with the same weights as an uninterrupted one.

Target scaling (:class:`TargetScaler`) is applied by the caller (:mod:`s2p_utils.experiment`): per-column
MinMax like ``sklearn.preprocessing.MinMaxScaler``, or one global min/max (the simple-RDF notebook).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from s2p_utils.batching import check_atom_dropout
from s2p_utils.config import Recipe, TrainConfig, check_epochs
from s2p_utils.paths import atomic_path

__all__ = [
    "learning_rate",
    "TargetScaler",
    "fit_target_scaler",
    "train_model",
    "compile_model",
    "spectrum_shape_loss",
    "smooth_targets",
    "rarity_weights",
    "SMOOTHING_NORMS",
    "LOSSES",
]

STATE_FILE = "state.json"
LOG_FILE = "log.csv"
BEST_FILE = "best.weights.h5"
XLA_MIN_STEPS = 500


def learning_rate(epoch: int, config: TrainConfig) -> float:
    """The paper's step schedule at 0-based ``epoch``.

    ``max(lr_floor, learning_rate * lr_decay ** floor((epoch + 1) / lr_drop_every))``.
    """
    return max(
        config.lr_floor,
        config.learning_rate * config.lr_decay ** math.floor((epoch + 1) / config.lr_drop_every),
    )


# --------------------------------------------------------------------------------------------- scaling
@dataclass(frozen=True)
class TargetScaler:
    """Affine target scaling ``scaled = y * scale + min`` (``sklearn`` ``MinMaxScaler`` convention).

    ``min`` and ``scale`` are float64 ``(n_grid,)`` (per column) or ``(1,)`` (one global range).
    ``inverse_transform(p) = (p - min) / scale``.
    """

    min: np.ndarray
    scale: np.ndarray

    def transform(self, targets: np.ndarray) -> np.ndarray:
        """Scaled float32 copy of ``targets`` ``(n, n_grid)``."""
        return (np.asarray(targets, dtype=np.float64) * self.scale + self.min).astype(np.float32)

    def inverse_transform(self, scaled: np.ndarray) -> np.ndarray:
        """Spectra in the original unit, float32 ``(n, n_grid)``."""
        return ((np.asarray(scaled, dtype=np.float64) - self.min) / self.scale).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON form stored in the model metadata (``target_scaler``)."""
        return {"min": [float(v) for v in self.min], "scale": [float(v) for v in self.scale]}

    @classmethod
    def from_dict(cls, payload: dict[str, Sequence[float]] | None) -> TargetScaler | None:
        """Inverse of :meth:`to_dict`; ``None`` stays ``None``."""
        if payload is None:
            return None
        return cls(
            np.asarray(payload["min"], dtype=np.float64), np.asarray(payload["scale"], dtype=np.float64)
        )


def fit_target_scaler(targets: np.ndarray, kind: str = "minmax") -> TargetScaler | None:
    """Fit a scaler to ``targets`` ``(n, n_grid)`` mapping them onto [0, 1].

    ``kind``: ``"minmax"`` per grid point (``sklearn.preprocessing.MinMaxScaler()``; a constant column gets
    scale 1), ``"global_minmax"`` one range for all values (the simple-RDF notebook), ``"none"`` → ``None``.
    """
    if kind == "none":
        return None
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] == 0:
        raise ValueError(f"fit_target_scaler needs a non-empty (n, n_grid) array, got shape {y.shape}")
    if kind == "minmax":
        low, high = y.min(axis=0), y.max(axis=0)
    elif kind == "global_minmax":
        low, high = np.array([y.min()]), np.array([y.max()])
    else:
        raise ValueError(f"unknown target scaling {kind!r}; use 'none', 'minmax' or 'global_minmax'")
    span = high - low
    span[span == 0.0] = 1.0  # sklearn's handling of constant features
    scale = 1.0 / span
    return TargetScaler(min=-low * scale, scale=scale)


# ---------------------------------------------------------------------------------------------- data
def _batches(
    inputs: dict[str, np.ndarray],
    targets: np.ndarray,
    config: TrainConfig,
    seed: int,
    first_epoch: int,
    last_epoch: int,
    bucketed: bool,
):
    """``tf.data.Dataset`` of the training batches of epochs ``first_epoch .. last_epoch - 1``, in order.

    The batches of epoch ``e`` depend only on ``(seed, e)`` (``numpy.random.default_rng([seed, e])``), so
    a resumed run sees the same batches. ``bucketed`` cuts batches of similar-length rows to their longest
    structure (:mod:`s2p_utils.batching`); ``config.permute_atoms`` shuffles the atom order per visit and
    ``config.atom_dropout`` then hides a random subset of the atoms; ``config.rarity_exponent`` > 0 weights
    each row's loss by :func:`rarity_weights`.
    """
    from s2p_utils.batching import batch_dataset

    return batch_dataset(
        inputs,
        targets,
        batch_size=config.batch_size,
        seed=seed,
        first_epoch=first_epoch,
        last_epoch=last_epoch,
        bucketed=bucketed,
        permute_atoms=config.permute_atoms,
        atom_dropout=config.atom_dropout,
        weights=rarity_weights(targets, config.rarity_exponent) if config.rarity_exponent else None,
    )


def _validation_data(inputs: dict[str, np.ndarray], targets: np.ndarray, batch_size: int, bucketed: bool):
    """Validation set as arrays (padded recipe) or as length-sorted, cut batches (bucketed)."""
    if not bucketed:
        return (inputs, targets)
    import tensorflow as tf

    from s2p_utils.batching import cut_batch, evaluation_batches

    batches = [
        (cut_batch(inputs, rows), targets[rows]) for rows in evaluation_batches(inputs, batch_size, True)
    ]
    names = sorted(inputs)
    signature = (
        {
            name: tf.TensorSpec(
                (None,) * inputs[name].ndim if name != "pdf" else (None, None, inputs[name].shape[2]),
                tf.as_dtype(inputs[name].dtype),
            )
            for name in names
        },
        tf.TensorSpec((None, *targets.shape[1:]), tf.as_dtype(targets.dtype)),
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=signature)
    # a known length keeps Keras from warning "Your input ran out of data" after the first evaluation
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))


def uses_buckets(model, inputs: dict[str, np.ndarray], recipe: Recipe) -> bool:
    """Length bucketing applies when the recipe asks for it, without a grid input, on a free-length model."""
    return (
        recipe.bucketed and "grid" not in inputs and all(tensor.shape[1] is None for tensor in model.inputs)
    )


# ----------------------------------------------------------------------------------------- callbacks
def _make_callbacks(
    recipe: Recipe, config: TrainConfig, run_dir: Path, state: dict[str, Any] | None, seed: int, verbose: int
):
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """EarlyStopping whose counters survive a restart (``state.json``)."""

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if state:
                self.wait = int(state["wait"])
                self.best = state["best"]
                self.best_epoch = int(state["best_epoch"])

    class Checkpointer(keras.callbacks.Callback):
        """Per epoch: best-validation weights, the last model + optimizer, then ``state.json``."""

        def __init__(self, stopper: ResumableEarlyStopping) -> None:
            super().__init__()
            self.stopper = stopper
            self.best_val = state.get("best_val") if state else None
            self.best_val_epoch = state.get("best_val_epoch") if state else None

        def on_epoch_end(self, epoch, logs=None):
            val = (logs or {}).get("val_loss")
            if val is not None and np.isfinite(val) and (self.best_val is None or val < self.best_val):
                self.best_val, self.best_val_epoch = float(val), epoch
                if swapper is not None:
                    swapper._swap_variables()  # the averaged weights, the ones val_loss was computed with
                try:
                    with atomic_path(run_dir / BEST_FILE, suffix=".weights.h5") as tmp:
                        self.model.save_weights(tmp)
                finally:
                    if swapper is not None:
                        swapper._swap_variables()
            checkpoint = run_dir / f"epoch_{epoch + 1:04d}.keras"
            with atomic_path(checkpoint) as tmp:
                self.model.save(tmp)
            previous = _read_state(run_dir)
            best = self.stopper.best
            _write_state(
                run_dir,
                {
                    "epoch": epoch,
                    "checkpoint": checkpoint.name,
                    "wait": int(self.stopper.wait),
                    "best": None if best is None else float(best),
                    "best_epoch": int(self.stopper.best_epoch),
                    "best_val": self.best_val,
                    "best_val_epoch": self.best_val_epoch,
                    "stopped": bool(self.model.stop_training),
                    "stop_on": recipe.stop_on,
                },
            )
            if previous and previous.get("checkpoint") not in (None, checkpoint.name):
                (run_dir / previous["checkpoint"]).unlink(missing_ok=True)

    class EpochSeeds(keras.callbacks.Callback):
        """Dropout randomness of epoch ``e`` depends only on ``(seed, e)``, so resumed runs repeat it."""

        def on_epoch_begin(self, epoch, logs=None):
            states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
            for i, variable in enumerate(states):
                value = np.random.default_rng([seed, epoch, i]).integers(0, 2**31 - 1)
                variable.assign(np.array([value, 0], dtype=variable.dtype))

    # The weight average (when on) replaces the weights around every validation pass (SwapEMAWeights), so
    # val_loss, early stopping and the best-epoch file see the averaged weights; the per-epoch checkpoint
    # keeps the raw weights and the optimizer (which holds the average), so a resumed run goes on exactly.
    swapper = keras.callbacks.SwapEMAWeights(swap_on_epoch=False) if config.ema_momentum else None
    stopper = ResumableEarlyStopping(
        monitor=recipe.stop_on,
        min_delta=recipe.min_delta,
        patience=recipe.patience,
        mode="min",
        verbose=verbose,
    )
    return [
        *([swapper] if swapper is not None else []),
        EpochSeeds(),
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: learning_rate(epoch, config)),
        keras.callbacks.CSVLogger(str(run_dir / LOG_FILE), append=True),
        stopper,
        Checkpointer(stopper),
        keras.callbacks.TerminateOnNaN(),
    ]


def _read_state(run_dir: Path) -> dict[str, Any] | None:
    """The resume state of ``run_dir``; ``None`` when there is none or it is unusable.

    An unreadable ``state.json`` or one naming a checkpoint that is gone (left by a crashed or
    concurrent run) is reported with a warning and the run starts afresh instead of failing forever.
    """
    path = run_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        usable = isinstance(state, dict) and (run_dir / str(state["checkpoint"])).is_file()
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError) as error:
        usable, state = False, error
    if not usable:
        warnings.warn(
            f"{path}: unusable resume state ({state!r:.200}); training {run_dir.name} from scratch",
            UserWarning,
            stacklevel=3,
        )
        for stale in (path, run_dir / LOG_FILE, run_dir / BEST_FILE):
            stale.unlink(missing_ok=True)
        return None
    return state


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    with atomic_path(run_dir / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(state, indent=1))


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Delete ``.*.tmp*`` files a killed run left in ``run_dir`` (safe: the caller holds the run lock)."""
    for stale in run_dir.glob(".*.tmp*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)


def _trim_log(run_dir: Path, last_epoch: int) -> None:
    """Drop log rows of epochs after ``last_epoch`` (written before an interruption, not checkpointed)."""
    path = run_dir / LOG_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return
    log = pd.read_csv(path)
    kept = log[log["epoch"] <= last_epoch]
    if len(kept) != len(log):
        kept.to_csv(path, index=False)


def _restore(model, checkpoint: Path) -> None:
    """Copy the weights and the optimizer state (moments, step count) of ``checkpoint`` into ``model``."""
    import keras

    from s2p_utils.model import TokenMask

    try:
        saved = keras.saving.load_model(
            checkpoint,
            compile=True,
            custom_objects={"TokenMask": TokenMask, "spectrum_shape_loss": spectrum_shape_loss},
        )
    except (OSError, ValueError) as error:
        raise ValueError(f"{checkpoint}: cannot resume from this checkpoint ({error})") from error
    if [w.shape for w in saved.weights] != [w.shape for w in model.weights]:
        raise ValueError(f"{checkpoint}: checkpoint does not match the model being trained")
    for target, source in zip(model.weights, saved.weights, strict=True):
        target.assign(source)
    model.optimizer.build(model.trainable_variables)
    for target, source in zip(model.optimizer.variables, saved.optimizer.variables, strict=True):
        target.assign(source)


#: Losses a :class:`TrainConfig` may name: Keras' ``"mae"`` (the paper's) and ``"mse"``, and the spectrum-shape
#: losses ``"mae_cdf"`` and ``"mse_cdf"`` (:func:`spectrum_shape_loss`).
LOSSES = ("mae", "mse", "mae_cdf", "mse_cdf")
RARITY_BANDWIDTH_STEPS = 1.25
"""Width (grid steps) of the Gaussian kernel of :func:`rarity_weights` (25 cm⁻¹ on the e3nn grid)."""
SMOOTHING_NORMS = ("none", "max")
"""How smoothed training targets are scaled (:func:`smooth_targets`)."""
SHAPE_LOSSES = ("mae_cdf", "mse_cdf")


def spectrum_shape_loss(
    y_true,
    y_pred,
    shape_weight: float = 1.0,
    mean_weight: float = 0.0,
    renorm_weight: float = 0.0,
    kl_weight: float = 0.0,
    squared: bool = False,
):
    """``"mae_cdf"`` (``"mse_cdf"`` with ``squared``): MAE plus weighted terms of the cumulative spectra:
    float ``(batch,)``.

    Both spectra ``(batch, n_grid)`` are clipped at 0 and normalised to unit sum. With ΔCDF(k) =
    CDF_y(k) − CDF_p(k), the loss is ``MAE + shape_weight · mean_k |ΔCDF(k)| + mean_weight · |mean_k ΔCDF(k)|``.
    The first term is the earth mover's distance W₁ in grid steps divided by ``n_grid`` (it penalises a
    peak at the wrong frequency by how far it is off, not only by its height); the second is the error of
    the mean frequency ω̄ in the same units (ω̄_p − ω̄_y = Δω · Σ_k ΔCDF(k) on a uniform grid). With
    ``renorm_weight`` w > 0 the MAE term is ``(1 − w) · MAE(y, p) + w · MAE(y, p / max p)``: part of it
    scores the prediction divided by its own peak, as the max-renormalised columns do, while the rest keeps
    the raw scale. With ``kl_weight`` > 0 the loss adds ``kl_weight · KL(y ‖ p)`` (nats) of the unit-sum
    spectra, Mat2Spec's loss on sum-normalised spectra (``KL_FLOOR`` keeps empty bins finite).
    ``squared=True`` (``"mse_cdf"``) puts the squared error in place of the absolute one in the pointwise
    term (and its ``renorm_weight`` share): the conditional mean instead of the median at every grid point,
    and the MSE that Table 1 scores.
    """
    import keras

    ops = keras.ops

    def pointwise(y, p):
        return ops.mean(ops.square(y - p) if squared else ops.abs(y - p), axis=-1)

    absolute = pointwise(y_true, y_pred)
    if renorm_weight:
        from s2p_utils.model import divide_by_peak

        renormalised = pointwise(y_true, divide_by_peak(y_pred))
        absolute = (1.0 - renorm_weight) * absolute + renorm_weight * renormalised
    y_true = ops.maximum(ops.cast(y_true, y_pred.dtype), 0.0)
    y_pred = ops.maximum(y_pred, 0.0)
    total_true = ops.sum(y_true, axis=-1, keepdims=True) + 1e-6  # each spectrum's area, once
    total_pred = ops.sum(y_pred, axis=-1, keepdims=True) + 1e-6
    cdf_true = ops.cumsum(y_true, axis=-1) / total_true
    cdf_pred = ops.cumsum(y_pred, axis=-1) / total_pred
    gap = cdf_true - cdf_pred
    loss = absolute + shape_weight * ops.mean(ops.abs(gap), axis=-1)
    if mean_weight:
        loss = loss + mean_weight * ops.abs(ops.mean(gap, axis=-1))
    if kl_weight:
        p_true, p_pred = y_true / total_true, y_pred / total_pred
        ratio = (p_true + KL_FLOOR) / (p_pred + KL_FLOOR)
        loss = loss + kl_weight * ops.sum(p_true * ops.log(ratio), axis=-1)
    return loss


KL_FLOOR = 1e-4
"""Added to both unit-sum spectra inside the logarithm of the ``kl_weight`` term (bins where either is empty)."""


def _loss(
    name: str,
    shape_weight: float = 1.0,
    mean_weight: float = 0.0,
    renorm_weight: float = 0.0,
    kl_weight: float = 0.0,
):
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    if shape_weight < 0 or mean_weight < 0 or kl_weight < 0:
        raise ValueError(
            f"shape_weight, mean_weight and kl_weight must be ≥ 0, got {shape_weight}, {mean_weight}, {kl_weight}"
        )
    if kl_weight and name not in SHAPE_LOSSES:
        raise ValueError(f"kl_weight needs a spectrum-shape loss {SHAPE_LOSSES}, got {name!r}")
    if not 0 <= renorm_weight <= 1 or (renorm_weight and name not in SHAPE_LOSSES):
        raise ValueError(
            f"renorm_weight must be in [0, 1] and needs a spectrum-shape loss {SHAPE_LOSSES}, got "
            f"{renorm_weight}, {name!r}"
        )
    if name not in SHAPE_LOSSES:
        return name
    squared = name == "mse_cdf"
    if (
        shape_weight == 1.0
        and mean_weight == 0.0
        and renorm_weight == 0.0
        and kl_weight == 0.0
        and not squared
    ):
        return spectrum_shape_loss

    def weighted_shape_loss(y_true, y_pred):
        return spectrum_shape_loss(
            y_true, y_pred, shape_weight, mean_weight, renorm_weight, kl_weight, squared
        )

    return weighted_shape_loss


def rarity_weights(
    targets: np.ndarray, exponent: float, bandwidth: float = RARITY_BANDWIDTH_STEPS
) -> np.ndarray:
    """Loss weights float32 ``(n,)`` that make crystals with a rare mean frequency count more.

    Label-distribution smoothing for imbalanced regression (Yang et al., ICML 2021): with ω̄_i the mean
    position of target ``i`` ``(n, n_grid)`` in grid steps (Σ_k k·y_k / Σ_k y_k, negatives clipped), ρ the
    Gaussian kernel density (``bandwidth`` grid steps) of the ω̄_i, the weight is ``ρ(ω̄_i)^(−exponent)``,
    scaled to mean 1. ``exponent = 0`` gives ones; ½ is the square-root inverse. A network trained on few
    crystals with high ω̄ pulls their spectra toward the common ones (the ω̄ error regresses to the mean);
    these weights push back.

    Raises:
        ValueError: a negative ``exponent`` or a non-positive ``bandwidth``.
    """
    if exponent < 0 or bandwidth <= 0:
        raise ValueError(f"rarity_exponent must be ≥ 0 and the bandwidth > 0, got {exponent}, {bandwidth}")
    spectra = np.clip(np.asarray(targets, dtype=np.float64), 0.0, None)
    totals = spectra.sum(axis=-1)
    centres = (spectra @ np.arange(spectra.shape[-1])) / np.where(totals > 0, totals, 1.0)
    density = np.exp(-0.5 * ((centres[:, None] - centres[None, :]) / bandwidth) ** 2).mean(axis=1)
    weights = density ** (-float(exponent))
    return (weights / weights.mean()).astype(np.float32)


def smooth_targets(targets: np.ndarray, width: float, norm: str = "none") -> np.ndarray:
    """Training targets ``(n, n_grid)`` smoothed along the grid with a Gaussian of ``width`` grid points.

    ``width = 0`` returns them unchanged. Smoothing uses reflecting edges and keeps values ≥ 0; it lowers
    every sharp peak (by 4 % at the median e3nn spectrum for half a grid point). ``norm="max"`` then divides
    each smoothed spectrum by its own peak, so that targets whose peak is 1 keep it: the scale of a network
    whose output is divided by its own peak (``ModelConfig.output_norm="max"``), which can never reach a
    peak below 1. ``norm="none"`` (the default) leaves the lowered peaks.

    Raises:
        ValueError: a negative ``width`` or an unknown ``norm``.
    """
    if width < 0:
        raise ValueError(f"target_smoothing must be ≥ 0 grid points, got {width}")
    if norm not in SMOOTHING_NORMS:
        raise ValueError(f"target_smoothing_norm must be one of {SMOOTHING_NORMS}, got {norm!r}")
    if width == 0:
        return targets
    from scipy.ndimage import gaussian_filter1d

    smoothed = gaussian_filter1d(np.asarray(targets, dtype=np.float64), width, axis=-1, mode="reflect")
    if norm == "max":
        from s2p_utils.metrics import renormalize

        smoothed = renormalize(smoothed)
    return smoothed.astype(np.float32)


def compile_model(model, config: TrainConfig, *, jit_compile: bool | str = "auto") -> None:
    """Compile with the configured loss (the paper's MAE by default), Adam (with decoupled weight decay
    ``config.weight_decay`` when > 0, as AdamW, and a moving average of the weights when
    ``config.ema_momentum`` > 0) and an MSE metric."""
    import keras

    if config.weight_decay < 0:
        raise ValueError(f"weight_decay must be ≥ 0, got {config.weight_decay}")
    if not 0 <= config.ema_momentum < 1:
        raise ValueError(f"ema_momentum must be in [0, 1), got {config.ema_momentum}")

    with model.distribute_strategy.scope():
        model.compile(
            optimizer=keras.optimizers.Adam(
                learning_rate=config.learning_rate,
                weight_decay=config.weight_decay or None,
                use_ema=config.ema_momentum > 0,
                ema_momentum=config.ema_momentum or 0.99,
            ),
            loss=_loss(
                config.loss, config.shape_weight, config.mean_weight, config.renorm_weight, config.kl_weight
            ),
            metrics=["mse"],
            jit_compile=jit_compile,
        )


def _validate(inputs: dict[str, np.ndarray], targets: np.ndarray, what: str) -> None:
    if not isinstance(inputs, dict) or "pdf" not in inputs or "tokens" not in inputs:
        raise ValueError(
            f"{what} inputs must be a dict with 'pdf' and 'tokens' arrays, got {type(inputs).__name__}"
        )
    n = len(targets)
    for name, array in inputs.items():
        if len(array) != n:
            raise ValueError(f"{what} input {name!r} has {len(array)} rows but there are {n} targets")
    if n == 0:
        raise ValueError(f"{what} set is empty")


def train_model(
    model,
    train_inputs: dict[str, np.ndarray],
    train_targets: np.ndarray,
    val_inputs: dict[str, np.ndarray],
    val_targets: np.ndarray,
    *,
    config: TrainConfig,
    recipe: Recipe,
    seed: int = 0,
    run_dir: str | os.PathLike,
    verbose: int = 0,
    callbacks: Sequence[Any] = (),
) -> pd.DataFrame:
    """Train ``model`` in place with the paper's recipe; resume if ``run_dir`` holds an unfinished run.

    Args:
        model: network from :func:`s2p_utils.model.build_model` (compiled here).
        train_inputs, val_inputs: ``{"pdf": float32 (n, max_atoms, 100), "tokens": int32 (n, max_atoms)
            [, "grid": float32 (n, n_out)]}``.
        train_targets, val_targets: float32 ``(n, n_out)`` (already scaled if scaling is used).
        config: learning-rate schedule, batch size, loss.
        recipe: epochs, early stopping (monitor, patience), whether to restore the best-validation
            weights and to bucket batches (:func:`s2p_utils.config.resolve_recipe`).
        seed: seeds Keras/NumPy/Python (weights were already initialised by ``build_model``; call
            ``keras.utils.set_random_seed`` before building for fully reproducible runs) and the batch order.
        run_dir: checkpoints, ``log.csv`` and ``state.json``; reuse it to resume.
        verbose: Keras ``fit`` verbosity.
        callbacks: extra Keras callbacks (run after the built-in ones).

    Returns:
        The per-epoch log (``epoch`` 0-based, ``loss``, ``mse``, ``val_loss``, ``val_mse``, ``learning_rate``)
        of the whole run, including epochs before a resume.
    """
    import keras

    _validate(train_inputs, train_targets, "training")
    _validate(val_inputs, val_targets, "validation")
    check_atom_dropout(
        config.atom_dropout, config.permute_atoms
    )  # here, not first inside the tf.data generator
    max_epochs = check_epochs(recipe.epochs)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(run_dir)
    train_inputs = {k: np.asarray(v) for k, v in train_inputs.items()}
    val_inputs = {k: np.asarray(v) for k, v in val_inputs.items()}
    train_targets = np.asarray(train_targets, dtype=np.float32)
    val_targets = np.asarray(val_targets, dtype=np.float32)

    keras.utils.set_random_seed(seed)
    steps = math.ceil(len(train_targets) / config.batch_size)
    bucketed = uses_buckets(model, train_inputs, recipe)
    # XLA compilation costs ~10 s per input shape and saves ~10 % per step: worth it only for longer runs
    # with one shape (bucketed batches have many widths, each would be recompiled)
    compile_model(
        model, config, jit_compile="auto" if steps * max_epochs >= XLA_MIN_STEPS and not bucketed else False
    )
    state = _read_state(run_dir)
    initial_epoch = 0
    if state is not None:
        if state.get("stop_on") != recipe.stop_on:
            raise ValueError(
                f"{run_dir}: holds a run stopping on {state.get('stop_on')!r}, cannot resume it as one "
                f"stopping on {recipe.stop_on!r}"
            )
        _restore(model, run_dir / state["checkpoint"])
        initial_epoch = int(state["epoch"]) + 1
        _trim_log(run_dir, int(state["epoch"]))
    finished = state is not None and (state.get("stopped") or initial_epoch >= max_epochs)
    if not finished:
        data = _batches(train_inputs, train_targets, config, seed, initial_epoch, max_epochs, bucketed)
        model.fit(
            data,
            validation_data=_validation_data(val_inputs, val_targets, config.batch_size, bucketed),
            validation_batch_size=config.batch_size,
            epochs=max_epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            shuffle=False,  # the batch order is fixed by (seed, epoch) in _batches
            callbacks=[*_make_callbacks(recipe, config, run_dir, state, seed, verbose), *callbacks],
            verbose=verbose,
        )
    if recipe.restore_best and (run_dir / BEST_FILE).is_file():
        model.load_weights(run_dir / BEST_FILE)
    return read_history(run_dir)


def read_history(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The ``log.csv`` of a run as a DataFrame (empty when nothing was logged)."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["epoch", "loss", "val_loss"])
    return pd.read_csv(path)
