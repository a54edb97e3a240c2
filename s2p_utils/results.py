"""Result files under ``results/`` (or ``$S2P_RESULTS_DIR``).

``metrics/<run>.json``      one run: ``{"run", "metrics", "info", "versions", "git_commit", "timestamp"}``;
                            ``info`` holds what the caller passes (split name and sizes, preset, mode,
                            seed, epochs, seconds, ...). NaN/inf scores are written as ``null``.
``predictions/<run>.csv``   ``id,split,target,prediction`` (optionally ``std``); spectra as JSON lists.
``figures/<run>_<kind>.png`` figures (:func:`figure_path`).

All files are written atomically (temporary file in the same folder, then renamed), so an interrupted
run never leaves a half-written JSON or CSV behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from s2p_utils.paths import atomic_write_text
from s2p_utils.paths import results_dir as _results_dir

__all__ = [
    "write_metrics",
    "read_metrics",
    "write_predictions",
    "read_predictions",
    "figure_path",
    "collect_metrics",
    "versions",
    "git_commit",
    "spectrum_to_json",
]

_PACKAGES = ("struct2prop", "numpy", "scipy", "ase", "tensorflow", "tensorflow-cpu", "keras", "vesin")


def _check_run_name(run_name: str) -> str:
    if not run_name or any(sep in run_name for sep in ("/", "\\", os.sep)) or run_name.startswith("."):
        raise ValueError(f"run name {run_name!r} must be a plain file name (no path separators)")
    return run_name


def versions() -> dict[str, str]:
    """Python, platform and installed versions of the packages that shape the numbers.

    Read from package metadata, so TensorFlow is not imported.
    """
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit(repo: str | os.PathLike | None = None) -> str | None:
    """The checkout's ``HEAD`` commit (with ``-dirty`` when there are changes), or None outside git."""
    cwd = Path(repo) if repo else Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head or None


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, NaN/inf to None, paths to str."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_metrics(
    run_name: str, metrics: Mapping[str, Any], *, results_dir: str | os.PathLike | None = None, **info: Any
) -> Path:
    """Write ``metrics/<run_name>.json`` and return its path.

    Args:
        run_name: file stem, e.g. ``"e3nn_phdos_chen2021_fixed"``.
        metrics: flat ``{name: float}`` (see :func:`s2p_utils.metrics.spectrum_metrics`).
        results_dir: results folder (default :func:`s2p_utils.paths.results_dir`).
        **info: run description stored under ``"info"`` — e.g. ``preset``, ``split``,
            ``split_sizes={"train": n, ...}``, ``mode``, ``seed``, ``epochs``, ``seconds``.
    """
    _check_run_name(run_name)
    record = {
        "run": run_name,
        "metrics": _plain(dict(metrics)),
        "info": _plain(info),
        "versions": versions(),
        "git_commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = _results_dir(results_dir) / "metrics" / f"{run_name}.json"
    return atomic_write_text(path, json.dumps(record, indent=2, allow_nan=False) + "\n")


def read_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """One metrics JSON file as a dict (``null`` scores come back as NaN)."""
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    record["metrics"] = {k: float("nan") if v is None else v for k, v in record.get("metrics", {}).items()}
    return record


def spectrum_to_json(values: Sequence[float] | np.ndarray) -> str:
    """A spectrum as a compact JSON list: the shortest text that round-trips each float32 value.

    Non-finite values become ``null``.
    """
    row = np.asarray(values, dtype=np.float32).ravel()
    return "[" + ",".join(str(v) if np.isfinite(v) else "null" for v in row) + "]"


def _rows(values: np.ndarray | Sequence, n: int, what: str) -> list:
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} rows, expected {n} (one per id)")
    return list(values)


def write_predictions(
    run_name: str,
    ids: Sequence[str],
    splits: Sequence[str] | str,
    targets: np.ndarray | Sequence,
    predictions: np.ndarray | Sequence,
    *,
    results_dir: str | os.PathLike | None = None,
    std: np.ndarray | Sequence | None = None,
) -> Path:
    """Write ``predictions/<run_name>.csv`` with columns ``id,split,target,prediction`` and return its path.

    Args:
        ids: material ids, length ``n``.
        splits: split part of each row (``"train"``/``"val"``/``"test"``), or one string for all rows.
        targets, predictions: ``(n, n_grid)`` spectra (or ragged sequences), unscaled.
        std: optional ``(n, n_grid)`` ensemble standard deviation, written as a ``std`` column.
    """
    _check_run_name(run_name)
    n = len(ids)
    split_list = [splits] * n if isinstance(splits, str) else _rows(splits, n, "splits")
    columns = ["id", "split", "target", "prediction"]
    data = [
        list(map(str, ids)),
        split_list,
        _rows(targets, n, "targets"),
        _rows(predictions, n, "predictions"),
    ]
    if std is not None:
        columns.append("std")
        data.append(_rows(std, n, "std"))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in zip(*data, strict=True):
        writer.writerow([row[0], row[1], *(spectrum_to_json(v) for v in row[2:])])
    path = _results_dir(results_dir) / "predictions" / f"{run_name}.csv"
    return atomic_write_text(path, buffer.getvalue())


def read_predictions(path: str | os.PathLike):
    """A predictions CSV as a pandas DataFrame whose spectrum columns hold float64 arrays."""
    frame = pd.read_csv(path, dtype={"id": str, "split": str})
    for column in ("target", "prediction", "std", "grid"):
        if column in frame:
            frame[column] = [
                np.array([np.nan if v is None else v for v in json.loads(text)], dtype=np.float64)
                for text in frame[column]
            ]
    return frame


def figure_path(run_name: str, kind: str, results_dir: str | os.PathLike | None = None) -> Path:
    """``<results>/figures/<run_name>_<kind>.png`` (the folder is created)."""
    _check_run_name(run_name)
    folder = _results_dir(results_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{run_name}_{kind}.png"


def collect_metrics(results_dir: str | os.PathLike | None = None):
    """Every ``metrics/*.json`` as a pandas DataFrame, one row per run, sorted by run name.

    Columns: ``run``, the ``info`` fields (nested dicts flattened as ``split_sizes.train``), the metric names,
    ``git_commit``, ``timestamp`` and ``version.<package>``. An unreadable file is skipped with a warning.
    """
    folder = _results_dir(results_dir) / "metrics"
    rows = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = read_metrics(path)
        except (OSError, ValueError) as error:
            warnings.warn(f"skipping unreadable metrics file {path}: {error}", stacklevel=2)
            continue
        row: dict[str, Any] = {"run": record.get("run", path.stem)}
        info = pd.json_normalize(record.get("info", {}), sep=".").to_dict("records")
        row.update(info[0] if info else {})
        row.update(record.get("metrics", {}))
        row["git_commit"] = record.get("git_commit")
        row["timestamp"] = record.get("timestamp")
        row.update({f"version.{k}": v for k, v in record.get("versions", {}).items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values("run", ignore_index=True) if len(frame) else frame
