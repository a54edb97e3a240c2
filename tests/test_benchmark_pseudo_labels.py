"""``benchmarks/pseudo_labels.py``: teacher-labelled crystals join the training part only."""

from __future__ import annotations

import numpy as np
import pytest


def _dataset():
    from ase.build import bulk

    from s2p_utils.data.dataset import Dataset

    structures = [bulk("Cu", "fcc", a=3.61), bulk("Si", "diamond", a=5.43), bulk("NaCl", "rocksalt", a=5.64)]
    return Dataset(
        name="toy",
        ids=["mp-30", "mp-149", "mp-22862"],
        formulas=["Cu", "Si2", "NaCl"],
        structures=structures,
        targets=np.eye(3, 4, dtype=np.float32),
        grid=np.linspace(0, 300, 4),
        kind="phdos",
        splits={"chen2021": {"train": np.array([0]), "val": np.array([1]), "test": np.array([2])}},
    )


def test_pseudo_labelled_rows_join_training_only_and_known_crystals_are_refused(tmp_path, benchmark_script):
    from ase.build import bulk

    module = benchmark_script("pseudo_labels")
    dataset = _dataset()
    extra = [bulk("Al", "fcc", a=4.05), bulk("C", "diamond", a=3.57)]
    spectra = np.array([[0, 1, 0, 0], [0, 0, 0.5, 1]], dtype=np.float32)
    combined = module.with_pseudo_labels(dataset, "chen2021", extra, ["mp-134", "mp-66"], spectra)
    parts = combined.split("chen2021+pseudo")
    assert parts["train"].tolist() == [0, 3, 4]
    assert parts["val"].tolist() == [1] and parts["test"].tolist() == [2]
    np.testing.assert_array_equal(combined.targets[3:], spectra)
    assert combined.ids[3:] == ["mp-134", "mp-66"] and combined.formulas[3] == "Al"
    np.testing.assert_array_equal(combined.split("chen2021")["train"], [0])  # the original split is kept
    with pytest.raises(ValueError, match="already in the dataset"):
        module.with_pseudo_labels(dataset, "chen2021", extra[:1], ["mp-149"], spectra[:1])
    with pytest.raises(ValueError, match="disagree"):
        module.with_pseudo_labels(dataset, "chen2021", extra, ["mp-134", "mp-66"], spectra[:1])
    for name in ("mp-149.cif", "mp-134.cif", "mp-66.cif"):
        (tmp_path / name).write_text("")
    assert [p.name for p in module.unlabelled_files(tmp_path, set(dataset.ids))] == [
        "mp-134.cif",
        "mp-66.cif",
    ]


def test_frequency_scaling_and_its_fit_undo_a_uniform_softening(benchmark_script):
    """A labeller 10 % too soft everywhere: the fitted factor is 1.1, and scaling its spectra by it restores
    the targets (peak at the same frequency, peak 1); a factor of 1 changes nothing."""
    from s2p_utils.metrics import mean_frequency

    module = benchmark_script("pseudo_labels")
    grid = np.linspace(0.0, 1000.0, 201)
    centres = np.array([[220.0], [330.0], [440.0]])
    targets = np.exp(-0.5 * ((grid - centres) / 30.0) ** 2)
    soft = np.exp(-0.5 * ((grid - centres / 1.1) / (30.0 / 1.1)) ** 2)
    scale = module.fitted_frequency_scale(grid, targets, soft)
    assert scale == pytest.approx(1.1, rel=2e-3)
    unstable = np.vstack([soft, np.zeros_like(grid)])  # every mode imaginary: no label, left out of the fit
    assert module.fitted_frequency_scale(grid, np.vstack([targets, targets[:1]]), unstable) == pytest.approx(
        scale
    )
    restored = module.frequency_scaled(grid, soft, scale)
    assert np.abs(restored - targets).max() < 0.02 and restored.max(axis=1) == pytest.approx(1.0)
    np.testing.assert_allclose(module.frequency_scaled(grid, targets, 1.0), targets, atol=1e-12)
    np.testing.assert_allclose(mean_frequency(grid, restored), mean_frequency(grid, targets), rtol=5e-3)


def test_read_labels_keeps_the_last_label_and_skips_a_torn_line(tmp_path, benchmark_script):
    """Two shard files; a killed run leaves half a line at the end of one; a crystal labelled twice (a rerun)
    keeps its last spectrum."""
    import json

    module = benchmark_script("pseudo_labels")
    first, second = tmp_path / "x_unlabelled_0of2.jsonl", tmp_path / "x_unlabelled_1of2.jsonl"
    first.write_text(
        json.dumps({"id": "mp-1", "spectrum": [0, 1]})
        + "\n"
        + json.dumps({"id": "mp-2", "spectrum": [1, 0]})
        + "\n"
    )
    second.write_text(json.dumps({"id": "mp-1", "spectrum": [0.5, 1]}) + "\n" + '{"id": "mp-3", "spec')
    labels = module.read_labels([first, second])
    assert sorted(labels) == ["mp-1", "mp-2"]
    np.testing.assert_array_equal(labels["mp-1"], [0.5, 1.0])
