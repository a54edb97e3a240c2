"""The chen2021 split: one definition, the same on the offline mirror, the online path and Mat2Spec's zip."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from upstream_fixtures import make_chen_pickle, make_e3nn_csv, make_mat2spec_zip

from s2p_utils.data import chen_split, converters, registry

PARTS = ("train", "val", "test")


def _chen_order(seed: int = 0) -> tuple[list[str], dict[str, np.ndarray]]:
    """A stand-in for Chen's 1524-material order built from the shipped table, in the upstream layout.

    Chen's order has three materials the e3nn data lacks: gold (mp-81, in the third list) and two
    training materials. Returns (ids in Chen's order, part → index arrays into them) with list sizes
    1220/152/152, shuffled so that nothing depends on the order of the table.
    """
    table = chen_split.chen2021_table()
    members = {part: [m for m, p in table.items() if p == part] for part in PARTS}
    members["train"] += ["mp-990001", "mp-990002"]
    members["test"] += ["mp-81"]
    rng = np.random.default_rng(seed)
    order = [m for part in PARTS for m in members[part]]
    order = [order[i] for i in rng.permutation(len(order))]
    position = {m: k for k, m in enumerate(order)}
    parts = {part: rng.permutation([position[m] for m in members[part]]) for part in PARTS}
    return order, parts


def _ids_by_part(ds, split: str = "chen2021") -> dict[str, set[str]]:
    return {part: {ds.ids[k] for k in ds.split(split)[part]} for part in PARTS}


def test_table_is_chen_split_with_test_third_list():
    table = chen_split.chen2021_table()
    sizes = {part: sum(p == part for p in table.values()) for part in PARTS}
    assert sizes == {"train": 1218, "val": 152, "test": 151}
    assert chen_split.chen2021_pickle_sizes() == {"train": 1220, "val": 152, "test": 152}
    assert table["mp-149"] == "val"  # Si: second list
    assert "mp-81" not in table and "mp-569018" not in table
    assert chen_split.PICKLE_PARTS == ("train", "val", "test")


def test_offline_mirror_split_equals_the_shipped_table(mirror, tmp_path):
    ds = registry.load("e3nn_phdos", mirror=mirror, cache_dir=tmp_path / "cache")
    table = chen_split.chen2021_table()
    expected = {part: {m for m, p in table.items() if p == part} for part in PARTS}
    assert _ids_by_part(ds) == expected
    for part in PARTS:
        np.testing.assert_array_equal(ds.split("chen2021")[part], chen_split.indices_for(ds.ids)[part])


def test_offline_split_equals_the_one_built_from_chens_pickle(mirror, tmp_path):
    """Mat2Spec's zip (pickle + mpids.csv in Chen's order) read by the package gives the mirror's split."""
    order, parts = _chen_order()
    numbers = [int(m.split("-")[1]) for m in order]  # upstream mpids.csv stores bare integers
    zip_path = tmp_path / "Mat2Spec_DATA.zip"
    make_mat2spec_zip(zip_path, n_edos=2, phdos_ids=numbers, chen_split=parts)
    ids, pickle_parts = converters.read_mat2spec_chen_split(zip_path)
    chen_split.check_pickle_sizes(pickle_parts, str(zip_path))
    ds = registry.load("e3nn_phdos", mirror=mirror, cache_dir=tmp_path / "cache")
    from_pickle = {part: {ids[j] for j in pickle_parts[part]} & set(ds.ids) for part in PARTS}
    assert from_pickle == _ids_by_part(ds)
    # the trteva file-name order would swap the last two lists: that is the mirror's first, wrong version
    assert from_pickle["test"] != {ids[j] for j in pickle_parts["val"]} & set(ds.ids)


def test_online_converter_labels_chen2021_from_table_and_checks_the_pickle(tmp_path):
    table = chen_split.chen2021_table()
    chosen = ["mp-149"] + [m for m, p in table.items() if p == "test"][:3] + ["mp-569018", "mp-1000"]
    make_e3nn_csv(tmp_path / "e3nn" / "data.csv", len(chosen), ids=chosen)
    _, parts = _chen_order()
    make_chen_pickle(tmp_path / "e3nn" / "200801_trteva_indices.pkl", parts)
    spec = registry.REGISTRY["e3nn_phdos"]
    names = [f.filename for f in spec.files]
    assert "Mat2Spec_DATA.zip" not in names and "200801_trteva_indices.pkl" in names
    files = {name: tmp_path / "e3nn" / name for name in names}
    context = registry.ConversionContext(
        spec=spec, files=files, mirror=None, cache_dir=tmp_path, progress=False
    )
    ds = spec.converter(context)
    got = _ids_by_part(ds)
    assert "mp-149" in got["val"] and "mp-569018" not in set().union(*got.values())
    assert got["test"] == set(chosen[1:4])
    assert set(ds.splits) == {"chen2021", "tutorial", "random73"}

    # a pickle with other list sizes is not the one the table was built from
    make_chen_pickle(files["200801_trteva_indices.pkl"], {**parts, "val": parts["val"][:-1]})
    with pytest.raises(ValueError, match="list sizes .* expected .*upstream file changed"):
        spec.converter(context)
    # a pickle that names a callable is refused before anything runs
    files["200801_trteva_indices.pkl"].write_bytes(pickle.dumps(print))
    with pytest.raises(ValueError, match="refused or unreadable pickle"):
        spec.converter(context)


def test_chen_pickle_is_pinned():
    pinned = {f.filename: f for f in registry.REGISTRY["e3nn_phdos"].files}
    pkl = pinned["200801_trteva_indices.pkl"]
    assert pkl.sha256 == "ea8d82da6bfdadfdd60d980625b179ccebeebdd10e45d045b7667837bb9d3cb3"
    assert pkl.size == 12_434 and "9575e2180d3d737f8437a13de9e250efa73c4c83" in pkl.url
    assert all(pinned[name].verifiable for name in ("idx_train.txt", "idx_valid.txt", "idx_test.txt"))
