"""``s2p reproduce``: run the paper notebooks headless and tabulate every metric beside the published ones.

For each selected dataset the registry is asked first whether the data can be obtained (cache, offline
mirror ``$S2P_DATA_MIRROR`` or download). The notebooks that need an obtainable dataset are executed in
order with papermill into ``<results>/executed/``; each writes its metrics, predictions and figures under
``<results>/`` through :mod:`s2p_utils.results`. Finally ``<results>/README.md`` gets

- one row per run with our metrics, followed by the reference numbers for the same dataset and split
  (the original struct2prop notebooks' printed outputs and the peers' published values, see
  :data:`REFERENCES`);
- one "not run" row per dataset that could not be obtained, with the reason;
- the featurization timings of notebook 01 and links to every figure and executed notebook.

Exit status: ``0`` when at least one notebook ran successfully, or when no selected dataset could be
obtained at all (that is reported, not an error: ``make reproduce`` without a mirror and offline writes a
README that lists every dataset as not obtainable); ``1`` when every obtainable notebook failed.

With ``S2P_SMOKE=1`` every notebook trains on a few dozen structures for 2 epochs; the README then
states in its title and in every row that the numbers are smoke-test numbers, not results.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2p_utils import __version__, paths
from s2p_utils.references import REFERENCES, Reference

__all__ = [
    "Reference",
    "REFERENCES",
    "NotebookRun",
    "NOTEBOOK_RUNS",
    "DATASETS",
    "RunOutcome",
    "check_obtainable",
    "notebooks_dir",
    "select_runs",
    "execute_notebook",
    "reproduce",
    "render_readme",
]


# ----------------------------------------------------------------------------------------------------------
# What runs
# ----------------------------------------------------------------------------------------------------------

#: Datasets ``s2p reproduce`` knows, in the order they are checked.
DATASETS: tuple[str, ...] = ("e3nn_phdos", "mat2spec_edos")


@dataclass(frozen=True)
class NotebookRun:
    """One papermill execution of a notebook.

    ``dataset`` is the registry dataset the notebook needs; ``None`` means "any": the first selected,
    obtainable dataset (notebook 01 only describes inputs). ``run_name`` is the metrics file the notebook
    writes (``results/metrics/<run_name>.json``); ``output`` the executed notebook's file name.
    """

    notebook: str
    dataset: str | None
    parameters: Mapping[str, Any]
    run_name: str
    output: str
    title: str


NOTEBOOK_RUNS: tuple[NotebookRun, ...] = (
    NotebookRun(
        notebook="01_create_input_data.ipynb",
        dataset=None,
        parameters={"run_name": "01_create_input_data"},
        run_name="01_create_input_data",
        output="01_create_input_data.ipynb",
        title="inputs: ASE PDF vs simple RDF, timings, max_atoms",
    ),
    NotebookRun(
        notebook="02_embed_mat2spec.ipynb",
        dataset="mat2spec_edos",
        parameters={"split": "mat2spec", "mode": "fixed", "run_name": "mat2spec_edos_mat2spec_fixed"},
        run_name="mat2spec_edos_mat2spec_fixed",
        output="02_embed_mat2spec.ipynb",
        title="eDOS, Mat2Spec, ASE PDF",
    ),
    NotebookRun(
        notebook="03_embed_mat2spec_simpleRDF.ipynb",
        dataset="mat2spec_edos",
        parameters={
            "split": "mat2spec",
            "mode": "fixed",
            "run_name": "mat2spec_edos_simple_rdf_mat2spec_fixed",
            "baseline_run": "mat2spec_edos_mat2spec_fixed",
        },
        run_name="mat2spec_edos_simple_rdf_mat2spec_fixed",
        output="03_embed_mat2spec_simpleRDF.ipynb",
        title="eDOS, Mat2Spec, simple RDF",
    ),
    NotebookRun(
        notebook="04_embed_phdos.ipynb",
        dataset="e3nn_phdos",
        parameters={"split": "chen2021", "mode": "fixed", "run_name": "e3nn_phdos_chen2021_fixed"},
        run_name="e3nn_phdos_chen2021_fixed",
        output="04_embed_phdos.ipynb",
        title="phonon DOS, e3nn, chen2021 split",
    ),
    NotebookRun(
        notebook="04_embed_phdos.ipynb",
        dataset="e3nn_phdos",
        # The original notebook: legacy PDF and training, RandomState(73) split; legacy mode trains the
        # notebook's 30 epochs (preset ``legacy_epochs``).
        parameters={"split": "random73", "mode": "legacy", "run_name": "e3nn_phdos_random73_legacy"},
        run_name="e3nn_phdos_random73_legacy",
        output="04_embed_phdos_random73_legacy.ipynb",
        title="phonon DOS, e3nn, original random split (legacy recipe)",
    ),
    NotebookRun(
        notebook="04_embed_phdos.ipynb",
        dataset="e3nn_phdos",
        # Beyond the paper: same network family, element descriptors, atom-order augmentation, 5-member
        # ensemble with uncertainty (preset e3nn_phdos_plus; benchmarks/README.md).
        parameters={
            "preset": "e3nn_phdos_plus",
            "split": "chen2021",
            "mode": "fixed",
            "run_name": "e3nn_phdos_plus_chen2021_fixed",
        },
        run_name="e3nn_phdos_plus_chen2021_fixed",
        output="04_embed_phdos_plus.ipynb",
        title="phonon DOS, e3nn, chen2021 split, e3nn_phdos_plus ensemble (beyond the paper)",
    ),
)


@dataclass
class RunOutcome:
    """What happened to one :class:`NotebookRun` (or to a dataset that could not be obtained)."""

    run: NotebookRun | None
    dataset: str
    status: str  # "ok", "failed", "not run"
    reason: str = ""  # one line, for the table
    detail: str = ""  # the full message, for the section below the table
    executed: Path | None = None
    seconds: float | None = None


# ----------------------------------------------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------------------------------------------


def _one_line(error: BaseException | str, limit: int = 240) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(error: BaseException) -> str:
    """``Type: message``; for a failing notebook cell (papermill) the cell's own exception."""
    if hasattr(error, "ename") and hasattr(error, "evalue"):
        return f"{error.ename}: {error.evalue} (cell {getattr(error, 'exec_count', '?')})"
    return f"{type(error).__name__}: {error}"


