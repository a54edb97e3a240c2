"""The ``e3nn_phdos_mass`` preset (phonon issue): g(r) and its neighbour-mass-weighted twin per atom, through
``run_experiment`` and ``s2p predict``, on toy data (the real preset trains for ~25 minutes)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("keras")

from ase.io import write  # noqa: E402
from test_experiment import N_GRID, toy_dataset  # noqa: E402

from s2p_utils.cli import main  # noqa: E402
from s2p_utils.config import get_preset  # noqa: E402
from s2p_utils.experiment import run_experiment  # noqa: E402
from s2p_utils.prediction import load_predictor  # noqa: E402


def toy_mass_config(ensemble: int, **changes):
    """``e3nn_phdos_mass`` shrunk to the toy dataset (4 atoms, tiny LSTMs), with ``ensemble`` members and
    ``changes`` to its top-level fields."""
    preset = get_preset("e3nn_phdos_mass")
    return replace(
        preset,
        dataset="toy",
        default_split="toy",
        model=replace(preset.model, max_atoms=4, n_out=N_GRID, lstm_units=8, embedding_dim=8),
        train=replace(preset.train, ensemble=ensemble, batch_size=4),
        **changes,
    )


def test_the_mass_preset_trains_saves_and_predicts(tmp_path):
    preset = get_preset("e3nn_phdos_mass")
    assert (
        preset.featurizer == "pdf_mass_bond" and preset.model.n_pdf_bins == 405 and preset.train.ensemble == 5
    )
    assert preset.train.member_orders and preset.train.test_time_permutations == 1
    assert preset.model.output_norm == "max" and preset.train.target_scaling == "none"
    config = toy_mass_config(ensemble=2)
    dataset = toy_dataset()
    result = run_experiment(config, dataset=dataset, results_dir=tmp_path, epochs=1, smoke=False)
    assert result.inputs["pdf"].shape[1:] == (4, 405)
    saved = load_predictor(result.model_path)
    assert saved.record.model.output_norm == "max"
    assert all(network.get_layer("dos_max_norm") is not None for network in saved.networks)
    # the mass-weighted blocks differ from g(r) for the two-element crystals (NaCl, MgO), not for Cu or Si
    plain = result.inputs["pdf"][..., :100]
    formulas = [dataset.formulas[i] for i in result.data.rows]
    for weighted in (result.inputs["pdf"][..., 100:200], result.inputs["pdf"][..., 200:300]):
        for k, formula in enumerate(formulas):
            same = np.allclose(plain[k], weighted[k], atol=1e-9)
            assert same == (formula in ("Cu", "Si2")), formula
    # the fourth block counts every atom's neighbours by bond length over the sum of covalent radii: each atom
    # of these crystals has neighbours closer than twice that sum (x < 2), so no row of it is empty
    bonds = result.inputs["pdf"][..., 300:400]
    real_atoms = result.inputs["tokens"] > 0
    assert (bonds.sum(axis=-1)[real_atoms] > 0).all()
    path = tmp_path / "crystal.traj"
    write(path, dataset.structures[result.data.parts["test"][0]])
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(result.model_path), str(path), "--out", str(out)]) == 0
    predicted = np.asarray(json.loads(pd.read_csv(out)["prediction"][0]))
    row = list(result.data.rows).index(result.data.parts["test"][0])
    np.testing.assert_allclose(predicted, result.evaluation.predictions[row], rtol=1e-5, atol=1e-6)


def test_a_linear_deposit_model_saves_its_featurisation_and_predicts_with_it(tmp_path):
    """``pdf_deposit="linear"`` reaches the features of training and, through the saved record, of
    :func:`load_predictor` (one code path): the saved model reproduces the run's own test predictions,
    which a floor-binned featurisation of the same crystals would not feed it."""
    from s2p_utils.inputs import model_inputs

    config = toy_mass_config(ensemble=1, pdf_deposit="linear")
    dataset = toy_dataset()
    result = run_experiment(config, dataset=dataset, results_dir=tmp_path, epochs=1, smoke=False)
    saved = load_predictor(result.model_path)
    assert saved.record.config.pdf_deposit == "linear"
    test_rows = result.data.parts["test"]
    structures = [dataset.structures[i] for i in test_rows]
    floor = model_inputs(structures, replace(config, pdf_deposit="floor"), legacy=False)["pdf"]
    linear = model_inputs(structures, config, legacy=False)["pdf"]
    assert not np.allclose(floor, linear)
    order = [list(result.data.rows).index(i) for i in test_rows]
    np.testing.assert_allclose(linear, result.inputs["pdf"][order], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        saved.predict(structures).mean, result.evaluation.predictions[order], rtol=1e-5, atol=1e-6
    )
