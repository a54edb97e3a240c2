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

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from omega_bias import stretch  # noqa: E402  (sibling scripts, not a package)
from predict_speed import default_cif_dir  # noqa: E402

TEACHER = "s2p:e3nn_phdos_mass"
SPLIT = "chen2021"


def unlabelled_files(folder: Path, known_ids: set[str]) -> list[Path]:
    """The CIFs of ``folder`` whose id (file stem, e.g. ``mp-149``) is not in ``known_ids``, sorted."""
    return [path for path in sorted(folder.glob("*.cif")) if path.stem not in known_ids]


def with_pseudo_labels(dataset, split: str, structures: list, ids: list[str], spectra: np.ndarray):
    """``dataset`` with ``structures`` (targets ``spectra`` ``(k, n_grid)``, on its grid) appended and two
    splits that keep ``split``'s validation and test rows: ``f"{split}+pseudo"``, whose training rows are
    ``split``'s and the new ones, and ``f"{split}+pseudo-only"``, whose training rows are the new ones
    alone (pretraining before a fine-tune on ``split``)."""
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
    splits[f"{split}+pseudo-only"] = {"train": new_rows, "val": parts["val"], "test": parts["test"]}
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


def unlabelled_draw(
    config,
    k: int | None = None,
    *,
    seed: int = 0,
    sort: bool = False,
    cheapest_first: bool = False,
    dataset=None,
) -> tuple[list, list[str]]:
    """``(structures, ids)``: ``k`` (default: all) of the mirror's unlabelled CIFs that fit
    ``config.model.max_atoms`` and are not in ``config.dataset`` (by id), drawn with ``seed``, in draw order
    (so the first ``j`` of a longer draw are a random sample too) or, with ``sort``, in file order; with
    ``cheapest_first``, the draw order stable-sorted by number of atoms (the order a slow labeller works in:
    a finite-displacement calculation costs roughly the cube of the cell's atom count). ``dataset``: the
    loaded ``config.dataset``, when the caller has it already (else it is loaded here)."""
    from ase import Atoms

    from s2p_utils.data import load
    from s2p_utils.data.structures import read_structures

    if dataset is None:
        dataset = load(config.dataset, progress=False)
    files = unlabelled_files(default_cif_dir(), set(map(str, dataset.ids)))
    structures = read_structures(files)
    fits = [
        index
        for index, atoms in enumerate(structures)
        if isinstance(atoms, Atoms) and len(atoms) <= config.model.max_atoms
    ]
    k = len(fits) if k is None else k
    if k > len(fits):
        raise ValueError(f"{k} unlabelled crystals asked for, {len(fits)} available")
    chosen = np.random.default_rng(seed).choice(fits, k, replace=False)
    if sort:
        chosen = np.sort(chosen)
    if cheapest_first:
        chosen = chosen[np.argsort([len(structures[c]) for c in chosen], kind="stable")]
    return [structures[c] for c in chosen], [files[c].stem for c in chosen]


def pseudo_labelled_dataset(config, k: int, *, teacher: str = TEACHER, seed: int = 0):
    """``(dataset, split name)``: ``config``'s dataset with ``k`` teacher-labelled crystals in the training
    part of :data:`SPLIT` (drawn with ``seed`` among the unlabelled CIFs that fit ``config.model.max_atoms``)."""
    from s2p_utils.data import load
    from s2p_utils.prediction import load_predictor

    dataset = load(config.dataset, progress=False)
    picked, ids = unlabelled_draw(config, k, seed=seed, sort=True)
    predictor = load_predictor(teacher)
    if not np.allclose(predictor.grid, dataset.grid):
        raise ValueError(f"teacher {teacher} predicts on another grid than {config.dataset}")
    spectra = predictor.predict(picked).mean
    # the ensemble mean of peak-normalised members peaks below 1; the e3nn targets peak at exactly 1
    spectra = spectra / np.maximum(spectra.max(axis=1, keepdims=True), 1e-6)
    return with_pseudo_labels(dataset, SPLIT, picked, ids, spectra), f"{SPLIT}+pseudo"


