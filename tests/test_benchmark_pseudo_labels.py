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
    alone = combined.split("chen2021+pseudo-only")  # pretraining rows: the added crystals only
    assert alone["train"].tolist() == [3, 4]
    assert alone["val"].tolist() == [1] and alone["test"].tolist() == [2]
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


def test_potential_labels_join_training_in_draw_order_and_unusable_ones_are_refused(
    tmp_path, monkeypatch, benchmark_script
):
    """The first ``k`` labelled crystals of the draw join the training part, frequencies scaled; an all-zero
    label (every mode imaginary) is dropped, and asking for more usable labels than exist is an error."""
    import json

    from ase.build import bulk

    import s2p_utils.data

    module = benchmark_script("pseudo_labels")
    dataset = _dataset()
    extra = [bulk("Al", "fcc", a=4.05), bulk("C", "diamond", a=3.57), bulk("Ni", "fcc", a=3.52)]
    monkeypatch.setattr(s2p_utils.data, "load", lambda name, progress=False: dataset)
    monkeypatch.setattr(module, "unlabelled_draw", lambda *a, **k: (extra, ["mp-134", "mp-66", "mp-23"]))
    labels = tmp_path / "x_unlabelled_0of1.jsonl"
    rows = [("mp-23", [0, 0, 1, 0]), ("mp-134", [0, 1, 0, 0]), ("mp-66", [0, 0, 0, 0])]
    labels.write_text("".join(json.dumps({"id": i, "spectrum": s}) + "\n" for i, s in rows))
    combined, split = module.mlip_labelled_dataset(_config(), [labels])
    assert split == "chen2021+pseudo" and combined.ids[3:] == ["mp-134", "mp-23"]  # draw order, mp-66 dropped
    assert combined.split(split)["train"].tolist() == [0, 3, 4]
    np.testing.assert_array_equal(combined.targets[3:], [[0, 1, 0, 0], [0, 0, 1, 0]])
    first, _ = module.mlip_labelled_dataset(_config(), [labels], 1, scale=2.0)  # g(ω / 2), linear between
    assert first.ids[3:] == ["mp-134"]
    np.testing.assert_allclose(first.targets[3], [0, 0.5, 1, 0.5], atol=1e-6)  # the peak moves 100 → 200
    # the all-zero label is dropped before the first k are taken: k = 2 reaches past mp-66 to mp-23
    two, _ = module.mlip_labelled_dataset(_config(), [labels], 2)
    assert two.ids[3:] == ["mp-134", "mp-23"]
    with pytest.raises(ValueError, match="3 labelled crystals asked for, 2 usable"):
        module.mlip_labelled_dataset(_config(), [labels], 3)
    # compounds only: Al and Ni are not compounds, so only the (labelled, usable) diamond would qualify,
    # and its label is all zeros
    with pytest.raises(ValueError, match="no usable labelled crystal"):
        module.mlip_labelled_dataset(_config(), [labels], compounds_only=True)
    extra[2] = bulk("NaCl", "rocksalt", a=5.64)  # mp-23 is now a compound with a usable label
    only, _ = module.mlip_labelled_dataset(_config(), [labels], compounds_only=True)
    assert only.ids[3:] == ["mp-23"] and only.formulas[3] == "ClNa"
    assert module.is_compound(bulk("LiH", "rocksalt", a=4.0)) and not module.is_compound(bulk("Cu"))


def _config():
    from s2p_utils.config import get_preset

    return get_preset("e3nn_phdos_mass")
