"""Models shipped with the package: the default phonon-DOS ensemble, its model card, export and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("keras")

from s2p_utils import packaged_models  # noqa: E402
from s2p_utils.cli import main  # noqa: E402
from s2p_utils.data import load  # noqa: E402
from s2p_utils.metrics import calibration, spectrum_metrics  # noqa: E402
from s2p_utils.prediction import predict  # noqa: E402

CARD_KEYS = (
    "mse_renorm",
    "mae_renorm",
    "mae",
    "mse",
    "r2_pooled_renorm",
    "wasserstein",
    "omega_mae",
    "cv_mae",
)


def test_default_packaged_model_is_shipped_with_a_card():
    assert packaged_models.DEFAULT_MODEL in packaged_models.packaged_names()
    card = packaged_models.model_card()
    folder = packaged_models.packaged_model_path()
    members = sorted(folder.glob("member*.keras"))
    assert len(members) == card["members"] and (folder / "calibration.json").is_file()
    assert (folder / "MODEL_CARD.md").is_file()
    assert card["size_bytes"] == packaged_models.folder_size(folder) < 8_000_000
    assert card["split"] == "chen2021" and card["dataset"] == "e3nn_phdos"
    assert {"train", "val", "test"} <= set(card["split_sizes"]) and card["command"]


def test_packaged_model_reproduces_its_card_test_metrics(mirror, tmp_path):
    card = packaged_models.model_card()
    ds = load("e3nn_phdos", mirror=mirror, cache_dir=tmp_path / "cache", progress=False)
    test = ds.split("chen2021")["test"]
    result = predict(f"s2p:{packaged_models.DEFAULT_MODEL}", [ds.structures[i] for i in test])
    assert result.calibrated is True and result.std is not None
    scores = spectrum_metrics(ds.targets[test], result.mean, grid=ds.grid, kind="phdos", grid_unit="cm^-1")
    for key in CARD_KEYS:
        assert scores[key] == pytest.approx(card["test_metrics"][key], rel=1e-3, abs=1e-5), key
    coverage = calibration(ds.targets[test], result.mean, result.std)
    assert coverage["within_1sigma"] == pytest.approx(card["test_metrics"]["within_1sigma"], abs=2e-3)


def test_s2p_predict_without_a_model_uses_the_packaged_ensemble(mirror, tmp_path, capsys):
    cifs = sorted((mirror / "mp_binaries_cif").glob("*.cif"))[:3]
    out = tmp_path / "phdos.csv"
    assert main(["predict", *map(str, cifs), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame["file"]) == [str(c) for c in cifs] and set(frame["std_calibrated"]) == {True}
    grid = np.array(json.loads(frame["grid"][0]))
    assert grid[0] == 0.0 and grid[-1] == 1000.0 and len(grid) == 51
    spectra = np.array([json.loads(p) for p in frame["prediction"]])
    assert spectra.shape == (3, 51) and (spectra >= 0).all() and spectra.max() > 0.1
    # naming the packaged model gives the same file
    again = tmp_path / "named.csv"
    assert (
        main(["predict", f"s2p:{packaged_models.DEFAULT_MODEL}", *map(str, cifs), "--out", str(again)]) == 0
    )
    assert again.read_text() == out.read_text()


def test_unknown_packaged_model_is_a_clear_error():
    with pytest.raises(ValueError, match="no packaged model 'nope'.*e3nn_phdos_mass"):
        packaged_models.packaged_model_path("nope")
    assert main(["predict", "s2p:nope", "x.cif"]) == 2


def test_looks_like_model():
    assert packaged_models.looks_like_model("s2p:e3nn_phdos_mass")
    assert packaged_models.looks_like_model("authors:edosBulk_pdf")
    assert packaged_models.looks_like_model("run/model.keras") and packaged_models.looks_like_model("w.h5")
    assert not packaged_models.looks_like_model("crystal.cif")


def test_export_rounds_weights_and_keeps_predictions(tmp_path):
    from test_predict import _crystals, make_saved_models

    from s2p_utils.uncertainty import Calibration, write_calibration

    _, ensemble = make_saved_models(tmp_path)
    write_calibration(ensemble, Calibration(2.0, 0.01, 3))
    dest = packaged_models.export_ensemble(ensemble, "tiny", dest_root=tmp_path / "pkg")
    packaged_models.write_model_card(dest, {"predicts": "toy"})
    card = json.loads((dest / "model_card.json").read_text())
    assert card["size_bytes"] == packaged_models.folder_size(dest) and card["predicts"] == "toy"
    original, exported = predict(ensemble, _crystals()), predict(dest, _crystals())
    np.testing.assert_allclose(exported.mean, original.mean, atol=2e-3)
    assert exported.calibrated and original.calibrated  # calibration.json travels