def check_obtainable(name: str) -> tuple[bool, str]:
    """Whether dataset ``name`` can be obtained now (cache, mirror or download), and why not.

    Uses ``s2p_utils.data.registry.is_obtainable`` when the registry provides it; otherwise loads the
    dataset (which prepares and caches it for the notebooks) and reports any error as the reason. A
    failed download counts as "not obtainable".
    """
    from s2p_utils.data import registry

    probe = getattr(registry, "is_obtainable", None)
    if probe is not None:
        try:
            ok, reason = probe(name)
        except Exception as error:  # noqa: BLE001 - any failure means "cannot obtain"
            return False, _describe(error)
        return bool(ok), str(reason or "")
    try:
        registry.load(name)
    except Exception as error:  # noqa: BLE001 - offline, no mirror, checksum mismatch, ...
        return False, _describe(error)
    return True, ""


def notebooks_dir(override: str | os.PathLike | None = None) -> Path:
    """The folder of the paper notebooks: ``override``, ``$S2P_NOTEBOOKS_DIR``, ``./notebooks`` or the
    checkout beside an editable install."""
    candidates = [override, os.environ.get("S2P_NOTEBOOKS_DIR"), Path.cwd() / "notebooks"]
    candidates.append(Path(__file__).resolve().parents[1] / "notebooks")
    for candidate in candidates:
        if candidate and (Path(candidate) / NOTEBOOK_RUNS[0].notebook).is_file():
            return Path(candidate).resolve()
    raise FileNotFoundError(
        "cannot find the notebooks folder (looked in $S2P_NOTEBOOKS_DIR, ./notebooks and the source checkout); "
        "run `s2p reproduce` from the repository root"
    )


def select_runs(
    datasets: Sequence[str] | None, obtainable: Mapping[str, tuple[bool, str]]
) -> tuple[list[tuple[NotebookRun, str]], list[RunOutcome]]:
    """Pair each notebook run with the dataset it will use; list the datasets that cannot be obtained.

    ``datasets`` are the selected names (``None``: all of :data:`DATASETS`); ``obtainable`` maps each
    selected name to :func:`check_obtainable`'s answer. Returns ``(runs, not_run)``.
    """
    selected = list(dict.fromkeys(DATASETS if not datasets else datasets))
    available = [name for name in DATASETS if name in selected and obtainable[name][0]]  # e3nn_phdos first
    runs: list[tuple[NotebookRun, str]] = []
    for run in NOTEBOOK_RUNS:
        if run.dataset is None:
            if available:
                runs.append((run, available[0]))
        elif run.dataset in available:
            runs.append((run, run.dataset))
    not_run = [
        RunOutcome(
            run=None,
            dataset=name,
            status="not run",
            reason=f"not obtainable: {_one_line(obtainable[name][1])}",
            detail=obtainable[name][1],
        )
        for name in selected
        if not obtainable[name][0]
    ]
    return runs, not_run