def read_labels(paths: list[Path]) -> dict[str, np.ndarray]:
    """``{id: spectrum}`` from the JSON-lines files ``mlip_phonons.py --part unlabelled`` appends to (one
    ``{"id", "spectrum", ...}`` object per line; a torn last line, from a killed run, is skipped)."""
    labels: dict[str, np.ndarray] = {}
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            labels[str(row["id"])] = np.asarray(row["spectrum"], dtype=np.float64)
    return labels


def frequency_scaled(grid: np.ndarray, spectra: np.ndarray, scale: float) -> np.ndarray:
    """``spectra`` ``(n, n_grid)`` on ``grid`` (cm⁻¹) with every frequency multiplied by ``scale``
    (g'(ω) = g(ω / scale), linear interpolation, zero beyond the grid), divided by the peak again."""
    grid = np.asarray(grid, dtype=np.float64)
    stretched = stretch(grid, np.asarray(spectra), np.full(len(spectra), scale))
    return stretched / np.maximum(stretched.max(axis=1, keepdims=True), 1e-12)


def fitted_frequency_scale(grid: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> float:
    """The median of ω̄(target) / ω̄(label) over crystals (``(n, n_grid)`` each, on ``grid`` in cm⁻¹):
    the factor that undoes a labeller's systematic softening, fitted on training crystals only (crystals
    whose label is all zeros are left out)."""
    from s2p_utils.metrics import mean_frequency

    labels = np.asarray(labels)
    stable = labels.max(axis=1) > 0  # a labeller whose modes all fall off the grid says nothing of the scale
    return float(
        np.median(mean_frequency(grid, np.asarray(targets)[stable]) / mean_frequency(grid, labels[stable]))
    )


#: Elements whose presence makes a crystal a compound rather than an intermetallic or alloy (anions,
#: hydrogen and the light covalent formers): most of the e3nn crystals hold one, most cheap MP binaries none.
COMPOUND_ELEMENTS = frozenset("H B C N O F P S Cl Se Br Te I".split())


def is_compound(atoms) -> bool:
    """Whether ``atoms`` holds at least one of :data:`COMPOUND_ELEMENTS`."""
    return bool(COMPOUND_ELEMENTS & set(atoms.get_chemical_symbols()))


def mlip_labelled_dataset(
    config, label_files: list[Path], k: int | None = None, *, scale: float = 1.0, compounds_only: bool = False
):
    """``(dataset, split name)``: ``config``'s dataset with the first ``k`` (default: all) crystals usefully
    labelled (not all zeros) by a universal potential (``read_labels(label_files)``, frequencies times
    ``scale``; with ``compounds_only``, only crystals that pass :func:`is_compound`) in the training part of
    :data:`SPLIT`; validation and test parts unchanged.

    Raises:
        ValueError: fewer than ``k`` usable labels (labels that are all zeros are not usable)."""
    from s2p_utils.data import load

    dataset = load(config.dataset, progress=False)
    labels = read_labels(label_files)
    structures, ids = unlabelled_draw(config, seed=0, cheapest_first=True)
    labelled = [
        index
        for index, crystal in enumerate(ids)
        if crystal in labels and (not compounds_only or is_compound(structures[index]))
    ]
    if not labelled:
        raise ValueError(f"no labelled crystal of the unlabelled draw in {label_files}")
    # a crystal whose modes all fall off the grid (unstable) carries no label: drop those first, then take k
    keep = [index for index in labelled if labels[ids[index]].max() > 0][:k]
    if not keep:
        raise ValueError(f"no usable labelled crystal of the unlabelled draw in {label_files}")
    if k is not None and len(keep) < k:
        raise ValueError(f"{k} labelled crystals asked for, {len(keep)} usable in {label_files}")
    spectra = frequency_scaled(dataset.grid, np.stack([labels[ids[index]] for index in keep]), scale)
    picked = [structures[index] for index in keep]
    return with_pseudo_labels(dataset, SPLIT, picked, [ids[i] for i in keep], spectra), f"{SPLIT}+pseudo"
