"""A truncated or corrupt cache file is detected, reported and rebuilt (issue 12 item 5)."""

from __future__ import annotations

import logging

import pytest
from upstream_fixtures import make_mat2spec_zip

from s2p_utils.cli import main
from s2p_utils.data import registry


def _corrupt(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "flipped":
        for k in range(len(data) // 2, len(data) // 2 + 64):
            data[k] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(b"not gzip at all")


@pytest.fixture()
def mat2spec_mirror(tmp_path):
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    info = make_mat2spec_zip(mirror / "mat2spec_edos" / "Mat2Spec_DATA.zip", n_edos=12, n_phdos=2)
    registry.load("mat2spec_edos", mirror=mirror, cache_dir=cache, progress=False)
    return mirror, cache, info


@pytest.mark.parametrize("how", ["truncated", "flipped", "garbage"])
def test_corrupt_prepared_cache_is_reported_and_rebuilt(mat2spec_mirror, how, caplog):
    mirror, cache, info = mat2spec_mirror
    prepared = cache / "prepared" / "mat2spec_edos.json.gz"
    _corrupt(prepared, how)
    assert registry.prepared_cache_problem(prepared) is not None
    status = registry.dataset_status("mat2spec_edos", mirror=mirror, cache_dir=cache)
    assert status.startswith("corrupt cache") and "--refresh" in status
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="s2p_utils.data.download"):
        again = registry.load("mat2spec_edos", mirror=mirror, cache_dir=cache, progress=False)
    assert again.ids == info["edos_ids"]
    assert f"cached dataset {prepared} is corrupt" in caplog.text
    assert registry.prepared_cache_problem(prepared) is None
    assert registry.dataset_status("mat2spec_edos", mirror=mirror, cache_dir=cache) == "cached"


def test_cli_list_reports_corrupt_cache_and_fetch_refresh_rebuilds(mat2spec_mirror, capsys):
    mirror, cache, info = mat2spec_mirror
    prepared = cache / "prepared" / "mat2spec_edos.json.gz"
    _corrupt(prepared, "truncated")
    where = ["--mirror", str(mirror), "--cache-dir", str(cache)]
    assert main(["data", "list", *where]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("mat2spec_edos "))
    assert "corrupt cache" in line
    assert main(["data", "fetch", "mat2spec_edos", "--refresh", *where]) == 0
    assert f"{len(info['edos_ids'])} structures" in capsys.readouterr().out
    assert registry.prepared_cache_problem(prepared) is None


def test_refresh_removes_a_corrupt_cache_file_when_the_mirror_serves_the_dataset(mirror, tmp_path):
    cache = tmp_path / "cache"
    prepared = cache / "prepared" / "jarvis_edos_sample.json.gz"
    prepared.parent.mkdir(parents=True)
    prepared.write_bytes(b"\x1f\x8b\x08\x00broken")
    dataset = registry.load("jarvis_edos_sample", mirror=mirror, cache_dir=cache, refresh=True)
    assert len(dataset) == 50 and dataset.meta["origin"].startswith("mirror")
    assert not prepared.exists()
