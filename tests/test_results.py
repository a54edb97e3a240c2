"""Result files: metrics JSON, predictions CSV, figure paths and the metrics table."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from s2p_utils import results


def test_write_metrics_records_run_info_versions(tmp_path):
    scores = {"mae": np.float32(0.25), "r2": 0.5, "wasserstein": float("nan")}
    path = results.write_metrics(
        "e3nn_phdos_chen2021_fixed",
        scores,
        results_dir=tmp_path,
        preset="e3nn_phdos",
        split="chen2021",
        split_sizes={"train": 3, "val": 1, "test": 2},
        seconds=1.5,
    )
    assert path == tmp_path / "metrics" / "e3nn_phdos_chen2021_fixed.json"
    record = json.loads(path.read_text())  # strict JSON (NaN written as null)
    assert record["metrics"] == {"mae": 0.25, "r2": 0.5, "wasserstein": None}
    assert record["info"]["split_sizes"] == {"train": 3, "val": 1, "test": 2}
    assert record["info"]["preset"] == "e3nn_phdos"
    assert record["versions"]["numpy"] == np.__version__
    assert "python" in record["versions"] and record["timestamp"]
    assert not list((tmp_path / "metrics").glob(".*tmp"))  # no temporary file left
    assert np.isnan(results.read_metrics(path)["metrics"]["wasserstein"])


def test_run_name_must_be_a_file_name(tmp_path):
    with pytest.raises(ValueError, match="run name"):
        results.write_metrics("../escape", {}, results_dir=tmp_path)


def test_predictions_csv_round_trip(tmp_path):
    targets = np.array([[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]], dtype=np.float32)
    predictions = np.array([[0.1, 0.25, 1e-7], [1.5, 2.0, 3.0]], dtype=np.float32)
    path = results.write_predictions(
        "run", ["mp-1", "mp-2"], ["test", "val"], targets, predictions, results_dir=tmp_path
    )
    assert path == tmp_path / "predictions" / "run.csv"
    with path.open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["id", "split", "target", "prediction"]
    assert rows[0]["id"] == "mp-1" and rows[1]["split"] == "val"
    assert json.loads(rows[0]["target"]) == [0.1, 0.2, 0.3]  # shortest float32 text
    np.testing.assert_array_equal(
        np.array(json.loads(rows[0]["prediction"]), dtype=np.float32), predictions[0]
    )
    frame = results.read_predictions(path)
    np.testing.assert_array_equal(np.stack(frame["prediction"]).astype(np.float32), predictions)
    with pytest.raises(ValueError, match="rows"):
        results.write_predictions("bad", ["a"], "test", targets, predictions, results_dir=tmp_path)


def test_predictions_with_std_column(tmp_path):
    spectra = np.ones((1, 2))
    path = results.write_predictions(
        "ens", ["x"], "test", spectra, spectra, std=0.5 * spectra, results_dir=tmp_path
    )
    assert results.read_predictions(path)["std"][0].tolist() == [0.5, 0.5]


def test_figure_path(tmp_path):
    path = results.figure_path("run", "quartiles", tmp_path)
    assert path == tmp_path / "figures" / "run_quartiles.png" and path.parent.is_dir()


def test_collect_metrics_one_row_per_run(tmp_path):
    results.write_metrics("b_run", {"mae": 0.2}, results_dir=tmp_path, preset="p", split_sizes={"test": 5})
    results.write_metrics("a_run", {"mae": 0.1, "cv_mae": 0.3}, results_dir=tmp_path, preset="q")
    (tmp_path / "metrics" / "broken.json").write_text("{not json")
    with pytest.warns(UserWarning, match="broken.json"):
        table = results.collect_metrics(tmp_path)
    assert table["run"].tolist() == ["a_run", "b_run"]
    assert table["mae"].tolist() == [0.1, 0.2]
    assert table.loc[1, "split_sizes.test"] == 5
    assert np.isnan(table.loc[1, "cv_mae"])
    assert "version.numpy" in table
