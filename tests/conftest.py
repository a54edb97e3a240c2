"""Shared test fixtures: the offline data mirror and a scratch cache/results folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mirror_path() -> Path | None:
    """The data mirror: ``$S2P_DATA_MIRROR`` or ``../shared/dos_datasets`` beside the checkout."""
    candidates = [os.environ.get("S2P_DATA_MIRROR"), REPO.parent / "shared" / "dos_datasets"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "e3nn_phdos.json.gz").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def mirror() -> Path:
    """Path of the offline data mirror; skipped locally when absent, a failure in CI."""
    path = mirror_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but the data mirror (S2P_DATA_MIRROR or ../shared/dos_datasets) is missing")
        pytest.skip("data mirror not available (set S2P_DATA_MIRROR)")
    return path


@pytest.fixture()
def isolated_env(tmp_path, monkeypatch) -> Path:
    """Point the cache and results folders at a temporary directory."""
    monkeypatch.setenv("S2P_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("S2P_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path


@pytest.fixture()
def benchmark_script():
    """Load a script of ``benchmarks/`` (not a package) as a module: ``benchmark_script("levers")``."""
    import importlib.util

    folder = Path(__file__).resolve().parents[1] / "benchmarks"

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture()
def lever_csv():
    """Write a lever run's predictions CSV (``id,split,target,prediction``) of three crystals ``b, a, c``
    with targets ``[0, 1, .5]``, ``[1, 0, 0]``, ``[0, 0, 1]``: ``lever_csv(path, predictions, splits)``."""
    import json

    import pandas as pd

    def write(path: Path, predictions, splits=("val", "val", "test")) -> Path:
        target = [[0.0, 1.0, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        pd.DataFrame(
            {
                "id": ["b", "a", "c"],
                "split": list(splits),
                "target": [json.dumps(t) for t in target],
                "prediction": [json.dumps(p) for p in predictions],
            }
        ).to_csv(path, index=False)
        return path

    return write