def execute_notebook(
    source: Path, output: Path, parameters: Mapping[str, Any], *, cwd: Path, kernel_name: str = "python3"
) -> None:
    """Execute ``source`` with papermill into ``output`` (papermill raises on a failing cell)."""
    import papermill

    papermill.execute_notebook(
        str(source),
        str(output),
        parameters=dict(parameters),
        kernel_name=kernel_name,
        cwd=str(cwd),
        progress_bar=False,
        log_output=False,
    )


def reproduce(
    datasets: Sequence[str] | None = None,
    *,
    results_dir: str | os.PathLike | None = None,
    notebooks: str | os.PathLike | None = None,
    only: Iterable[str] | None = None,
    runner: Callable[..., None] | None = None,
    obtainable: Callable[[str], tuple[bool, str]] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[RunOutcome], Path]:
    """Run the notebooks for ``datasets`` and write ``<results>/README.md``.

    ``only`` restricts to these executed-notebook names (``NotebookRun.output``), e.g. for tests.
    ``runner(source, output, parameters, cwd=...)`` executes one notebook (default
    :func:`execute_notebook`); ``obtainable(name)`` answers like :func:`check_obtainable` (the default).
    Returns the outcomes (not-obtainable datasets first) and the README path.
    """
    runner = runner or execute_notebook
    obtainable = obtainable or check_obtainable
    unknown = [name for name in datasets or () if name not in DATASETS]
    if unknown:
        raise ValueError(
            f"unknown dataset(s) {', '.join(unknown)}; `s2p reproduce` knows: {', '.join(DATASETS)}"
        )
    out = paths.results_dir(results_dir).resolve()
    executed_dir = out / "executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    smoke = paths.smoke_mode()

    status = {}
    for name in dict.fromkeys(datasets or DATASETS):
        log(f"[reproduce] checking dataset {name} ...")
        status[name] = obtainable(name)
        log(
            f"[reproduce]   {'obtainable' if status[name][0] else 'NOT obtainable: ' + _one_line(status[name][1])}"
        )
    runs, outcomes = select_runs(datasets, status)
    if only is not None:
        keep = set(only)
        runs = [(run, dataset) for run, dataset in runs if run.output in keep]

    nb_dir = notebooks_dir(notebooks) if runs else None
    saved_env = {
        key: os.environ.get(key)
        for key in ("S2P_RESULTS_DIR", "TF_CPP_MIN_LOG_LEVEL", "S2P_DATA_MIRROR", "S2P_CACHE_DIR")
    }
    os.environ["S2P_RESULTS_DIR"] = str(out)  # the kernels write through s2p_utils.results into `out`
    # Kernels run in notebooks/: a relative mirror or cache path (e.g. ../shared/dos_datasets given to make)
    # must mean the same folder there as here.
    for key in ("S2P_DATA_MIRROR", "S2P_CACHE_DIR"):
        if os.environ.get(key):
            os.environ[key] = str(Path(os.environ[key]).expanduser().resolve())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        for run, dataset in runs:
            parameters = dict(run.parameters)
            if run.dataset is None:
                parameters["dataset"] = dataset
            target = executed_dir / run.output
            log(f"[reproduce] {run.notebook} -> {target.relative_to(out)} {parameters}")
            start = _dt.datetime.now()
            try:
                runner(nb_dir / run.notebook, target, parameters, cwd=nb_dir)
            except Exception as error:  # noqa: BLE001 - one failing notebook must not stop the others
                seconds = (_dt.datetime.now() - start).total_seconds()
                outcomes.append(
                    RunOutcome(
                        run, dataset, "failed", _one_line(_describe(error)), _describe(error), target, seconds
                    )
                )
                log(f"[reproduce]   FAILED after {seconds:.0f} s: {_one_line(_describe(error))}")
                if os.environ.get("S2P_DEBUG"):
                    traceback.print_exc()
                continue
            seconds = (_dt.datetime.now() - start).total_seconds()
            outcomes.append(RunOutcome(run, dataset, "ok", executed=target, seconds=seconds))
            log(f"[reproduce]   ok in {seconds:.0f} s")
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    readme = out / "README.md"
    readme.write_text(render_readme(outcomes, out, smoke=smoke), encoding="utf-8")
    log(f"[reproduce] wrote {readme}")
    return outcomes, readme


