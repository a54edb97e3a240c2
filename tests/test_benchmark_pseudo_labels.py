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
