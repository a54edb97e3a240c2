"""Figures: the paper's quartile figure, best/median/worst spectra, learning curves, parity plots (C_V, ω̄),
uncertainty calibration, PDF vs RDF, run comparison. The input-side figures (crystals, PDF rows, atom
counts, example targets) are in :mod:`s2p_utils.plots_inputs`.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot state, no backend switch,
works headless) and returns it; with ``path`` it is also saved as PNG at 150 dpi. In a notebook,
``import matplotlib.pyplot`` once (which enables the inline display) and put the returned figure last in a
cell to show it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from s2p_utils.pdf import atomic_pdf, simple_rdf

__all__ = [
    "QUARTILE_COLORS",
    "BEST_MEDIAN_WORST_COLORS",
    "quartile_selection",
    "quartile_figure",
    "spectra_grid",
    "learning_curves",
    "cv_parity",
    "parity_figure",
    "best_median_worst",
    "compare_runs_figure",
    "predicted_spectra",
    "calibration_curve",
    "pdf_comparison",
    "axis_label",
]

#: Prediction colour of each quartile row, best to worst, as in the authors' ``plot_predictions``.
QUARTILE_COLORS = ("orange", "royalblue", "green", "red")

_UNIT_LABELS = {
    "cm^-1": "Frequency (cm$^{-1}$)",
    "cm-1": "Frequency (cm$^{-1}$)",
    "eV": "Energy (eV)",
    "bin": "Grid point",
    "": "Grid point",
}


def axis_label(grid_unit: str) -> str:
    """The x-axis label for a grid unit (``"cm^-1"``, ``"eV"``, ``"bin"``)."""
    return _UNIT_LABELS.get(grid_unit, grid_unit)


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    return fig


def quartile_selection(
    errors: np.ndarray | Sequence[float], per_quartile: int = 5, seed: int = 0
) -> list[np.ndarray]:
    """Indices of the spectra shown in the quartile figure, one int array per quartile (best first).

    The spectra are ranked by ``errors`` (ascending, stable) and the ranking is cut into four equal parts
    (``numpy.array_split``); from each part ``per_quartile`` distinct spectra are drawn with
    ``numpy.random.default_rng(seed)`` (all of them when the part is smaller) and returned sorted by error.

    Differences from the authors' ``plot_predictions``: seeded, drawn without replacement, and the worst
    spectrum can be drawn (their ``np.random.choice(arange(iq[k-1], iq[k]))`` excluded it).
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if per_quartile < 1:
        raise ValueError(f"per_quartile must be ≥ 1, got {per_quartile}")
    order = np.argsort(errors, kind="stable")
    rng = np.random.default_rng(seed)
    chosen = []
    for part in np.array_split(order, 4):
        picks = rng.choice(part, size=min(per_quartile, part.size), replace=False) if part.size else part
        chosen.append(np.asarray(picks[np.argsort(errors[picks], kind="stable")], dtype=np.int64))
    return chosen


def _row_grid(grid: np.ndarray, n: int) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float64)
    return np.broadcast_to(grid, (n, grid.shape[-1])) if grid.ndim == 1 else grid


def _sigma_band(
    ax: Any,
    x: np.ndarray,
    centre: np.ndarray,
    std: np.ndarray,
    color: str,
    *,
    clip_at_zero: bool,
    **kwargs: Any,
) -> None:
    """Shade ``centre ± std`` on ``ax`` (the lower edge cut at 0 when ``clip_at_zero``)."""
    sigma = np.asarray(std, dtype=np.float64)
    lower = centre - sigma
    if clip_at_zero:
        lower = np.maximum(lower, 0.0)
    ax.fill_between(x, lower, centre + sigma, color=color, alpha=0.3, lw=0, **kwargs)


