"""Issue 12 with models: ``s2p predict``/``s2p train`` turn bad input into clear errors or correct results,
never a traceback, a lost batch, silently wrong numbers or a lost file."""

from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.io import write

pytest.importorskip("keras")

from test_predict import METADATA, TINY, make_saved_models  # noqa: E402

from s2p_utils.cli import main  # noqa: E402
from s2p_utils.model import load_model, save_model  # noqa: E402
from s2p_utils.prediction import load_predictor, predict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """test_predict's single model and two-member ensemble (no calibration.json), plus a grid-input model
    that stores no grid."""
    from s2p_utils.model import build_model

    gridded = save_model(
        build_model(replace(TINY, grid_input=True), name="gridded"),
        tmp_path_factory.mktemp("gridded") / "gridded.keras",
        replace(
            METADATA,
            config=replace(METADATA.config, model=replace(TINY, grid_input=True)),
            grid=None,
            target_scaler=None,
        ),
    )
    single, ensemble = make_saved_models(tmp_path_factory.mktemp("models"))
    return {"single": single, "ensemble": ensemble, "gridded": gridded}


@pytest.fixture()
def good_file(tmp_path) -> Path:
    path = tmp_path / "nacl.cif"
    write(path, bulk("NaCl", "rocksalt", a=5.64), format="cif")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


