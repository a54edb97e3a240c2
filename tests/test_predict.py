"""Prediction for any crystal: the API, ensembles, max_atoms, and ``s2p predict`` on good and bad files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

pytest.importorskip("keras")

from dataclasses import replace  # noqa: E402

from s2p_utils.config import ExperimentConfig, ModelConfig  # noqa: E402
from s2p_utils.model_record import ModelRecord  # noqa: E402

TINY = ModelConfig(max_atoms=8, lstm_units=4, n_out=5, pdf_lstm_units=2, embedding_dim=4)
GRID = [0.0, 250.0, 500.0, 750.0, 1000.0]
SCALER = {"min": [0.1, 0.0, -0.2, 0.0, 0.3], "scale": [2.0, 1.0, 0.5, 4.0, 1.0]}
TINY_CONFIG = ExperimentConfig(name="tiny", dataset="", model=TINY, featurizer="pdf")
METADATA = ModelRecord.of(TINY_CONFIG, grid=GRID, grid_unit="cm^-1", kind="phdos", target_scaler=SCALER)


def _tiny_model(seed: int):
    import keras

    from s2p_utils.model import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(TINY, name=f"tiny{seed}")
    # larger output bias so that ReLU outputs are not all zero
    dense = model.get_layer("dos")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 5, bias + np.linspace(0.2, 1.0, bias.size)])
    return model


def make_saved_models(folder):
    """``(folder/tiny.keras, folder/ensemble)``: one tiny model and a two-member ensemble (no calibration)."""
    from s2p_utils.model import save_model

    single = save_model(_tiny_model(1), folder / "tiny.keras", METADATA)
    ensemble = folder / "ensemble"
    for seed in (2, 3):
        save_model(_tiny_model(seed), ensemble / f"member{seed}.keras", replace(METADATA, members=2))
    return single, ensemble


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    return make_saved_models(tmp_path_factory.mktemp("models"))


def _crystals():
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    nacl.info["id"] = "nacl"
    si = bulk("Si", "diamond", a=5.43)
    si.info["id"] = "si"
    return [nacl, si]


def _expected(model_path, atoms_list):
    """Independent path: model_inputs → keras predict → (raw − min) / scale."""
    from s2p_utils.inputs import model_inputs
    from s2p_utils.model import load_model

    model, _ = load_model(model_path)
    config = ExperimentConfig(name="tiny", dataset="", model=TINY, featurizer="pdf")
    inputs = model_inputs(atoms_list, config, legacy=False, progress=False, cache=False)
    raw = np.asarray(model.predict({"pdf": inputs["pdf"], "tokens": inputs["tokens"]}, verbose=0))
    return (raw - np.array(SCALER["min"])) / np.array(SCALER["scale"])


def test_predict_api_unscales_and_names(saved_models):
    from s2p_utils.prediction import predict

    single, _ = saved_models
    crystals = _crystals()
    result = predict(single, crystals)
    assert result.ids == ["nacl", "si"]
    assert result.mean.dtype == np.float32 and result.mean.shape == (2, 5)
    assert result.std is None
    assert result.grid.tolist() == GRID and result.grid_unit == "cm^-1"
    assert result.n_atoms.tolist() == [2, 2]
    np.testing.assert_allclose(result.mean, _expected(single, crystals), rtol=1e-5, atol=1e-6)


def test_package_level_predict_is_callable(saved_models):
    import s2p_utils
    import s2p_utils.prediction  # noqa: F401  (importing the module must not shadow the function)

    result = s2p_utils.predict(saved_models[0], _crystals()[:1], ids=["x"])
    assert result.ids == ["x"] and result.mean.shape == (1, 5)


def test_ensemble_mean_and_std(saved_models):
    from s2p_utils.prediction import predict

    _, ensemble = saved_models
    crystals = _crystals()
    members = [_expected(ensemble / f"member{seed}.keras", crystals) for seed in (2, 3)]
    result = predict(ensemble, crystals)
    assert not np.allclose(members[0], members[1])
    np.testing.assert_allclose(result.mean, (members[0] + members[1]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.std, np.abs(members[0] - members[1]) / 2, rtol=1e-5, atol=1e-6)
    listed = predict(sorted(ensemble.glob("*.keras")), crystals)
    np.testing.assert_allclose(listed.mean, result.mean, rtol=1e-6)


def test_ensemble_members_must_agree(saved_models, tmp_path):
    import shutil

    from s2p_utils.prediction import load_predictor

    for name in ("a", "b"):
        shutil.copy(saved_models[0], tmp_path / f"{name}.keras")
        meta = json.loads(saved_models[0].with_suffix(".json").read_text())
        if name == "b":
            meta["target_scaler"] = None
        (tmp_path / f"{name}.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"b.keras differs .* \['target_scaler'\]"):
        load_predictor(tmp_path)


def test_max_atoms_error_unless_truncate(saved_models):
    from s2p_utils.prediction import predict

    big = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 3))  # 12 atoms > max_atoms 8
    big.info["id"] = "big"
    with pytest.raises(ValueError, match=r"big: 12 atoms exceed the model's max_atoms=8"):
        predict(saved_models[0], [big])
    with pytest.warns(UserWarning, match="truncated"):
        result = predict(saved_models[0], [big], truncate=True)
    assert result.mean.shape == (1, 5) and result.n_atoms.tolist() == [12]


@pytest.fixture()
def structure_files(tmp_path):
    nacl, si = _crystals()
    good_cif = tmp_path / "nacl.cif"
    write(good_cif, nacl, format="cif")
    good_poscar = tmp_path / "POSCAR"
    write(good_poscar, si, format="vasp")
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("this is not a crystal structure\n%%% 1 2 3\n")
    empty = tmp_path / "empty.vasp"
    empty.write_text("")
    big = tmp_path / "big.vasp"
    write(big, bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 3)), format="vasp")
    return {"good": [good_cif, good_poscar], "bad": [garbage, empty, big]}


def test_cli_predict_reports_bad_files_and_writes_good_ones(saved_models, structure_files, tmp_path, capsys):
    from s2p_utils.cli import main
    from s2p_utils.prediction import predict

    single, _ = saved_models
    out = tmp_path / "out" / "predictions.csv"
    files = [structure_files["good"][0], *structure_files["bad"], structure_files["good"][1]]
    status = main(["predict", str(single), *map(str, files), "--out", str(out)])
    assert status == 1
    stderr = capsys.readouterr().err
    for bad in structure_files["bad"]:
        assert str(bad) in stderr
    assert "empty file" in stderr and "exceed the model's max_atoms=8" in stderr
    with out.open() as stream:
        rows = list(csv.DictReader(stream))
    assert [row["id"] for row in rows] == ["nacl", "POSCAR"]
    assert [row["file"] for row in rows] == [str(p) for p in structure_files["good"]]
    assert json.loads(rows[0]["grid"]) == GRID
    expected = predict(single, structure_files["good"]).mean
    got = np.array([json.loads(row["prediction"]) for row in rows], dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-6)

    ok = main(["predict", str(single), *map(str, structure_files["good"]), "--out", str(out)])
    assert ok == 0
    big = str(structure_files["bad"][2])
    with pytest.warns(UserWarning, match="truncated"):
        truncated = main(["predict", str(single), big, "--out", str(out), "--truncate"])
    assert truncated == 0


def test_cli_predict_ensemble_writes_std(saved_models, structure_files, tmp_path):
    from s2p_utils.cli import main

    out = tmp_path / "ens.csv"
    with pytest.warns(UserWarning, match="no calibration.json"):
        status = main(
            ["predict", str(saved_models[1]), *map(str, structure_files["good"]), "--out", str(out)]
        )
    assert status == 0
    with out.open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == [
        "id",
        "file",
        "grid",
        "prediction",
        "std",
        "std_calibrated",
        "unknown_elements",
        "truncated_from",
    ]
    assert rows[0]["std_calibrated"] == "false"
    assert all(value >= 0 for value in json.loads(rows[0]["std"]))


def test_predict_with_authors_weights_reproduces_their_outputs(mirror):
    """End to end through ``predict``: the authors' ``.h5`` (legacy PDF, grid input) vs their Keras-2 outputs."""
    import gzip

    from s2p_utils.data import load_prepared
    from s2p_utils.prediction import predict

    with gzip.open(mirror / "authors_weights" / "edosBulk_pdf_golden.json.gz", "rt") as handle:
        golden = json.load(handle)
    dataset = load_prepared(mirror / "e3nn_phdos.json.gz")
    atoms = [dataset.structures[dataset.ids.index(i)] for i in golden["ids"]]
    weights = mirror / "authors_weights" / "edosBulk_pdf.h5"
    with pytest.raises(ValueError, match="grid"):
        predict(weights, atoms)
    result = predict(weights, atoms, grid=golden["grid"], ids=golden["ids"])
    assert result.ids == golden["ids"] and result.grid.shape == (500,)
    np.testing.assert_allclose(result.mean, np.asarray(golden["outputs"]), rtol=0, atol=1e-4)
