"""``benchmarks/paired_bootstrap.py``: per-crystal max-renormalised MSE from prediction CSVs, seed means and
the paired bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest


def test_per_crystal_mse_renormalises_and_keeps_validation_rows_only(tmp_path, benchmark_script, lever_csv):
    module = benchmark_script("paired_bootstrap")
    path = lever_csv(tmp_path / "run.csv", [[0.0, 0.5, 0.25], [2.0, 2.0, 0.0], [5.0, 0.0, 0.0]])
    ids, mse = module.per_crystal_score(path)
    assert ids.tolist() == ["a", "b"]  # sorted, the test row dropped
    # "b" is the target at half height: 0 after renormalisation; "a" predicts [1, 1, 0] for [1, 0, 0]
    np.testing.assert_allclose(mse, [1 / 3, 0.0], atol=1e-12)
    other = lever_csv(
        tmp_path / "other.csv", [[0.0, 1.0, 0.5], [1.0, 0.0, 0.0], [0, 0, 1]], ("val", "test", "val")
    )
    with pytest.raises(ValueError, match="differ"):
        module.seed_mean([path, other])


def test_paired_interval_brackets_the_mean_and_excludes_zero_for_a_clear_gain(benchmark_script):
    module = benchmark_script("paired_bootstrap")
    rng = np.random.default_rng(1)
    clear = -0.01 + 0.001 * rng.standard_normal(150)
    low, high = module.paired_interval(clear)
    assert low < clear.mean() < high < 0
    noise = 0.01 * rng.standard_normal(150)
    low, high = module.paired_interval(noise)
    assert low < 0 < high


def test_ensemble_mse_scores_the_mean_prediction_not_the_mean_of_member_scores(
    tmp_path, benchmark_script, lever_csv
):
    module = benchmark_script("paired_bootstrap")
    # members of "a" (target [1, 0, 0]) predict [1, 1, 0] and [1, -1, 0]: each has MSE 1/3, their mean is exact
    one = lever_csv(tmp_path / "one.csv", [[0.0, 1.0, 0.5], [1.0, 1.0, 0.0], [0, 0, 1]])
    two = lever_csv(tmp_path / "two.csv", [[0.0, 1.0, 0.5], [1.0, -1.0, 0.0], [0, 0, 1]])
    ids, mse = module.ensemble_score([one, two])
    assert ids.tolist() == ["a", "b"]
    np.testing.assert_allclose(mse, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(module.seed_mean([one, two])[1], [1 / 3, 0.0], atol=1e-12)
    assert module.run_csv(tmp_path, "one") == tmp_path / "one.csv"
    assert module.run_csv(tmp_path, "x/ensemble.csv") == tmp_path.__class__("x/ensemble.csv")


def test_crystal_scores_give_w1_and_the_mean_frequency_error_on_the_grid(benchmark_script):
    module = benchmark_script("paired_bootstrap")
    grid = np.array([0.0, 100.0, 200.0])
    target = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    prediction = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])  # each moved up one grid step
    np.testing.assert_allclose(module.crystal_scores(target, prediction, "wasserstein", grid), [100.0, 100.0])
    np.testing.assert_allclose(
        module.crystal_scores(target, prediction, "omega", grid), [100.0, 100.0], rtol=1e-6
    )
    with pytest.raises(ValueError, match="needs the frequency grid"):
        module.crystal_scores(target, prediction, "omega")
    with pytest.raises(ValueError, match="unknown metric"):
        module.crystal_scores(target, prediction, "r2", grid)