# ----------------------------------------------------------------------------------------------- item 1
def test_one_bad_structure_never_loses_the_batch(models, good_file, tmp_path, capsys, monkeypatch):
    """The elongated cell that killed the process with SIGFPE, an empty box, and a featurizer crash of a
    kind other than ValueError: each is one 'skipped' line, the good file still gets its row."""
    import s2p_utils.prediction as prediction

    elongated, empty_box, crashing = tmp_path / "needle.cif", tmp_path / "box.cif", tmp_path / "si.vasp"
    write(elongated, Atoms("Cu", cell=[0.6, 0.6, 1e6], pbc=True), format="cif")
    write(empty_box, Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[1e8] * 3, pbc=True), format="cif")
    write(crashing, bulk("Si", "diamond", a=5.43), format="vasp")
    real = prediction.Predictor.inputs

    def flaky(predictor, structures, **kwargs):
        if any(atoms.get_chemical_formula() == "Si2" for atoms in structures):
            raise RuntimeError("simulated crash inside the featurizer")
        return real(predictor, structures, **kwargs)

    monkeypatch.setattr(prediction.Predictor, "inputs", flaky)
    out = tmp_path / "out.csv"
    files = [elongated, good_file, empty_box, crashing]
    assert main(["predict", str(models["single"]), *map(str, files), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"skipped {elongated}: the cell is too elongated" in err
    assert f"skipped {empty_box}: " in err and "atoms per Å³" in err
    assert f"skipped {crashing}: RuntimeError: simulated crash" in err
    assert [row["file"] for row in _rows(out)] == [str(good_file)]


# ----------------------------------------------------------------------------------------------- item 2
def test_a_run_name_is_trained_by_one_process_at_a_time(tmp_path):
    from s2p_utils.experiment import run_experiment
    from s2p_utils.paths import exclusive_lock

    lock = tmp_path / "checkpoints" / ".toy_run.lock"
    with exclusive_lock(lock, "run 'toy_run'"):  # as a concurrent `s2p train --run-name toy_run` would
        with pytest.raises(RuntimeError, match=r"run 'toy_run' .* is in use by pid \d+"):
            run_experiment("e3nn_phdos", run_name="toy_run", results_dir=tmp_path, smoke=True)
    lock.write_text("pid 999999999\n")  # left by a killed process: flock locks die with their holder
    with exclusive_lock(lock, "run 'toy_run'"):
        assert lock.read_text().strip() == f"pid {__import__('os').getpid()}"


def test_broken_resume_state_restarts_instead_of_failing_forever(tmp_path):
    """A state.json naming a checkpoint that is gone (left by interleaved runs) warns and starts afresh."""
    from s2p_utils.train import LOG_FILE, STATE_FILE, _read_state

    (tmp_path / STATE_FILE).write_text(json.dumps({"epoch": 28, "checkpoint": "epoch_0029.keras"}))
    (tmp_path / LOG_FILE).write_text("epoch,loss\n0,1.0\n0,1.0\n")
    with pytest.warns(UserWarning, match="unusable resume state"):
        assert _read_state(tmp_path) is None
    assert not (tmp_path / STATE_FILE).exists() and not (tmp_path / LOG_FILE).exists()


# ----------------------------------------------------------------------------------------------- item 4
def test_keras_model_without_its_sidecar_is_refused(models, tmp_path):
    """Without the .json the target scaler would be dropped silently (scaled values written)."""
    lonely = tmp_path / "lonely.keras"
    shutil.copy(models["gridded"], lonely)
    with pytest.raises(ValueError, match=r"lonely\.keras: its model record lonely\.json is missing"):
        load_predictor(lonely)


def test_corrupt_keras_and_one_bad_ensemble_member(models, tmp_path, good_file, capsys):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(models["single"].read_bytes()[:3000])
    shutil.copy(models["single"].with_suffix(".json"), corrupt.with_suffix(".json"))
    with pytest.raises(ValueError, match=r"corrupt\.keras: not a readable \.keras model"):
        load_model(corrupt)
    ensemble = tmp_path / "ensemble"
    shutil.copytree(models["ensemble"], ensemble)
    (ensemble / "member3.keras").write_bytes(b"PK\x03\x04 truncated")
    assert main(["predict", str(ensemble), str(good_file), "--out", str(tmp_path / "x.csv")]) == 2
    assert "s2p: error: " in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"member3\.keras: not a readable \.keras model"):
        load_predictor(ensemble)


@pytest.mark.parametrize(
    "model_config",
    ["{not json", json.dumps({"config": {"layers": [{"class_name": "LSTM"}]}})],
    ids=["not JSON", "layer without a name"],
)
def test_malformed_authors_h5(tmp_path, model_config):
    import h5py

    path = tmp_path / "authors.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = model_config
        handle.create_group("model_weights")
    with pytest.raises(ValueError, match=r"authors\.h5: not a readable authors' \.h5 model"):
        load_model(path)


# ---------------------------------------------------------------------------------------------- item 6
def test_grid_on_a_model_without_grid_input_is_an_error(models, good_file, tmp_path, capsys):
    out = tmp_path / "out.csv"
    status = main(["predict", str(models["single"]), str(good_file), "--out", str(out), "--grid", "-10:10:5"])
    assert status == 2 and not out.exists()
    assert "--grid applies only to models that take the grid as input" in capsys.readouterr().err
    with pytest.raises(ValueError, match="applies only to grid-input models"):
        predict(models["single"], [bulk("Cu", "fcc", a=3.6)], grid=np.linspace(-10, 10, 5))


def test_negative_grid_start_parses(models, good_file, tmp_path):
    """``--grid -10:10:N``, the form the help shows, used to fail in argparse."""
    out = tmp_path / "out.csv"
    status = main(
        ["predict", str(models["gridded"]), str(good_file), "--out", str(out), "--grid", "-10:10:5"]
    )
    assert status == 0
    assert json.loads(_rows(out)[0]["grid"]) == [-10.0, -5.0, 0.0, 5.0, 10.0]


# ---------------------------------------------------------------------------------------------- item 7
def test_all_inputs_failing_leaves_an_existing_csv_alone(models, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    out.write_text("id,file\nprecious,row\n")
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("not a crystal\n")
    assert main(["predict", str(models["single"]), str(garbage), "--out", str(out)]) == 1
    assert out.read_text() == "id,file\nprecious,row\n"
    assert f"no prediction written; {out} left unchanged" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- item 8
def test_uncalibrated_ensemble_is_flagged_and_calibrated_one_is_not(models, tmp_path, recwarn):
    from s2p_utils.uncertainty import Calibration, write_calibration

    crystal = [bulk("Cu", "fcc", a=3.6)]
    with pytest.warns(UserWarning, match="no calibration.json: std is the raw spread"):
        raw = predict(models["ensemble"], crystal)
    assert raw.calibrated is False
    calibrated_folder = tmp_path / "calibrated"
    shutil.copytree(models["ensemble"], calibrated_folder)
    write_calibration(calibrated_folder, Calibration(3.0, 0.0, None))
    recwarn.clear()
    result = predict(calibrated_folder, crystal)
    assert result.calibrated is True and not [w for w in recwarn if "calibration" in str(w.message)]
    np.testing.assert_allclose(result.std, 3.0 * raw.std, rtol=1e-5)
    assert predict(models["single"], crystal).calibrated is None


# ---------------------------------------------------------------------------------------------- item 9
def test_unknown_elements_and_truncation_are_marked_in_rows(models, good_file, tmp_path, capsys):
    polonium, big = tmp_path / "po.cif", tmp_path / "big.vasp"
    write(polonium, bulk("Po", "sc", a=3.35), format="cif")
    write(big, bulk("Cu", "fcc", a=3.61, cubic=True).repeat((1, 1, 3)), format="vasp")  # 12 > max_atoms 8
    out = tmp_path / "out.csv"
    with pytest.warns(UserWarning, match="truncated"):
        status = main(["predict", str(models["single"]), *map(str, [good_file, polonium, big]), "--out", str(out), "--truncate"])  # fmt: skip
    assert status == 0
    rows = {row["id"]: row for row in _rows(out)}
    assert [rows[k]["unknown_elements"] for k in ("nacl", "po", "big")] == ["", "Po", ""]
    assert [rows[k]["truncated_from"] for k in ("nacl", "po", "big")] == ["", "", "12"]
    assert f"{polonium}: element(s) Po outside the vocabulary" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- item 10
@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_zero_or_negative_epochs_are_refused(epochs, capsys, tmp_path):
    from s2p_utils.experiment import run_experiment

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "e3nn_phdos", "--epochs", epochs])
    assert exit_info.value.code == 2 and "must be ≥ 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="epochs must be a whole number ≥ 1"):
        run_experiment("e3nn_phdos", epochs=int(epochs), results_dir=tmp_path)


