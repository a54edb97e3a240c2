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


# ---------------------------------------------------------------------------------------------------------
# Output side: best/median/worst, the generic parity plot, run comparison
# ---------------------------------------------------------------------------------------------------------


def _bands(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_best_median_worst_picks_rows_by_mae_and_band_only_with_std(tmp_path):
    grid = np.linspace(0.0, 1000.0, 51)
    targets = np.tile(np.exp(-((grid - 500.0) ** 2) / 20000.0), (5, 1))
    offsets = np.array([0.30, 0.01, 0.20, 0.05, 0.10])  # per-spectrum MAE == offset
    predictions = targets + offsets[:, None]
    ids = [f"mp-{i}" for i in range(5)]
    formulas = ["A", "B", "C", "D", "E"]
    path = tmp_path / "bmw.png"
    fig = plots.best_median_worst(ids, formulas, grid, targets, predictions, grid_unit="cm^-1", path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(fig.axes) == 3
    for ax, index, rank in zip(fig.axes, [1, 4, 0], ["best", "median", "worst"], strict=True):
        reference, prediction = ax.get_lines()
        np.testing.assert_allclose(prediction.get_ydata(), predictions[index])
        np.testing.assert_allclose(reference.get_ydata(), targets[index])
        assert ax.get_title().startswith(f"{rank}: {formulas[index]}  {ids[index]}")
        assert f"MAE {offsets[index]:.3g}" in ax.get_title()
        assert not _bands(ax)
    assert "cm$^{-1}$" in fig.get_supxlabel()
    fig = plots.best_median_worst(ids, formulas, grid, targets, predictions, std=np.full_like(targets, 0.05))
    assert all(len(_bands(ax)) == 1 for ax in fig.axes)
    with pytest.raises(ValueError, match="ids"):
        plots.best_median_worst(ids[:2], formulas, grid, targets, predictions)


def test_parity_figure_generic_and_cv_parity_goes_through_it(tmp_path):
    true = np.array([100.0, 200.0, 300.0, np.nan, 400.0])
    pred = np.array([110.0, 190.0, 330.0, 5.0, np.inf])
    fig = plots.parity_figure(true, pred, r"$\bar\omega$", "cm$^{-1}$", path=tmp_path / "omega.png")
    assert (tmp_path / "omega.png").read_bytes()[:8] == PNG_MAGIC
    ax = fig.axes[0]
    text = ax.texts[0].get_text()
    assert "MAE 16.7 cm$^{-1}$" in text and "n = 3" in text  # NaN and inf pairs dropped
    r2 = 1 - (10**2 + 10**2 + 30**2) / (100**2 + 0 + 100**2)
    assert f"$R^2$ {r2:.3f}" in text
    assert ax.get_xlabel() == r"reference $\bar\omega$ (cm$^{-1}$)"
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[100, 110], [200, 190], [300, 330]])
    fig = plots.cv_parity([1.0, 2.0], [1.5, 2.5], temperature=500)
    assert fig.axes[0].get_ylabel() == "predicted $C_V$(500 K) ($k_B$/atom)"
    assert "MAE 0.5 $k_B$/atom" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="differ"):
        plots.parity_figure([1.0], [1.0, 2.0], "x", "")


