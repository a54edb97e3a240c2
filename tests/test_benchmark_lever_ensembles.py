"""``benchmarks/lever_ensembles.py``: the mean validation prediction of several lever runs, scored."""

from __future__ import annotations

import numpy as np
import pytest


def test_ensemble_scores_average_the_runs_on_validation_rows_only(tmp_path, benchmark_script, lever_csv):
    from s2p_utils.metrics import spectrum_metrics

    module = benchmark_script("lever_ensembles")
    grid = np.array([100.0, 200.0, 300.0])
    first = lever_csv(tmp_path / "one.csv", [[0.0, 0.5, 0.5], [1.0, 0.5, 0.0], [9.0, 9.0, 9.0]])
    second = lever_csv(tmp_path / "two.csv", [[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 9.0, 0.0]])
    scores = module.ensemble_scores([first, second], grid)
    mean = [[0.75, 0.25, 0.25], [0.0, 0.75, 0.25]]  # rows "a", "b": the test row "c" is never averaged
    expected = spectrum_metrics([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]], mean, grid=grid, kind="phdos")
    for key in ("mse_renorm", "mae", "wasserstein", "omega_mae"):
        assert scores[key] == pytest.approx(expected[key], rel=1e-9)
    assert scores["n_spectra"] == 2
    shifted = lever_csv(tmp_path / "three.csv", [[0, 1, 0], [1, 0, 0], [0, 0, 1]], ("val", "test", "val"))
    with pytest.raises(ValueError, match="differ"):
        module.ensemble_scores([first, shifted], grid)