# --------------------------------------------------------------------------------------------- item 12
def test_keras_floor_excludes_releases_with_safe_mode_bypasses():
    from packaging.requirements import Requirement

    keras = Requirement(re.search(r'"(keras[<>=!~][^"]*)"', (REPO / "pyproject.toml").read_text()).group(1))
    for vulnerable in (
        "3.3.0",
        "3.8.0",
        "3.10.0",
        "3.11.3",
        "3.12.0",
        "3.12.3",
        "3.13.1",
        "3.14.0",
        "3.15.0",
    ):
        assert not keras.specifier.contains(vulnerable), vulnerable
    for fixed in ("3.12.4", "3.15.1", "3.16.0"):
        assert keras.specifier.contains(fixed), fixed


def test_lambda_layers_are_not_loaded(tmp_path):
    """safe_mode stays on: a .keras carrying Python code (a Lambda layer) is refused."""
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    METADATA.write(path.with_suffix(".json"))  # a valid record: the refusal must come from the network file
    with pytest.raises(ValueError, match=r"lambda\.keras: not a readable \.keras model .*(unsafe|safe_mode)"):
        load_model(path)


# --------------------------------------------------------------------------------------------- item 13
def test_out_directory_and_negative_batch_size(models, good_file, tmp_path, capsys):
    assert main(["predict", str(models["single"]), str(good_file), "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path} is a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(models["single"]), str(good_file), "--batch-size", "-5"])
    assert exit_info.value.code == 2 and "must be ≥ 1, got -5" in capsys.readouterr().err


def test_interrupted_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    from test_predict import _tiny_model

    network = _tiny_model(1)

    def interrupted(path, *args, **kwargs):  # the save is cut short half-way
        Path(path).write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(network, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(network, tmp_path / "m.keras", METADATA)
    assert list(tmp_path.iterdir()) == []


def test_training_removes_temporaries_left_by_a_killed_run(tmp_path):
    from s2p_utils.train import _remove_stale_temporaries

    stale = [tmp_path / ".epoch_0003.keras.tmp4242.keras", tmp_path / ".best.weights.h5.tmp4242.weights.h5"]
    for path in stale:
        path.write_bytes(b"partial")
    (tmp_path / "epoch_0002.keras").write_bytes(b"kept")
    _remove_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_0002.keras"]
