"""The dataset registry: load() resolution order, the real mirror, the generated data/README.md."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from upstream_fixtures import make_e3nn_csv, make_mat2spec_zip

from s2p_utils.cli.data import cmd_fetch, cmd_list
from s2p_utils.data import converters, registry
from s2p_utils.data.dataset import save_prepared
from s2p_utils.data.download import ChecksumError

REPO = Path(__file__).resolve().parents[1]


def _independent_random73(n: int) -> dict[str, np.ndarray]:
    order = np.random.RandomState(73).permutation(n)
    return {
        "train": order[: int(0.8 * n)],
        "val": order[int(0.8 * n) : int(0.9 * n)],
        "test": order[int(0.9 * n) :],
    }


def test_e3nn_phdos_from_mirror(mirror, tmp_path):
    ds = registry.load("e3nn_phdos", mirror=mirror, cache_dir=tmp_path / "cache")
    assert len(ds) == 1522 and len(ds.structures) == 1522
    assert isinstance(ds.structures[0], Atoms)
    assert ds.targets.shape == (1522, 51) and ds.targets.dtype == np.float32
    np.testing.assert_allclose(ds.grid, np.linspace(0.0, 1000.0, 51))
    assert ds.grid_unit == "cm^-1" and ds.kind == "phdos"
    sizes = {name: tuple(len(ds.split(name)[p]) for p in ("train", "val", "test")) for name in ds.splits}
    assert sizes["chen2021"] == (1218, 152, 151)
    assert sizes["tutorial"] == (1192, 141, 189)
    for part, idx in _independent_random73(1522).items():
        np.testing.assert_array_equal(ds.split("random73")[part], idx)
    assert "mp-569018" not in {ds.ids[i] for p in ("train", "val", "test") for i in ds.split("chen2021")[p]}
    assert ds.meta["origin"].startswith("mirror") and ds.meta["citation"]


def test_e3nn_phdos_through_env_mirror_is_fast(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("S2P_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("S2P_CACHE_DIR", str(tmp_path / "cache"))
    start = time.perf_counter()
    ds = registry.load("e3nn_phdos")
    assert len(ds) == 1522
    assert time.perf_counter() - start < 10  # ~1 s on a laptop; generous for shared CI cores


def test_jarvis_edos_sample_from_mirror(mirror, tmp_path):
    ds = registry.load("jarvis_edos_sample", mirror=mirror, cache_dir=tmp_path / "cache")
    assert ds.targets.shape == (50, 300) and ds.grid_unit == "bin" and ds.kind == "edos"
    assert set(ds.splits) == {"random73"}


def test_mirror_only_dataset_offline_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"jarvis_edos_sample\.json\.gz \(sha256 2853832e"):
        registry.load("jarvis_edos_sample", mirror=tmp_path, cache_dir=tmp_path / "cache")


def test_corrupted_prepared_mirror_file_is_rejected(tmp_path):
    (tmp_path / "e3nn_phdos.json.gz").write_bytes(b"not the real file")
    with pytest.raises(
        ChecksumError, match="sha256 mismatch for mirror file .*e3nn_phdos.json.gz: expected f7fb6730"
    ):
        registry.load("e3nn_phdos", mirror=tmp_path, cache_dir=tmp_path / "cache")


def test_mat2spec_edos_from_mirror_upstream_zip_then_cache(tmp_path):
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    info = make_mat2spec_zip(mirror / "mat2spec_edos" / "Mat2Spec_DATA.zip", n_edos=40, n_phdos=4)
    ds = registry.load("mat2spec_edos", mirror=mirror, cache_dir=cache, progress=False)
    assert ds.ids == info["edos_ids"] and ds.targets.shape == (40, 128)
    assert [len(ds.split("mat2spec")[p]) for p in ("train", "val", "test")] == [32, 4, 4]
    assert ds.meta["license"] == registry.REGISTRY["mat2spec_edos"].license
    assert (cache / "prepared" / "mat2spec_edos.json.gz").is_file()
    again = registry.load("mat2spec_edos", mirror=mirror, cache_dir=cache)
    assert again.meta["origin"].startswith("cache")
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(again.split("mat2spec")[part], np.sort(info["edos_split"][part]))
        np.testing.assert_array_equal(again.split("random73")[part], ds.split("random73")[part])
    for a, b in zip(again.structures, ds.structures, strict=True):
        np.testing.assert_allclose(a.positions, b.positions)


def test_mat2spec_phdos_uses_e3nn_structures(tmp_path):
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    make_e3nn_csv(tmp_path / "e3nn" / "data.csv", 8)
    e3nn = converters.convert_e3nn_csv(tmp_path / "e3nn" / "data.csv", progress=False)
    save_prepared(e3nn, cache / "prepared" / "e3nn_phdos.json.gz")  # stands in for the real e3nn_phdos
    info = make_mat2spec_zip(mirror / "mat2spec_edos" / "Mat2Spec_DATA.zip", n_edos=2, n_phdos=8)
    ds = registry.load("mat2spec_phdos", mirror=mirror, cache_dir=cache, progress=False)
    assert ds.ids == info["phdos_ids"] and ds.targets.shape == (8, 51)
    by_id = dict(zip(e3nn.ids, e3nn.structures, strict=True))
    for material, atoms in zip(ds.ids, ds.structures, strict=True):
        np.testing.assert_allclose(atoms.positions, by_id[material].positions, atol=1e-12)
    assert sum(len(ds.split("chen2021")[p]) for p in ("train", "val", "test")) == 8


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'nope'; known: .*e3nn_phdos"):
        registry.load("nope")


def test_mp_phdos_without_key(tmp_path, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="MP_API_KEY"):
        registry.load("mp_phdos", mirror=tmp_path, cache_dir=tmp_path / "cache")


def test_registry_entries_are_complete():
    expected = {
        "e3nn_phdos",
        "mat2spec_edos",
        "mat2spec_phdos",
        "jarvis_edos",
        "jarvis_phdos",
        "sto_edos",
        "surface_edos",
        "mp_phdos",
        "jarvis_edos_sample",
    }
    assert set(registry.REGISTRY) == expected
    for spec in registry.REGISTRY.values():
        assert spec.license and spec.citation and spec.source and spec.kind in {"phdos", "edos"}
        assert spec.converter is not None or spec.prepared is not None
        for upstream in spec.files:
            assert upstream.url.startswith("https://")
            assert upstream.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", upstream.sha256)
            assert upstream.git_sha1 is None or re.fullmatch(r"[0-9a-f]{40}", upstream.git_sha1)
            if "raw.githubusercontent.com" in upstream.url:  # pinned to a commit, not a branch
                assert re.search(r"/[0-9a-f]{40}/", upstream.url)
    assert registry.REGISTRY["e3nn_phdos"].splits == ("chen2021", "tutorial")
    assert registry.REGISTRY["mat2spec_edos"].default_split == "mat2spec"


def test_registry_checksums_come_from_the_mirror_readme(mirror):
    """No invented checksums: every hash in the registry is written in the mirror's README."""
    readme = (mirror / "README.md").read_text(encoding="utf-8")
    hashes = []
    for spec in registry.REGISTRY.values():
        if spec.prepared and spec.prepared.sha256:
            hashes.append(spec.prepared.sha256)
        hashes += [h for f in spec.files for h in (f.sha256, f.git_sha1) if h]
    assert hashes
    for digest in hashes:
        assert digest in readme


def test_data_readme_is_generated_from_registry():
    committed = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    assert committed == registry.registry_markdown(), (
        'data/README.md is stale; regenerate with: python -c "from s2p_utils.data.registry import '
        "registry_markdown as m; open('data/README.md','w').write(m())\""
    )
    for name in registry.REGISTRY:
        assert f"`{name}`" in committed


def test_cli_list_and_fetch(mirror, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert cmd_list(argparse.Namespace(mirror=str(mirror), cache_dir=str(cache))) == 0
    out = capsys.readouterr().out
    for name in registry.REGISTRY:
        assert name in out
    assert re.search(r"e3nn_phdos\s+phdos\s+1522\s+51\s.*mirror \(prepared\)", out)
    assert re.search(r"mp_phdos\s.*(needs MP_API_KEY|download)", out)
    assert (
        cmd_fetch(argparse.Namespace(name=["jarvis_edos_sample"], mirror=str(mirror), cache_dir=str(cache)))
        == 0
    )
    assert "jarvis_edos_sample: 50 structures, targets (50, 300)" in capsys.readouterr().out
