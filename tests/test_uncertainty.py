"""Ensemble spread calibration: the fitted factor, coverage curves, the calibration file, and the figure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from s2p_utils import metrics, uncertainty


def _gaussian_case(true_scale: float, n: int = 200, k: int = 50, seed: int = 0):
    """Targets whose errors are Gaussian with standard deviation ``true_scale × σ``."""
    rng = np.random.default_rng(seed)
    std = rng.uniform(0.05, 0.3, (n, k))
    mean = rng.uniform(0.0, 1.0, (n, k))
    targets = mean + true_scale * std * rng.standard_normal((n, k))
    return targets, mean, std


@pytest.mark.parametrize("true_scale", [0.5, 1.0, 3.0])
def test_fit_recovers_the_scale_of_gaussian_errors(true_scale):
    targets, mean, std = _gaussian_case(true_scale)
    fitted = uncertainty.fit_std_scale(targets, mean, std)
    assert fitted == pytest.approx(true_scale, rel=0.05)
    covered = np.mean(np.abs(targets - mean) <= fitted * std)
    assert covered == pytest.approx(uncertainty.GAUSSIAN_1SIGMA, abs=1e-3)


def test_exact_zero_points_are_left_out_of_the_fit():
    targets, mean, std = _gaussian_case(2.0)
    # as many again "zero-DOS bins": target 0, every member 0 (σ = 0, error 0)
    zeros = np.zeros_like(targets)
    padded = [np.concatenate([a, zeros], axis=1) for a in (targets, mean, std)]
    active = uncertainty.fit_std_scale(*padded)
    everything = uncertainty.fit_std_scale(*padded, active_only=False)
    assert active == pytest.approx(uncertainty.fit_std_scale(targets, mean, std), rel=1e-12)
    assert everything < 0.5 * active  # half the points covered for free: a far too narrow band
    mask = uncertainty.active_points(*padded)
    assert mask.mean() == pytest.approx(0.5)


def test_fit_refuses_impossible_or_bad_input():
    targets = np.ones((2, 3))
    with pytest.raises(ValueError, match="no finite scale"):
        uncertainty.fit_std_scale(targets, np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shapes differ"):
        uncertainty.fit_std_scale(targets, np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="coverage"):
        uncertainty.fit_std_scale(targets, np.zeros((2, 3)), np.ones((2, 3)), coverage=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        uncertainty.fit_std_scale(targets, np.zeros((2, 3)), -np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        uncertainty.fit_std_scale(targets, np.full((2, 3), np.nan), np.ones((2, 3)))


def test_coverage_curve_is_diagonal_for_calibrated_and_below_for_overconfident():
    targets, mean, std = _gaussian_case(1.0, n=400)
    levels, observed = uncertainty.coverage_curve(targets, mean, std)
    np.testing.assert_allclose(observed, levels, atol=0.02)
    _, overconfident = uncertainty.coverage_curve(targets, mean, std / 2)
    assert (overconfident < levels).all() and (levels - overconfident).max() > 0.2


def test_calibration_scores_all_and_active_points():
    targets = np.array([[0.0, 0.0, 1.0, 1.0]])
    mean = np.array([[0.0, 0.0, 0.9, 0.5]])
    std = np.array([[0.0, 0.0, 0.2, 0.2]])
    scores = metrics.calibration(targets, mean, std)
    assert scores["within_1sigma"] == pytest.approx(3 / 4)
    assert scores["within_1sigma_active"] == pytest.approx(1 / 2)
    assert scores["within_2sigma_active"] == pytest.approx(1 / 2)
    assert scores["active_fraction"] == pytest.approx(1 / 2)
    # a floored σ is never 0: the active points then come from the raw spread's mask
    floored = uncertainty.calibrated_std(std, 1.0, 0.05)
    naive = metrics.calibration(targets, mean, floored)
    assert naive["active_fraction"] == 1.0
    masked = metrics.calibration(targets, mean, floored, active=uncertainty.active_points(targets, mean, std))
    assert masked["active_fraction"] == pytest.approx(1 / 2)
    assert masked["within_1sigma_active"] == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="active mask"):
        metrics.calibration(targets, mean, floored, active=np.ones((1, 3), dtype=bool))
    levels, observed = uncertainty.coverage_curve(
        targets, mean, floored, [0.5], active=uncertainty.active_points(targets, mean, std)
    )
    assert observed[0] == pytest.approx(1 / 2)  # 0.9 ± 0.67·0.206 covers 1.0; 0.5 is not covered


def test_calibration_file_round_trip_and_errors(tmp_path):
    assert uncertainty.read_calibration(tmp_path) is None
    path = uncertainty.write_calibration(
        tmp_path, uncertainty.Calibration(2.5, 0.1, 2), fitted_on="validation"
    )
    assert json.loads(path.read_text())["fitted_on"] == "validation"
    assert uncertainty.read_calibration(tmp_path) == (2.5, 0.1, 2)
    uncertainty.write_calibration(tmp_path, uncertainty.Calibration(2.5, 0.1, None))  # floor everywhere
    assert uncertainty.read_calibration(tmp_path).floor_margin is None
    path.write_text('{"std_scale": 3.0}')  # a record without a floor (one-factor calibration)
    assert uncertainty.read_calibration(tmp_path) == (3.0, 0.0, uncertainty.FLOOR_MARGIN)
    path.write_text('{"std_scale": 1, "floor_margin": 1.5}')
    with pytest.raises(ValueError, match="floor_margin"):
        uncertainty.read_calibration(tmp_path)
    path.write_text('{"std_scale": "abc"}')
    with pytest.raises(ValueError, match="calibration.json"):
        uncertainty.read_calibration(tmp_path)
    path.write_text('{"std_scale": -1}')
    with pytest.raises(ValueError, match="positive"):
        uncertainty.read_calibration(tmp_path)
    path.write_text('{"std_scale": 1, "std_floor": -0.5}')
    with pytest.raises(ValueError, match="std_floor"):
        uncertainty.read_calibration(tmp_path)
    with pytest.raises(ValueError, match="positive"):
        uncertainty.write_calibration(tmp_path, uncertainty.Calibration(float("nan")))
    with pytest.raises(ValueError, match="std_floor"):
        uncertainty.write_calibration(tmp_path, uncertainty.Calibration(1.0, float("inf")))


def _floor_case(scale: float, floor: float, n: int = 400, k: int = 50, seed: int = 1):
    """Gaussian errors with standard deviation √((scale·σ)² + floor²); a tenth of the points have σ = 0."""
    rng = np.random.default_rng(seed)
    std = rng.uniform(0.02, 0.3, (n, k))
    std[rng.random((n, k)) < 0.1] = 0.0
    mean = rng.uniform(0.0, 1.0, (n, k))
    targets = mean + np.sqrt((scale * std) ** 2 + floor**2) * rng.standard_normal((n, k))
    return targets, mean, std


def test_two_parameter_fit_recovers_scale_and_floor():
    targets, mean, std = _floor_case(2.0, 0.1)
    scale, floor = uncertainty.fit_std_calibration(targets, mean, std)
    # two coverages pin the pair down only loosely (trading scale against floor moves ±2σ little)
    assert scale == pytest.approx(2.0, rel=0.15) and 0.05 < floor < 0.15
    calibrated = uncertainty.calibrated_std(std, scale, floor)
    error = np.abs(targets - mean)
    assert np.mean(error <= calibrated) == pytest.approx(uncertainty.GAUSSIAN_1SIGMA, abs=2e-3)
    assert np.mean(error <= 2 * calibrated) == pytest.approx(uncertainty.GAUSSIAN_2SIGMA, abs=4e-3)
    # one factor alone cannot cover the σ = 0 points: ±2σ falls short where the pair does not
    one = uncertainty.fit_std_scale(targets, mean, std)
    assert np.mean(error <= 2 * one * std) < uncertainty.GAUSSIAN_2SIGMA - 0.03


def test_two_parameter_fit_keeps_no_floor_for_pure_scale_errors():
    targets, mean, std = _gaussian_case(3.0, n=400)
    scale, floor = uncertainty.fit_std_calibration(targets, mean, std)
    assert floor == 0.0 and scale == pytest.approx(uncertainty.fit_std_scale(targets, mean, std))


def test_two_parameter_fit_refuses_bad_coverages_and_input():
    targets, mean, std = _gaussian_case(1.0)
    with pytest.raises(ValueError, match="coverages"):
        uncertainty.fit_std_calibration(targets, mean, std, coverages=(0.9, 0.5))
    with pytest.raises(ValueError, match="shapes differ"):
        uncertainty.fit_std_calibration(targets, mean[:, :3], std)
    with pytest.raises(ValueError, match="no active points"):
        zeros = np.zeros((2, 3))
        uncertainty.fit_std_calibration(zeros, zeros, zeros)


def test_floor_support_widens_the_predicted_spectrum_by_the_margin():
    mean = np.array([[0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]])
    std = np.array([[0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(uncertainty.floor_support(mean, std, 0)[0], [0, 0, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(uncertainty.floor_support(mean, std, 2)[0], [1, 1, 1, 1, 1, 1, 0, 0])
    assert uncertainty.floor_support(mean, std, None).all()
    # rows are independent spectra: the margin never reaches into the next one
    two = uncertainty.floor_support(np.vstack([mean, np.zeros_like(mean)]), np.vstack([std, 0 * std]), 2)
    assert not two[1].any()
    with pytest.raises(ValueError, match="margin"):
        uncertainty.floor_support(mean, std, -1)
    # off the support the floor does not apply: σ stays scale·σ (0 where every member predicts 0)
    calibrated = uncertainty.calibrated_std(std, 2.0, 0.1, uncertainty.floor_support(mean, std, 2))
    np.testing.assert_allclose(calibrated[0], [0.1, 0.1, 0.1, np.sqrt(0.05), 0.1, 0.1, 0.0, 0.0])
    # a calibration record applies exactly that
    np.testing.assert_allclose(uncertainty.Calibration(2.0, 0.1, 2).apply(mean, std), calibrated)
    np.testing.assert_allclose(uncertainty.Calibration(2.0, 0.1, None).apply(mean, std)[0, -1], 0.1)


def test_fit_with_a_support_leaves_the_floor_off_elsewhere():
    targets, mean, std = _floor_case(2.0, 0.1)
    nowhere = np.zeros(targets.shape, dtype=bool)
    # a floor that applies nowhere changes nothing: the fit falls back to the one-factor scale
    scale, floor = uncertainty.fit_std_calibration(targets, mean, std, support=nowhere)
    assert floor == 0.0 and scale == pytest.approx(uncertainty.fit_std_scale(targets, mean, std))
    # on half the rows only: a floor is still needed, and the σ = 0 points off the support stay uncovered
    half = nowhere.copy()
    half[: len(half) // 2] = True
    scale, floor = uncertainty.fit_std_calibration(targets, mean, std, support=half)
    calibrated = uncertainty.calibrated_std(std, scale, floor, half)
    error = np.abs(targets - mean)
    assert floor > 0.05
    assert not (error <= calibrated)[~half & (std == 0) & (error > 0)].any()
    with pytest.raises(ValueError, match="support"):
        uncertainty.fit_std_calibration(targets, mean, std, support=half[:, :3])


def test_calibrated_std_form():
    std = np.array([[0.0, 0.3, 0.4]])
    np.testing.assert_allclose(uncertainty.calibrated_std(std, 2.0), [[0.0, 0.6, 0.8]])
    np.testing.assert_allclose(uncertainty.calibrated_std(std, 1.0, 0.3), [[0.3, np.sqrt(0.18), 0.5]])


def test_calibration_figure(tmp_path):
    from s2p_utils.plots import calibration_curve

    levels = np.array([0.25, 0.5, 0.75])
    figure = calibration_curve(levels, {"raw": [0.1, 0.3, 0.5]}, path=tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    assert len(figure.axes[0].lines) == 2  # ideal + one curve
    with pytest.raises(ValueError, match="coverages"):
        calibration_curve(levels, {"raw": [0.1, 0.3]})
