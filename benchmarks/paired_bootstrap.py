"""Is a lever's validation gain larger than the noise of 152 validation crystals? A paired bootstrap.

Reads the per-crystal prediction CSVs that ``levers.py`` runs write (``id,split,target,prediction``), keeps
the ``val`` rows, scores every crystal by its max-renormalised MSE (both spectra divided by their peaks,
:func:`s2p_utils.metrics.renormalize`, as ``mse_renorm`` is scored), averages each configuration over its seeds, and resamples the crystals (with
replacement) to give a 95 % interval for the mean difference *candidate − reference*. No test row is read::

    .venv/bin/python benchmarks/paired_bootstrap.py --reference lever_base lever_base_s1 lever_base_s2 \\
        --candidate lever_maxnorm lever_maxnorm_s1 lever_maxnorm_s2

``--metric wasserstein`` or ``--metric omega`` compares W₁ or the mean-frequency error |Δω̄| per crystal (cm⁻¹)
instead of the MSE. With ``--ensemble`` the runs of each side are averaged into one prediction first (members of one ensemble);
a name ending in ``.csv`` is read as a path, so a whole ensemble's own CSV can stand on one side::

    .venv/bin/python benchmarks/paired_bootstrap.py --ensemble --reference lever_maxnorm lever_maxnorm_s1 \\
        lever_maxnorm_s2 lever_maxnorm_s3 lever_maxnorm_s4 --candidate benchmarks/out/refit/predictions/crossfit5.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def validation_spectra(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids (n,), targets (n, n_grid), predictions (n, n_grid))`` of the validation rows of one predictions
    CSV, sorted by id; no other row is read into the result."""
    import pandas as pd

    frame = pd.read_csv(path)
    frame = frame[frame["split"] == "val"].sort_values("id")
    if frame.empty:
        raise ValueError(f"{path}: no validation rows")
    target = np.stack([json.loads(v) for v in frame["target"]])
    prediction = np.stack([json.loads(v) for v in frame["prediction"]])
    return frame["id"].to_numpy(), target, prediction


#: Per-crystal scores the bootstrap can compare (``--metric``), with their printed label and digits.
LABELS = {"mse": ("MSE (max-renorm.)", 4), "wasserstein": ("W₁ (cm⁻¹)", 2), "omega": ("ω̄ error (cm⁻¹)", 2)}
METRICS = tuple(LABELS)


def crystal_scores(
    target: np.ndarray, prediction: np.ndarray, metric: str = "mse", grid: np.ndarray | None = None
) -> np.ndarray:
    """One score per crystal, float64 ``(n,)``, of spectra ``(n, n_grid)``: ``"mse"`` the max-renormalised MSE
    (as ``mse_renorm`` is scored), ``"wasserstein"`` W₁ (cm⁻¹) and ``"omega"`` the mean-frequency error |Δω̄|
    (cm⁻¹); the last two need ``grid``, the frequencies (cm⁻¹) ``(n_grid,)``."""
    from s2p_utils.metrics import mean_frequency, per_spectrum_mse, renormalize, wasserstein

    if metric == "mse":
        return per_spectrum_mse(renormalize(target), renormalize(prediction))
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if grid is None:
        raise ValueError(f"metric {metric!r} needs the frequency grid")
    if metric == "wasserstein":
        return wasserstein(target, prediction, grid)
    return np.abs(
        np.atleast_1d(mean_frequency(grid, target)) - np.atleast_1d(mean_frequency(grid, prediction))
    )


def per_crystal_score(
    path: Path, metric: str = "mse", grid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, scores)`` of the validation rows of one predictions CSV (:func:`crystal_scores`)."""
    ids, target, prediction = validation_spectra(path)
    return ids, crystal_scores(target, prediction, metric, grid)


def seed_mean(
    paths: list[Path], metric: str = "mse", grid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-crystal scores averaged over the runs (seeds) in ``paths``; every run must cover the same crystals."""
    runs = [per_crystal_score(path, metric, grid) for path in paths]
    ids = runs[0][0]
    for path, (other, _) in zip(paths[1:], runs[1:], strict=True):
        if not np.array_equal(ids, other):
            raise ValueError(f"{path}: validation crystals differ from {paths[0]}")
    return ids, np.mean([scores for _, scores in runs], axis=0)


def ensemble_spectra(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids (n,), targets (n, n_grid), mean prediction (n, n_grid))`` of the validation rows of the runs in
    ``paths``, the members of one ensemble; every run must cover the same crystals."""
    ids, target, first = validation_spectra(paths[0])
    predictions = [first]
    for path in paths[1:]:
        other, _, prediction = validation_spectra(path)
        if not np.array_equal(ids, other):
            raise ValueError(f"{path}: validation crystals differ from {paths[0]}")
        predictions.append(prediction)
    return ids, target, np.mean(predictions, axis=0)


def ensemble_score(
    paths: list[Path], metric: str = "mse", grid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-crystal scores (:func:`crystal_scores`) of the *mean prediction* of the runs in ``paths`` (the runs
    are the members of one ensemble, not seeds of one configuration)."""
    ids, target, prediction = ensemble_spectra(paths)
    return ids, crystal_scores(target, prediction, metric, grid)


def run_csv(folder: Path, name: str) -> Path:
    """The predictions CSV of run ``name`` in ``folder``, or ``name`` itself when it is a ``.csv`` path."""
    return Path(name) if name.endswith(".csv") else folder / f"{name}.csv"


def paired_interval(difference: np.ndarray, *, resamples: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of ``difference.mean()`` (``difference``: per-crystal, ``(n,)``)."""
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), (resamples, len(difference)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", nargs="+", required=True, help="run names (one per seed)")
    parser.add_argument("--candidate", nargs="+", required=True, help="run names (one per seed)")
    parser.add_argument("--predictions", default="benchmarks/out/levers/predictions")
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="the runs of each side are the members of one ensemble: score their mean prediction",
    )
    parser.add_argument("--metric", choices=METRICS, default="mse", help="the per-crystal score compared")
    parser.add_argument("--preset", default="e3nn_phdos_mass", help="whose dataset gives the grid (W₁, ω̄)")
    args = parser.parse_args()
    folder = Path(args.predictions)
    grid = None
    if args.metric != "mse":
        from s2p_utils.config import get_preset
        from s2p_utils.data import load

        grid = np.asarray(load(get_preset(args.preset).dataset, progress=False).grid, dtype=np.float64)
    score = ensemble_score if args.ensemble else seed_mean
    ids, reference = score([run_csv(folder, name) for name in args.reference], args.metric, grid)
    other, candidate = score([run_csv(folder, name) for name in args.candidate], args.metric, grid)
    if not np.array_equal(ids, other):
        raise SystemExit("the two configurations were scored on different validation crystals")
    difference = candidate - reference
    low, high = paired_interval(difference)
    label, digits = LABELS[args.metric]
    print(
        f"{len(ids)} validation crystals; {label} reference {reference.mean():.{digits}f}, candidate "
        f"{candidate.mean():.{digits}f}; difference {difference.mean():+.{digits}f}, 95 % interval "
        f"{low:+.{digits}f} … {high:+.{digits}f}; candidate better on {np.mean(difference < 0):.0%} of the crystals"
    )


if __name__ == "__main__":
    main()
