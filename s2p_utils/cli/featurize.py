"""``s2p featurize FILES... --out F.npz``: per-atom PDFs and element tokens of structure files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from s2p_utils.data.structures import read_structure
from s2p_utils.featurize import featurize, save_ragged_npz
from s2p_utils.pdf import FEATURIZER_VERSION
from s2p_utils.vocab import UNK_ID, atoms_tokens

__all__ = ["cmd_featurize"]


def cmd_featurize(args: Any) -> int:
    """``s2p featurize FILES... --out F.npz [--method pdf|simple_rdf] [--legacy] [--n-jobs N]``.

    Writes an ``.npz`` (no pickles) with ``ids`` (the file paths, str), ``features`` float64
    ``(total_atoms, n_bins)`` and ``tokens`` int32 ``(total_atoms,)`` concatenated over structures,
    ``offsets`` int64 ``(n + 1,)`` (rows of structure ``k``: ``offsets[k]:offsets[k + 1]``), ``method``,
    ``legacy`` and ``featurizer_version``. A file that cannot be read is reported on stderr and
    skipped (exit status 1); elements outside the vocabulary get the ``[UNK]`` token.
    """
    ids: list[str] = []
    structures: list[Atoms] = []
    failures = 0
    for name in args.files:
        try:
            structures.append(read_structure(name))
            ids.append(str(name))
        except ValueError as error:
            failures += 1
            print(f"s2p featurize: skipped: {error}", file=sys.stderr)
    if not structures:
        raise ValueError("no readable structure among the input files")
    features = featurize(
        structures,
        method=args.method,
        legacy=bool(args.legacy),
        n_jobs=int(getattr(args, "n_jobs", 1) or 1),
        progress=True,
    )
    tokens = [atoms_tokens(atoms, unknown="unk") for atoms in structures]
    for name, tok in zip(ids, tokens, strict=True):
        if (tok == UNK_ID).any():
            print(
                f"s2p featurize: {name}: element(s) outside the vocabulary mapped to [UNK]", file=sys.stderr
            )
    out = Path(args.out)
    save_ragged_npz(
        out,
        features,
        ids=np.array(ids, dtype=str),
        tokens=np.concatenate(tokens).astype(np.int32),
        method=np.array(args.method),
        legacy=np.array(bool(args.legacy)),
        featurizer_version=np.array(FEATURIZER_VERSION),
    )
    print(f"wrote {out} ({len(structures)} structures, {sum(len(f) for f in features)} atoms)")
    return 1 if failures else 0
