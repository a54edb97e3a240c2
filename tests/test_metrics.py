"""Metrics against values computed by hand or by an independent method (scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from s2p_utils import metrics

HC_KB = 1.438777  # cm·K (CODATA h c / k_B = 1.438776877 cm K)


def test_per_spectrum_errors_by_hand():
    y = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    p = np.array([[0.0, 0.0, 0.0, 0.0], [2.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(metrics.per_spectrum_mae(y, p), [6 / 4, 1 / 4])
    np.testing.assert_allclose(metrics.per_spectrum_mse(y, p), [14 / 4, 1 / 4])
    scores = metrics.spectrum_metrics(y, p)
    assert scores["mae"] == pytest.approx((1.5 + 0.25) / 2)
    assert scores["mse"] == pytest.approx((3.5 + 0.25) / 2)
    assert scores["n_spectra"] == 2


def test_renormalised_errors_by_hand():
    y = np.array([[0.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
    p = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])  # an all-zero prediction stays zero
    # renormalised: y → [0, .5, 1], [1, 1, 1]; p → [0, 1, 1], [0, 0, 0]
    scores = metrics.spectrum_metrics(y, p)
    assert scores["mae_renorm"] == pytest.approx((0.5 / 3 + 1.0) / 2)
    assert scores["mse_renorm"] == pytest.approx((0.25 / 3 + 1.0) / 2)
    np.testing.assert_array_equal(metrics.renormalize(p)[1], 0.0)


def test_r2_variance_weighted_by_hand():
    y = np.array([[1.0, 2.0], [3.0, 6.0]])
    p = np.array([[1.0, 3.0], [3.0, 5.0]])
    # column means 2, 4; Σ(y-ȳ)² = 2 + 8; Σ(y-p)² = 0 + 2  →  1 - 2/10
    assert metrics.r2_variance_weighted(y, p) == pytest.approx(0.8)
    assert metrics.r2_variance_weighted(y, y) == pytest.approx(1.0)
    # a constant reference column carries no weight (sklearn's variance_weighted)
    y_const = np.array([[1.0, 0.0], [3.0, 0.0]])
    p_const = np.array([[2.0, 5.0], [2.0, 5.0]])
    assert metrics.r2_variance_weighted(y_const, p_const) == pytest.approx(0.0)
    assert metrics.r2_variance_weighted(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert metrics.r2_variance_weighted(np.zeros((2, 2)), np.ones((2, 2))) == 0.0


def test_wasserstein_of_shifted_deltas_is_the_shift():
    grid = np.arange(51) * 20.0
    y = np.zeros((1, 51))
    p = np.zeros((1, 51))
    y[0, 2], p[0, 5] = 1.0, 0.3  # mass does not matter
    assert metrics.wasserstein(y, p, grid)[0] == pytest.approx(60.0)
    assert metrics.wasserstein(y, p)[0] == pytest.approx(3.0)  # bin units without a grid


def test_wasserstein_matches_scipy_on_random_spectra():
    rng = np.random.default_rng(1)
    grid = np.sort(rng.uniform(-4, 4, 40))  # non-uniform grid
    y = rng.random((6, 40))
    p = rng.random((6, 40))
    expected = [stats.wasserstein_distance(grid, grid, y[i], p[i]) for i in range(6)]
    np.testing.assert_allclose(metrics.wasserstein(y, p, grid), expected, rtol=1e-10)
    per_structure = np.stack([grid + i for i in range(6)])
    np.testing.assert_allclose(metrics.wasserstein(y, p, per_structure), expected, rtol=1e-10)
    assert np.isnan(metrics.wasserstein(y[:1], np.zeros((1, 40)), grid)[0])


def _einstein(x: float) -> float:
    return x**2 * np.exp(x) / (np.exp(x) - 1.0) ** 2


@pytest.mark.parametrize("omega, temperature", [(200.0, 300.0), (600.0, 300.0), (60.0, 50.0)])
def test_heat_capacity_of_single_peak_is_einstein(omega, temperature):
    grid = np.arange(51) * 20.0
    dos = np.zeros(51)
    dos[int(omega // 20)] = 7.0  # arbitrary height: the DOS is renormalised to 3 modes
    expected = 3 * _einstein(HC_KB * omega / temperature)
    assert metrics.heat_capacity(grid, dos, temperature) == pytest.approx(expected, rel=1e-6)


def test_heat_capacity_limits():
    grid = np.linspace(0, 1000, 51)
    dos = grid**2 * np.exp(-((grid - 400) ** 2) / 2e4)  # no weight at ω = 0
    assert metrics.heat_capacity(grid, dos, temperature=1e7) == pytest.approx(3.0, rel=1e-6)  # Dulong–Petit
    assert metrics.heat_capacity(grid, dos, temperature=1.0) < 1e-8
    zero_mode = np.zeros(51)
    zero_mode[0] = 1.0  # all weight at ω = 0: the classical limit 3 k_B
    assert metrics.heat_capacity(grid, zero_mode) == pytest.approx(3.0)


def test_heat_capacity_of_flat_dos_matches_quadrature():
    omega_max, temperature = 800.0, 300.0
    grid = np.linspace(0, omega_max, 4001)
    expected = 3 / omega_max * integrate.quad(lambda w: _einstein(HC_KB * w / temperature), 0, omega_max)[0]
    batch = np.ones((2, grid.size))
    np.testing.assert_allclose(metrics.heat_capacity(grid, batch, temperature), expected, rtol=1e-6)


def test_mean_frequency():
    grid = np.linspace(0, 1000, 101)
    assert metrics.mean_frequency(grid, np.ones(101)) == pytest.approx(500.0)
    peak = np.exp(-((grid - 300) ** 2) / 800)
    assert metrics.mean_frequency(grid, 5 * peak) == pytest.approx(300.0, rel=1e-9)
    assert np.isnan(metrics.mean_frequency(grid, np.zeros(101)))


def test_spectrum_metrics_baseline_by_hand():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    train = np.array([[0.0, 2.0], [2.0, 2.0]])  # mean spectrum [1, 2]
    scores = metrics.spectrum_metrics(y, y, train_targets=train)
    assert scores["mae"] == 0.0 and scores["r2"] == 1.0
    assert scores["baseline_mae"] == pytest.approx((0 + 2) / 2)
    assert scores["baseline_mse"] == pytest.approx((0 + 4) / 2)
    # Σ(y-base)² = 4 + 4, Σ(y-ȳ)² = 2 + 2
    assert scores["baseline_r2"] == pytest.approx(1 - 8 / 4)


def test_phonon_keys_only_for_phonon_dos_in_wavenumbers():
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1000, 51)
    y, p = rng.random((4, 51)), rng.random((4, 51))
    phonon = metrics.spectrum_metrics(y, p, grid=grid, kind="phdos", train_targets=y)
    expected_cv = np.mean(np.abs(metrics.heat_capacity(grid, y) - metrics.heat_capacity(grid, p)))
    assert phonon["cv_mae"] == pytest.approx(expected_cv)
    assert {"omega_mae", "baseline_cv_mae", "baseline_omega_mae", "baseline_wasserstein"} <= set(phonon)
    assert all(isinstance(v, float | int) for v in phonon.values())
    assert "cv_mae" not in metrics.spectrum_metrics(y, p, grid=grid, kind="edos")
    assert "cv_mae" not in metrics.spectrum_metrics(y, p, grid=grid, kind="phdos", grid_unit="bin")


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="shape"):
        metrics.spectrum_metrics(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="finite"):
        metrics.spectrum_metrics(np.zeros((2, 3)), np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="grid"):
        metrics.spectrum_metrics(np.zeros((2, 3)), np.zeros((2, 3)), grid=np.arange(4))


def test_calibration_fractions_by_hand():
    from s2p_utils.metrics import calibration

    targets = np.array([[0.0, 1.0, 2.0, 3.0]])
    mean = np.array([[0.5, 1.0, 0.0, 3.0]])  # errors 0.5, 0, 2, 0
    std = np.array([[1.0, 0.1, 0.5, 0.2]])  # within 1σ: yes, yes, no, yes; within 2σ: same
    result = calibration(targets, mean, std)
    assert result["within_1sigma"] == 0.75 and result["within_2sigma"] == 0.75
    assert result["std_mean"] == pytest.approx(0.45)
    wider = calibration(targets, mean, std * 2.1)  # 2 ≤ 2·2.1·0.5 → the third point enters at 2σ
    assert wider["within_2sigma"] == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        calibration(targets, mean, std[:, :2])


def test_pooled_r2_by_hand_and_against_variance_weighted():
    y = np.array([[0.0, 1.0], [0.0, 3.0]])
    p = np.array([[0.0, 2.0], [0.0, 2.0]])
    # pooled: Σ(y−p)² = 2, grand mean 1, Σ(y−1)² = 1 + 0 + 1 + 4 = 6
    assert metrics.r2_pooled(y, p) == pytest.approx(1 - 2 / 6)
    # variance-weighted: column 0 is constant (weight 0); column 1: Σ(y−2)² = 2
    assert metrics.r2_variance_weighted(y, p) == pytest.approx(1 - 2 / 2)
    assert metrics.r2_pooled(y, y) == 1.0
    assert metrics.r2_pooled(np.ones((2, 2)), np.zeros((2, 2))) == 0.0
    # per spectrum: means 0.5 and 1.5 → Σ(y − ȳ_i)² = 0.25·2 + 2.25·2 = 5
    assert metrics.r2_per_spectrum(y, p) == pytest.approx(1 - 2 / 5)
    assert metrics.r2_per_spectrum(np.ones((2, 2)), np.ones((2, 2))) == 1.0


def test_three_r2_definitions_in_spectrum_metrics():
    rng = np.random.default_rng(3)
    y = rng.random((6, 51))
    p = 0.7 * y + 0.1 * rng.random((6, 51))
    scores = metrics.spectrum_metrics(y, p)
    y_renorm = metrics.renormalize(y)
    # 1 − MSE / Var(all values) pooled; 1 − MSE / mean within-spectrum variance per spectrum
    assert scores["r2_pooled_renorm"] == pytest.approx(1 - scores["mse_renorm"] / y_renorm.var(), rel=1e-9)
    assert scores["r2_pooled"] == pytest.approx(1 - scores["mse"] / y.var(), rel=1e-9)
    assert scores["r2_pooled"] > scores["r2"]
    within = ((y - y.mean(axis=1, keepdims=True)) ** 2).mean()
    assert scores["r2_spectrum"] == pytest.approx(1 - scores["mse"] / within, rel=1e-9)
    assert "r2_spectrum_renorm" in scores
