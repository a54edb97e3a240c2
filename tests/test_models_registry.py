"""The authors' pretrained models: pins, verified fetch (mirror, 127.0.0.1 server), ``s2p predict authors:NAME``."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import shutil
import threading
from dataclasses import replace

import numpy as np
import pytest
from upstream_fixtures import make_mat2spec_zip

from s2p_utils import models_registry
from s2p_utils.data.download import ChecksumError, file_sha256, git_blob_sha1
from s2p_utils.models_registry import AUTHORS_COMMIT, MODELS, fetch_model, get_model

PINNED = {
    "models/mat2spec_pdf.h5": "36591ad8205b01f4098bf18834f4eb8e6fc32072",
    "models/mp2022_pdf.h5": "0c80d64467c5e291080b391107212e31e11b0fd3",
    "models/mp2022_pdf_MinMaxNorm.h5": "e28766bda7efe18994dd6abca81e97fcc13e1dc1",
    "add/edosBulk_pdf.h5": "17f830d00ffab57ccb029a1593ff9acee944bc7d",
    "add/edosSrTiO3_pdf.h5": "0f4fe0e6294a7e24130e4f566f6d4e1ac985e40f",
}


def test_registry_pins_the_authors_files_at_the_commit():
    assert AUTHORS_COMMIT == "905980dde130f899304a58a05244f717f084772e"
    assert {entry.repo_path: entry.git_sha1 for entry in MODELS.values()} == PINNED
    for entry in MODELS.values():
        assert (
            entry.url
            == f"https://raw.githubusercontent.com/dmamur/struct2prop/{AUTHORS_COMMIT}/{entry.repo_path}"
        )
        assert entry.predicts and entry.grid and entry.inputs and entry.target_scaling and entry.license
        assert entry.verified or entry.unverified  # says what was and was not checked
    assert get_model("authors:mat2spec_pdf").scaler_dataset == "mat2spec_edos"
    with pytest.raises(ValueError, match="unknown pretrained model 'authors:nope'; known: mat2spec_pdf"):
        get_model("authors:nope")


@pytest.mark.parametrize("name", ["edosBulk_pdf", "edosSrTiO3_pdf"])
def test_mirror_copies_match_the_pinned_git_blobs(mirror, name):
    entry = MODELS[name]
    path = mirror / "authors_weights" / entry.filename
    assert git_blob_sha1(path) == entry.git_sha1 and file_sha256(path) == entry.sha256
    assert path.stat().st_size == entry.size


def test_fetch_from_mirror_verifies_and_refuses_a_tampered_copy(mirror, tmp_path):
    assert fetch_model("edosBulk_pdf", mirror=mirror, cache_dir=tmp_path / "cache") == (
        mirror / "authors_weights" / "edosBulk_pdf.h5"
    )
    fake = tmp_path / "fake_mirror" / "authors_weights"
    fake.mkdir(parents=True)
    data = bytearray((mirror / "authors_weights" / "edosBulk_pdf.h5").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (fake / "edosBulk_pdf.h5").write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as error:
        fetch_model("edosBulk_pdf", mirror=fake.parent, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert str(fake / "edosBulk_pdf.h5") in message and MODELS["edosBulk_pdf"].sha256 in message


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_downloads_from_a_local_server_and_caches(mirror, tmp_path, monkeypatch):
    root = tmp_path / "served"
    (root / "add").mkdir(parents=True)
    shutil.copy(mirror / "authors_weights" / "edosSrTiO3_pdf.h5", root / "add" / "edosSrTiO3_pdf.h5")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/add/edosSrTiO3_pdf.h5"
    monkeypatch.setitem(MODELS, "edosSrTiO3_pdf", replace(MODELS["edosSrTiO3_pdf"], url=url))
    monkeypatch.delenv("S2P_DATA_MIRROR", raising=False)
    cache = tmp_path / "cache"
    try:
        path = fetch_model("edosSrTiO3_pdf", cache_dir=cache, progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert path == cache / "models" / "authors" / "edosSrTiO3_pdf.h5"
    assert git_blob_sha1(path) == MODELS["edosSrTiO3_pdf"].git_sha1
    assert fetch_model("edosSrTiO3_pdf", cache_dir=cache) == path  # the server is gone: from the cache
    path.write_bytes(b"corrupt")
    with pytest.raises(FileNotFoundError, match="authors_weights/edosSrTiO3_pdf.h5"):
        fetch_model("edosSrTiO3_pdf", cache_dir=cache, progress=False)  # corrupt copy dropped, offline
    assert not path.exists()


def test_cli_models_list_and_fetch(mirror, tmp_path, capsys):
    from s2p_utils.cli import main

    where = ["--mirror", str(mirror), "--cache-dir", str(tmp_path / "cache")]
    assert main(["models", "list", *where]) == 0
    out = capsys.readouterr().out
    assert all(f"authors:{name}" in out for name in MODELS)
    assert "MinMax, undone from mat2spec_edos" in out
    assert main(["models", "fetch", "edosBulk_pdf", *where]) == 0
    out = capsys.readouterr().out
    assert "git blob verified" in out and "max_atoms 128" in out and "500 outputs, grid input" in out


def test_cli_predict_authors_model_writes_csv(mirror, tmp_path, monkeypatch):
    from s2p_utils.cli import main
    from s2p_utils.prediction import predict

    monkeypatch.setenv("S2P_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("S2P_CACHE_DIR", str(tmp_path / "cache"))
    cifs = [str(mirror / "mp_binaries_cif" / name) for name in ("mp-1000.cif", "mp-10000.cif")]
    out = tmp_path / "edos.csv"
    assert main(["predict", "authors:edosBulk_pdf", *cifs, "--grid=-10:10:500", "--out", str(out)]) == 0
    with out.open() as stream:
        rows = list(csv.DictReader(stream))
    assert [row["id"] for row in rows] == ["mp-1000", "mp-10000"]
    assert np.allclose(json.loads(rows[0]["grid"]), np.linspace(-10, 10, 500))
    direct = predict(mirror / "authors_weights" / "edosBulk_pdf.h5", cifs, grid=np.linspace(-10, 10, 500))
    for row, expected in zip(rows, direct.mean, strict=True):
        np.testing.assert_allclose(json.loads(row["prediction"]), expected, rtol=1e-5, atol=1e-6)


def test_mat2spec_scaler_rebuilt_from_local_targets_else_flagged(tmp_path, monkeypatch):
    from s2p_utils.data.registry import load
    from s2p_utils.train import fit_target_scaler

    entry = MODELS["mat2spec_pdf"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert models_registry._scaler(entry, 128, empty, tmp_path / "cache0") is None
    mirror = tmp_path / "mirror"
    make_mat2spec_zip(mirror / "mat2spec_edos" / "Mat2Spec_DATA.zip", n_edos=10, n_phdos=2)
    scaler = models_registry._scaler(entry, 128, mirror, tmp_path / "cache")
    targets = load("mat2spec_edos", mirror=mirror, cache_dir=tmp_path / "cache").targets
    assert scaler == fit_target_scaler(targets, "minmax").to_dict()
    with pytest.raises(ValueError, match="predicts 64 points but mat2spec_edos has 128"):
        models_registry._scaler(entry, 64, mirror, tmp_path / "cache")
