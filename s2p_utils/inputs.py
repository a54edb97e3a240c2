"""Network inputs for a list of crystals: featurise, tokenise and pad as a preset says.

The original notebooks padded with ``keras.preprocessing.sequence.pad_sequences(..., dtype='float32',
padding='post', maxlen=MAX_LEN)`` for the PDFs and ``dtype='int32'`` for the tokens, i.e. float32 PDF
rows and zeros after the last atom; :func:`s2p_utils.vocab.pad_atoms` does the same. (The e3nn notebook
left ``truncating`` at its default ``'pre'``, which would keep the *last* atoms of a structure above 128
atoms; no e3nn crystal has more than 40, so this never mattered; here truncation, when allowed, keeps the
first ``max_atoms`` atoms.) PDF inputs are never rescaled.

No TensorFlow import here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from s2p_utils import paths
from s2p_utils.config import ExperimentConfig
from s2p_utils.data.structures import check_numbers
from s2p_utils.element_features import element_descriptors
from s2p_utils.featurize import featurize
from s2p_utils.vocab import UNK_ID, element_tokens, pad_atoms

__all__ = ["model_inputs", "feature_cache_dir"]


def feature_cache_dir() -> str:
    """``<cache_dir>/features``: where featurised datasets are cached (keyed by structure hashes)."""
    path = paths.cache_dir() / "features"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def model_inputs(
    structures: Sequence,
    config: ExperimentConfig,
    *,
    legacy: bool,
    grids: np.ndarray | None = None,
    truncate: str = "error",
    n_jobs: int = 1,
    progress: bool = True,
    unknown: str = "unk",
    cache: bool = True,
) -> dict[str, np.ndarray]:
    """Featurise ``structures`` for the network of ``config``.

    Args:
        structures: ``ase.Atoms`` crystals (Cartesian positions in Å).
        config: the preset; uses ``config.featurizer`` (``"pdf"``/``"simple_rdf"``), ``config.pdf_deposit``,
            ``config.element_descriptors`` (append :func:`s2p_utils.element_features.element_descriptors`
            columns to every PDF row), ``model.max_atoms``, ``model.grid_input`` and ``model.n_out``.
        legacy: the authors' original featurisation (see :func:`s2p_utils.featurize.featurize`).
        grids: for grid-input presets, the target grid: ``(n_out,)`` shared or ``(n, n_out)`` per
            structure (eV or cm⁻¹); ignored otherwise.
        truncate: ``"error"`` (default) or ``"post"`` (keep the first ``max_atoms`` atoms, with a warning).
        n_jobs: featurisation worker processes.
        progress: tqdm progress bar while featurising.
        unknown: ``"unk"`` maps elements outside the vocabulary to ``[UNK]`` (with a warning), ``"error"`` raises.
        cache: reuse/store features under :func:`feature_cache_dir`.

    Returns:
        ``{"pdf": float32 (n, max_atoms, n_features), "tokens": int32 (n, max_atoms)}`` (``n_features`` =
        100 PDF bins, plus 5 element descriptors when the preset asks for them) plus
        ``"grid": float32 (n, n_out)`` when the preset takes the grid as input.

    Raises:
        ValueError: a structure above ``max_atoms`` with ``truncate="error"``, a missing or mis-shaped
            grid, an unknown element with ``unknown="error"``, an atomic number outside 0…118, an
            invalid cell (see :func:`s2p_utils.data.structures.check_cell_arrays`).
    """
    structures = list(structures)
    for index, atoms in enumerate(structures):
        check_numbers(atoms.numbers, f"structure {index}")
    model = config.model
    if truncate == "error":
        for index, atoms in enumerate(structures):
            if len(atoms) > model.max_atoms:
                raise ValueError(
                    f"structure {index} ({atoms.get_chemical_formula()}) has {len(atoms)} atoms, more than "
                    f"max_atoms={model.max_atoms} of preset {config.name!r} (allow truncate='post' to cut)"
                )
    features = featurize(
        structures,
        method=config.featurizer,
        legacy=legacy,
        deposit=config.pdf_deposit,
        n_jobs=n_jobs,
        progress=progress,
        cache_dir=feature_cache_dir() if cache else None,
    )
    tokens = [element_tokens(atoms.get_chemical_symbols(), unknown=unknown) for atoms in structures]
    n_unknown = sum(int((t == UNK_ID).any()) for t in tokens)
    if n_unknown:
        warnings.warn(
            f"{n_unknown} structure(s) contain elements outside the 94-token vocabulary; they are fed as [UNK]",
            UserWarning,
            stacklevel=2,
        )
    if config.pdf_scale != 1.0:
        features = [rows * config.pdf_scale for rows in features]
    if config.element_descriptors:
        features = [
            np.concatenate([rows, element_descriptors(atoms.numbers)], axis=1)
            for rows, atoms in zip(features, structures, strict=True)
        ]
    if features and features[0].shape[1] != model.n_pdf_bins:
        raise ValueError(
            f"preset {config.name!r} expects {model.n_pdf_bins} features per atom, the featurizer gives "
            f"{features[0].shape[1]}"
        )
    pdf, ids = pad_atoms(features, tokens, model.max_atoms, truncate=truncate)
    pdf[~np.isfinite(pdf)] = 0.0  # as the e3nn notebook (x1[np.isnan(x1)] = 0); never triggered in practice
    inputs = {"pdf": pdf, "tokens": ids}
    if model.grid_input:
        if grids is None:
            raise ValueError(f"preset {config.name!r} takes the target grid as input: pass grids=")
        grid = np.asarray(grids, dtype=np.float32)
        if grid.ndim == 1:
            grid = np.broadcast_to(grid, (len(structures), grid.shape[0]))
        if grid.shape != (len(structures), model.n_out):
            raise ValueError(
                f"grids of shape {np.shape(grids)} do not fit {len(structures)} structures × n_out={model.n_out}"
            )
        inputs["grid"] = np.ascontiguousarray(grid, dtype=np.float32)
    return inputs
