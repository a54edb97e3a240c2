"""``benchmarks/levers.py --table``: one row per configuration (preset and overrides), seeds averaged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("pandas")

LEVERS = Path(__file__).resolve().parents[1] / "benchmarks" / "levers.py"


def _levers():
    spec = importlib.util.spec_from_file_location("levers", LEVERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _line(name, overrides, seed, mse, preset=None):
    scores = {key: mse for key in ("val_mse_renorm", "val_mae_renorm", "val_mae", "val_wasserstein")}
    line = {"name": name, "overrides": overrides, "seed": seed, **scores, "val_omega_mae": 10.0 * mse}
    line |= {"val_r2_pooled_renorm": 1 - mse, "val_r2": 1 - mse, "epochs": 100, "minutes": 1.0}
    return line if preset is None else {**line, "preset": preset}


def test_seeds_of_one_configuration_are_averaged_and_other_presets_kept_apart(tmp_path):
    levers = _levers()
    log = tmp_path / "levers.jsonl"
    lines = [
        _line("mass", ["featurizer=pdf_mass"], 0, 0.02),  # an old line: no preset logged → the default
        _line("mass_seed1", ["featurizer=pdf_mass"], 1, 0.04, preset=levers.DEFAULT_PRESET),
        _line("set_mass", ["featurizer=pdf_mass"], 0, 0.01, preset="e3nn_phdos_set"),
        _line("other", ["learning_rate=0.002"], 0, 0.05),
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    rows = levers.table(log).splitlines()[2:]
    assert len(rows) == 3
    assert rows[0].startswith(
        "| **set_mass** (chosen) | --preset e3nn_phdos_set featurizer=pdf_mass | 0.0100 |"
    )
    mass = next(row for row in rows if row.startswith("| mass |"))
    cells = [cell.strip() for cell in mass.split("|")]
    assert cells[2] == "featurizer=pdf_mass" and cells[3] == "0.0300"  # mean of seeds 0 and 1
    assert cells[-4] == "2"  # seeds column (then epochs, minutes)