def spectra_grid(
    grid: np.ndarray,
    references: np.ndarray,
    predictions: np.ndarray,
    *,
    titles: Sequence[str],
    colors: Sequence[str],
    nrows: int,
    ncols: int,
    std: np.ndarray | None = None,
    positions: Sequence[int] | None = None,
    row_labels: Sequence[str] | None = None,
    legend: Sequence[tuple[str, str]] | None = None,
    grid_unit: str = "",
    ylabel: str = "DOS",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Panels of reference (black) vs prediction (``colors[i]``) spectra; unused panels stay blank.

    Args:
        grid: ``(n_grid,)`` or ``(n, n_grid)``.
        references, predictions: ``(n, n_grid)``.
        titles, colors: one per spectrum.
        std: optional ``(n, n_grid)``; drawn as a ±1σ band around the prediction (cut at 0 when every
            reference and prediction is non-negative, as a DOS is).
        positions: panel of each spectrum in row-major order (default ``0..n-1``).
        row_labels: y label of the first panel of each row.
        legend: ``(colour, label)`` of each prediction line in the figure legend (default one entry).
    """
    references = np.asarray(references, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    n = references.shape[0]
    positions = list(range(n)) if positions is None else [int(p) for p in positions]
    if len(positions) != n or (n and not 0 <= min(positions) <= max(positions) < nrows * ncols):
        raise ValueError(f"{n} spectra do not fit in {nrows}×{ncols} panels at positions {positions}")
    x = _row_grid(grid, n) if n else None
    fig = Figure(figsize=figsize or (2.7 * ncols, 2.1 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for slot, ax in enumerate(axes.flat):
        if slot not in positions:
            ax.set_axis_off()
    for i, slot in enumerate(positions):
        ax = axes.flat[slot]
        ax.plot(x[i], references[i], color="black", alpha=0.65, lw=1.2)
        ax.plot(x[i], predictions[i], color=colors[i], lw=2.0)
        if std is not None:  # a density of states is never negative: cut the band at 0 for one
            non_negative = bool((references >= 0).all() and (predictions >= 0).all())
            _sigma_band(ax, x[i], predictions[i], std[i], colors[i], clip_at_zero=non_negative)
        ax.set_title(titles[i], fontsize=8.5)
        ax.tick_params(labelsize=7)
    for row, label in enumerate(row_labels or ()):
        axes[row, 0].set_ylabel(label, fontsize=9)
    band = " ± 1σ" if std is not None else ""
    entries = legend if legend is not None else [(colors[0] if n else "tab:blue", "prediction")]
    handles = [Line2D([], [], color="black", alpha=0.65, lw=1.2, label="reference")]
    handles += [Line2D([], [], color=color, lw=2.0, label=f"{label}{band}") for color, label in entries]
    fig.legend(handles=handles, loc="outside right upper", ncols=1, fontsize=9, frameon=False)
    fig.supxlabel(axis_label(grid_unit))
    fig.supylabel(ylabel)
    return fig


def quartile_figure(
    ids: Sequence[str],
    formulas: Sequence[str],
    grid: np.ndarray,
    targets: np.ndarray,
    predictions: np.ndarray,
    *,
    std: np.ndarray | None = None,
    grid_unit: str = "",
    seed: int = 0,
    path: str | os.PathLike | None = None,
    errors: np.ndarray | None = None,
    per_quartile: int = 5,
    ylabel: str = "DOS",
    title: str | None = None,
) -> Figure:
    """The paper's figure: test spectra ranked by per-spectrum MAE, ``per_quartile`` from each quartile.

    A 4×5 grid; row ``q`` holds spectra from error quartile ``q`` (row 1 best). Reference in black,
    prediction in the row's colour (orange, royalblue, green, red), ±1σ band when ``std`` is given; each
    panel is titled with the formula and id; the row label gives the quartile's MAE range among the shown
    spectra. Selection: :func:`quartile_selection` (seeded); with fewer than 20 spectra all that exist
    are shown.

    Args:
        ids, formulas: length ``n``.
        grid: ``(n_grid,)`` or per-structure ``(n, n_grid)``, in ``grid_unit``.
        targets, predictions: ``(n, n_grid)``, unscaled.
        std: optional ``(n, n_grid)`` ensemble standard deviation.
        errors: ranking errors ``(n,)``; default the per-spectrum MAE.
        path: save as PNG (150 dpi) here.
    """
    targets = np.asarray(targets, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    if targets.shape != predictions.shape or targets.ndim != 2:
        raise ValueError(
            f"targets {targets.shape} and predictions {predictions.shape} must both be (n, n_grid)"
        )
    n = targets.shape[0]
    if not (len(ids) == len(formulas) == n):
        raise ValueError(f"{len(ids)} ids and {len(formulas)} formulas for {n} spectra")
    errors = (
        np.abs(targets - predictions).mean(axis=1) if errors is None else np.asarray(errors, dtype=np.float64)
    )
    selection = quartile_selection(errors, per_quartile=per_quartile, seed=seed)
    shown = np.concatenate(selection)
    positions = [row * per_quartile + j for row, picks in enumerate(selection) for j in range(picks.size)]
    colors = [QUARTILE_COLORS[row] for row, picks in enumerate(selection) for _ in picks]
    fig = spectra_grid(
        _row_grid(grid, n)[shown],
        targets[shown],
        predictions[shown],
        titles=[f"{formulas[i]}  {ids[i]}" for i in shown],
        colors=colors,
        nrows=4,
        ncols=per_quartile,
        std=None if std is None else np.asarray(std, dtype=np.float64)[shown],
        positions=positions,
        row_labels=[_row_label(q, errors[picks]) for q, picks in enumerate(selection)],
        legend=[(color, f"prediction Q{q + 1}") for q, color in enumerate(QUARTILE_COLORS)],
        grid_unit=grid_unit,
        ylabel=ylabel,
        figsize=(2.8 * per_quartile + 2.0, 8.6),
    )
    if title:
        fig.suptitle(title, fontsize=13)
    return _save(fig, path)


def _row_label(quartile: int, errors: np.ndarray) -> str:
    if errors.size == 0:
        return f"Q{quartile + 1}"
    return f"Q{quartile + 1}\nMAE {errors.min():.2g}–{errors.max():.2g}"


#: Prediction colour of the best, median and worst panel of :func:`best_median_worst`.
BEST_MEDIAN_WORST_COLORS = ("green", "royalblue", "red")


def best_median_worst(
    ids: Sequence[str],
    formulas: Sequence[str],
    grid: np.ndarray,
    targets: np.ndarray,
    predictions: np.ndarray,
    *,
    std: np.ndarray | None = None,
    grid_unit: str = "",
    ylabel: str = "DOS",
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Three panels: the spectra with the lowest, the median and the highest per-spectrum MAE.

    Reference in black, prediction in green / royalblue / red (:data:`BEST_MEDIAN_WORST_COLORS`), a ±1σ
    band around the prediction when ``std`` is given (an ensemble); each panel is titled with the rank,
    formula, id and MAE. Ranking: :func:`s2p_utils.metrics.per_spectrum_mae`, stable; the median is the
    ``(n − 1) // 2``-th spectrum of that ranking (the lower median for even ``n``). With fewer than three
    spectra a spectrum appears in more than one panel.

    Args:
        ids, formulas: length ``n`` (≥ 1).
        grid: ``(n_grid,)`` or per-structure ``(n, n_grid)``, in ``grid_unit`` (``"cm^-1"``, ``"eV"``).
        targets, predictions: ``(n, n_grid)``, unscaled, in the target unit.
        std: optional ``(n, n_grid)`` ensemble standard deviation (same unit).
        path: save as PNG (150 dpi) here.
    """
    from s2p_utils.metrics import per_spectrum_mae

    targets = np.asarray(targets, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    errors = per_spectrum_mae(targets, predictions)
    n = errors.size
    if n == 0 or not (len(ids) == len(formulas) == n):
        raise ValueError(f"{len(ids)} ids and {len(formulas)} formulas for {n} spectra (need ≥ 1)")
    order = np.argsort(errors, kind="stable")
    shown = order[[0, (n - 1) // 2, n - 1]]
    ranks = ("best", "median", "worst")
    fig = spectra_grid(
        _row_grid(grid, n)[shown],
        targets[shown],
        predictions[shown],
        titles=[
            f"{rank}: {formulas[i]}  {ids[i]}\nMAE {errors[i]:.3g}"
            for rank, i in zip(ranks, shown, strict=True)
        ],
        colors=list(BEST_MEDIAN_WORST_COLORS),
        nrows=1,
        ncols=3,
        std=None if std is None else np.asarray(std, dtype=np.float64)[shown],
        legend=list(zip(BEST_MEDIAN_WORST_COLORS, [f"prediction ({rank})" for rank in ranks], strict=True)),
        grid_unit=grid_unit,
        ylabel=ylabel,
        figsize=(11.0, 3.0),
    )
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def learning_curves(
    history: Any, *, path: str | os.PathLike | None = None, title: str | None = None
) -> Figure:
    """Training and validation loss (log scale) and learning rate against epoch.

    Args:
        history: a pandas DataFrame (or a dict of lists, e.g. ``keras.callbacks.History.history``) with
            columns ``loss`` and optionally ``val_loss``, ``lr`` (or ``learning_rate``), ``epoch``
            (default 1, 2, ...).
    """
    frame = pd.DataFrame(dict(history) if isinstance(history, Mapping) else history).reset_index(drop=True)
    if "loss" not in frame:
        raise ValueError(f"history needs a 'loss' column; got {list(frame.columns)}")
    epoch = frame["epoch"].to_numpy() if "epoch" in frame else np.arange(1, len(frame) + 1)
    lr_column = next((c for c in ("lr", "learning_rate") if c in frame), None)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2 if lr_column else 1, squeeze=False)[0]
    loss_ax = axes[0]
    loss_ax.plot(epoch, frame["loss"], marker="o", ms=3, label="training")
    if "val_loss" in frame:
        loss_ax.plot(epoch, frame["val_loss"], marker="o", ms=3, label="validation")
        best = int(np.nanargmin(frame["val_loss"].to_numpy()))
        loss_ax.axvline(epoch[best], color="grey", ls=":", lw=1, label=f"best val (epoch {epoch[best]})")
    if (frame[[c for c in ("loss", "val_loss") if c in frame]].to_numpy() > 0).all():
        loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.legend(fontsize=9)
    if lr_column:
        axes[1].plot(epoch, frame[lr_column], color="tab:green")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("learning rate")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def parity_figure(
    true: np.ndarray | Sequence[float],
    pred: np.ndarray | Sequence[float],
    quantity: str,
    unit: str,
    *,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Parity plot of one scalar per material: reference (x) against predicted (y), with the diagonal.

    Args:
        true, pred: ``(n,)`` values in ``unit``, e.g. the heat capacity C_V in k_B/atom
            (:func:`s2p_utils.metrics.heat_capacity`) or the mean frequency ω̄ in cm⁻¹
            (:func:`s2p_utils.metrics.mean_frequency`) of the reference and predicted DOS.
        quantity: axis name, matplotlib mathtext allowed (``"$C_V$(300 K)"``, ``"$\\bar\\omega$"``).
        unit: unit of both axes and of the MAE (``"$k_B$/atom"``, ``"cm$^{-1}$"``); ``""`` for none.

    The MAE, the R² (1 − SS_res/SS_tot about the mean of ``true``, :func:`s2p_utils.metrics.r2_pooled`)
    and n are printed in the upper left; NaN or infinite pairs are dropped.
    """
    from s2p_utils.metrics import r2_pooled

    true = np.asarray(true, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"true {true.shape} and pred {pred.shape} differ in length")
    ok = np.isfinite(true) & np.isfinite(pred)
    true, pred = true[ok], pred[ok]
    fig = Figure(figsize=(4.6, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(true, pred, s=14, alpha=0.7, edgecolor="none")
    if true.size:
        lo, hi = min(true.min(), pred.min()), max(true.max(), pred.max())
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=1, ls="--")
        mae = np.abs(true - pred).mean()
        r2 = r2_pooled(true[None, :], pred[None, :]) if np.ptp(true) > 0 else float("nan")
        ax.text(
            0.04,
            0.96,
            f"MAE {mae:.3g} {unit}".rstrip() + f"\n$R^2$ {r2:.3f}\nn = {true.size}",
            transform=ax.transAxes,
            va="top",
        )
    label = f"{quantity} ({unit})" if unit else quantity
    ax.set_xlabel(f"reference {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def cv_parity(
    cv_true: np.ndarray,
    cv_pred: np.ndarray,
    *,
    path: str | os.PathLike | None = None,
    temperature: float = 300.0,
    title: str | None = None,
) -> Figure:
    """:func:`parity_figure` of the phonon heat capacity C_V (``(n,)``, k_B per atom) at ``temperature`` K."""
    return parity_figure(cv_true, cv_pred, f"$C_V$({temperature:g} K)", "$k_B$/atom", path=path, title=title)


def calibration_curve(
    levels: np.ndarray | Sequence[float],
    observed: Mapping[str, np.ndarray | Sequence[float]],
    *,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Reliability diagram of an uncertainty: observed vs nominal coverage of ``μ ± z·σ`` intervals.

    Args:
        levels: ``(m,)`` nominal coverages (:func:`s2p_utils.uncertainty.coverage_curve`).
        observed: label → ``(m,)`` observed coverages, e.g. ``{"raw σ": …, "calibrated σ": …}``.

    The diagonal is perfect calibration; a curve below it means σ is too small (over-confident).
    """
    levels = np.asarray(levels, dtype=np.float64)
    fig = Figure(figsize=(4.4, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="ideal")
    for label, values in observed.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != levels.shape:
            raise ValueError(f"{label!r}: {values.shape} coverages for {levels.shape} levels")
        ax.plot(levels, values, marker="o", ms=3, lw=1.5, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal coverage of μ ± zσ")
    ax.set_ylabel("observed fraction of test points")
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def pdf_comparison(
    atoms_list: Sequence[Any],
    labels: Sequence[str],
    *,
    path: str | os.PathLike | None = None,
    atom_index: int = 0,
) -> Figure:
    """Per-atom features of atom ``atom_index`` for a few crystals, one column per crystal.

    Top row, both in Å⁻³ (neighbour counts per shell volume): the original periodic per-atom PDF
    (:func:`s2p_utils.pdf.atomic_pdf` with ``legacy=True``; bin ``k`` drawn at ``(k + 1)·0.1 Å``,
    the rounding centre) against the unit-cell-only simple RDF (:func:`s2p_utils.pdf.simple_rdf`,
    no periodic images; bin centres ``(k + ½)·0.1 Å``). Bottom row: the corrected, dimensionless per-atom
    g(r) (``legacy=False``; → 1 at large r).
    """
    if len(atoms_list) != len(labels):
        raise ValueError(f"{len(atoms_list)} structures but {len(labels)} labels")
    n = max(len(atoms_list), 1)
    fig = Figure(figsize=(3.4 * n, 5.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False, sharex=True)
    for column, (atoms, label) in enumerate(zip(atoms_list, labels, strict=True)):
        legacy = atomic_pdf(atoms, legacy=True)[atom_index]
        rdf = simple_rdf(atoms)[atom_index]
        corrected = atomic_pdf(atoms)[atom_index]
        width = 10.0 / legacy.size
        top, bottom = axes[0, column], axes[1, column]
        top.plot(width * (np.arange(legacy.size) + 1), legacy, lw=1.6, label="PDF (original, periodic)")
        top.plot(
            width * (np.arange(rdf.size) + 0.5), rdf, lw=1.4, ls="--", label="simple RDF (unit cell only)"
        )
        bottom.plot(width * (np.arange(corrected.size) + 0.5), corrected, lw=1.6, color="tab:green")
        bottom.axhline(1.0, color="grey", lw=0.8, ls=":")
        top.set_title(f"{label} (atom {atom_index}, {atoms[atom_index].symbol})", fontsize=10)
        bottom.set_xlabel("r (Å)")
        for ax in (top, bottom):
            ax.tick_params(labelsize=8)
    axes[0, 0].set_ylabel("counts / shell volume (Å$^{-3}$)")
    axes[1, 0].set_ylabel("corrected g(r)")
    axes[0, 0].legend(fontsize=8)
    return _save(fig, path)


def predicted_spectra(
    ids: Sequence[str],
    grid: np.ndarray,
    mean: np.ndarray,
    *,
    std: np.ndarray | None = None,
    grid_unit: str = "",
    ylabel: str = "DOS",
    title: str = "",
    path: str | os.PathLike | None = None,
) -> Figure:
    """One panel per structure: the predicted spectrum, with a ±1σ band (cut at 0) for an ensemble.

    Args:
        ids: one label per structure.
        grid: ``(n_grid,)`` or ``(n, n_grid)`` in ``grid_unit`` (cm⁻¹, eV or bins).
        mean, std: ``(n, n_grid)`` predictions and their calibrated σ (same units).
    """
    mean = np.asarray(mean, dtype=np.float64)
    n = mean.shape[0]
    x = _row_grid(grid, n)
    fig = Figure(figsize=(3.0 * max(n, 1), 2.4), layout="constrained")
    axes = fig.subplots(1, max(n, 1), squeeze=False)[0]
    for i, ax in enumerate(axes[:n]):
        ax.plot(x[i], mean[i], color="tab:blue", lw=1.8, label="prediction")
        if std is not None:
            _sigma_band(ax, x[i], mean[i], std[i], "tab:blue", clip_at_zero=True, label="±1σ")
        ax.set_title(str(ids[i]), fontsize=9)
        ax.tick_params(labelsize=7)
    if n and std is not None:
        axes[0].legend(fontsize=8, frameon=False)
    fig.supxlabel(axis_label(grid_unit))
    fig.supylabel(ylabel)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def compare_runs_figure(
    metrics_by_run: Mapping[str, Mapping[str, float]],
    keys: Sequence[str] = ("mae", "mse", "r2"),
    *,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Bar chart comparing runs on a few scores: one panel per score (own y scale), one bar per run.

    Args:
        metrics_by_run: run label → its metrics (:func:`s2p_utils.metrics.spectrum_metrics`, or a row of
            ``metrics.csv``), e.g. ``{"simple RDF": {...}, "per-atom PDF": {...}}``; runs keep this order.
        keys: metric names, one panel each, e.g. ``mae``/``mse`` (target units), ``r2``, ``wasserstein``
            (grid units, cm⁻¹ or eV), ``omega_mae`` (cm⁻¹).
        labels: panel title of a key (default the key itself).

    Each bar is annotated with its value (4 significant digits); a run without a finite value for a key
    gets no bar there and the annotation "n/a".
    """
    runs = list(metrics_by_run)
    keys = list(keys)
    if not runs or not keys:
        raise ValueError(f"need at least one run and one key; got {len(runs)} runs and {len(keys)} keys")
    fig = Figure(figsize=(max(3.0, 0.8 * len(runs) + 1.6) * len(keys), 3.4), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(runs))]
    position = np.arange(len(runs))
    for ax, key in zip(axes, keys, strict=True):
        values = np.array([_as_float(metrics_by_run[run].get(key)) for run in runs])
        finite = np.isfinite(values)
        bars = ax.bar(position, np.where(finite, values, 0.0), color=colors)
        for bar, ok in zip(bars, finite, strict=True):
            bar.set_visible(bool(ok))
        ax.bar_label(
            bars,
            labels=[f"{v:.4g}" if ok else "n/a" for v, ok in zip(values, finite, strict=True)],
            fontsize=8,
            padding=2,
        )
        ax.set_xticks(position, runs, rotation=20, ha="right", fontsize=8)
        ax.set_title((labels or {}).get(key, key), fontsize=10)
        ax.margins(y=0.15)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
