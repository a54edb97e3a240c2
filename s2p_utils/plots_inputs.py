"""Input-side figures: the crystals, one crystal's network input (per-atom PDF rows + element tokens), how
many atoms the crystals have, and a few target spectra.

Like :mod:`s2p_utils.plots` (whose helpers these reuse), every function builds a
:class:`matplotlib.figure.Figure` directly (no pyplot state, works headless) and returns it; with ``path``
it is also saved as PNG at 150 dpi.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from s2p_utils.plots import _row_grid, _save, axis_label

__all__ = ["crystal_views", "pdf_rows_figure", "atom_count_histogram", "example_spectra"]


def crystal_views(
    structures: Sequence[Any],
    labels: Sequence[str] | None = None,
    *,
    rotation: str = "10x,20y,0z",
    max_atoms_drawn: int = 200,
    radii: float = 0.5,
    path: str | os.PathLike | None = None,
) -> Figure:
    """A few crystals side by side, drawn with :func:`ase.visualize.plot.plot_atoms` (unit cell outlined).

    Args:
        structures: ``ase.Atoms`` (one panel each; positions in Å).
        labels: optional first title line per crystal (e.g. its id); the title always gives the Hill
            formula (``Atoms.get_chemical_formula()``) and the number of atoms in the cell.
        rotation: the view, ASE's syntax (``"10x,20y,0z"``: degrees about x, then y, then z).
        max_atoms_drawn: a cell with more atoms is not drawn (slow, unreadable); its panel says so.
        radii: atom radius as a fraction of the covalent radius (ASE's ``radii`` scaling).
    """
    from ase.data import covalent_radii
    from ase.visualize.plot import plot_atoms

    structures = list(structures)
    if not structures:
        raise ValueError("no structures to draw")
    if labels is not None and len(labels) != len(structures):
        raise ValueError(f"{len(structures)} structures but {len(labels)} labels")
    fig = Figure(figsize=(3.0 * len(structures), 3.3), layout="constrained")
    axes = fig.subplots(1, len(structures), squeeze=False)[0]
    for i, (ax, atoms) in enumerate(zip(axes, structures, strict=True)):
        n = len(atoms)
        heading = f"{atoms.get_chemical_formula()}, {n} atom{'s' if n != 1 else ''}"
        ax.set_title(f"{labels[i]}\n{heading}" if labels is not None else heading, fontsize=9)
        ax.set_axis_off()
        if n > max_atoms_drawn:
            ax.text(
                0.5,
                0.5,
                f"{n} atoms > {max_atoms_drawn}:\nnot drawn",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
            )
            continue
        plot_atoms(atoms, ax, rotation=rotation, radii=radii * covalent_radii[atoms.numbers])
    return _save(fig, path)


def pdf_rows_figure(
    pdf_rows: np.ndarray,
    tokens: np.ndarray | Sequence[int],
    symbols: Sequence[str] | None = None,
    *,
    r_max: float = 10.0,
    drop_padding: bool = True,
    colorbar_label: str = "g(r)",
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """One crystal's network input: its per-atom PDF rows as a heat map, each row labelled by its token.

    Args:
        pdf_rows: ``(n_atoms, n_bins)``, one PDF per atom over ``0 ≤ r < r_max`` Å in ``n_bins`` equal bins
            (:func:`s2p_utils.pdf.atomic_pdf`; 100 bins of 0.1 Å by default). Rows may be padded
            to ``max_atoms`` (:func:`s2p_utils.vocab.pad_atoms`).
        tokens: ``(n_atoms,)`` element token ids (:data:`s2p_utils.vocab.VOCABULARY`), the Embedding input.
        symbols: y tick label of each row; default ``"<element> (<id>)"`` from the vocabulary.
        r_max: the upper end of the r axis in Å.
        drop_padding: leave out the rows whose token is the padding id 0.
        colorbar_label: what the values are (``"g(r)"`` for the corrected PDF, ``"Å$^{-3}$"`` for legacy).

    x: r in Å (bin edges ``k·r_max/n_bins``); y: atom (row) index, labelled with its element.
    """
    from s2p_utils.vocab import PAD_ID, VOCABULARY

    rows = np.asarray(pdf_rows, dtype=np.float64)
    tokens = np.asarray(tokens, dtype=np.int64).ravel()
    if rows.ndim != 2 or rows.shape[0] != tokens.size:
        raise ValueError(
            f"pdf_rows {rows.shape} must be (n_atoms, n_bins) with one token per row ({tokens.size})"
        )
    if symbols is not None and len(symbols) != tokens.size:
        raise ValueError(f"{len(symbols)} symbols for {tokens.size} rows")
    keep = tokens != PAD_ID if drop_padding else np.ones(tokens.size, dtype=bool)
    if not keep.any():
        raise ValueError("every row is padding (token 0)")
    rows, kept_tokens = rows[keep], tokens[keep]
    if symbols is None:
        names = [VOCABULARY[t] if 0 <= t < len(VOCABULARY) else "?" for t in kept_tokens]
        ticks = [f"{name or 'pad'} ({t})" for name, t in zip(names, kept_tokens, strict=True)]
    else:
        ticks = [str(s) for s, k in zip(symbols, keep, strict=True) if k]
    n_atoms = rows.shape[0]
    fig = Figure(figsize=(7.0, min(1.6 + 0.22 * n_atoms, 12.0)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(
        rows,
        aspect="auto",
        interpolation="nearest",
        extent=(0.0, r_max, n_atoms - 0.5, -0.5),
        cmap="viridis",
    )
    step = max(1, int(np.ceil(n_atoms / 40)))  # at most ~40 labels
    ax.set_yticks(np.arange(0, n_atoms, step), ticks[::step], fontsize=7)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("atom (element token)")
    fig.colorbar(image, ax=ax, label=colorbar_label)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def atom_count_histogram(
    n_atoms: np.ndarray | Sequence[int],
    max_atoms: int,
    *,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Histogram of the number of atoms per crystal, with a dashed line at the model's ``max_atoms``.

    Args:
        n_atoms: ``(n,)`` atoms per unit cell (``len(atoms)``), positive integers.
        max_atoms: the padded input length; the legend says how many crystals have more atoms.

    Bins are integer-wide (one bar per atom count) when the largest count is ≤ 200, else 100 equal bins
    whose edges are half-integers.
    """
    counts = np.asarray(n_atoms, dtype=np.int64).ravel()
    if counts.size == 0:
        raise ValueError("no atom counts")
    largest = int(max(counts.max(), max_atoms))
    width = 1 if largest <= 200 else int(np.ceil(largest / 100))
    edges = np.arange(0.5, largest + width + 0.5, width)
    above = int((counts > max_atoms).sum())
    fig = Figure(figsize=(6.0, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.hist(counts, bins=edges, color="tab:blue", alpha=0.8, label=f"{counts.size} crystals")
    ax.axvline(
        max_atoms,
        color="black",
        ls="--",
        lw=1.2,
        label=f"max_atoms = {max_atoms} ({above} above, {100.0 * above / counts.size:.1f}%)",
    )
    ax.set_xlabel("atoms per unit cell")
    ax.set_ylabel("crystals")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def example_spectra(
    grid: np.ndarray,
    targets: np.ndarray,
    labels: Sequence[str],
    grid_unit: str = "",
    *,
    overlay: bool = False,
    ncols: int = 4,
    ylabel: str = "DOS",
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """A few target spectra on their grid: small multiples (default) or all in one panel (``overlay``).

    Args:
        grid: ``(n_grid,)`` or per-structure ``(n, n_grid)`` in ``grid_unit`` (``"cm^-1"`` for phonon
            DOS, ``"eV"`` for electronic DOS, ``"bin"``).
        targets: ``(n, n_grid)`` spectra in the target unit (``ylabel``).
        labels: ``n`` panel titles (overlay: legend entries), e.g. formula and id.
        ncols: panels per row of the small multiples.
    """
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim != 2 or targets.shape[0] != len(labels) or targets.shape[0] == 0:
        raise ValueError(
            f"targets {targets.shape} must be (n ≥ 1, n_grid) with one label each ({len(labels)})"
        )
    n = targets.shape[0]
    x = _row_grid(grid, n)
    if overlay:
        fig = Figure(figsize=(6.0, 3.6), layout="constrained")
        ax = fig.subplots()
        for i in range(n):
            ax.plot(x[i], targets[i], lw=1.4, label=str(labels[i]))
        ax.legend(fontsize=8)
        ax.set_xlabel(axis_label(grid_unit))
        ax.set_ylabel(ylabel)
    else:
        ncols = max(1, min(ncols, n))
        nrows = -(-n // ncols)
        fig = Figure(figsize=(2.8 * ncols, 2.2 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
        for slot, ax in enumerate(axes.flat):
            if slot >= n:
                ax.set_axis_off()
                continue
            ax.plot(x[slot], targets[slot], color="black", lw=1.3)
            ax.set_title(str(labels[slot]), fontsize=8.5)
            ax.tick_params(labelsize=7)
        fig.supxlabel(axis_label(grid_unit))
        fig.supylabel(ylabel)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)
