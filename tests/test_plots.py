"""Figures: quartile selection, the quartile figure's layout and colours, and that PNGs are written."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from s2p_utils import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_quartile_selection_picks_from_each_quartile():
    rng = np.random.default_rng(3)
    errors = rng.permutation(100).astype(float)  # error == rank
    selection = plots.quartile_selection(errors, per_quartile=5, seed=7)
    assert len(selection) == 4
    for quartile, picks in enumerate(selection):
        ranks = errors[picks]
        assert picks.size == 5 and np.unique(picks).size == 5
        assert ranks.min() >= 25 * quartile and ranks.max() < 25 * (quartile + 1)
        assert np.all(np.diff(ranks) > 0)  # sorted best first
    again = plots.quartile_selection(errors, per_quartile=5, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(selection, again, strict=True))
    other = plots.quartile_selection(errors, per_quartile=5, seed=8)
    assert not all(np.array_equal(a, b) for a, b in zip(selection, other, strict=True))


def test_quartile_selection_small_sets_show_everything():
    errors = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 1.0])
    selection = plots.quartile_selection(errors, per_quartile=5)
    assert sorted(np.concatenate(selection).tolist()) == list(range(10))
    assert [s.size for s in selection] == [3, 3, 2, 2]
    assert errors[selection[0]].tolist() == [0.1, 0.2, 0.3]
    assert errors[selection[3]].tolist() == [0.9, 1.0]
    assert [s.size for s in plots.quartile_selection([3.0, 1.0, 2.0])] == [1, 1, 1, 0]


def _spectra(n: int, n_grid: int = 51):
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1000, n_grid)
    centres = rng.uniform(200, 800, (n, 1))
    targets = np.exp(-((grid - centres) ** 2) / 5000)
    noise = rng.uniform(0.0, 0.3, (n, 1)) * rng.standard_normal((n, n_grid))
    return grid, targets, targets + noise


def test_quartile_figure_layout_colours_and_file(tmp_path):
    n = 40
    grid, targets, predictions = _spectra(n)
    ids = [f"mp-{i}" for i in range(n)]
    formulas = [f"X{i}Y" for i in range(n)]
    path = tmp_path / "figs" / "run_quartiles.png"
    fig = plots.quartile_figure(
        ids, formulas, grid, targets, predictions, grid_unit="cm^-1", seed=1, path=path
    )
    assert path.read_bytes()[:8] == PNG_MAGIC
    axes = fig.axes
    assert len(axes) == 20
    errors = np.abs(targets - predictions).mean(axis=1)
    selection = plots.quartile_selection(errors, seed=1)
    for row, picks in enumerate(selection):
        for column, index in enumerate(picks):
            ax = axes[row * 5 + column]
            reference, prediction = ax.get_lines()
            assert mcolors.to_hex(reference.get_color()) == "#000000"
            assert mcolors.to_hex(prediction.get_color()) == mcolors.to_hex(plots.QUARTILE_COLORS[row])
            np.testing.assert_allclose(prediction.get_ydata(), predictions[index])
            assert formulas[index] in ax.get_title() and ids[index] in ax.get_title()


def test_quartile_figure_std_band_and_few_spectra():
    grid, targets, predictions = _spectra(6)
    std = np.full_like(predictions, 0.1)
    fig = plots.quartile_figure(list("abcdef"), list("ABCDEF"), grid, targets, predictions, std=std)
    used = [ax for ax in fig.axes if ax.get_lines()]
    assert len(used) == 6
    assert all(any(isinstance(c, PolyCollection) for c in ax.collections) for ax in used)
    # non-negative spectra: the band stops at 0 (a DOS is never negative)
    predictions = np.abs(predictions)
    predictions[:, :5] = 0.0
    fig = plots.quartile_figure(list("abcdef"), list("ABCDEF"), grid, targets, predictions, std=std)
    bands = [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]
    lowest = min(path.vertices[:, 1].min() for band in bands for path in band.get_paths())
    assert lowest == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="ids"):
        plots.quartile_figure(["a"], ["A"], grid, targets, predictions)


def test_learning_curves_and_cv_parity_write_png(tmp_path):
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [0.3, 0.2, 0.1],
            "val_loss": [0.35, 0.25, 0.3],
            "lr": [1e-3, 1e-3, 9.2e-4],
        }
    )
    fig = plots.learning_curves(history, path=tmp_path / "lc.png")
    assert (tmp_path / "lc.png").read_bytes()[:8] == PNG_MAGIC
    assert len(fig.axes) == 2
    plots.learning_curves({"loss": [0.3, 0.2]}, path=tmp_path / "lc_dict.png")
    assert (tmp_path / "lc_dict.png").is_file()
    fig = plots.cv_parity([1.0, 2.0, 2.5, np.nan], [1.1, 1.9, 2.4, 1.0], path=tmp_path / "cv.png")
    assert (tmp_path / "cv.png").read_bytes()[:8] == PNG_MAGIC
    assert "MAE 0.1" in fig.axes[0].texts[0].get_text()  # NaN pair dropped: mean(0.1, 0.1, 0.1)


def test_pdf_comparison_writes_png(tmp_path):
    from ase.build import bulk

    crystals = [bulk("NaCl", "rocksalt", a=5.64), bulk("Si", "diamond", a=5.43)]
    fig = plots.pdf_comparison(crystals, ["NaCl", "Si"], path=tmp_path / "pdf.png")
    assert (tmp_path / "pdf.png").read_bytes()[:8] == PNG_MAGIC
    assert len(fig.axes) == 4
    top = fig.axes[0]
    assert len(top.get_lines()) == 2 and top.get_lines()[0].get_xdata().size == 100
