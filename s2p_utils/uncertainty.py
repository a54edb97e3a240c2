"""Calibrating the spread of an ensemble on the validation split.

The raw member standard deviation σ of an ensemble of networks trained from different seeds is
over-confident: members share data, architecture and inductive bias, so they agree with each other more
often than with the truth. The remedy here is split-conformal calibration on the *validation* split,
with two numbers stored beside the members (``calibration.json`` in the ensemble folder) and applied by
:func:`s2p_utils.prediction.predict`::

    σ_calibrated = √((a·σ)² + b²)        (a: scale, b: floor, both in the units of the spectra)

* ``a`` alone (:func:`fit_std_scale`, ``b = 0``) is the classic one-factor recalibration: ``a·σ`` covers
  68.27 % of validation points (the Gaussian ±1σ fraction). It cannot also give ±2σ ≈ 95.45 %: spectrum
  errors are heavy-tailed, and where every member predicts exactly 0 (σ = 0) but the reference has a
  small peak, no factor covers anything.
* The floor ``b`` (:func:`fit_std_calibration`) is the error the ensemble does not see in its spread. For
  each candidate floor the scale is chosen so that ±1σ covers exactly 68.27 % of validation points;
  among those pairs the smallest floor whose ±2σ comes closest to 95.45 % (within sampling noise) is
  kept (``b = 0`` when one factor already does it, so the pair never does worse than the factor on
  validation).
* The floor applies on the ensemble's *support* only (:func:`floor_support`): grid points where some
  member predicts a non-zero value (σ > 0 or μ ≠ 0), widened by ``FLOOR_MARGIN`` grid points on each
  side (spectra that every member cuts off one or two points too early). Far above the highest phonon
  frequency every member predicts exactly 0, the reference is 0 too, and σ stays 0 there.

*Active points.* About 45 % of the phonon-DOS grid points are zero-DOS bins (above the highest phonon
frequency) that every member predicts as exactly 0: σ = 0 and the error is 0, at any scale. Counting
them would let a band that is far too narrow where the spectrum has signal reach "68 %" overall. The
calibration is therefore fitted on the *active* points — all but those with σ = 0 and zero error — and
the coverage is reported both over active points and over every point (the latter as the issue of
record defined it).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy.ndimage import binary_dilation
from scipy.special import erfinv

from s2p_utils.paths import atomic_write_text

__all__ = [
    "GAUSSIAN_1SIGMA",
    "GAUSSIAN_2SIGMA",
    "CALIBRATION_FILE",
    "active_points",
    "active_mask",
    "FLOOR_MARGIN",
    "Calibration",
    "floor_support",
    "calibrated_std",
    "fit_std_scale",
    "fit_std_calibration",
    "coverage_curve",
    "write_calibration",
    "read_calibration",
]

#: Fraction of a Gaussian within ±1σ.
GAUSSIAN_1SIGMA = 0.6826894921370859

#: Fraction of a Gaussian within ±2σ.
GAUSSIAN_2SIGMA = 0.9544997361036416

#: File name of the calibration record inside an ensemble folder.
CALIBRATION_FILE = "calibration.json"

#: Grid points by which the floor's support reaches beyond the points any member predicts non-zero.
FLOOR_MARGIN = 3


class Calibration(NamedTuple):
    """A calibration record: ``σ' = √((scale·σ)² + floor²)`` on :func:`floor_support`, ``scale·σ`` elsewhere.

    ``floor`` is in the units of the spectra; ``floor_margin`` in grid points (``None``: floor everywhere).
    """

    scale: float
    floor: float = 0.0
    floor_margin: int | None = FLOOR_MARGIN

    def apply(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Calibrated σ' (float64, the shape of ``std``) of ensemble means and raw spreads ``(n, n_grid)``."""
        if self.floor == 0.0:
            return calibrated_std(std, self.scale)
        return calibrated_std(std, self.scale, self.floor, floor_support(mean, std, self.floor_margin))


