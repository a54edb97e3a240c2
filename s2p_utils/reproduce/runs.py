"""What ``s2p reproduce`` runs: the notebooks, their papermill parameters, and what happened to each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DATASETS", "NotebookRun", "NOTEBOOK_RUNS", "RunOutcome"]

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
