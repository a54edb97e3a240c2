"""End-to-end experiments on tiny data: files written, metrics against hand-computed values, reload, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("keras")

from ase.build import bulk  # noqa: E402

from s2p_utils.config import ExperimentConfig, ModelConfig, TrainConfig, get_preset, resolve_recipe  # noqa: E402
from s2p_utils.data import Dataset  # noqa: E402
from s2p_utils.experiment import fit_scaler, run_experiment, select_rows  # noqa: E402
from s2p_utils.inputs import model_inputs  # noqa: E402
from s2p_utils.model import load_model  # noqa: E402

N_GRID = 6


def toy_dataset(n: int = 12, grids: bool = False) -> Dataset:
    """``n`` small crystals (1–2 atoms) with smooth synthetic spectra on a 0–1000 cm⁻¹ grid."""
    makers = [
        lambda a: bulk("Cu", "fcc", a=3.6 * a),
        lambda a: bulk("NaCl", "rocksalt", a=5.6 * a),
        lambda a: bulk("Si", "diamond", a=5.4 * a),
        lambda a: bulk("MgO", "rocksalt", a=4.2 * a),
    ]
    rng = np.random.default_rng(0)
    structures = [makers[i % 4](1.0 + 0.02 * (i // 4)) for i in range(n)]
    grid = np.linspace(0.0, 1000.0, N_GRID)
    centres = rng.uniform(200, 800, n)
    targets = np.exp(-(((grid[None] - centres[:, None]) / 200.0) ** 2)).astype(np.float32)
    order = np.arange(n)
    return Dataset(
        name="toy",
        ids=[f"toy-{i}" for i in range(n)],
        formulas=[s.get_chemical_formula() for s in structures],
        structures=structures,
        targets=targets,
        grid=grid,
        grid_unit="cm^-1",
        kind="phdos",
        unit="max-normalised",
        splits={"toy": {"train": order[:8], "val": order[8:10], "test": order[10:]}},
        grids=np.tile(grid, (n, 1)).astype(np.float32) if grids else None,
    )


def toy_preset(grid_input: bool = False, scaling: str = "none") -> ExperimentConfig:
    return ExperimentConfig(
        name="toy_phdos",
        dataset="toy",
        model=ModelConfig(max_atoms=4, lstm_units=8, n_out=N_GRID, grid_input=grid_input),
        train=TrainConfig(
            batch_size=4, lr_drop_every=2, legacy_epochs=2, max_epochs=2, target_scaling=scaling
        ),
        default_split="toy",
        grid_unit="cm^-1",
    )


def read_predictions(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    for column in ("target", "prediction"):
        frame[column] = frame[column].map(lambda text: np.asarray(json.loads(text), dtype=np.float64))
    return frame


def test_fixed_run_writes_metrics_predictions_figures_and_model(tmp_path):
    dataset = toy_dataset()
    result = run_experiment(
        toy_preset(), mode="fixed", dataset=dataset, results_dir=tmp_path, seed=1, smoke=False
    )
    assert result.run_name == "toy_phdos_toy_fixed"
    assert result.metrics_path.is_file() and result.predictions_path.is_file() and result.model_path.is_file()
    assert set(result.figures) == {"quartiles", "learning_curves", "cv_parity"}
    assert all(path.is_file() for path in result.figures.values())
    assert list(result.history["epoch"]) == [0, 1]

    frame = read_predictions(result.predictions_path)
    assert list(frame["split"].value_counts().sort_index()) == [2, 8, 2]  # test, train, val
    test = frame[frame["split"] == "test"]
    y, p = np.stack(test["target"]), np.stack(test["prediction"])
    np.testing.assert_allclose(y, dataset.targets[10:], atol=1e-6)
    # test MAE/MSE = mean over test spectra of each spectrum's MAE/MSE (the notebooks' sklearn loop)
    assert result.metrics["mae"] == pytest.approx(
        np.mean([np.mean(np.abs(a - b)) for a, b in zip(y, p, strict=True)]), rel=1e-5
    )
    assert result.metrics["mse"] == pytest.approx(
        np.mean([np.mean((a - b) ** 2) for a, b in zip(y, p, strict=True)]), rel=1e-5
    )
    baseline = dataset.targets[:8].mean(axis=0)
    assert result.metrics["baseline_mae"] == pytest.approx(np.mean(np.abs(y - baseline)), rel=1e-5)

    record = json.loads(result.metrics_path.read_text())
    info = record.get("info", record)
    assert info["split_sizes"] == {"train": 8, "val": 2, "test": 2}
    assert info["mode"] == "fixed" and info["seed"] == 1 and info["epochs"] == 2

    model, metadata = load_model(result.model_path)
    assert not metadata.recipe.legacy_features and metadata.config.featurizer == "pdf"
    assert (
        metadata.model.max_atoms == 4
        and metadata.recipe.stop_on == "val_loss"
        and metadata.recipe.restore_best
    )
    assert metadata.grid == pytest.approx(dataset.grid.tolist()) and metadata.target_scaler is None

    # train=False reloads the saved model and reproduces the numbers
    again = run_experiment(
        toy_preset(), mode="fixed", dataset=dataset, results_dir=tmp_path, seed=1, smoke=False, train=False
    )
    assert again.metrics["mae"] == pytest.approx(result.metrics["mae"], rel=1e-6)

    # evaluate_on="val" scores the validation rows (choosing a configuration never needs the test set)
    on_val = run_experiment(
        toy_preset(),
        mode="fixed",
        dataset=dataset,
        results_dir=tmp_path,
        seed=1,
        smoke=False,
        train=False,
        evaluate_on="val",
    )
    val = frame[frame["split"] == "val"]
    y_val, p_val = np.stack(val["target"]), np.stack(val["prediction"])
    assert on_val.metrics["mae"] == pytest.approx(np.mean(np.abs(y_val - p_val)), rel=1e-5)
    assert on_val.metrics["n_spectra"] == 2
    assert json.loads(on_val.metrics_path.read_text())["info"]["evaluated_on"] == "val"


def test_legacy_smoke_run_scales_targets_with_all_rows(tmp_path):
    dataset = toy_dataset(n=60, grids=True)
    dataset.splits["toy"] = {"train": np.arange(40), "val": np.arange(40, 50), "test": np.arange(50, 60)}
    dataset.targets[55] *= 3.0  # a test spectrum outside the training range: the two fits differ
    preset = toy_preset(grid_input=True, scaling="minmax")
    result = run_experiment(
        preset, mode="legacy", dataset=dataset, results_dir=tmp_path, smoke=True, n_train=20
    )
    info = json.loads(result.metrics_path.read_text())
    info = info.get("info", info)
    assert info["split_sizes"] == {"train": 20, "val": 8, "test": 8}  # n_train first, then the smoke caps
    assert info["epochs"] == 2 and info["mode"] == "legacy"

    model, metadata = load_model(result.model_path)
    assert metadata.recipe.legacy_features and metadata.recipe.scaler_fit_on == "all_rows"
    rows = dataset.targets[np.r_[0:20, 40:48, 50:58]]  # smoke: every selected row, test included
    low, high = rows.min(axis=0).astype(np.float64), rows.max(axis=0).astype(np.float64)
    np.testing.assert_allclose(metadata.target_scaler["scale"], 1.0 / (high - low), rtol=1e-6)
    np.testing.assert_allclose(metadata.target_scaler["min"], -low / (high - low), atol=1e-7)
    # predictions are stored unscaled: the CSV's targets are the dataset's spectra
    frame = read_predictions(result.predictions_path)
    np.testing.assert_allclose(np.stack(frame["target"]), rows, atol=1e-5)
    # ... and so are the predictions: (network output - min) / scale
    selected = np.r_[0:20, 40:48, 50:58]
    inputs = model_inputs(
        [dataset.structures[i] for i in selected], preset, legacy=True, grids=dataset.grids[selected]
    )
    raw = model.predict(inputs, verbose=0).astype(np.float64)
    unscaled = (raw - np.asarray(metadata.target_scaler["min"])) / np.asarray(metadata.target_scaler["scale"])
    np.testing.assert_allclose(np.stack(frame["prediction"]), unscaled, rtol=1e-5, atol=1e-6)


def test_scaler_is_fitted_on_the_rows_the_recipe_names():
    """Legacy: every row of the dataset (test rows included, the notebooks' leak); fixed: training rows."""
    dataset = toy_dataset()
    config = toy_preset(scaling="minmax")
    data = select_rows(config, dataset=dataset)
    train = dataset.targets[data.parts["train"]]
    for mode, rows in (("legacy", dataset.targets), ("fixed", train)):
        scaler = fit_scaler(config, resolve_recipe(config, mode), data)
        np.testing.assert_allclose(scaler.transform(rows).min(axis=0), 0.0, atol=1e-6)
        np.testing.assert_allclose(scaler.transform(rows).max(axis=0), 1.0, atol=1e-6)
    assert not np.allclose(
        fit_scaler(config, resolve_recipe(config, "legacy"), data).to_dict()["min"],
        fit_scaler(config, resolve_recipe(config, "fixed"), data).to_dict()["min"],
    )


def test_a_max_normalised_output_refuses_a_target_scaler():
    dataset = toy_dataset()
    config = toy_preset(scaling="minmax")
    config = replace(config, model=replace(config.model, output_norm="max"))
    with pytest.raises(ValueError, match="target_scaling='none'"):
        fit_scaler(config, resolve_recipe(config, "fixed"), select_rows(config, dataset=dataset))
    unscaled = replace(config, train=replace(config.train, target_scaling="none"))
    assert (
        fit_scaler(unscaled, resolve_recipe(unscaled, "fixed"), select_rows(unscaled, dataset=dataset))
        is None
    )


def test_s2p_predict_reproduces_the_predictions_csv_of_an_e3nn_phdos_plus_run(mirror, tmp_path):
    """The saved ensemble, run by ``s2p predict`` on the test crystals' files, gives the CSV its training
    run wrote (mean and calibrated σ), to float precision: one prediction path, the record drives it."""
    from ase.io import write

    from s2p_utils.cli import main
    from s2p_utils.data import load

    dataset = load("e3nn_phdos", mirror=mirror, cache_dir=tmp_path / "cache", progress=False)
    preset = get_preset("e3nn_phdos_plus")  # 4 test-time atom orders, element descriptors, pdf × 0.25
    config = replace(preset, train=replace(preset.train, ensemble=2))
    result = run_experiment(config, dataset=dataset, results_dir=tmp_path, seed=1, smoke=True, epochs=1)
    frame = read_predictions(result.predictions_path)
    test = frame[frame["split"] == "test"]
    by_id = dict(zip(dataset.ids, dataset.structures, strict=True))
    files = []
    for material in test["id"]:
        files.append(tmp_path / f"{material}.traj")  # ASE trajectory: positions and cell bit for bit
        write(files[-1], by_id[material])
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(result.model_path), *map(str, files), "--out", str(out)]) == 0
    predicted = pd.read_csv(out)
    assert list(predicted["id"]) == list(test["id"])
    mean = np.stack(predicted["prediction"].map(json.loads))
    std = np.stack(predicted["std"].map(json.loads))
    assert predicted["std_calibrated"].all()
    np.testing.assert_allclose(mean, np.stack(test["prediction"]), rtol=1e-5, atol=1e-6)
    written_std = np.stack(
        pd.read_csv(result.predictions_path).query("split == 'test'")["std"].map(json.loads)
    )
    np.testing.assert_allclose(std, written_std, rtol=1e-5, atol=1e-6)
    assert np.abs(mean).max() > 1e-3 and np.abs(std).max() > 1e-5  # real, non-trivial outputs


