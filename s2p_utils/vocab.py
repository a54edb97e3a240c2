"""Element tokens: the authors' 94-token vocabulary, generated in code (no pickle).

Ids (as the original ``data/el2id.pkl``)::

    ''       0   padding
    '[UNK]'  1   an element outside the vocabulary
    '[SEP]'  2
    '[CLS]'  3
    Ac … Zr  4 … 92   the 89 elements of Z = 1…103 except Po, At, Rn, Fr, Ra, Am, Cm, Bk, Cf, Es,
                      Fm, Md, No, Lr, in alphabetical order of the symbol (Ac = 4, Ag = 5, …, Zr = 92)
    '[MASK]' 93

``data/vocab.json`` is this vocabulary written by :func:`write_vocabulary_json`.

:func:`pad_atoms` packs ragged per-structure arrays into the model's fixed-size inputs.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

__all__ = [
    "VOCABULARY",
    "TOKEN_IDS",
    "PAD_ID",
    "UNK_ID",
    "SEP_ID",
    "CLS_ID",
    "MASK_ID",
    "EXCLUDED_ELEMENTS",
    "element_tokens",
    "symbols_to_tokens",
    "atoms_tokens",
    "pad_atoms",
    "vocabulary_json",
    "write_vocabulary_json",
]

EXCLUDED_ELEMENTS = ("Po", "At", "Rn", "Fr", "Ra", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr")
"""Elements of Z = 1…103 that the original vocabulary lacks (they map to ``[UNK]``)."""

_ELEMENTS = tuple(sorted(s for s in chemical_symbols[1:104] if s not in EXCLUDED_ELEMENTS))

VOCABULARY: tuple[str, ...] = ("", "[UNK]", "[SEP]", "[CLS]", *_ELEMENTS, "[MASK]")
"""The 94 tokens; a token's id is its position."""

TOKEN_IDS: dict[str, int] = {token: index for index, token in enumerate(VOCABULARY)}
"""Token → id."""

PAD_ID = TOKEN_IDS[""]
UNK_ID = TOKEN_IDS["[UNK]"]
SEP_ID = TOKEN_IDS["[SEP]"]
CLS_ID = TOKEN_IDS["[CLS]"]
MASK_ID = TOKEN_IDS["[MASK]"]
_ELEMENT_IDS = {symbol: TOKEN_IDS[symbol] for symbol in _ELEMENTS}

assert len(VOCABULARY) == 94 and len(_ELEMENTS) == 89 and MASK_ID == 93


def element_tokens(symbols: Iterable[str], *, unknown: str = "error") -> np.ndarray:
    """Token ids of chemical symbols: int32 ``(n_atoms,)``.

    Args:
        symbols: element symbols, e.g. ``atoms.get_chemical_symbols()``.
        unknown: ``"error"`` raises for a symbol outside the vocabulary (Po, At, …, or a non-element);
            ``"unk"`` maps it to ``[UNK]`` (1).

    Raises:
        ValueError: an unknown symbol with ``unknown="error"``, or a bad ``unknown`` value.
    """
    if unknown not in ("error", "unk"):
        raise ValueError(f"unknown must be 'error' or 'unk', got {unknown!r}")
    symbols = list(symbols)
    ids = np.fromiter((_ELEMENT_IDS.get(s, UNK_ID) for s in symbols), dtype=np.int32, count=len(symbols))
    if unknown == "error" and (ids == UNK_ID).any():
        bad = sorted({s for s in symbols if s not in _ELEMENT_IDS})
        raise ValueError(
            f"element(s) {', '.join(map(repr, bad))} not in the 94-token vocabulary "
            "(pass unknown='unk' to map them to [UNK])"
        )
    return ids


symbols_to_tokens = element_tokens
"""Alias of :func:`element_tokens`."""


def atoms_tokens(atoms, *, unknown: str = "error") -> np.ndarray:
    """Token ids of the atoms of an ``ase.Atoms``: int32 ``(n_atoms,)`` (see :func:`element_tokens`)."""
    return element_tokens(atoms.get_chemical_symbols(), unknown=unknown)


