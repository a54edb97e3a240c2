"""Self-training on unlabelled crystals: the e3nn training part plus crystals labelled by a teacher model.

The mirror's ``mp_binaries_cif/`` holds 3953 Materials Project crystals without phonon spectra. A teacher
trained on the chen2021 training part (default: the shipped ``s2p:e3nn_phdos_mass`` ensemble, whose early
stopping and σ calibration saw the validation part, never the test part) predicts their spectra; ``k`` of
them, drawn at random (the same draw for every seed) among those that are not in the e3nn dataset at all
(by Materials Project id) and fit ``max_atoms``, join the training part with those predictions as targets,
divided by their peaks as the e3nn targets are. Validation and test parts are the dataset's own, with their
true spectra. ``levers.py NAME --pseudo-labels K`` trains one member on it::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/levers.py pseudo1200 output_norm=max \\
        --preset e3nn_phdos_mass --pseudo-labels 1200
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_speed import default_cif_dir  # noqa: E402  (a sibling script, not a package)

TEACHER = "s2p:e3nn_phdos_mass"
SPLIT = "chen2021"


def unlabelled_files(folder: Path, known_ids: set[str]) -> list[Path]:
    """The CIFs of ``folder`` whose id (file stem, e.g. ``mp-149``) is not in ``known_ids``, sorted."""
    return [path for path in sorted(folder.glob("*.cif")) if path.stem not in known_ids]


def with_pseudo_labels(dataset, split: str, structures: list, ids: list[str], spectra: np.ndarray):
    """``dataset`` with ``structures`` (targets ``spectra`` ``(k, n_grid)``, on its grid) appended and a
    split ``f"{split}+pseudo"``: ``split``'s training rows and the new rows; its validation and test rows."""
    from s2p_utils.data.dataset import Dataset

    spectra = np.asarray(spectra, dtype=np.float32)
    if spectra.shape != (len(structures), dataset.targets.shape[1]) or len(ids) != len(structures):
        raise ValueError(f"{len(structures)} structures, {len(ids)} ids and spectra {spectra.shape} disagree")
    if set(ids) & set(map(str, dataset.ids)):
        raise ValueError("a pseudo-labelled crystal is already in the dataset")
    parts = dataset.split(split)
    new_rows = np.arange(len(dataset.ids), len(dataset.ids) + len(ids))
    splits = dict(dataset.splits)
    splits[f"{split}+pseudo"] = {
        "train": np.concatenate([parts["train"], new_rows]),
        "val": parts["val"],
        "test": parts["test"],
    }
    return Dataset(
        name=dataset.name,
        ids=[*dataset.ids, *ids],
        formulas=[*dataset.formulas, *(atoms.get_chemical_formula() for atoms in structures)],
        structures=[*dataset.structures, *structures],
        targets=np.concatenate([dataset.targets, spectra]),
        grid=dataset.grid,
        grid_unit=dataset.grid_unit,
        kind=dataset.kind,
        unit=dataset.unit,
        splits=splits,
        meta={**dataset.meta, "pseudo_labels": f"{len(ids)} crystals labelled by a teacher model"},
    )


def pseudo_labelled_dataset(config, k: int, *, teacher: str = TEACHER, seed: int = 0):
    """``(dataset, split name)``: ``config``'s dataset with ``k`` teacher-labelled crystals in the training
    part of :data:`SPLIT` (drawn with ``seed`` among the unlabelled CIFs that fit ``config.model.max_atoms``)."""
    from s2p_utils.data import load
    from s2p_utils.data.structures import read_structures
    from s2p_utils.prediction import load_predictor

    dataset = load(config.dataset, progress=False)
    files = unlabelled_files(default_cif_dir(), set(map(str, dataset.ids)))
    from ase import Atoms

    structures = read_structures(files)
    fits = [
        index
        for index, atoms in enumerate(structures)
        if isinstance(atoms, Atoms) and len(atoms) <= config.model.max_atoms
    ]
    if k > len(fits):
        raise ValueError(f"{k} pseudo-labelled crystals asked for, {len(fits)} unlabelled ones available")
    chosen = np.sort(np.random.default_rng(seed).choice(fits, k, replace=False))
    picked = [structures[c] for c in chosen]
    predictor = load_predictor(teacher)
    if not np.allclose(predictor.grid, dataset.grid):
        raise ValueError(f"teacher {teacher} predicts on another grid than {config.dataset}")
    spectra = predictor.predict(picked).mean
    # the ensemble mean of peak-normalised members peaks below 1; the e3nn targets peak at exactly 1
    spectra = spectra / np.maximum(spectra.max(axis=1, keepdims=True), 1e-6)
    ids = [files[c].stem for c in chosen]
    return with_pseudo_labels(dataset, SPLIT, picked, ids, spectra), f"{SPLIT}+pseudo"
