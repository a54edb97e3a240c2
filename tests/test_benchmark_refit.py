"""``benchmarks/refit.py``: the refit parts and the fixed-epoch recipe (no data, a toy ensemble)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from test_experiment import toy_dataset, toy_preset  # noqa: E402

from s2p_utils.config import resolve_recipe  # noqa: E402
from s2p_utils.experiment import build_inputs, fit_scaler, select_rows, train_members  # noqa: E402
from s2p_utils.train import read_history  # noqa: E402


def test_refit_parts_train_on_train_and_validation_and_refuse_test_rows(benchmark_script):
    refit = benchmark_script("refit")
    parts = {"train": np.array([0, 1, 2]), "val": np.array([3, 4]), "test": np.array([5])}
    out = refit.refit_parts(parts)
    assert out["train"].tolist() == [0, 1, 2, 3, 4]
    assert out["val"].tolist() == [3, 4] and out["test"].tolist() == [5]
    with pytest.raises(ValueError, match="test rows overlap"):
        refit.refit_parts({**parts, "val": np.array([3, 5])})


def test_fixed_epoch_recipe_trains_every_member_the_full_epochs_on_the_refit_rows(benchmark_script, tmp_path):
    from dataclasses import replace

    refit = benchmark_script("refit")
    config = toy_preset()
    config = replace(config, train=replace(config.train, ensemble=2, max_epochs=50, fixed_patience=1))
    base = resolve_recipe(config, "fixed")
    recipe = refit.fixed_epoch_recipe(base, 4)
    assert (recipe.stop_on, recipe.restore_best, recipe.epochs) == ("loss", False, 4)
    assert (
        recipe.patience > recipe.epochs and base.restore_best
    )  # the chosen recipe did restore its best epoch
    data = select_rows(config, "toy", dataset=toy_dataset())
    data = replace(data, parts=refit.refit_parts(data.parts))
    assert data.mask("train").sum() == 10  # 8 training + 2 validation crystals
    inputs = build_inputs(config, recipe, data)
    train_members(
        config, recipe, data, inputs, fit_scaler(config, recipe, data), run_name="refit", results_dir=tmp_path
    )
    for member in (0, 1):
        history = read_history(tmp_path / "checkpoints" / "refit" / f"member{member}")
        assert len(history) == 4  # all epochs, whatever the validation loss did


def test_a_cross_fitted_refit_stops_every_member_on_its_fold_of_train_and_validation(
    benchmark_script, tmp_path
):
    from dataclasses import replace

    from s2p_utils.model import load_model

    refit = benchmark_script("refit")
    config = toy_preset()
    config = replace(config, train=replace(config.train, ensemble=2, cross_fit=2))
    recipe = resolve_recipe(config, "fixed")
    dataset = toy_dataset()
    data = select_rows(config, "toy", dataset=dataset)
    data = replace(data, parts=refit.refit_parts(data.parts))
    inputs = build_inputs(config, recipe, data)
    predictor = train_members(
        config, recipe, data, inputs, fit_scaler(config, recipe, data), run_name="cv", results_dir=tmp_path
    )
    stopping = [load_model(source)[1].provenance["stopping_ids"] for source in predictor.sources]
    assert sorted(stopping[0] + stopping[1]) == sorted(dataset.ids[:10])  # train + validation, each once
    assert not set(stopping[0]) & set(stopping[1])


def test_refit_needs_epochs_unless_cross_fitted(benchmark_script, monkeypatch, capsys):
    refit = benchmark_script("refit")
    monkeypatch.setattr("sys.argv", ["refit.py", "--check"])
    with pytest.raises(SystemExit):
        refit.main()
    assert "--epochs is needed without --cross-fit" in capsys.readouterr().err
