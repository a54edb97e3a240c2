"""``s2p reproduce``: run the paper notebooks headless and tabulate every metric beside the published ones.

For each selected dataset the registry is asked first whether the data can be obtained (cache, offline
mirror ``$S2P_DATA_MIRROR`` or download). The notebooks that need an obtainable dataset are executed in
order with papermill into ``<results>/executed/``; each writes its metrics, predictions and figures under
``<results>/`` through :mod:`s2p_utils.results`. Finally ``<results>/README.md`` gets

- one row per run with our metrics, followed by the reference numbers for the same dataset and split
  (the original struct2prop notebooks' printed outputs and the peers' published values, see
  :data:`s2p_utils.references.REFERENCES`);
- one "not run" row per dataset that could not be obtained, with the reason;
- the featurization timings of notebook 01 and links to every figure and executed notebook.

Exit status: ``0`` when at least one notebook ran successfully, or when no selected dataset could be
obtained at all (that is reported, not an error: ``make reproduce`` without a mirror and offline writes a
README that lists every dataset as not obtainable); ``1`` when every obtainable notebook failed.

With ``S2P_SMOKE=1`` every notebook trains on a few dozen structures for 2 epochs; the README then
states in its title and in every row that the numbers are smoke-test numbers, not results.

The parts: :mod:`.runs` (which notebooks run, with which papermill parameters), :mod:`.runner` (dataset
checks and execution) and :mod:`.report` (the README).
"""

from __future__ import annotations

from s2p_utils.references import REFERENCES, Reference
from s2p_utils.reproduce.report import render_readme
from s2p_utils.reproduce.runner import (
    check_obtainable,
    execute_notebook,
    exit_status,
    notebooks_dir,
    reproduce,
    select_runs,
)
from s2p_utils.reproduce.runs import DATASETS, NOTEBOOK_RUNS, NotebookRun, RunOutcome

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
    "exit_status",
]