def test_a_custom_config_predicts_identically_after_save_and_load(tmp_path):
    """A ``dataclasses.replace`` of a preset under a new name: its record carries the whole config, so the
    saved model featurises and predicts exactly as in the run (no preset-name lookup)."""
    from s2p_utils.prediction import load_predictor

    dataset = toy_dataset()
    base = get_preset("e3nn_phdos_plus")
    custom = replace(
        base,
        name="my_variant",
        dataset="toy",
        default_split="toy",
        model=replace(base.model, max_atoms=4, n_out=N_GRID, lstm_units=8, pdf_lstm_units=4, embedding_dim=8),
        train=replace(base.train, ensemble=2, batch_size=4, test_time_permutations=2),
        pdf_scale=0.5,  # not the preset's 0.25: a config rebuilt from the preset name would featurise wrongly
    )
    result = run_experiment(custom, dataset=dataset, results_dir=tmp_path, epochs=1, smoke=False)
    predictor = load_predictor(result.model_path)
    assert predictor.record.config == custom and predictor.calibration is not None
    rows = result.data.rows
    again = predictor.predict([dataset.structures[i] for i in rows])
    np.testing.assert_allclose(again.mean, result.evaluation.predictions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.std, result.evaluation.std, rtol=1e-5, atol=1e-6)
    # the steps are public: the same inputs from build_inputs, the same outputs from the predictor
    np.testing.assert_array_equal(
        predictor.inputs([dataset.structures[i] for i in rows])["pdf"], result.inputs["pdf"]
    )