def test_compare_runs_figure_bars_equal_values(tmp_path):
    runs = {
        "simple RDF": {"mae": 0.12, "mse": 0.04, "r2": 0.5},
        "per-atom PDF": {"mae": 0.09, "mse": 0.03, "r2": None},
    }
    path = tmp_path / "runs.png"
    fig = plots.compare_runs_figure(runs, labels={"mae": "MAE"}, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [ax.get_title() for ax in fig.axes] == ["MAE", "mse", "r2"]
    for ax, key in zip(fig.axes, ["mae", "mse", "r2"], strict=True):
        assert [t.get_text() for t in ax.get_xticklabels()] == list(runs)
        shown = [p.get_height() for p in ax.patches if p.get_visible()]
        expected = [v[key] for v in runs.values() if v[key] is not None]
        np.testing.assert_allclose(shown, expected)
    assert "n/a" in [t.get_text() for t in fig.axes[2].texts]
    with pytest.raises(ValueError, match="at least one run"):
        plots.compare_runs_figure({})


# ---------------------------------------------------------------------------------------------------------
# Input side (s2p_utils.plots_inputs)
# ---------------------------------------------------------------------------------------------------------


def test_crystal_views_titles_and_atoms_drawn(tmp_path):
    from ase.build import bulk
    from matplotlib.patches import Circle

    from s2p_utils.plots_inputs import crystal_views

    crystals = [bulk("NaCl", "rocksalt", a=5.64), bulk("Si"), bulk("Cu", cubic=True).repeat(2)]
    path = tmp_path / "crystals.png"
    fig = crystal_views(crystals, labels=["rock salt", "diamond", "fcc"], max_atoms_drawn=20, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title() == "rock salt\nClNa, 2 atoms"
    assert fig.axes[2].get_title().endswith("Cu32, 32 atoms")
    circles = [sum(isinstance(p, Circle) for p in ax.patches) for ax in fig.axes]
    assert circles == [2, 2, 0]  # 32 atoms > max_atoms_drawn: not drawn
    assert "not drawn" in fig.axes[2].texts[0].get_text()
    with pytest.raises(ValueError, match="labels"):
        crystal_views(crystals, labels=["one"])


def test_pdf_rows_figure_heat_map_and_token_labels(tmp_path):
    from ase.build import bulk

    from s2p_utils.pdf import atomic_pdf
    from s2p_utils.plots_inputs import pdf_rows_figure
    from s2p_utils.vocab import TOKEN_IDS, atoms_tokens, pad_atoms

    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    rows, tokens = atomic_pdf(atoms), atoms_tokens(atoms)
    path = tmp_path / "rows.png"
    fig = pdf_rows_figure(rows, tokens, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    ax = fig.axes[0]
    image = ax.get_images()[0]
    np.testing.assert_array_equal(image.get_array(), rows)
    assert image.get_extent()[:2] == [0.0, 10.0] and ax.get_xlabel() == "r (Å)"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{s} ({TOKEN_IDS[s]})" for s in atoms.get_chemical_symbols()]
    # padded to max_atoms: the padding rows are left out, or kept and labelled "pad"
    padded_rows, padded_tokens = (np.asarray(a)[0] for a in pad_atoms([rows], [tokens], max_atoms=12)[:2])
    fig = pdf_rows_figure(padded_rows, padded_tokens)
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 100)
    fig = pdf_rows_figure(padded_rows, padded_tokens, drop_padding=False)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "pad (0)"
    fig = pdf_rows_figure(rows, tokens, symbols=[f"atom {i}" for i in range(8)])
    assert fig.axes[0].get_yticklabels()[3].get_text() == "atom 3"
    with pytest.raises(ValueError, match="one token per row"):
        pdf_rows_figure(rows, tokens[:3])


def test_atom_count_histogram_counts_and_legend(tmp_path):
    from s2p_utils.plots_inputs import atom_count_histogram

    n_atoms = [2, 2, 3, 8, 8, 8, 40, 64]
    path = tmp_path / "atoms.png"
    fig = atom_count_histogram(n_atoms, max_atoms=32, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    ax = fig.axes[0]
    heights = np.array([p.get_height() for p in ax.patches])
    lefts = np.array([p.get_x() for p in ax.patches])
    assert heights.sum() == len(n_atoms)
    counted = {int(round(x + 0.5)): int(h) for x, h in zip(lefts, heights, strict=True) if h}
    assert counted == {2: 2, 3: 1, 8: 3, 40: 1, 64: 1}
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [32, 32]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "max_atoms = 32 (2 above, 25.0%)" in legend and "8 crystals" in legend


def test_example_spectra_small_multiples_and_overlay(tmp_path):
    from s2p_utils.plots_inputs import example_spectra

    grid, targets, _ = _spectra(5)
    labels = [f"X{i}" for i in range(5)]
    path = tmp_path / "examples.png"
    fig = example_spectra(grid, targets, labels, "cm^-1", ncols=3, path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(fig.axes) == 6
    drawn = [ax for ax in fig.axes if ax.get_lines()]
    assert [ax.get_title() for ax in drawn] == labels
    np.testing.assert_allclose(drawn[4].get_lines()[0].get_ydata(), targets[4])
    np.testing.assert_allclose(drawn[4].get_lines()[0].get_xdata(), grid)
    assert fig.get_supxlabel() == "Frequency (cm$^{-1}$)"
    fig = example_spectra(grid, targets[:2], labels[:2], "eV", overlay=True)
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 2
    assert fig.axes[0].get_xlabel() == "Energy (eV)"
    with pytest.raises(ValueError, match="label"):
        example_spectra(grid, targets, labels[:2])


# ---------------------------------------------------------------------------------------------------------
# The comparison table (s2p_utils.references)
# ---------------------------------------------------------------------------------------------------------


def test_comparison_table_one_run_against_the_published_rows():
    from s2p_utils.references import METRIC_KEYS, comparison_table, references_for

    ours = {"mae": 0.08, "mse": 0.027, "r2": 0.6, "mae_renorm": 0.085, "wasserstein": 30.0, "n_spectra": 151}
    table = comparison_table(ours, "e3nn_phdos", "chen2021")
    published = references_for("e3nn_phdos", "chen2021")
    assert len(table) == 1 + len(published)
    assert table["ours"].tolist() == [True] + [False] * len(published)
    assert table["model"].tolist()[1:] == [ref.model for ref in published]
    # the r2_pooled_renorm column is filled by the references only; "n_spectra" is no score column
    expected_keys = [k for k in METRIC_KEYS if k in ours or any(getattr(r, k) is not None for r in published)]
    assert list(table.columns) == ["model", "ours", *expected_keys, "source"]
    assert "n_spectra" not in table and "mse_renorm" in table
    for key in expected_keys:
        assert np.isnan(table[key][0]) if key not in ours else table[key][0] == ours[key]
        for row, ref in enumerate(published, start=1):
            value = getattr(ref, key)
            assert np.isnan(table[key][row]) if value is None else table[key][row] == value


def test_comparison_table_several_runs_and_no_references():
    from s2p_utils.references import comparison_table

    runs = {"simple RDF": {"mae": 0.2, "mse": 0.1}, "PDF": {"mae": 0.1, "r2": 0.7}}
    table = comparison_table(runs, "no_such_dataset", "random")
    assert table["model"].tolist() == ["simple RDF", "PDF"] and table["ours"].all()
    assert list(table.columns) == ["model", "ours", "mae", "mse", "r2", "source"]
    assert np.isnan(table["r2"][0]) and table["r2"][1] == 0.7 and np.isnan(table["mse"][1])
    full = comparison_table(runs, "no_such_dataset", "random", keep_empty=True)
    assert "omega_mae" in full and full["omega_mae"].isna().all()
