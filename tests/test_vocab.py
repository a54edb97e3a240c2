"""The 94-token element vocabulary and padding (s2p_utils.vocab)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from s2p_utils.vocab import (
    PAD_ID,
    TOKEN_IDS,
    UNK_ID,
    VOCABULARY,
    atoms_tokens,
    element_tokens,
    pad_atoms,
    symbols_to_tokens,
    vocabulary_json,
    write_vocabulary_json,
)

REPO = Path(__file__).resolve().parents[1]

# Z = 1 ... 103, typed out here independently of ASE.
PERIODIC_TABLE = """
H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr
Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb
Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr
""".split()
MISSING = {"Po", "At", "Rn", "Fr", "Ra", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr"}


def test_periodic_table_fixture():
    assert len(PERIODIC_TABLE) == 103 and PERIODIC_TABLE[25] == "Fe" and PERIODIC_TABLE[91] == "U"


def test_vocabulary_ids():
    elements = sorted(s for s in PERIODIC_TABLE if s not in MISSING)
    assert len(elements) == 89
    expected = ["", "[UNK]", "[SEP]", "[CLS]", *elements, "[MASK]"]
    assert list(VOCABULARY) == expected
    assert len(VOCABULARY) == 94
    spot_checks = {
        "": 0,
        "[UNK]": 1,
        "[SEP]": 2,
        "[CLS]": 3,
        "Ac": 4,
        "Ag": 5,
        "Al": 6,
        "Zn": 91,
        "Zr": 92,
        "[MASK]": 93,
    }
    for token, index in spot_checks.items():
        assert TOKEN_IDS[token] == index
    assert all(TOKEN_IDS[t] == i for i, t in enumerate(VOCABULARY))
    assert PAD_ID == 0 and UNK_ID == 1


def test_element_tokens():
    ids = element_tokens(["Zr", "Ac", "O", "Ag"])
    assert ids.dtype == np.int32 and ids.shape == (4,)
    assert ids.tolist() == [92, 4, VOCABULARY.index("O"), 5]
    assert symbols_to_tokens(["Cu"]).tolist() == [VOCABULARY.index("Cu")]


@pytest.mark.parametrize("symbol", ["Po", "Lr", "Xx", "[MASK]", ""])
def test_unknown_elements(symbol):
    with pytest.raises(ValueError, match="not in the 94-token vocabulary"):
        element_tokens(["Na", symbol])
    assert element_tokens(["Na", symbol], unknown="unk").tolist() == [VOCABULARY.index("Na"), 1]


def test_bad_unknown_option():
    with pytest.raises(ValueError, match="unknown must be"):
        element_tokens(["Na"], unknown="skip")


def test_atoms_tokens():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    assert atoms_tokens(atoms).tolist() == [VOCABULARY.index("Na"), VOCABULARY.index("Cl")]


def test_vocab_json_is_generated_by_code(tmp_path):
    committed = (REPO / "data" / "vocab.json").read_text(encoding="utf-8")
    assert committed == vocabulary_json(), (
        "data/vocab.json is stale: run s2p_utils.vocab.write_vocabulary_json"
    )
    written = write_vocabulary_json(tmp_path / "v.json")
    assert written.read_text(encoding="utf-8") == committed
    content = json.loads(committed)
    assert content["tokens"] == list(VOCABULARY)
    assert content["token_ids"]["Zr"] == 92


# ------------------------------------------------------------------------------------ padding


def ragged(sizes, n_bins=100, seed=0):
    rng = np.random.default_rng(seed)
    features = [rng.random((n, n_bins)) for n in sizes]
    tokens = [rng.integers(4, 93, size=n) for n in sizes]
    return features, tokens


def test_pad_atoms_post_pads_with_zeros():
    features, tokens = ragged([3, 1, 5])
    pdf, ids = pad_atoms(features, tokens, max_atoms=6)
    assert pdf.shape == (3, 6, 100) and pdf.dtype == np.float32
    assert ids.shape == (3, 6) and ids.dtype == np.int32
    for k, (f, t) in enumerate(zip(features, tokens, strict=True)):
        n = len(f)
        np.testing.assert_array_equal(pdf[k, :n], f.astype(np.float32))
        np.testing.assert_array_equal(ids[k, :n], t)
        assert not pdf[k, n:].any() and not ids[k, n:].any()


def test_pad_atoms_default_length():
    pdf, ids = pad_atoms(*ragged([2, 7, 4]))
    assert pdf.shape == (3, 7, 100) and ids.shape == (3, 7)


def test_pad_atoms_never_truncates_silently():
    features, tokens = ragged([3, 9, 12, 2])
    with pytest.raises(ValueError, match="2 structure"):
        pad_atoms(features, tokens, max_atoms=8)
    with pytest.warns(UserWarning, match="2 structure"):
        pdf, ids = pad_atoms(features, tokens, max_atoms=8, truncate="post")
    np.testing.assert_array_equal(pdf[1], features[1][:8].astype(np.float32))
    np.testing.assert_array_equal(ids[2], tokens[2][:8])


def test_pad_atoms_no_warning_when_nothing_is_cut():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pad_atoms(*ragged([3, 4]), max_atoms=4, truncate="post")


def test_pad_atoms_rejects_mismatches():
    features, tokens = ragged([3, 4])
    with pytest.raises(ValueError, match="do not describe the same atoms"):
        pad_atoms(features, [tokens[0], tokens[1][:2]])
    with pytest.raises(ValueError, match="2 feature arrays but 1 token"):
        pad_atoms(features, tokens[:1])
    with pytest.raises(ValueError, match="truncate must be"):
        pad_atoms(features, tokens, truncate="pre")
