"""``s2p predict [MODEL] FILES... --out predictions.csv``: spectra for any crystal files.

Every file is read on its own; a bad file is reported on stderr with its reason and skipped, the others
are written to a CSV ``id,file,grid,prediction`` (plus ``std`` for an ensemble; spectra and grids as JSON
lists); the exit status is 1 when any file failed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from s2p_utils.data.structures import read_structures
from s2p_utils.paths import atomic_write_text
from s2p_utils.prediction import CHUNK_SIZE, UNCALIBRATED, Predictor, _file_id, load_predictor, parse_grid
from s2p_utils.results import spectrum_to_json
from s2p_utils.vocab import UNK_ID, element_tokens

__all__ = ["cmd_predict"]


def _reason(path: str, error: Exception) -> str:
    """``"FILE: reason"`` for a skipped file; errors other than ValueError keep their type name."""
    message = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    return message if message.startswith(str(path)) else f"{path}: {message}"


def _unknown_elements(atoms: Any) -> list[str]:
    """Symbols of ``atoms`` outside the 94-token vocabulary (fed to the network as ``[UNK]``), sorted."""
    symbols = atoms.get_chemical_symbols()
    tokens = element_tokens(symbols, unknown="unk")
    return sorted({symbol for symbol, token in zip(symbols, tokens, strict=True) if token == UNK_ID})


def _write_csv(path: Path, rows: list[list[str]], header: list[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def _read_files(
    files: Sequence[str], predictor: Predictor, truncate: bool, failures: list[str], n_jobs: int = 1
) -> list[tuple[str, Any]]:
    """Read and validate each file on its own (in ``n_jobs`` processes): ``(file, atoms)`` of the usable
    ones, in order.

    A file that cannot be read, is not a valid crystal, or has more atoms than ``max_atoms`` (without
    ``truncate``) adds ``"FILE: reason"`` to ``failures``; no error of one file stops the others.
    """
    good: list[tuple[str, Any]] = []
    for file, atoms in zip(
        files, read_structures(files, n_jobs=n_jobs, progress=len(files) >= 50), strict=True
    ):
        if isinstance(atoms, Exception):
            failures.append(_reason(file, atoms))
        elif not truncate and len(atoms) > predictor.max_atoms:
            failures.append(
                _reason(
                    file,
                    ValueError(
                        f"{len(atoms)} atoms exceed the model's max_atoms={predictor.max_atoms} (use --truncate)"
                    ),
                )
            )
        else:
            good.append((file, atoms))
    return good


def _predict_chunks(
    predictor: Predictor,
    good: list[tuple[str, Any]],
    truncate: bool,
    batch_size: int | None,
    failures: list[str],
) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
    """Spectra of ``good`` (index → ``(mean, std)`` float32 ``(n_out,)``), chunk by chunk.

    A chunk that fails to featurise is retried one structure at a time, and the culprits are added to
    ``failures`` as ``"FILE: reason"``.
    """
    rows: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    for start in range(0, len(good), CHUNK_SIZE):
        chunk = list(range(start, min(start + CHUNK_SIZE, len(good))))
        try:
            inputs = predictor.inputs([good[i][1] for i in chunk], truncate=truncate)
            usable = chunk
        except Exception:
            usable, parts = [], []  # find the culprit(s) one structure at a time
            for i in chunk:
                try:
                    parts.append(predictor.inputs([good[i][1]], truncate=truncate))
                    usable.append(i)
                except Exception as error:
                    failures.append(_reason(good[i][0], error))
            inputs = {key: np.concatenate([p[key] for p in parts]) for key in (parts[0] if parts else {})}
        if not usable:
            continue
        mean, std = predictor.run(inputs, batch_size=batch_size)
        for row, i in enumerate(usable):
            rows[i] = (mean[row], None if std is None else std[row])
    return rows


def _check_out(out: Path) -> Path:
    """``--out`` must name a file: refuse a directory before any work is done."""
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give the path of the CSV file to write")
    return out


def cmd_predict(args: Any) -> int:
    """``s2p predict MODEL FILES... --out predictions.csv [--truncate] [--batch-size N] [--grid G] [--n-jobs J]``.

    Reads each file on its own (``--n-jobs`` processes); a file that cannot be read, is not a valid structure, has more atoms than
    the model's ``max_atoms`` (without ``--truncate``) or cannot be featurised is reported on stderr as
    ``FILE: reason`` and skipped. Writes the others to ``--out``: columns ``id,file,grid,prediction``,
    for an ensemble ``std`` and ``std_calibrated`` (``false`` when the folder has no ``calibration.json``:
    σ is then the raw member spread, with a warning), then ``unknown_elements`` (elements fed as
    ``[UNK]``, named on stderr too) and ``truncated_from`` (the atom count of a structure cut to
    ``max_atoms`` by ``--truncate``). Returns 1 when any file failed, else 0. When no file gives a
    prediction, ``--out`` is left untouched (an existing file is never replaced by an empty one).
    """
    out = _check_out(Path(args.out))
    batch_size = getattr(args, "batch_size", None)  # None: the model record's predict_batch_size
    predictor = load_predictor(args.model)
    grid = parse_grid(getattr(args, "grid", None))
    if grid is not None:
        if not predictor.grid_input:
            raise ValueError(
                f"{args.model}: --grid applies only to models that take the grid as input; this one predicts "
                "on the fixed grid it was trained on (written in the grid column)"
            )
        predictor = predictor.with_grid(grid)
    if predictor.grid is None:
        raise ValueError(
            f"{args.model}: the model takes the grid as input and stores none; pass --grid START:STOP:N"
        )
    truncate = bool(getattr(args, "truncate", False))
    failures: list[str] = []
    good = _read_files(args.files, predictor, truncate, failures, int(getattr(args, "n_jobs", 1) or 1))
    with warnings.catch_warnings():  # named per file below instead
        warnings.filterwarnings("ignore", message=".*outside the 94-token vocabulary")
        mean_rows = _predict_chunks(predictor, good, truncate, batch_size, failures)

    ensemble = predictor.ensemble
    calibrated = predictor.calibration is not None
    header = ["id", "file", "grid", "prediction"] + (["std", "std_calibrated"] if ensemble else [])
    header += ["unknown_elements", "truncated_from"]
    grid_text = json.dumps([float(x) for x in predictor.grid])
    rows, notes = [], []
    for i, (file, atoms) in enumerate(good):
        if i not in mean_rows:
            continue
        mean, std = mean_rows[i]
        unknown = _unknown_elements(atoms)
        if unknown:
            notes.append(f"{file}: element(s) {' '.join(unknown)} outside the vocabulary, predicted as [UNK]")
        row = [_file_id(file), str(file), grid_text, spectrum_to_json(mean)]
        row += [spectrum_to_json(std), str(calibrated).lower()] if ensemble else []
        row += [" ".join(unknown), str(len(atoms)) if len(atoms) > predictor.max_atoms else ""]
        rows.append(row)
    for message in failures:
        print(f"s2p predict: skipped {message}", file=sys.stderr)
    for message in notes:
        print(f"s2p predict: warning: {message} (column unknown_elements)", file=sys.stderr)
    if ensemble and not calibrated:
        print(f"s2p predict: warning: {args.model}: {UNCALIBRATED} (column std_calibrated)", file=sys.stderr)
    if not rows:
        print(f"s2p predict: no prediction written; {out} left unchanged", file=sys.stderr)
        return 1
    _write_csv(out, rows, header)
    print(f"wrote {len(rows)} prediction(s) to {out}; {len(failures)} file(s) failed", file=sys.stderr)
    return 1 if failures else 0
