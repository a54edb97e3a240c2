"""Ensembles of lever runs, scored on the chen2021 *validation* part only: do unlike members help?

Averages the validation predictions of the named ``levers.py`` runs (their per-crystal CSVs; no test row is
read) and scores the mean spectrum on the Table 1 columns. Each argument is one ensemble, its runs joined by
``+``: three seeds of one configuration against three seeds of two configurations mixed, say::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/lever_ensembles.py \\
        lever_maxnorm+lever_maxnorm_s1+lever_maxnorm_s2 \\
        lever_maxnorm+lever_maxnorm_s1+lever_maxnorm_s2+lever_period+lever_period_s1+lever_period_s2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_bootstrap import ensemble_spectra  # noqa: E402  (a sibling script, not a package)

COLUMNS = (("mse_renorm", 4), ("mae_renorm", 4), ("mae", 4), ("wasserstein", 1), ("omega_mae", 1))


def ensemble_scores(paths: list[Path], grid: np.ndarray) -> dict[str, float]:
    """Phonon scores of the mean prediction of the runs in ``paths`` on their validation crystals
    (``grid``: cm⁻¹ ``(n_grid,)``); every run must cover the same crystals."""
    from s2p_utils.metrics import spectrum_metrics

    _, targets, prediction = ensemble_spectra(paths)
    return spectrum_metrics(targets, prediction, grid=grid, kind="phdos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ensembles", nargs="+", help="run names joined by '+', one ensemble per argument")
    parser.add_argument("--predictions", default="benchmarks/out/levers/predictions")
    parser.add_argument("--preset", default="e3nn_phdos_mass", help="whose dataset gives the grid")
    args = parser.parse_args()
    from s2p_utils.config import get_preset
    from s2p_utils.data import load

    grid = np.asarray(load(get_preset(args.preset).dataset, progress=False).grid, dtype=np.float64)
    print("| members | runs | MSE (max-renorm.) | MAE (max-renorm.) | MAE (raw) | W₁ (cm⁻¹) | ω̄ MAE (cm⁻¹) |")
    print("|---|---|---|---|---|---|---|")
    for ensemble in args.ensembles:
        names = ensemble.split("+")
        scores = ensemble_scores([Path(args.predictions) / f"{name}.csv" for name in names], grid)
        cells = " | ".join(f"{scores[key]:.{digits}f}" for key, digits in COLUMNS)
        print(f"| {len(names)} | {' + '.join(names)} | {cells} |")


if __name__ == "__main__":
    main()
