"""Scores for predicted spectra, and phonon-DOS derived properties.

Every function takes spectra as float arrays of shape ``(n, n_grid)`` (one spectrum per row; a single
``(n_grid,)`` spectrum is accepted where noted) and returns plain floats or float64 arrays.

Definitions (``y`` reference, ``p`` prediction, ``i`` spectrum, ``k`` grid point, ``K`` points):

``mae``          mean over spectra of ``mean_k |y_ik − p_ik|`` — the paper's number (sklearn
                 ``mean_absolute_error`` per spectrum, then averaged). Equals the global mean when all
                 spectra have the same length, which they always do here.
``mse``          likewise with squared errors.
``mae_renorm``   the same after re-normalising *both* prediction and reference to maximum 1 per spectrum
``mse_renorm``   (how Mat2Spec scores phonon DOS; the e3nn phDOS targets already have max 1, re-normalising
                 the reference too keeps the comparison fair for any dataset). A spectrum whose maximum is
                 ≤ 0 is left as it is.
``r2``           variance-weighted coefficient of determination, as sklearn's
                 ``r2_score(y, p, multioutput="variance_weighted")``:
                 ``1 − Σ_k Σ_i (y_ik − p_ik)² / Σ_k Σ_i (y_ik − ȳ_k)²`` over the grid points ``k`` whose
                 reference variance is non-zero (sklearn gives constant columns weight 0).
``r2_pooled``    pooled R² over every value of the test matrix, as ``r2_score(y.ravel(), p.ravel())``:
                 ``1 − Σ_ik (y_ik − p_ik)² / Σ_ik (y_ik − ȳ)²`` with ``ȳ`` the grand mean. The variance
                 around the grand mean includes the spread *between* grid points, so it is larger than
                 ``r2`` for the same prediction.
``r2_pooled_renorm``  ``r2_pooled`` after max re-normalisation, i.e. ``1 − mse_renorm / Var(y)``.
``r2_spectrum``  per-spectrum-variance R²: ``1 − Σ_ik (y_ik − p_ik)² / Σ_ik (y_ik − ȳ_i)²`` with ``ȳ_i`` the
                 mean of spectrum ``i`` (the variance *within* each spectrum). ``r2_spectrum_renorm`` after
                 max re-normalisation.
                 Which R² Mat2Spec's Table 1 (Kong et al., Nat. Commun. 13, 949 (2022)) prints is not stated
                 there; its MaxNorm rows give ``MSE / (1 − R²)`` = 0.029/0.37, 0.034/0.44, 0.042/0.55 =
                 0.078, 0.077, 0.076. On the corrected chen2021 test set (151 of its 152 materials) the
                 pooled variance is 0.0818 and the per-spectrum variance 0.0757 (the variance-weighted
                 denominator 0.0529); on the validation set (152) the pooled variance is 0.0771. Every
                 definition is reported; ``mse_renorm`` is the definition-free comparison.
``wasserstein``  earth mover's distance W₁ between reference and prediction seen as distributions of point
                 masses on the grid (each clipped at 0 and normalised to unit sum):
                 ``W₁ = Σ_k |CDF_y(k) − CDF_p(k)| (x_{k+1} − x_k)``, in grid units (cm⁻¹, eV; bins when no
                 grid is given), averaged over spectra whose masses are both non-zero.
``cv_mae``       phonon DOS only: mean |C_V(y) − C_V(p)| of the heat capacity at 300 K per atom, in k_B
                 (:func:`heat_capacity`).
``omega_mae``    phonon DOS only: mean |ω̄(y) − ω̄(p)| of the mean frequency in cm⁻¹ (:func:`mean_frequency`).

With ``train_targets`` every score is repeated as ``baseline_<name>`` for the trivial model that predicts
the mean training spectrum for every material.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from s2p_utils.uncertainty import active_mask

__all__ = [
    "HC_OVER_KB",
    "per_spectrum_mae",
    "per_spectrum_mse",
    "renormalize",
    "r2_variance_weighted",
    "r2_pooled",
    "r2_per_spectrum",
    "wasserstein",
    "heat_capacity",
    "mean_frequency",
    "spectrum_metrics",
    "calibration",
]

#: h·c/k_B in cm·K: converts a wavenumber in cm⁻¹ and a temperature in K to x = ħω/(k_B T).
HC_OVER_KB = 1.438777

_CM_UNITS = {"cm^-1", "cm-1", "cm⁻¹", "1/cm", "cm^{-1}"}


def _pair(y: np.ndarray | Sequence, p: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, :]
    if p.ndim == 1:
        p = p[None, :]
    if y.shape != p.shape or y.ndim != 2:
        raise ValueError(
            f"reference and prediction must both have shape (n, n_grid); got {y.shape} and {p.shape}"
        )
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("reference and prediction must be finite (found NaN or inf)")
    return y, p


def _grid_for(grid: np.ndarray | Sequence | None, shape: tuple[int, int]) -> np.ndarray:
    """The grid broadcast to ``shape`` (bin indices 0..K-1 when ``grid`` is None)."""
    if grid is None:
        return np.broadcast_to(np.arange(shape[1], dtype=np.float64), shape)
    grid = np.asarray(grid, dtype=np.float64)
    if grid.shape not in {(shape[1],), shape}:
        raise ValueError(f"grid of shape {grid.shape} does not fit spectra of shape {shape}")
    return np.broadcast_to(grid, shape)


def per_spectrum_mae(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Mean absolute error of each spectrum: float64 ``(n,)``, ``mean_k |y_ik − p_ik|``."""
    y, p = _pair(y, p)
    return np.abs(y - p).mean(axis=1)


