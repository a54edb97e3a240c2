"""``benchmarks/omega_bias.py``: where the mean-frequency error sits, by range of the reference ω̄ (no data)."""

from __future__ import annotations

import numpy as np
import pytest


def test_error_by_range_counts_signs_and_shares(benchmark_script):
    omega_bias = benchmark_script("omega_bias")
    omega_true = np.array([50.0, 150.0, 160.0, 350.0, 420.0, 900.0])
    error = np.array([+2.0, -1.0, +3.0, -10.0, -20.0, -4.0])
    table = omega_bias.error_by_range(omega_true, error)
    labels = [row[0] for row in table]
    assert labels == ["0–100", "100–200", "200–300", "300–400", "≥ 400"]
    counts = [row[1] for row in table]
    assert counts == [1, 2, 0, 1, 2]
    by_label = {row[0]: row for row in table}
    assert by_label["100–200"][2] == pytest.approx(1.0)  # signed mean of −1 and +3
    assert by_label["100–200"][3] == pytest.approx(2.0)  # mean |error|
    assert by_label["≥ 400"][4] == pytest.approx(24.0 / 40.0)  # share of the summed |error| (40)
    assert np.isnan(by_label["200–300"][2]) and by_label["200–300"][4] == 0.0
    assert sum(row[4] for row in table) == pytest.approx(1.0)


def test_stretch_moves_the_mean_frequency_by_the_factor(benchmark_script):
    omega_bias = benchmark_script("omega_bias")
    grid = np.linspace(0.0, 1000.0, 501)
    peak = np.exp(-0.5 * ((grid - 300.0) / 20.0) ** 2)[None, :]
    stretched = omega_bias.stretch(grid, peak, np.array([1.1]))
    mean = (stretched * grid).sum() / stretched.sum()
    assert mean == pytest.approx(330.0, rel=2e-3)
    a, b = omega_bias.omega_line(np.array([110.0, 210.0, 310.0]), np.array([100.0, 200.0, 300.0]))
    assert (a, b) == (pytest.approx(1.0), pytest.approx(10.0))
