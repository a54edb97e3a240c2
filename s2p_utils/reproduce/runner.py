"""Run the notebooks of :data:`~s2p_utils.reproduce.runs.NOTEBOOK_RUNS` headless with papermill.

:func:`reproduce` asks the registry which datasets can be obtained, pairs every notebook run with its
dataset, executes them one by one into ``<results>/executed/`` (a failing notebook does not stop the
others) and writes ``<results>/README.md`` (:func:`s2p_utils.reproduce.report.render_readme`).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from s2p_utils import paths
from s2p_utils.data import registry
from s2p_utils.reproduce.report import render_readme
from s2p_utils.reproduce.runs import DATASETS, NOTEBOOK_RUNS, NotebookRun, RunOutcome

__all__ = [
    "check_obtainable",
    "notebooks_dir",
    "select_runs",
    "execute_notebook",
    "reproduce",
    "exit_status",
]

#: Variables the kernels read, saved before a reproduction and restored after it.
_KERNEL_ENV = ("S2P_RESULTS_DIR", "TF_CPP_MIN_LOG_LEVEL", "S2P_DATA_MIRROR", "S2P_CACHE_DIR")


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
    candidates.append(Path(__file__).resolve().parents[2] / "notebooks")
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
    import papermill  # the `notebooks` extra: only needed when a notebook actually runs

    papermill.execute_notebook(
        str(source),
        str(output),
        parameters=dict(parameters),
        kernel_name=kernel_name,
        cwd=str(cwd),
        progress_bar=False,
        log_output=False,
    )


def _probe_datasets(
    datasets: Sequence[str] | None, obtainable: Callable[[str], tuple[bool, str]], log: Callable[[str], None]
) -> dict[str, tuple[bool, str]]:
    """``obtainable(name)`` for every selected dataset (all of :data:`DATASETS` when none is given)."""
    status = {}
    for name in dict.fromkeys(datasets or DATASETS):
        log(f"[reproduce] checking dataset {name} ...")
        status[name] = obtainable(name)
        ok, reason = status[name]
        log(f"[reproduce]   {'obtainable' if ok else 'NOT obtainable: ' + _one_line(reason)}")
    return status


@contextmanager
def _kernel_environment(results: Path) -> Iterator[None]:
    """Point the kernels at ``results``; restore :data:`_KERNEL_ENV` afterwards."""
    saved = {key: os.environ.get(key) for key in _KERNEL_ENV}
    os.environ["S2P_RESULTS_DIR"] = str(results)  # the kernels write through s2p_utils.results into it
    # Kernels run in notebooks/: a relative mirror or cache path (e.g. ../shared/dos_datasets given to make)
    # must mean the same folder there as here.
    for key in ("S2P_DATA_MIRROR", "S2P_CACHE_DIR"):
        if os.environ.get(key):
            os.environ[key] = str(Path(os.environ[key]).expanduser().resolve())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_one(
    run: NotebookRun,
    dataset: str,
    runner: Callable[..., None],
    *,
    notebooks: Path,
    results: Path,
    log: Callable[[str], None],
) -> RunOutcome:
    """Execute one notebook run into ``<results>/executed/``; a failure becomes a ``"failed"`` outcome."""
    parameters = dict(run.parameters)
    if run.dataset is None:
        parameters["dataset"] = dataset
    target = results / "executed" / run.output
    log(f"[reproduce] {run.notebook} -> {target.relative_to(results)} {parameters}")
    start = time.monotonic()
    try:
        runner(notebooks / run.notebook, target, parameters, cwd=notebooks)
    except Exception as error:  # noqa: BLE001 - one failing notebook must not stop the others
        seconds = time.monotonic() - start
        message = _describe(error)
        log(f"[reproduce]   FAILED after {seconds:.0f} s: {_one_line(message)}")
        if os.environ.get("S2P_DEBUG"):
            traceback.print_exc()
        return RunOutcome(run, dataset, "failed", _one_line(message), message, target, seconds)
    seconds = time.monotonic() - start
    log(f"[reproduce]   ok in {seconds:.0f} s")
    return RunOutcome(run, dataset, "ok", executed=target, seconds=seconds)


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
    unknown = [name for name in datasets or () if name not in DATASETS]
    if unknown:
        raise ValueError(
            f"unknown dataset(s) {', '.join(unknown)}; `s2p reproduce` knows: {', '.join(DATASETS)}"
        )
    out = paths.results_dir(results_dir).resolve()
    (out / "executed").mkdir(parents=True, exist_ok=True)
    smoke = paths.smoke_mode()
    status = _probe_datasets(datasets, obtainable or check_obtainable, log)
    runs, outcomes = select_runs(datasets, status)
    if only is not None:
        keep = set(only)
        runs = [(run, dataset) for run, dataset in runs if run.output in keep]
    if runs:
        nb_dir = notebooks_dir(notebooks)
        with _kernel_environment(out):
            for run, dataset in runs:
                outcome = _run_one(
                    run, dataset, runner or execute_notebook, notebooks=nb_dir, results=out, log=log
                )
                outcomes.append(outcome)
    readme = out / "README.md"
    readme.write_text(render_readme(outcomes, out, smoke=smoke), encoding="utf-8")
    log(f"[reproduce] wrote {readme}")
    return outcomes, readme


def exit_status(outcomes: Sequence[RunOutcome]) -> int:
    """``1`` when some notebook was attempted and none succeeded, else ``0`` (no notebook could be run
    because no dataset was obtainable is reported in the README, not an error)."""
    attempted = [o for o in outcomes if o.run is not None]
    if attempted and not any(o.status == "ok" for o in attempted):
        return 1
    return 0