def per_spectrum_mse(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Mean squared error of each spectrum: float64 ``(n,)``, ``mean_k (y_ik − p_ik)²``."""
    y, p = _pair(y, p)
    return ((y - p) ** 2).mean(axis=1)


def renormalize(spectra: np.ndarray) -> np.ndarray:
    """Each spectrum divided by its maximum (float64, same shape); rows with maximum ≤ 0 are unchanged."""
    spectra = np.asarray(spectra, dtype=np.float64)
    peak = spectra.max(axis=-1, keepdims=True)
    safe = np.where(peak > 0, peak, 1.0)
    return spectra / safe


def r2_variance_weighted(y: np.ndarray, p: np.ndarray) -> float:
    """Variance-weighted R² over grid points, identical to sklearn's ``multioutput="variance_weighted"``.

    ``1 − Σ_k Σ_i (y_ik − p_ik)² / Σ_k Σ_i (y_ik − ȳ_k)²`` summed over the grid points with non-zero
    reference variance. When every point is constant: 1.0 for a perfect prediction, else 0.0 (sklearn's
    ``force_finite``).
    """
    y, p = _pair(y, p)
    numerator = ((y - p) ** 2).sum(axis=0)
    denominator = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    varying = denominator > 0
    if not varying.any():
        return 1.0 if not numerator.any() else 0.0
    return float(1.0 - numerator[varying].sum() / denominator[varying].sum())


def _r2_about(y: np.ndarray, p: np.ndarray, centre: np.ndarray | float) -> float:
    """``1 − Σ (y − p)² / Σ (y − centre)²`` over every value; 1.0 or 0.0 when the reference equals ``centre``."""
    numerator = float(((y - p) ** 2).sum())
    denominator = float(((y - centre) ** 2).sum())
    if denominator == 0.0:
        return 1.0 if numerator == 0.0 else 0.0
    return 1.0 - numerator / denominator


def r2_pooled(y: np.ndarray, p: np.ndarray) -> float:
    """R² over all values of ``(n, n_grid)`` spectra pooled, as sklearn's ``r2_score(y.ravel(), p.ravel())``.

    ``1 − Σ_ik (y_ik − p_ik)² / Σ_ik (y_ik − ȳ)²`` with ``ȳ`` the mean of every value. When the reference is
    constant: 1.0 for a perfect prediction, else 0.0 (sklearn's ``force_finite``).
    """
    y, p = _pair(y, p)
    return _r2_about(y, p, y.mean())


def r2_per_spectrum(y: np.ndarray, p: np.ndarray) -> float:
    """R² against each spectrum's own mean: ``1 − Σ_ik (y_ik − p_ik)² / Σ_ik (y_ik − ȳ_i)²``.

    ``y``, ``p``: ``(n, n_grid)``. When every reference spectrum is flat: 1.0 for a perfect prediction,
    else 0.0.
    """
    y, p = _pair(y, p)
    return _r2_about(y, p, y.mean(axis=1, keepdims=True))


def wasserstein(y: np.ndarray, p: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Earth mover's distance W₁ of each spectrum pair: float64 ``(n,)`` in grid units.

    Both spectra are clipped at 0 and normalised to unit sum, i.e. read as point masses on the grid
    points (``grid``: ``(n_grid,)`` or per-spectrum ``(n, n_grid)``, ascending; bin indices when None).
    Then ``W₁ = Σ_k |CDF_y(k) − CDF_p(k)| (x_{k+1} − x_k)`` — the same as
    ``scipy.stats.wasserstein_distance(x, x, y, p)``. NaN where either spectrum has no positive mass.
    """
    y, p = _pair(y, p)
    x = _grid_for(grid, y.shape)
    y = np.clip(y, 0.0, None)
    p = np.clip(p, 0.0, None)
    mass_y = y.sum(axis=1, keepdims=True)
    mass_p = p.sum(axis=1, keepdims=True)
    defined = (mass_y[:, 0] > 0) & (mass_p[:, 0] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf_gap = np.cumsum(y / mass_y, axis=1) - np.cumsum(p / mass_p, axis=1)
    distance = np.abs(cdf_gap[:, :-1] * np.diff(x, axis=1)).sum(axis=1)
    return np.where(defined, distance, np.nan)


_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # noqa: NPY201 (numpy < 2.0 has only trapz)


def _area(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    return _trapezoid(values, grid, axis=-1)


def _normalized_dos(grid_cm: np.ndarray, dos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dos = np.asarray(dos, dtype=np.float64)
    grid = np.broadcast_to(np.asarray(grid_cm, dtype=np.float64), dos.shape)
    dos = np.clip(dos, 0.0, None)
    area = _area(grid, dos)
    return grid, dos, area


def heat_capacity(grid_cm: np.ndarray, dos: np.ndarray, temperature: float = 300.0) -> np.ndarray | float:
    """Harmonic heat capacity C_V per atom in units of k_B from a phonon DOS.

    Args:
        grid_cm: frequencies ω in cm⁻¹, ``(n_grid,)`` or ``(n, n_grid)``.
        dos: phonon DOS g(ω), ``(n_grid,)`` or ``(n, n_grid)``; any normalisation (negative values are
            clipped to 0). It is rescaled so that ``∫ g dω = 3`` (three modes per atom, trapezoid rule).
        temperature: T in K.

    Returns:
        ``C_V = ∫ g(ω) x² eˣ/(eˣ − 1)² dω`` with ``x = h c ω / (k_B T)`` (the integrand's limit at ω = 0 is
        g(0)); a float for one spectrum, float64 ``(n,)`` otherwise; NaN for a DOS of zero area. Tends to
        3 k_B (Dulong–Petit) at high T.
    """
    grid, dos, area = _normalized_dos(grid_cm, dos)
    x = HC_OVER_KB * grid / float(temperature)
    half = 0.5 * x
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # x² eˣ/(eˣ−1)² = (x/2 / sinh(x/2))², stable for large x; → 1 as x → 0.
        einstein = np.where(half == 0.0, 1.0, (half / np.sinh(np.where(half == 0.0, 1.0, half))) ** 2)
        value = 3.0 * _area(grid, dos * einstein) / area
    value = np.where(area > 0, value, np.nan)
    return float(value) if np.ndim(value) == 0 else value


def mean_frequency(grid_cm: np.ndarray, dos: np.ndarray) -> np.ndarray | float:
    """Mean phonon frequency ω̄ = ∫ ω g dω / ∫ g dω in cm⁻¹ (trapezoid rule; negative g clipped to 0).

    Shapes as :func:`heat_capacity`; NaN for a DOS of zero area.
    """
    grid, dos, area = _normalized_dos(grid_cm, dos)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = _area(grid, grid * dos) / area
    value = np.where(area > 0, value, np.nan)
    return float(value) if np.ndim(value) == 0 else value


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _scores(
    y: np.ndarray, p: np.ndarray, grid: np.ndarray | None, phonon: bool, temperature: float
) -> dict[str, float]:
    y_renorm, p_renorm = renormalize(y), renormalize(p)
    scores = {
        "mae": float(per_spectrum_mae(y, p).mean()),
        "mse": float(per_spectrum_mse(y, p).mean()),
        "mae_renorm": float(per_spectrum_mae(y_renorm, p_renorm).mean()),
        "mse_renorm": float(per_spectrum_mse(y_renorm, p_renorm).mean()),
        "r2": r2_variance_weighted(y, p),
        "r2_pooled": r2_pooled(y, p),
        "r2_pooled_renorm": r2_pooled(y_renorm, p_renorm),
        "r2_spectrum": r2_per_spectrum(y, p),
        "r2_spectrum_renorm": r2_per_spectrum(y_renorm, p_renorm),
        "wasserstein": _nanmean(wasserstein(y, p, grid)),
    }
    if phonon:
        cv_y = np.atleast_1d(heat_capacity(grid, y, temperature))
        cv_p = np.atleast_1d(heat_capacity(grid, p, temperature))
        omega_y = np.atleast_1d(mean_frequency(grid, y))
        omega_p = np.atleast_1d(mean_frequency(grid, p))
        scores["cv_mae"] = _nanmean(np.abs(cv_y - cv_p))
        scores["omega_mae"] = _nanmean(np.abs(omega_y - omega_p))
    return scores


def spectrum_metrics(
    y: np.ndarray,
    p: np.ndarray,
    *,
    grid: np.ndarray | None = None,
    kind: str | None = None,
    train_targets: np.ndarray | None = None,
    grid_unit: str | None = None,
    temperature: float = 300.0,
) -> dict[str, float]:
    """All scores of the module docstring as a flat ``{name: float}`` dict.

    Args:
        y, p: reference and predicted spectra ``(n, n_grid)`` in the same (unscaled) units.
        grid: ``(n_grid,)`` or per-structure ``(n, n_grid)`` grid; bin indices when None.
        kind: ``"phdos"`` adds ``cv_mae`` and ``omega_mae`` when the grid is in cm⁻¹.
        train_targets: ``(n_train, n_grid)``; adds ``baseline_<name>`` for the mean-training-spectrum model.
        grid_unit: unit of ``grid``; for ``kind="phdos"`` the derived properties are computed only when it
            is a cm⁻¹ unit or None (assumed cm⁻¹) and a grid is given.
        temperature: temperature of ``cv_mae`` in K.

    Also returns ``n_spectra``. NaN marks a score that is undefined (e.g. W₁ when every prediction is 0).
    """
    y, p = _pair(y, p)
    phonon = kind == "phdos" and grid is not None and (grid_unit is None or grid_unit in _CM_UNITS)
    if grid is not None:
        _grid_for(grid, y.shape)
    metrics = _scores(y, p, grid, phonon, temperature)
    if train_targets is not None:
        train = np.asarray(train_targets, dtype=np.float64)
        if train.ndim != 2 or train.shape[1] != y.shape[1]:
            raise ValueError(f"train_targets of shape {train.shape} do not match spectra of shape {y.shape}")
        baseline = np.broadcast_to(train.mean(axis=0), y.shape)
        for name, value in _scores(y, baseline, grid, phonon, temperature).items():
            metrics[f"baseline_{name}"] = value
    metrics["n_spectra"] = int(y.shape[0])
    return metrics


def calibration(
    targets: np.ndarray, mean: np.ndarray, std: np.ndarray, *, active: np.ndarray | None = None
) -> dict[str, float]:
    """How often the truth lies within ±1σ and ±2σ of an ensemble prediction.

    ``targets``, ``mean``, ``std``: ``(n, n_grid)`` in the target unit. Every grid point of every spectrum
    counts once. For Gaussian, well-calibrated errors the fractions are 0.683 and 0.954; smaller values
    mean the spread is over-confident. Also returns the mean σ (``std_mean``), the same two fractions over
    the *active* points only (``within_1sigma_active``, ``within_2sigma_active``: all but the points with
    σ = 0 and zero error, see :mod:`s2p_utils.uncertainty`) and their share (``active_fraction``).
    ``active``: boolean ``(n, n_grid)`` mask of the active points, to take them from the *raw* member
    spread when ``std`` is a calibrated one with a floor (which is never 0); default: from ``std``.
    """
    targets, mean, std = (np.asarray(a, dtype=np.float64) for a in (targets, mean, std))
    if not (targets.shape == mean.shape == std.shape):
        raise ValueError(f"shapes differ: targets {targets.shape}, mean {mean.shape}, std {std.shape}")
    error = np.abs(targets - mean)
    active = active_mask(targets, mean, std, active)
    within_1, within_2 = error <= std, error <= 2.0 * std
    scores = {
        "within_1sigma": float(np.mean(within_1)),
        "within_2sigma": float(np.mean(within_2)),
        "within_1sigma_active": float("nan"),
        "within_2sigma_active": float("nan"),
        "active_fraction": float(active.mean()) if active.size else float("nan"),
        "std_mean": float(std.mean()),
    }
    if active.any():
        scores["within_1sigma_active"] = float(np.mean(within_1[active]))
        scores["within_2sigma_active"] = float(np.mean(within_2[active]))
    return scores