def pad_atoms(
    features: Sequence[np.ndarray],
    tokens: Sequence[np.ndarray],
    max_atoms: int | None = None,
    truncate: str = "error",
) -> tuple[np.ndarray, np.ndarray]:
    """Post-pad ragged per-atom features and tokens to ``max_atoms`` atoms.

    Args:
        features: per structure, float ``(n_atoms_i, n_bins)`` (e.g. from
            :func:`s2p_utils.featurize.featurize`).
        tokens: per structure, int ``(n_atoms_i,)`` token ids.
        max_atoms: padded length; ``None``: the largest structure.
        truncate: ``"error"`` raises when a structure has more than ``max_atoms`` atoms;
            ``"post"`` keeps its first ``max_atoms`` atoms and warns with the number of structures cut.

    Returns:
        ``(pdf, ids)``: float32 ``(n, max_atoms, n_bins)`` and int32 ``(n, max_atoms)``, zero after each
        structure's last atom (the padding token is 0).

    Raises:
        ValueError: mismatched lengths, a structure too large with ``truncate="error"``, bad arguments.
    """
    if truncate not in ("error", "post"):
        raise ValueError(f"truncate must be 'error' or 'post', got {truncate!r}")
    if len(features) != len(tokens):
        raise ValueError(f"{len(features)} feature arrays but {len(tokens)} token arrays")
    sizes = [len(f) for f in features]
    for index, (f, t) in enumerate(zip(features, tokens, strict=True)):
        if np.ndim(f) != 2 or np.ndim(t) != 1 or len(t) != len(f):
            raise ValueError(
                f"structure {index}: features {np.shape(f)} and tokens {np.shape(t)} do not describe the same atoms"
            )
    n_bins = {np.shape(f)[1] for f in features}
    if len(n_bins) > 1:
        raise ValueError(f"feature arrays have different numbers of bins: {sorted(n_bins)}")
    width = n_bins.pop() if n_bins else 100
    if max_atoms is None:
        max_atoms = max(sizes, default=0)
    if max_atoms < 1 and sizes:
        raise ValueError(f"max_atoms must be positive, got {max_atoms}")
    too_long = [i for i, n in enumerate(sizes) if n > max_atoms]
    if too_long:
        if truncate == "error":
            raise ValueError(
                f"{len(too_long)} structure(s) have more than max_atoms={max_atoms} atoms (largest: "
                f"{max(sizes)} atoms, structure {too_long[0]} first); raise max_atoms or pass truncate='post'"
            )
        warnings.warn(
            f"pad_atoms: {len(too_long)} structure(s) truncated to their first {max_atoms} atoms "
            f"(largest: {max(sizes)} atoms)",
            UserWarning,
            stacklevel=2,
        )
    pdf = np.zeros((len(features), max_atoms, width), dtype=np.float32)
    ids = np.zeros((len(features), max_atoms), dtype=np.int32)
    for index, (f, t) in enumerate(zip(features, tokens, strict=True)):
        n = min(len(f), max_atoms)
        pdf[index, :n] = f[:n]
        ids[index, :n] = t[:n]
    return pdf, ids


def vocabulary_json() -> str:
    """The content of ``data/vocab.json``: the tokens in id order and the token → id map."""
    content = {
        "description": (
            "struct2prop element-token vocabulary (94 tokens; a token's id is its position). Generated by "
            "s2p_utils.vocab.write_vocabulary_json; do not edit by hand."
        ),
        "tokens": list(VOCABULARY),
        "token_ids": TOKEN_IDS,
        "special": {"pad": PAD_ID, "unk": UNK_ID, "sep": SEP_ID, "cls": CLS_ID, "mask": MASK_ID},
        "excluded_elements": list(EXCLUDED_ELEMENTS),
    }
    return json.dumps(content, indent=1, ensure_ascii=False) + "\n"


def write_vocabulary_json(path: str | os.PathLike) -> Path:
    """Write :func:`vocabulary_json` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(vocabulary_json(), encoding="utf-8")
    return path
