"""Mat2Spec's Table 1 columns for the phonon-DOS benchmarks, in one place.

Kong et al. (Nat. Commun. 13, 949 (2022), Table 1) score phonon DOS on Chen's test list after re-scaling
every prediction to maximum 1 ("MaxNorm"): MAE, MSE and R², plus the scale-free Wasserstein distance and
mean-frequency error. ``COLUMNS`` lists them with the key of :func:`s2p_utils.metrics.spectrum_metrics`,
leading with the definition-free ``mse_renorm``. :func:`part_scores` re-scores one part of a run's
predictions CSV, e.g. the validation part (the set that was labelled ``test`` before 2026-12-01).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLUMNS: list[tuple[str, str]] = [
    ("mse_renorm", "MSE (max-renorm.)"),
    ("mae_renorm", "MAE (max-renorm.)"),
    ("r2_pooled_renorm", "R² pooled (max-renorm.)"),
    ("r2_spectrum_renorm", "R² per-spectrum (max-renorm.)"),
    ("r2", "R² var.-weighted (raw)"),
    ("wasserstein", "W₁ (cm⁻¹)"),
    ("omega_mae", "ω̄ MAE (cm⁻¹)"),
    ("cv_mae", "C_V(300 K) MAE (k_B)"),
    ("mae", "MAE (raw)"),
]


#: The e3nn phonon-DOS grid: 51 points on 0–1000 cm⁻¹.
E3NN_GRID = np.linspace(0.0, 1000.0, 51)


def part_scores(predictions_csv: str | Path, part: str, grid: np.ndarray = E3NN_GRID) -> dict[str, float]:
    """Every score of ``spectrum_metrics`` on the rows of ``part`` in a run's predictions CSV.

    ``grid``: the ``(n_grid,)`` frequency grid in cm⁻¹. The train-mean baseline uses the CSV's train rows.
    """
    from s2p_utils.metrics import spectrum_metrics
    from s2p_utils.results import read_predictions

    frame = read_predictions(predictions_csv)
    rows, train = frame[frame["split"] == part], frame[frame["split"] == "train"]
    if rows.empty:
        raise ValueError(f"{predictions_csv}: no rows of part {part!r}")
    return spectrum_metrics(
        np.stack(rows["target"]),
        np.stack(rows["prediction"]),
        grid=grid,
        kind="phdos",
        grid_unit="cm^-1",
        train_targets=np.stack(train["target"]),
    )


def cells(metrics: dict[str, float], prefix: str = "") -> list[str]:
    """The Table 1 cells of one metrics dict (``prefix="baseline_"`` for the train-mean baseline)."""
    out = []
    for key, _ in COLUMNS:
        value = float(metrics.get(prefix + key, float("nan")))
        out.append(
            "–"
            if not np.isfinite(value)
            else f"{value:.1f}"
            if key in ("wasserstein", "omega_mae")
            else f"{value:.4f}"
        )
    return out


def header(first: str = "run", extra: tuple[str, ...] = ()) -> list[str]:
    """The markdown header and rule of a Table 1 table, with ``extra`` columns after the Table 1 ones."""
    labels = [first, *(label for _, label in COLUMNS), *extra]
    return ["| " + " | ".join(labels) + " |", "|" + "---|" * len(labels)]