# ----------------------------------------------------------------------------------------------------------
# The README
# ----------------------------------------------------------------------------------------------------------

_BOOKKEEPING = {"run", "run_name", "git_commit", "timestamp"}
_METRIC_COLUMNS = (
    ("mae", "MAE"),
    ("mse", "MSE"),
    ("r2", "R² (var.-weighted)"),
    ("mae_renorm", "MAE (max-renorm.)"),
    ("mse_renorm", "MSE (max-renorm.)"),
    ("r2_pooled_renorm", "R² (pooled, max-renorm.)"),
    ("r2_spectrum_renorm", "R² (per-spectrum var., max-renorm.)"),
    ("wasserstein", "W₁"),
    ("omega_mae", "ω̄ MAE (cm⁻¹)"),
    ("within_1sigma_active", "within ±1σ (active points)"),
    ("within_2sigma_active", "within ±2σ (active points)"),
    ("baseline_mae", "MAE of the train-mean spectrum"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "–"
    return f"{number:.4g}"


def _metrics_by_run(results_dir: Path) -> dict[str, dict[str, Any]]:
    """``run_name`` → its metrics row, from :func:`s2p_utils.results.collect_metrics`."""
    from s2p_utils.results import collect_metrics

    table = collect_metrics(results_dir)
    if table is None or len(table) == 0:
        return {}
    key = next((c for c in ("run_name", "run") if c in table.columns), None)
    if key is None:
        return {}
    return {str(row[key]): row for row in table.to_dict("records")}


def _figures(results_dir: Path, run_name: str) -> list[Path]:
    folder = results_dir / "figures"
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{run_name}_*.png"))


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_readme(outcomes: Sequence[RunOutcome], results_dir: Path, *, smoke: bool) -> str:
    """The Markdown of ``results/README.md`` for ``outcomes`` (metrics read from ``results_dir``)."""
    results_dir = Path(results_dir)
    metrics = _metrics_by_run(results_dir)
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    smoke_tag = " (SMOKE TEST)" if smoke else ""
    lines = [f"# struct2prop reproduction{smoke_tag}", ""]
    if smoke:
        lines += [
            "> **Smoke run (`S2P_SMOKE=1`): every model was trained on a few dozen structures for 2 epochs.**",
            "> The numbers below only show that the pipeline runs end to end; they are **not results** and",
            "> must not be compared with the published values.",
            "",
        ]
    lines += [
        f"Generated by `s2p reproduce` (struct2prop {__version__}, Python {sys.version.split()[0]}) on {when}.",
        "Our metrics are test-set means over spectra of the per-spectrum error, in the dataset's target units",
        "(see `s2p_utils.metrics`); reference rows are the numbers printed by the original notebooks and by the",
        "peers' papers, with their sources below the table. The last column is the trivial model that predicts",
        "the mean training spectrum for every material: a model is only useful where it beats that.",
        "",
        "## Metrics",
        "",
        "| notebook | dataset | split | mode | model | "
        + " | ".join(label for _, label in _METRIC_COLUMNS)
        + " | status |",
        "|---|---|---|---|---|" + "---|" * len(_METRIC_COLUMNS) + "---|",
    ]
    shown_references: list[Reference] = []
    n_metric = len(_METRIC_COLUMNS)
    for outcome in outcomes:
        if outcome.run is None:
            skipped = ", ".join(
                dict.fromkeys(r.notebook[:2] for r in NOTEBOOK_RUNS if r.dataset == outcome.dataset)
            )
            lines.append(
                f"| {skipped or '–'} | {outcome.dataset} | – | – | – | "
                + "– | " * n_metric
                + f"**not run**: {_cell(outcome.reason)} |"
            )
            continue
        run = outcome.run
        row = metrics.get(run.run_name)
        if run.notebook.startswith("01_"):
            continue  # notebook 01 trains nothing: see the featurization section
        split = run.parameters.get("split", "–")
        mode = run.parameters.get("mode", "–")
        # A failed run shows no numbers, even if an older metrics file of the same name exists.
        values = [_fmt(row.get(key)) if row and outcome.status == "ok" else "–" for key, _ in _METRIC_COLUMNS]
        if outcome.status == "ok":
            row_smoke = bool(row.get("smoke")) if row and row.get("smoke") is not None else smoke
            status = "smoke (not a result)" if row_smoke else "ok"
            if row is None:
                status += "; no metrics file written"
        else:
            status = f"**failed**: {_cell(outcome.reason)}"
        link = outcome.executed.relative_to(results_dir).as_posix() if outcome.executed else run.notebook
        lines.append(
            f"| [{run.notebook[:2]}]({link}) | {outcome.dataset} | {split} | {mode} | "
            f"struct2prop `{run.parameters.get('preset', outcome.dataset)}` (this run) | "
            + " | ".join(values)
            + f" | {status} |"
        )
        for reference in REFERENCES:
            if reference.dataset == outcome.dataset and reference.split == split:
                if reference not in shown_references:
                    shown_references.append(reference)
                number = shown_references.index(reference) + 1
                lines.append(
                    f"| | {reference.dataset} | {reference.split} | published | {reference.model} [{number}] | "
                    + " | ".join(_fmt(getattr(reference, key, None)) for key, _ in _METRIC_COLUMNS)
                    + " | reference |"
                )
    if shown_references:
        lines += ["", "References:", ""]
        for number, reference in enumerate(shown_references, start=1):
            note = f" — {reference.note}" if reference.note else ""
            lines.append(f"{number}. {reference.model}: {reference.source}{note}.")

    missing = [o for o in outcomes if o.run is None]
    if missing:
        lines += ["", "## Not run", ""]
        for outcome in missing:
            lines += [
                f"**{outcome.dataset}** could not be obtained:",
                "",
                "```",
                outcome.detail.strip(),
                "```",
                "",
            ]
        lines += [
            "Provide the data through an offline mirror (`S2P_DATA_MIRROR=…`, see `data/README.md`) or a network",
            "connection, then run `make reproduce DATASETS=<name>` again.",
        ]

    inputs = [o for o in outcomes if o.run is not None and o.run.notebook.startswith("01_")]
    for outcome in inputs:
        row = metrics.get(outcome.run.run_name) if outcome.run else None
        lines += ["", f"## Model inputs (notebook 01, {outcome.dataset})", ""]
        if outcome.status != "ok":
            lines.append(f"**failed**: {_cell(outcome.reason)}")
            continue
        if not row:
            lines.append("No metrics file was written.")
            continue
        lines += ["| quantity | value |", "|---|---|"]
        for key, value in row.items():
            if key in _BOOKKEEPING or key.startswith("version.") or value is None:
                continue
            if isinstance(value, dict | list):
                continue
            if isinstance(value, float) and math.isnan(value):
                continue
            lines.append(f"| {_cell(key)} | {_cell(_fmt(value) if isinstance(value, float) else value)} |")

    figure_lines = []
    for outcome in outcomes:
        if outcome.run is None or outcome.status != "ok":
            continue
        for figure in _figures(results_dir, outcome.run.run_name):
            rel = figure.relative_to(results_dir).as_posix()
            figure_lines += [f"### {figure.stem}", "", f"![{figure.stem}]({rel})", ""]
    if figure_lines:
        lines += ["", "## Figures", ""] + figure_lines[:-1]

    ran = [o for o in outcomes if o.run is not None]
    if ran:
        lines += ["", "## Executed notebooks", ""]
        for outcome in ran:
            seconds = f", {outcome.seconds:.0f} s" if outcome.seconds is not None else ""
            link = outcome.executed.relative_to(results_dir).as_posix() if outcome.executed else "–"
            lines.append(f"- [{link}]({link}) — {outcome.run.title} ({outcome.status}{seconds})")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------


def exit_status(outcomes: Sequence[RunOutcome]) -> int:
    """``1`` when some notebook was attempted and none succeeded, else ``0`` (see the module docstring)."""
    attempted = [o for o in outcomes if o.run is not None]
    if attempted and not any(o.status == "ok" for o in attempted):
        return 1
    return 0
