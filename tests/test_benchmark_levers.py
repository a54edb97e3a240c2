"""``benchmarks/levers.py --table``: one row per configuration (preset and overrides), seeds averaged."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pandas")


def _line(name, overrides, seed, mse, preset=None):
    scores = {key: mse for key in ("val_mse_renorm", "val_mae_renorm", "val_mae", "val_wasserstein")}
    line = {"name": name, "overrides": overrides, "seed": seed, **scores, "val_omega_mae": 10.0 * mse}
    line |= {"val_r2_pooled_renorm": 1 - mse, "val_r2": 1 - mse, "epochs": 100, "minutes": 1.0}
    return line if preset is None else {**line, "preset": preset}


def test_seeds_of_one_configuration_are_averaged_and_other_presets_kept_apart(tmp_path, benchmark_script):
    levers = benchmark_script("levers")
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


def test_min_seeds_ranks_only_configurations_run_with_enough_seeds(tmp_path, benchmark_script):
    levers = benchmark_script("levers")
    log = tmp_path / "levers.jsonl"
    lines = [
        _line("lucky", ["lstm_units=384"], 0, 0.01),  # best scores, one seed only
        _line("base", [], 0, 0.03),
        _line("base_s1", [], 1, 0.03),
        _line("better", ["output_norm=max"], 0, 0.02),
        _line("better_s1", ["output_norm=max"], 1, 0.02),
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert levers.table(log).splitlines()[2].startswith("| **lucky** (chosen) |")
    rows = levers.table(log, min_seeds=2).splitlines()[2:]
    assert rows[0].startswith("| **better** (chosen) | output_norm=max |")
    assert rows[1].startswith("| base |")
    lucky = [cell.strip() for cell in rows[2].split("|")]
    assert (
        lucky[1] == "lucky" and lucky[-5] == "–"
    )  # listed, not ranked (mean rank, then seeds, epochs, minutes)


def test_runs_on_fewer_training_crystals_are_their_own_configuration(tmp_path, benchmark_script):
    """``--n-train N`` (a learning-curve point) is logged and kept apart from the full training set."""
    levers = benchmark_script("levers")
    log = tmp_path / "levers.jsonl"
    lines = [
        _line("full", [], 0, 0.02),
        {**_line("n300", [], 0, 0.04), "n_train": 300},
        {**_line("n300_s1", [], 1, 0.06), "n_train": 300},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    rows = levers.table(log).splitlines()[2:]
    assert len(rows) == 2
    n300 = [cell.strip() for cell in next(row for row in rows if "n300" in row).split("|")]
    assert n300[2] == "--n-train 300" and n300[3] == "0.0500" and n300[-4] == "2"
    full = [cell.strip() for cell in next(row for row in rows if "full" in row).split("|")]
    assert full[2] == "–" and full[3] == "0.0200"


def test_potential_labelled_runs_are_kept_apart_by_count_and_frequency_scale(tmp_path, benchmark_script):
    """``--mlip-labels K --mlip-scale S [--mlip-compounds] [--pretrain]`` are part of the configuration; a scale of 1 is not
    printed."""
    levers = benchmark_script("levers")
    log = tmp_path / "levers.jsonl"
    lines = [
        _line("full", [], 0, 0.02),
        {**_line("m600", [], 0, 0.01), "mlip_labels": 600, "mlip_scale": 1.0},
        {**_line("m600x", [], 0, 0.03), "mlip_labels": 600, "mlip_scale": 1.05},
        {**_line("m600x_s1", [], 1, 0.05), "mlip_labels": 600, "mlip_scale": 1.05},
        {**_line("m600pre", [], 0, 0.06), "mlip_labels": 600, "mlip_scale": 1.05, "pretrain": True},
        {**_line("m600c", [], 0, 0.07), "mlip_labels": 600, "mlip_scale": 1.05, "mlip_compounds": True},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    rows = {
        row.split("|")[1].replace("**", "").replace("(chosen)", "").strip(): [
            c.strip() for c in row.split("|")
        ]
        for row in levers.table(log).splitlines()[2:]
    }
    assert len(rows) == 5
    assert rows["m600c"][2] == "--mlip-labels 600 --mlip-scale 1.05 --mlip-compounds"
    assert rows["m600"][2] == "--mlip-labels 600"
    assert (
        rows["m600pre"][2] == "--mlip-labels 600 --mlip-scale 1.05 --pretrain"
        and rows["m600pre"][3] == "0.0600"
    )
    assert rows["m600x"][2] == "--mlip-labels 600 --mlip-scale 1.05" and rows["m600x"][3] == "0.0400"
    assert rows["full"][2] == "–"