def floor_support(mean: np.ndarray, std: np.ndarray, margin: int | None = FLOOR_MARGIN) -> np.ndarray:
    """Where the floor applies: boolean, the shape of ``mean`` ``(..., n_grid)``.

    True where some member predicts a non-zero value (``σ > 0`` or ``μ ≠ 0``) and up to ``margin`` grid
    points either side of such a point along the last axis; everywhere when ``margin`` is ``None``.
    """
    mean, std = np.asarray(mean), np.asarray(std)
    if mean.shape != std.shape:
        raise ValueError(f"shapes differ: mean {mean.shape}, std {std.shape}")
    if margin is None:
        return np.ones(mean.shape, dtype=bool)
    if margin < 0:
        raise ValueError(f"margin must be ≥ 0 grid points or None, got {margin}")
    support = (std > 0) | (mean != 0)
    if margin == 0 or support.size == 0:
        return support
    structure = np.zeros((1,) * (support.ndim - 1) + (2 * margin + 1,), dtype=bool)
    structure[...] = True
    return binary_dilation(support, structure=structure)


def active_points(targets: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Boolean mask, same shape: False where ``σ = 0`` and ``y = μ`` (exactly right, no spread), else True."""
    targets, mean, std = (np.asarray(a, dtype=np.float64) for a in (targets, mean, std))
    return ~((std == 0) & (targets == mean))


def active_mask(
    targets: np.ndarray, mean: np.ndarray, std: np.ndarray, active: np.ndarray | None = None
) -> np.ndarray:
    """``active`` as a boolean mask checked against the shape of ``targets``, or :func:`active_points` when
    ``None`` (pass the raw spread's mask when ``std`` is calibrated with a floor, which is never 0)."""
    if active is None:
        return active_points(targets, mean, std)
    active = np.asarray(active, dtype=bool)
    if active.shape != np.shape(targets):
        raise ValueError(f"active mask {active.shape} must have the shape of the targets {np.shape(targets)}")
    return active


def calibrated_std(
    std: np.ndarray, scale: float, floor: float = 0.0, support: np.ndarray | None = None
) -> np.ndarray:
    """Calibrated spread: float64, the shape of ``std`` (units of the spectra).

    ``√((scale·σ)² + floor²)`` where ``support`` is True (default: everywhere), ``scale·σ`` elsewhere.
    """
    std = np.asarray(std, dtype=np.float64)
    if floor == 0.0:
        return scale * std
    floored = np.sqrt((scale * std) ** 2 + floor**2)
    return floored if support is None else np.where(support, floored, scale * std)


def _checked_errors(
    targets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    active_only: bool,
    support: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(|y − μ|, σ, support)`` of the points a fit uses, 1-D; raises ``ValueError`` on bad input."""
    targets, mean, std = (np.asarray(a, dtype=np.float64) for a in (targets, mean, std))
    if not (targets.shape == mean.shape == std.shape) or targets.size == 0:
        raise ValueError(
            f"shapes differ or are empty: targets {targets.shape}, mean {mean.shape}, std {std.shape}"
        )
    if not (np.isfinite(targets).all() and np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError("targets, mean and std must be finite")
    if (std < 0).any():
        raise ValueError("std must be non-negative")
    keep = active_points(targets, mean, std) if active_only else np.ones(targets.shape, dtype=bool)
    if not keep.any():
        raise ValueError("no active points: every point has σ = 0 and zero error")
    support = np.ones(targets.shape, dtype=bool) if support is None else np.asarray(support, dtype=bool)
    if support.shape != targets.shape:
        raise ValueError(f"support {support.shape} must have the shape of the targets {targets.shape}")
    return np.abs(targets - mean)[keep], std[keep], support[keep]


def _needed_scale(error: np.ndarray, sigma: np.ndarray, floor: float | np.ndarray) -> np.ndarray:
    """Per point, the smallest ``a`` with ``error ≤ √((a·σ)² + floor²)`` (0 if the floor covers it, inf if
    σ = 0 and it does not)."""
    excess = np.sqrt(np.clip(error**2 - floor**2, 0.0, None))
    ratio = np.full(error.shape, np.inf)
    positive = sigma > 0
    ratio[positive] = excess[positive] / sigma[positive]
    ratio[~positive & (excess == 0)] = 0.0
    return ratio


def _scale_for(error: np.ndarray, sigma: np.ndarray, floor: float | np.ndarray, coverage: float) -> float:
    """Smallest scale for which ``√((a·σ)² + floor²)`` covers ``coverage`` of the points (inf if none)."""
    ratio = np.sort(_needed_scale(error, sigma, floor))
    return float(ratio[math.ceil(coverage * ratio.size) - 1])


def _no_finite_scale(coverage: float, error: np.ndarray, sigma: np.ndarray) -> ValueError:
    """The error for a fit that no finite scale satisfies (too many points with σ = 0 and an error)."""
    return ValueError(
        f"no finite scale reaches {coverage:.1%} coverage: {np.mean((sigma == 0) & (error > 0)):.1%} of the "
        "points have σ = 0 and a non-zero error"
    )


def fit_std_scale(
    targets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    coverage: float = GAUSSIAN_1SIGMA,
    *,
    active_only: bool = True,
) -> float:
    """The factor ``s`` such that a fraction ``coverage`` of points satisfies ``|y − μ| ≤ s·σ``.

    Args:
        targets, mean, std: ``(n, n_grid)`` reference spectra, ensemble mean and member standard deviation,
            in the same units (validation split).
        coverage: wanted fraction in (0, 1).
        active_only: count only the active points (:func:`active_points`; see the module docstring).

    Returns:
        ``s > 0`` (float). Points with ``σ = 0`` and a non-zero error are never covered, whatever ``s``
        is; they are part of the fraction, so a factor exists only if there are few enough of them.

    Raises:
        ValueError: shapes differ, non-finite values, ``coverage`` outside (0, 1), or no finite factor can
            reach ``coverage`` (too many points with ``σ = 0`` and a non-zero error).
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must lie in (0, 1), got {coverage}")
    error, sigma, _ = _checked_errors(targets, mean, std, active_only)
    factor = _scale_for(error, sigma, 0.0, coverage)
    if not math.isfinite(factor):
        raise _no_finite_scale(coverage, error, sigma)
    return max(factor, np.finfo(np.float64).tiny)


def fit_std_calibration(
    targets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    coverages: tuple[float, float] = (GAUSSIAN_1SIGMA, GAUSSIAN_2SIGMA),
    *,
    active_only: bool = True,
    support: np.ndarray | None = None,
    n_floors: int = 200,
) -> tuple[float, float]:
    """Scale ``a`` and floor ``b`` of ``σ' = √((a·σ)² + b²)`` fitted to cover ±1σ' and ±2σ' fractions.

    For each candidate floor (0 and ``n_floors − 1`` quantiles of the errors below the ``coverages[0]``
    quantile) the scale is the smallest one for which ±1σ' covers ``coverages[0]`` of the points. The
    smallest floor whose ±2σ' coverage is as close to ``coverages[1]`` as the best pair's, or within two
    binomial standard errors ``2√(c₂(1 − c₂)/N)`` of it, is returned: a floor is only added when the
    data ask for more than sampling noise.

    Args:
        targets, mean, std: ``(n, n_grid)`` reference spectra, ensemble mean and member standard deviation,
            in the same units (validation split).
        coverages: wanted fractions within ±1σ' and ±2σ', ``0 < c₁ < c₂ < 1`` (default: Gaussian).
        active_only: count only the active points (:func:`active_points`).
        support: boolean ``(n, n_grid)``, where the floor applies (default everywhere; see
            :func:`floor_support`).
        n_floors: candidate floors tried.

    Returns:
        ``(a, b)``: ``a > 0`` dimensionless, ``b ≥ 0`` in the units of the spectra.

    Raises:
        ValueError: bad input (as :func:`fit_std_scale`) or coverages not ``0 < c₁ < c₂ < 1``.
    """
    low, high = (float(c) for c in coverages)
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"coverages must satisfy 0 < c1 < c2 < 1, got {coverages}")
    error, sigma, on_support = _checked_errors(targets, mean, std, active_only, support)
    # a floor at or above the c1-quantile of the errors would cover c1 with no scale at all: σ ignored
    floors = np.unique(np.concatenate([[0.0], np.quantile(error, np.linspace(0.0, low, n_floors))[:-1]]))
    candidates = []  # (floor, scale, |±2σ' coverage − c2|), floors ascending
    for floor in floors:
        floor_here = np.where(on_support, float(floor), 0.0)
        scale = _scale_for(error, sigma, floor_here, low)
        if math.isfinite(scale):
            wide = np.mean(_needed_scale(error / 2.0, sigma, floor_here) <= scale)
            candidates.append((float(floor), scale, abs(float(wide) - high)))
    if not candidates:
        raise _no_finite_scale(low, error, sigma)
    # the smallest floor within sampling noise (two binomial standard errors) of the best ±2σ' match
    tolerance = max(min(c[2] for c in candidates), 2.0 * math.sqrt(high * (1.0 - high) / error.size))
    best = next(c for c in candidates if c[2] <= tolerance)
    return max(best[1], np.finfo(np.float64).tiny), best[0]


def coverage_curve(
    targets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    levels: np.ndarray | None = None,
    *,
    active_only: bool = True,
    active: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed against nominal coverage of Gaussian central intervals ``μ ± z(level)·σ``.

    Args:
        targets, mean, std: ``(n, n_grid)`` arrays in the same units.
        levels: nominal coverages in (0, 1) (default 0.05, 0.10, …, 0.95).
        active_only: count only the active points (:func:`active_points`).
        active: boolean mask of the active points (default: :func:`active_points` of ``std``); pass the
            mask of the raw member spread when ``std`` is calibrated with a floor.

    Returns:
        ``(levels, observed)``: float64 ``(m,)`` each; ``observed[j]`` is the fraction of points with
        ``|y − μ| ≤ z_j σ``, ``z_j = √2 erf⁻¹(levels[j])``. A calibrated σ lies on the diagonal; below it,
        σ is over-confident.
    """
    targets, mean, std = (np.asarray(a, dtype=np.float64) for a in (targets, mean, std))
    if not (targets.shape == mean.shape == std.shape):
        raise ValueError(f"shapes differ: targets {targets.shape}, mean {mean.shape}, std {std.shape}")
    levels = np.arange(0.05, 0.96, 0.05) if levels is None else np.asarray(levels, dtype=np.float64)
    if ((levels <= 0) | (levels >= 1)).any():
        raise ValueError("levels must lie in (0, 1)")
    keep = active_mask(targets, mean, std, active) if active_only else np.ones(targets.shape, dtype=bool)
    error = np.abs(targets - mean)[keep]
    sigma = std[keep]
    if error.size == 0:
        return levels, np.full(levels.shape, np.nan)
    z = np.sqrt(2.0) * erfinv(levels)
    observed = np.array([np.mean(error <= k * sigma) for k in z])
    return levels, observed


def write_calibration(folder: str | os.PathLike, calibration: Calibration, **info: Any) -> Path:
    """Write ``{"std_scale": a, "std_floor": b, "floor_margin": m, **info}`` to ``folder/calibration.json``.

    Atomic; returns the path. Raises ``ValueError`` unless ``a`` is positive and finite, ``b`` finite and
    ≥ 0, and ``m`` an integer ≥ 0 or ``None``.
    """
    _check(calibration, "std_scale/std_floor/floor_margin")
    scale, floor, margin = calibration
    record = {"std_scale": float(scale), "std_floor": float(floor), "floor_margin": margin}
    return atomic_write_text(Path(folder) / CALIBRATION_FILE, json.dumps({**record, **info}, indent=2) + "\n")


def _check(calibration: Calibration, where: str) -> None:
    scale, floor, margin = calibration
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{where}: std_scale must be a positive finite number, got {scale}")
    if not (math.isfinite(floor) and floor >= 0):
        raise ValueError(f"{where}: std_floor must be a finite number ≥ 0, got {floor}")
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int) or margin < 0):
        raise ValueError(f"{where}: floor_margin must be an integer ≥ 0 or null, got {margin!r}")


def read_calibration(folder: str | os.PathLike) -> Calibration | None:
    """The :class:`Calibration` of ``folder/calibration.json``, or ``None`` when the folder has none.

    A record without ``std_floor`` (one-factor calibration) reads as floor 0.

    Raises:
        ValueError: the file exists but is not JSON with a positive finite ``std_scale`` (and, if present,
            a finite ``std_floor`` ≥ 0 and an integer ``floor_margin`` ≥ 0 or null).
    """
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        calibration = Calibration(
            float(record["std_scale"]),
            float(record.get("std_floor", 0.0)),
            record.get("floor_margin", FLOOR_MARGIN),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: not a calibration record with a numeric 'std_scale' ({error})") from None
    _check(calibration, str(path))
    return calibration