def test_bad_arguments(tmp_path):
    dataset = toy_dataset()
    with pytest.raises(ValueError, match="mode"):
        run_experiment(toy_preset(), dataset=dataset, results_dir=tmp_path, mode="best")
    with pytest.raises(ValueError, match="split"):
        run_experiment(toy_preset(), dataset=dataset, results_dir=tmp_path, split="nope")
    with pytest.raises(ValueError, match="evaluate_on"):
        run_experiment(toy_preset(), dataset=dataset, results_dir=tmp_path, evaluate_on="train")
    with pytest.raises(ValueError, match="run name"):
        run_experiment(toy_preset(), dataset=dataset, results_dir=tmp_path, run_name="../x")
    too_big = replace(toy_preset(), model=replace(toy_preset().model, max_atoms=1))
    with pytest.raises(ValueError, match="max_atoms"):
        run_experiment(too_big, dataset=dataset, results_dir=tmp_path, smoke=True)
    with pytest.raises(FileNotFoundError, match="train it first"):
        run_experiment(toy_preset(), dataset=dataset, results_dir=tmp_path, train=False)


def test_s2p_train_cli_smoke(mirror, tmp_path, monkeypatch, capsys):
    from s2p_utils.cli import main

    monkeypatch.setenv("S2P_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("S2P_CACHE_DIR", str(tmp_path / "cache"))
    code = main(
        [
            "train",
            "e3nn_phdos",
            "--split",
            "random73",
            "--mode",
            "legacy",
            "--smoke",
            "--results-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "e3nn_phdos_random73_legacy: test MAE" in out
    record = json.loads((tmp_path / "metrics" / "e3nn_phdos_random73_legacy.json").read_text())
    info = record.get("info", record)
    assert info["split_sizes"] == {"train": 32, "val": 8, "test": 8} and info["epochs"] == 2
    _, metadata = load_model(tmp_path / "models" / "e3nn_phdos_random73_legacy.keras")
    assert (
        metadata.recipe.legacy_features
        and metadata.config.name == "e3nn_phdos"
        and metadata.target_scaler is None
    )
    # fine-tuning from the saved model: the new run's record names where its weights started
    first = tmp_path / "models" / "e3nn_phdos_random73_legacy.keras"
    args = ["train", "e3nn_phdos", "--split", "random73", "--mode", "legacy", "--smoke"]
    code = main([*args, "--results-dir", str(tmp_path), "--run-name", "tuned", "--init-from", str(first)])
    assert code == 0
    _, tuned = load_model(tmp_path / "models" / "tuned.keras")
    assert tuned.provenance["initialised_from"] == str(first)


def test_ensemble_run_calibrates_its_spread_on_validation(tmp_path):
    from s2p_utils.prediction import predict
    from s2p_utils.uncertainty import calibrated_std, fit_std_calibration, floor_support, read_calibration

    dataset = toy_dataset()
    base = toy_preset()
    config = replace(base, name="toy_ensemble", train=replace(base.train, ensemble=2))
    result = run_experiment(config, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=0, smoke=False)
    assert sorted(p.name for p in result.model_path.glob("*.keras")) == ["member0.keras", "member1.keras"]
    assert "calibration" in result.figures and result.figures["calibration"].is_file()

    scale, floor, margin = read_calibration(result.model_path)
    assert (scale, floor) == pytest.approx((result.metrics["std_scale"], result.metrics["std_floor"]))
    frame = pd.read_csv(result.predictions_path)
    std = np.stack(frame["std"].map(lambda text: np.asarray(json.loads(text))))
    val = (frame["split"] == "val").to_numpy()
    target = np.stack(frame["target"].map(lambda text: np.asarray(json.loads(text))))
    mean = np.stack(frame["prediction"].map(lambda text: np.asarray(json.loads(text))))
    # the written σ is the member spread calibrated by the pair fitted on the validation rows
    by_id = dict(zip(dataset.ids, dataset.structures, strict=True))
    rows = [by_id[i] for i in frame["id"]]
    from s2p_utils.experiment import load_members

    member_std = load_members(result.run_name, tmp_path).predict(rows).std  # uncalibrated spread
    support = floor_support(mean, member_std, margin)
    np.testing.assert_allclose(calibrated_std(member_std, scale, floor, support), std, rtol=1e-4, atol=1e-6)
    refit = fit_std_calibration(target[val], mean[val], member_std[val], support=support[val])
    assert refit == pytest.approx((scale, floor), rel=1e-4)
    for key in ("within_1sigma", "within_1sigma_active", "raw_within_1sigma", "raw_within_2sigma_active"):
        assert 0.0 <= result.metrics[key] <= 1.0

    # predict() applies the same factor: the same σ for the same structures
    test = (frame["split"] == "test").to_numpy()
    structures = [dataset.structures[10], dataset.structures[11]]
    predicted = predict(result.model_path, structures)
    np.testing.assert_allclose(predicted.std, std[test], rtol=1e-4, atol=1e-6)


def test_a_changed_model_config_does_not_resume_old_checkpoints(tmp_path):
    dataset = toy_dataset()
    base = toy_preset()
    run_experiment(
        base, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=0, smoke=False, run_name="r"
    )
    marker = tmp_path / "checkpoints" / "r" / "run.json"
    before = json.loads(marker.read_text())
    changed = replace(base, model=replace(base.model, structure_dropout=0.3))
    with pytest.warns(UserWarning, match="different run; starting from scratch"):
        run_experiment(
            changed, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=0, smoke=False, run_name="r"
        )
    after = json.loads(marker.read_text())
    assert before["config"]["model"]["structure_dropout"] == 0.0
    assert after["config"]["model"]["structure_dropout"] == 0.3


def test_init_from_fine_tunes_from_the_given_members_and_says_so(tmp_path):
    dataset = toy_dataset()
    base = toy_preset()
    first = run_experiment(
        base, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=0, smoke=False, run_name="first"
    )
    # With a learning rate of zero the fine-tune cannot move: its members are the first run's, whatever
    # its own seed would have initialised.
    frozen = replace(base, train=replace(base.train, learning_rate=0.0, lr_floor=0.0))
    tuned = run_experiment(
        frozen, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=7, smoke=False, run_name="tuned",
        init_from=first.model_path,  # a saved model (any load_predictor spec), not only a Predictor
    )  # fmt: skip
    fresh = run_experiment(
        frozen, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=7, smoke=False, run_name="fresh"
    )
    inputs = first.inputs
    np.testing.assert_allclose(tuned.predictor.member_outputs(inputs), first.predictor.member_outputs(inputs))
    assert not np.allclose(fresh.predictor.member_outputs(inputs), first.predictor.member_outputs(inputs))
    _, record = load_model(tuned.model_path)
    assert record.provenance["initialised_from"] == first.predictor.sources[0]
    marker = json.loads((tmp_path / "checkpoints" / "tuned" / "run.json").read_text())
    assert marker["initialised_from"] == first.predictor.sources[0]
    # the same run name without the starting weights is another run: its checkpoints are not resumed
    with pytest.warns(UserWarning, match="different run; starting from scratch"):
        run_experiment(
            frozen, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=7, smoke=False, run_name="tuned"
        )
    wider = replace(base, model=replace(base.model, lstm_units=12))
    with pytest.raises(ValueError, match="cannot start from .* do not fit"):
        run_experiment(
            wider, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=0, smoke=False, run_name="wide",
            init_from=first.predictor,
        )  # fmt: skip


def test_cross_fit_folds_partition_the_rows_by_seed():
    from s2p_utils.experiment import cross_fit_folds

    folds = cross_fit_folds(11, 3, seed=0)
    assert sorted(len(f) for f in folds) == [3, 4, 4]
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(11))
    assert all(np.array_equal(a, b) for a, b in zip(folds, cross_fit_folds(11, 3, seed=0), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, cross_fit_folds(11, 3, seed=1), strict=True))
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_fit_folds(11, 1, seed=0)
    with pytest.raises(ValueError, match="cannot cut 2 training rows into 3 folds"):
        cross_fit_folds(2, 3, seed=0)


@pytest.mark.parametrize("cross_fit", [0, 2, 3, 4])
def test_cross_fitted_members_stop_on_their_own_fold_and_never_see_validation(
    tmp_path, monkeypatch, cross_fit
):
    import s2p_utils.train

    dataset = toy_dataset()
    base = toy_preset()
    config = replace(base, name="toy_cv", train=replace(base.train, ensemble=3, cross_fit=cross_fit))
    seen = []
    real_train_model = s2p_utils.train.train_model

    def recording_train_model(network, x, y, x_val, y_val, **kwargs):
        seen.append((y.copy(), y_val.copy()))
        return real_train_model(network, x, y, x_val, y_val, **kwargs)

    monkeypatch.setattr(s2p_utils.train, "train_model", recording_train_model)
    result = run_experiment(config, mode="fixed", dataset=dataset, results_dir=tmp_path, seed=0, smoke=False)

    def dataset_rows(spectra):  # each toy crystal has its own spectrum
        return {int(np.argmin(np.abs(dataset.targets - s).sum(axis=1))) for s in spectra}

    from s2p_utils.results import read_metrics

    stopped_on = f"{cross_fit} folds of the training rows" if cross_fit else "validation rows"
    assert read_metrics(result.metrics_path)["info"]["stopped_on"] == stopped_on  # the metrics file says so
    train, val = set(range(8)), {8, 9}
    assert len(seen) == 3
    stops = [dataset_rows(stop) for _, stop in seen]
    fits = [dataset_rows(fit) for fit, _ in seen]
    if not cross_fit:
        assert stops == [val] * 3 and fits == [train] * 3
        return
    assert not set().union(*stops) & val and all(fit.isdisjoint(val) for fit in fits)
    if cross_fit == 2:  # more members than folds: member 2 stops on fold 0 again
        assert stops[2] == stops[0] and stops[0] | stops[1] == train and not stops[0] & stops[1]
    else:  # three folds cover the training crystals; of four folds the three members stop on three
        assert sum(len(s) for s in stops) == len(set().union(*stops))  # disjoint
        assert [len(s) for s in stops] == ([3, 3, 2] if cross_fit == 3 else [2, 2, 2])
    assert all(fit == train - stop for fit, stop in zip(fits, stops, strict=True))
    for k, stop in enumerate(stops):
        _, record = load_model(result.model_path / f"member{k}.keras")
        assert record.provenance["stopping_ids"] == [dataset.ids[i] for i in sorted(stop)]
        assert record.provenance["stopped_on"].startswith(f"fold {k % cross_fit} of {cross_fit}")
    assert "std_scale" in result.metrics  # σ still calibrated on the validation rows no member saw


def test_cross_fit_needs_two_folds(tmp_path):
    base = toy_preset()
    config = replace(base, train=replace(base.train, cross_fit=1))
    with pytest.raises(ValueError, match="at least 2 folds"):
        run_experiment(config, mode="fixed", dataset=toy_dataset(), results_dir=tmp_path, smoke=False)
