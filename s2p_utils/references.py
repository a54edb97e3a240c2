"""Published numbers to show beside ours: data, read by ``make reproduce``, the notebooks and the README.

Keys as in :mod:`s2p_utils.metrics`: ``mae``/``mse`` are per-spectrum means in the dataset's target units,
``r2`` the variance-weighted R²; ``*_renorm`` the same after re-normalising every prediction to maximum 1
(how Mat2Spec scores phonon DOS), ``r2_pooled_renorm`` the R² that Mat2Spec's Table 1 prints next to its
MaxNorm MSE (which R² definition it is is not stated; see :mod:`s2p_utils.metrics`), ``wasserstein`` the
W₁ distance in grid units (cm⁻¹) and ``omega_mae`` the mean-frequency error in cm⁻¹; these two do not
depend on how the spectra are scaled. ``None`` where the source does not give the value.

Mat2Spec's Table 1 (Kong et al., Nat. Commun. 13, 949 (2022)) scores the phonon DOS on Chen et al.'s test
list (the third list of ``200801_trteva_indices.pkl``: :mod:`s2p_utils.data.chen_split`), which is this
package's ``chen2021`` ``test`` part (151 of its 152 materials; gold is not in the e3nn data). Its SumNorm
rows print MSE/R² on another scale (MSE/(1 − R²) ≈ 0.060 against 0.077 for the MaxNorm rows), so MAE, MSE
and R² are compared with the MaxNorm rows only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

__all__ = ["Reference", "REFERENCES", "METRIC_KEYS", "COLUMN_LABELS", "references_for", "comparison_table"]

_KONG_TABLE1 = "Kong et al., Nat. Commun. 13, 949 (2022) (Mat2Spec), Table 1, phonon DOS"


@dataclass(frozen=True)
class Reference:
    """A published test-set number to show beside ours (see the module docstring for the keys)."""

    dataset: str
    split: str
    model: str
    source: str
    mae: float | None = None
    mse: float | None = None
    r2: float | None = None
    mae_renorm: float | None = None
    mse_renorm: float | None = None
    r2_pooled_renorm: float | None = None
    wasserstein: float | None = None
    omega_mae: float | None = None
    note: str = ""


#: Reference numbers, with where they were printed. Only numbers we could read in the source are listed.
REFERENCES: tuple[Reference, ...] = (
    Reference(
        dataset="e3nn_phdos",
        split="random73",
        model="struct2prop notebook (original)",
        mae=0.0870,
        mse=0.0271,
        source="dmamur/struct2prop add/embed_e3nn_phdos.ipynb @ b2c3ed94, printed `MAE_test: 0.08697912`, "
        "`MSE_test: 0.027115703`",
        note="RandomState(73) 80/10/10 split, 30 epochs, last-epoch weights, raw (max-normalised) phDOS",
    ),
    Reference(
        dataset="e3nn_phdos",
        split="chen2021",
        model="Mat2Spec (MaxNorm + MSE)",
        mae_renorm=0.086,
        mse_renorm=0.029,
        r2_pooled_renorm=0.63,
        wasserstein=33.0,
        omega_mae=26.2,
        source=f"{_KONG_TABLE1}, MaxNorm/MSE row",
        note="every prediction re-scaled to maximum 1 before scoring; the R² definition is not stated "
        "(s2p_utils.metrics gives three)",
    ),
    Reference(
        dataset="e3nn_phdos",
        split="chen2021",
        model="E3NN (Chen et al. 2021)",
        mae_renorm=0.094,
        mse_renorm=0.034,
        r2_pooled_renorm=0.56,
        wasserstein=39.0,
        omega_mae=30.9,
        source=_KONG_TABLE1,
        note="as reported by the Mat2Spec paper on the same split",
    ),
    Reference(
        dataset="e3nn_phdos",
        split="chen2021",
        model="Mat2Spec, best row per scale-free column",
        wasserstein=21.0,
        omega_mae=10.6,
        source=_KONG_TABLE1,
        note="the lowest W₁ and ω̄ error of any Mat2Spec configuration in the table (each from a different "
        "configuration)",
    ),
    Reference(
        dataset="mat2spec_edos",
        split="mat2spec",
        model="struct2prop notebook (original)",
        mae=3.9065,
        mse=85.222,
        source="dmamur/struct2prop embed_mat2spec.ipynb @ 0bafbf6b, printed `MAE_test: 3.906535303454442`, "
        "`MSE_test: 85.2221812868673`",
        note="raw eDOS units, MinMax scaler fitted on all data, weights after a resumed 128-epoch run",
    ),
)


def references_for(dataset: str, split: str) -> list[Reference]:
    """The published rows for ``dataset`` on ``split`` (empty when there are none)."""
    return [ref for ref in REFERENCES if ref.dataset == dataset and ref.split == split]


_DESCRIPTIVE = ("dataset", "split", "model", "source", "note")

#: The score columns a :class:`Reference` can fill, in Table-1 order; all are keys of
#: :func:`s2p_utils.metrics.spectrum_metrics` too.
METRIC_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Reference) if f.name not in _DESCRIPTIVE)

#: Display header of each column of :func:`comparison_table` (``table.rename(columns=COLUMN_LABELS)``).
COLUMN_LABELS: dict[str, str] = {
    "model": "model",
    "ours": "ours",
    "mae": "MAE",
    "mse": "MSE",
    "r2": "R² (var.-weighted)",
    "mae_renorm": "MAE (max-renorm.)",
    "mse_renorm": "MSE (max-renorm.)",
    "r2_pooled_renorm": "R² (pooled, max-renorm.)",
    "wasserstein": "W₁",
    "omega_mae": "ω̄ MAE (cm⁻¹)",
    "source": "source",
}


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def comparison_table(
    metrics: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    dataset: str,
    split: str,
    *,
    columns: Sequence[str] | None = None,
    keep_empty: bool = False,
) -> pandas.DataFrame:
    """Our test scores next to the published ones for ``dataset`` on ``split``, one row per model.

    Args:
        metrics: one run's scores (:func:`s2p_utils.metrics.spectrum_metrics`, or a row of
            ``metrics.csv``), shown as the row ``"struct2prop (this run)"``; or run label → scores for several
            runs (one row each, in the given order). Keys that are not score columns are ignored.
        dataset, split: which published rows to add (:func:`references_for`).
        columns: the score columns, default :data:`METRIC_KEYS` (MAE, MSE, R², their max-renormalised
            forms, W₁, ω̄ MAE; units as in the module docstring: target units, grid units = cm⁻¹, cm⁻¹).
        keep_empty: keep a score column that no row fills (default: drop it).

    Returns:
        A DataFrame with columns ``model``, ``ours`` (True for our runs), the score columns (float, NaN where
        a row has no value) and ``source`` (``"this run"`` for ours); our rows first, then the published
        ones in :data:`REFERENCES` order. Rename headers for display with :data:`COLUMN_LABELS`.
    """
    import pandas as pd

    columns = list(METRIC_KEYS if columns is None else columns)
    runs: Mapping[str, Mapping[str, Any]]
    if metrics and all(isinstance(value, Mapping) for value in metrics.values()):
        runs = metrics  # type: ignore[assignment]
    else:
        runs = {"struct2prop (this run)": metrics}
    rows = [
        {
            "model": str(name),
            "ours": True,
            **{k: _number(scores.get(k)) for k in columns},
            "source": "this run",
        }
        for name, scores in runs.items()
    ]
    rows += [
        {
            "model": ref.model,
            "ours": False,
            **{k: _number(getattr(ref, k, None)) for k in columns},
            "source": ref.source,
        }
        for ref in references_for(dataset, split)
    ]
    table = pd.DataFrame(rows, columns=["model", "ours", *columns, "source"])
    table[columns] = table[columns].astype("float64")
    if not keep_empty:
        table = table.drop(columns=[k for k in columns if table[k].isna().all()])
    return table
