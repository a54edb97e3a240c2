"""What the paper notebooks show of an experiment, as one call each: figures and tables of an
:class:`~s2p_utils.experiment.ExperimentData` or a :class:`~s2p_utils.experiment.RunResult`.

The notebooks 02–04 tell the same story on different data (example targets, the network, the learning
curve, best/median/worst test spectra, the scores beside the published rows); the code that picks the rows
and arguments lives here, so no notebook repeats another's cells. Figures are built by
:mod:`s2p_utils.plots` / :mod:`s2p_utils.plots_inputs` and returned (show them inline; nothing is read back
from disk).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from s2p_utils import paths, plots, plots_inputs
from s2p_utils.evaluation import coverage_figure, evaluated_part
from s2p_utils.references import COLUMN_LABELS, comparison_table

__all__ = [
    "smoke_run",
    "example_targets",
    "describe_network",
    "learning_curve",
    "test_spectra",
    "published_comparison",
    "calibration_figure",
    "SMOKE_NOTE",
]

SMOKE_NOTE = "SMOKE RUN (a few dozen structures, 2 epochs): the numbers below are not results"


def smoke_run(smoke: bool | None) -> bool:
    """The notebook parameter ``smoke`` resolved (``None``: ``$S2P_SMOKE``); prints :data:`SMOKE_NOTE` if on."""
    resolved = paths.smoke_mode() if smoke is None else bool(smoke)
    if resolved:
        print(SMOKE_NOTE)
    return resolved


def example_targets(data: Any, n: int = 4, *, part: str = "train", seed: int = 0) -> Figure:
    """``n`` target spectra of ``part`` of an ``ExperimentData`` (random, fixed ``seed``), titled by formula and id."""
    dataset = data.dataset
    rows = data.parts[part]
    chosen = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False))
    grid = dataset.grids[chosen] if dataset.grids is not None else dataset.grid
    return plots_inputs.example_spectra(
        grid,
        dataset.targets[chosen],
        [f"{dataset.formulas[i]}  {dataset.ids[i]}" for i in chosen],
        dataset.grid_unit,
        ylabel=f"DOS ({dataset.unit})" if dataset.unit else "DOS",
        title=f"{dataset.name}: {len(chosen)} {part} spectra",
    )


def describe_network(config: Any) -> int:
    """Print the Keras summary of ``config``'s (untrained) network and return its number of weights."""
    from s2p_utils.model import build_model, count_parameters

    network = build_model(config)
    network.summary()
    count = count_parameters(network)
    print(f"{config.name}: {count:,} weights")
    return count


def learning_curve(result: Any) -> Figure | None:
    """Training and validation loss per epoch of the run's first member (``None``, with a note, if no log)."""
    if result.history is None or not len(result.history):
        print(f"{result.run_name}: no training log (model loaded without its checkpoints folder)")
        return None
    return plots.learning_curves(result.history, title=f"{result.run_name}: loss per epoch")


def test_spectra(result: Any) -> Figure:
    """Best, median and worst spectrum of the evaluated part (test by default): prediction against truth,
    with the calibrated ±1σ band for an ensemble (:func:`s2p_utils.plots.best_median_worst`)."""
    scored, dataset = evaluated_part(result.evaluation, result.data), result.data.dataset
    return plots.best_median_worst(
        scored.ids,
        scored.formulas,
        scored.grid,
        scored.targets,
        scored.predictions,
        std=scored.std,
        grid_unit=dataset.grid_unit,
        ylabel=f"DOS ({dataset.unit})" if dataset.unit else "DOS",
        title=f"{result.run_name}: {result.evaluation.evaluated_on} crystals by MAE",
    )


def published_comparison(
    metrics: Mapping[str, Any] | Mapping[str, Mapping[str, Any]], data: Any, *, smoke: bool = False
) -> pd.DataFrame:
    """Our scores (one run's, or label → scores) beside the published rows for ``data``'s dataset and
    split (:func:`s2p_utils.references.comparison_table`), with display headers; our rows are marked
    ``SMOKE`` when ``smoke``."""
    table = comparison_table(metrics, data.dataset.name, data.split)
    if smoke:
        table.loc[table["ours"], "model"] += " (SMOKE: not a result)"
    return table.drop(columns="ours").rename(columns=COLUMN_LABELS)


def calibration_figure(result: Any) -> Figure | None:
    """Observed against nominal coverage of μ ± zσ on the evaluated part for an ensemble (member spread
    and calibrated σ); ``None`` for a single network (:func:`s2p_utils.evaluation.coverage_figure`)."""
    return coverage_figure(result.evaluation, result.data, result.predictor.calibration, result.run_name)
