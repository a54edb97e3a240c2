"""Calibrating the spread of an ensemble on the validation split.

The raw member standard deviation σ of an ensemble of networks trained from different seeds is
over-confident: members share data, architecture and inductive bias, so they agree with each other more
often than with the truth. The remedy here is the simplest one that is honest about it: a single factor
``s``, fitted on the *validation* split, so that ``s·σ`` covers the wanted fraction of validation points
(68.27 %, the Gaussian ±1σ fraction) — split-conformal calibration with the normalised score |y − μ|/σ.
The factor is stored beside the members (``calibration.json`` in the ensemble folder) and applied by
:func:`s2p_utils.prediction.predict`; the test set is scored before and after.

*Active points.* About 45 % of the phonon-DOS grid points are zero-DOS bins (above the highest phonon
frequency) that every member predicts as exactly 0: σ = 0 and the error is 0, at any scale. Counting
them would let a band that is far too narrow where the spectrum has signal reach "68 %" overall. The
factor is therefore fitted on the *active* points — all but those with σ = 0 and zero error — and the
coverage is reported both over active points and over every point (the latter as the issue of record
defined it).

Errors of spectra are heavy-tailed (a missed peak is far outside any Gaussian), so matching ±1σ does not
make ±2σ cover 95.4 %; both fractions are reported so nobody has to assume it does.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "GAUSSIAN_1SIGMA",
    "CALIBRATION_FILE",
    "active_points",
    "fit_std_scale",
    "coverage_curve",
    "write_calibration",
    "read_std_scale",
]

#: Fraction of a Gaussian within ±1σ.
GAUSSIAN_1SIGMA = 0.6826894921370859

#: File name of the calibration record inside an ensemble folder.
CALIBRATION_FILE = "calibration.json"


def active_points(targets: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Boolean mask, same shape: False where ``σ = 0`` and ``y = μ`` (exactly right, no spread), else True."""
    targets, mean, std = (np.asarray(a, dtype=np.float64) for a in (targets, mean, std))
    return ~((std == 0) & (targets == mean))


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
    targets, mean, std = (np.asarray(a, dtype=np.float64) for a in (targets, mean, std))
    if not (targets.shape == mean.shape == std.shape) or targets.size == 0:
        raise ValueError(
            f"shapes differ or are empty: targets {targets.shape}, mean {mean.shape}, std {std.shape}"
        )
    if not (np.isfinite(targets).all() and np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError("targets, mean and std must be finite")
    if (std < 0).any():
        raise ValueError("std must be non-negative")
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must lie in (0, 1), got {coverage}")
    keep = active_points(targets, mean, std) if active_only else np.ones(targets.shape, dtype=bool)
    if not keep.any():
        raise ValueError("no active points: every point has σ = 0 and zero error")
    error = np.abs(targets - mean)[keep]
    sigma = std[keep]
    ratio = np.full(error.shape, np.inf)
    positive = sigma > 0
    ratio[positive] = error[positive] / sigma[positive]
    ratio[~positive & (error == 0)] = 0.0
    ratio.sort()
    needed = math.ceil(coverage * ratio.size)  # points that must be covered
    factor = float(ratio[needed - 1])
    if not math.isfinite(factor):
        raise ValueError(
            f"no finite scale reaches {coverage:.1%} coverage: {np.isinf(ratio).mean():.1%} of the points have "
            "σ = 0 and a non-zero error"
        )
    return max(factor, np.finfo(np.float64).tiny)


def coverage_curve(
    targets: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    levels: np.ndarray | None = None,
    *,
    active_only: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed against nominal coverage of Gaussian central intervals ``μ ± z(level)·σ``.

    Args:
        targets, mean, std: ``(n, n_grid)`` arrays in the same units.
        levels: nominal coverages in (0, 1) (default 0.05, 0.10, …, 0.95).
        active_only: count only the active points (:func:`active_points`).

    Returns:
        ``(levels, observed)``: float64 ``(m,)`` each; ``observed[j]`` is the fraction of points with
        ``|y − μ| ≤ z_j σ``, ``z_j = √2 erf⁻¹(levels[j])``. A calibrated σ lies on the diagonal; below it,
        σ is over-confident.
    """
    from scipy.special import erfinv

    targets, mean, std = (np.asarray(a, dtype=np.float64) for a in (targets, mean, std))
    if not (targets.shape == mean.shape == std.shape):
        raise ValueError(f"shapes differ: targets {targets.shape}, mean {mean.shape}, std {std.shape}")
    levels = np.arange(0.05, 0.96, 0.05) if levels is None else np.asarray(levels, dtype=np.float64)
    if ((levels <= 0) | (levels >= 1)).any():
        raise ValueError("levels must lie in (0, 1)")
    keep = active_points(targets, mean, std) if active_only else np.ones(targets.shape, dtype=bool)
    error = np.abs(targets - mean)[keep]
    sigma = std[keep]
    if error.size == 0:
        return levels, np.full(levels.shape, np.nan)
    z = np.sqrt(2.0) * erfinv(levels)
    observed = np.array([np.mean(error <= k * sigma) for k in z])
    return levels, observed


def write_calibration(folder: str | os.PathLike, std_scale: float, **info: Any) -> Path:
    """Write ``{"std_scale": s, **info}`` to ``folder/calibration.json`` (atomically) and return its path."""
    if not (math.isfinite(std_scale) and std_scale > 0):
        raise ValueError(f"std_scale must be a positive finite number, got {std_scale}")
    from s2p_utils.results import _atomic_write_text

    record = json.dumps({"std_scale": float(std_scale), **info}, indent=2) + "\n"
    return _atomic_write_text(Path(folder) / CALIBRATION_FILE, record)


def read_std_scale(folder: str | os.PathLike) -> float | None:
    """The ``std_scale`` of ``folder/calibration.json``, or ``None`` when the folder has none.

    Raises:
        ValueError: the file exists but is not JSON with a positive finite ``std_scale``.
    """
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        value = float(record["std_scale"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a calibration record with a numeric 'std_scale' ({error})") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{path}: std_scale must be a positive finite number, got {value}")
    return value
