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


def test_calibration_file_round_trip_and_errors(tmp_path):
    assert uncertainty.read_std_scale(tmp_path) is None
    path = uncertainty.write_calibration(tmp_path, 2.5, fitted_on="validation")
    assert json.loads(path.read_text())["fitted_on"] == "validation"
    assert uncertainty.read_std_scale(tmp_path) == 2.5
    path.write_text('{"std_scale": "abc"}')
    with pytest.raises(ValueError, match="calibration.json"):
        uncertainty.read_std_scale(tmp_path)
    path.write_text('{"std_scale": -1}')
    with pytest.raises(ValueError, match="positive"):
        uncertainty.read_std_scale(tmp_path)
    with pytest.raises(ValueError, match="positive"):
        uncertainty.write_calibration(tmp_path, float("nan"))


def test_calibration_figure(tmp_path):
    from s2p_utils.plots import calibration_curve

    levels = np.array([0.25, 0.5, 0.75])
    figure = calibration_curve(levels, {"raw": [0.1, 0.3, 0.5]}, path=tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    assert len(figure.axes[0].lines) == 2  # ideal + one curve
    with pytest.raises(ValueError, match="coverages"):
        calibration_curve(levels, {"raw": [0.1, 0.3]})
