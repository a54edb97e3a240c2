"""Are universal machine-learned interatomic potentials (MLIPs) a source of more phonon labels?

Issue 17's learning curve says the phonon model is short of labelled crystals, and the mirror's 3669
unlabelled Materials Project crystals could be labelled by a universal potential whose weights ship inside
its PyPI wheel (so it runs offline): CHGNet (``pip install chgnet``) or SevenNet (``pip install sevenn``).
This script measures, on a random sample of the chen2021 **validation** crystals (never the test part),
how close such a potential's phonon DOS comes to the DFPT spectra, beside the shipped model's predictions
for the same crystals: a labeller is only worth using if it beats the model it would teach.

For each crystal: atomic positions relaxed in the given cell (FIRE, ``fmax`` 0.01 eV/Å; the cell is the
dataset's PBEsol one), finite displacements of 0.01 Å in a supercell at least ``--min-length`` Å on every
side (:class:`ase.phonons.Phonons`, acoustic sum rule imposed), the DOS on a ``--kpts``³ mesh, Gaussian
width ``--width`` cm⁻¹, sampled on the dataset's grid (0–1000 cm⁻¹; imaginary modes fall off it) and
divided by its peak as the targets are::

    S2P_DATA_MIRROR=../shared/dos_datasets python benchmarks/mlip_phonons.py --calculator sevenn:7net-l3i5 --n 40

(run it with a Python that has the potential installed beside struct2prop). The per-crystal spectra are
written to ``benchmarks/out/mlip/predictions/mlip_<calculator>_<part>_seed<seed>.csv`` and
``..._shipped.csv``; ``--score-only`` scores them again without the potential.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ase.units
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pseudo_labels.py, a sibling script

#: 1 eV in cm⁻¹ (ASE's phonon energies are in eV) and 1 THz in cm⁻¹ (phonopy's frequencies are in THz),
#: from ASE's CODATA constants.
EV_TO_CM = 1.0 / ase.units.invcm
THZ_TO_CM = 1e12 / (ase.units._c * 100.0)
SHOWN = ("mse_renorm", "mae_renorm", "wasserstein", "omega_mae", "r2_pooled_renorm")


def load_calculator(name: str):
    """An ASE calculator: ``chgnet[:VERSION]`` (CHGNet, default 0.3.0), ``sevenn[:MODEL]`` (SevenNet,
    default ``7net-l3i5``) or ``emt`` (ASE's effective-medium theory: metals only, for tests).

    Raises:
        ValueError: an unknown name. ImportError: the potential's package is not installed.
    """
    kind, _, model = name.partition(":")
    if kind == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if kind == "chgnet":
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(CHGNet.load(model_name=model or "0.3.0", verbose=False), use_device="cpu")
    if kind == "sevenn":
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(model or "7net-l3i5", device="cpu")
    raise ValueError(f"unknown calculator {name!r}: choose chgnet[:VERSION], sevenn[:MODEL] or emt")


def supercell_for(cell_lengths: np.ndarray, min_length: float) -> tuple[int, int, int]:
    """Repetitions of each cell vector so that every side is at least ``min_length`` Å (at least 1 each)."""
    return tuple(max(1, int(np.ceil(min_length / length))) for length in np.asarray(cell_lengths, float))


def phonon_dos(
    atoms,
    calculator,
    grid_cm: np.ndarray,
    *,
    min_length: float = 9.0,
    kpts: int = 12,
    width_cm: float = 10.0,
    relax_steps: int = 300,
    backend: str = "ase",
) -> np.ndarray:
    """The finite-displacement phonon DOS of ``atoms`` under ``calculator``, float64 ``(n_grid,)`` on
    ``grid_cm`` (cm⁻¹), divided by its peak (all zeros if no mode falls on the grid).

    Positions are relaxed in the fixed cell first (at most ``relax_steps`` FIRE steps); ``atoms`` itself
    is not changed. ``backend`` ``"ase"`` displaces every atom along ±x, ±y, ±z (:class:`ase.phonons.Phonons`);
    ``"phonopy"`` only the symmetry-inequivalent displacements (phonopy, ``pip install phonopy``; the same
    force constants for a fraction of the force calls, the same mesh and Gaussian width).
    """
    from ase.optimize import FIRE

    if backend not in ("ase", "phonopy"):
        raise ValueError(f"unknown backend {backend!r}: choose 'ase' or 'phonopy'")
    relaxed = atoms.copy()
    relaxed.calc = calculator
    FIRE(relaxed, logfile=None).run(fmax=0.01, steps=relax_steps)
    relaxed.calc = None
    grid_cm = np.asarray(grid_cm, dtype=np.float64)
    supercell = supercell_for(relaxed.cell.lengths(), min_length)
    if backend == "phonopy":
        values = gaussian_dos(*phonopy_frequencies(relaxed, calculator, supercell, kpts), grid_cm, width_cm)
    else:
        values = ase_dos(relaxed, calculator, supercell, grid_cm, kpts, width_cm)
    peak = values.max()
    return values / peak if peak > 0 else values


def ase_dos(
    atoms, calculator, supercell: tuple[int, int, int], grid_cm: np.ndarray, kpts: int, width_cm: float
) -> np.ndarray:
    """The phonon DOS of ``atoms`` (positions as given) on ``grid_cm`` ``(n_grid,)`` (cm⁻¹), not normalised:
    ±0.01 Å displacements of every atom along x, y, z in a ``supercell`` repetition
    (:class:`ase.phonons.Phonons`, acoustic sum rule imposed), a ``kpts``³ mesh, Gaussian width ``width_cm``."""
    from ase.phonons import Phonons

    with tempfile.TemporaryDirectory(prefix="s2p-phonons-") as cache:
        phonons = Phonons(
            atoms, calculator, supercell=supercell, delta=0.01, name=os.path.join(cache, "phonon")
        )
        phonons.run()
        phonons.read(acoustic=True)
        dos = phonons.get_dos(kpts=(kpts, kpts, kpts), verbose=False)
    sampled = dos.sample_grid(
        len(grid_cm), xmin=grid_cm[0] / EV_TO_CM, xmax=grid_cm[-1] / EV_TO_CM, width=width_cm / EV_TO_CM
    )
    energies = np.asarray(sampled.get_energies()) * EV_TO_CM
    if not np.allclose(energies, grid_cm, atol=1e-6 * max(1.0, grid_cm[1] - grid_cm[0])):
        raise RuntimeError("ASE's DOS grid does not match the requested one")
    return np.clip(np.asarray(sampled.get_weights(), dtype=np.float64), 0.0, None)


def phonopy_frequencies(
    atoms, calculator, supercell: tuple[int, int, int], kpts: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(frequencies, weights)``: the phonon frequencies of ``atoms`` on a ``kpts``³ Monkhorst-Pack mesh,
    ``(n_q, n_modes)`` in cm⁻¹ (imaginary ones negative), and each irreducible q-point's weight ``(n_q,)``.

    Force constants from phonopy's symmetry-reduced ±0.01 Å displacements in a ``supercell`` repetition,
    forces from ``calculator``, symmetrised (translational invariance imposed)."""
    from ase import Atoms
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unit = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.asarray(atoms.cell),
        scaled_positions=atoms.get_scaled_positions(),
    )
    phonon = Phonopy(unit, supercell_matrix=np.diag(supercell), primitive_matrix="auto")
    phonon.generate_displacements(distance=0.01, is_plusminus=True)
    forces = []
    for displaced in phonon.supercells_with_displacements:
        cell = Atoms(
            displaced.symbols, cell=displaced.cell, scaled_positions=displaced.scaled_positions, pbc=True
        )
        cell.calc = calculator
        forces.append(np.asarray(cell.get_forces(), dtype=np.float64))
    phonon.forces = np.asarray(forces)
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants(show_drift=False)
    phonon.run_mesh([kpts] * 3, with_eigenvectors=False)
    return phonon.mesh.frequencies * THZ_TO_CM, np.asarray(phonon.mesh.weights, dtype=np.float64)


def gaussian_dos(
    frequencies: np.ndarray, weights: np.ndarray, grid_cm: np.ndarray, width_cm: float
) -> np.ndarray:
    """The DOS on ``grid_cm`` ``(n_grid,)`` of the modes ``frequencies`` ``(n_q, n_modes)`` (cm⁻¹) with
    q-point weights ``(n_q,)``, each mode a Gaussian of standard deviation ``width_cm`` (cm⁻¹), as ASE
    samples it."""
    distance = (np.asarray(grid_cm)[:, None, None] - frequencies[None]) / width_cm
    return np.einsum("gqm,q->g", np.exp(-0.5 * distance**2), weights) / (np.sqrt(2 * np.pi) * width_cm)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → ``(I, N)``: this worker's share of the draw, ``0 ≤ I < N``; ``ValueError`` otherwise."""
    shard, slash, n_shards = text.partition("/")
    try:
        i, n = int(shard), int(n_shards)
    except ValueError:
        i, n = -1, 0
    if not slash or not 0 <= i < n:
        raise ValueError(f"--shard must be I/N with 0 ≤ I < N (e.g. 0/4), got {text!r}")
    return i, n


def label_unlabelled(
    calculator_name: str, out: Path, shard: int, n_shards: int, n: int | None, **options
) -> None:
    """Append one JSON line ``{"id", "spectrum", "seconds"}`` to ``out`` per crystal of this shard of the
    unlabelled draw (``pseudo_labels.unlabelled_draw``: the mirror's CIFs not in the e3nn set, fewest atoms
    first, random order among equals;
    shard ``i`` of ``n`` takes draw positions ``i, i + n, ...``), skipping crystals ``out`` already holds, so a
    killed run resumes where it stopped; ``n`` caps the draw positions considered."""
    import json

    from pseudo_labels import read_labels, unlabelled_draw
    from tqdm.auto import tqdm

    from s2p_utils.config import get_preset
    from s2p_utils.data import load

    config = get_preset("e3nn_phdos_mass")
    dataset = load(config.dataset, progress=False)
    grid = np.asarray(dataset.grid, dtype=np.float64)
    structures, ids = unlabelled_draw(config, seed=0, cheapest_first=True, dataset=dataset)
    positions = range(shard, len(ids) if n is None else min(n, len(ids)), n_shards)
    done = set(read_labels([out])) if out.exists() else set()
    todo = [index for index in positions if ids[index] not in done]
    calculator = load_calculator(calculator_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    for index in tqdm(todo, desc=f"labelling shard {shard}/{n_shards}", unit="crystal"):
        start = time.perf_counter()
        try:
            spectrum = phonon_dos(structures[index], calculator, grid, **options)
        except Exception as error:  # noqa: BLE001  (one failing crystal must not stop hours of labelling)
            print(f"{ids[index]}: {type(error).__name__}: {error}", flush=True)
            continue
        row = {"id": ids[index], "spectrum": [round(float(v), 6) for v in spectrum]}
        row["seconds"] = round(time.perf_counter() - start, 2)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def sample_rows(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``rows`` drawn without replacement (all of them, in order, if ``n`` ≥ their number)."""
    rows = np.asarray(rows)
    if n >= len(rows):
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))


def score_table(targets: np.ndarray, grid: np.ndarray, spectra: dict[str, np.ndarray]) -> str:
    """A markdown table of :data:`SHOWN` scores, one row per entry of ``spectra`` (``(n, n_grid)`` each, on
    ``grid`` in cm⁻¹, against ``targets``), plus the plain mean of all of them (no fitted weight) when
    there are two or more: how independent their errors are. The last column, ``omega_bias``, is the mean
    signed ω̄ error (prediction − target, cm⁻¹): a labeller's systematic softening or stiffening."""
    from s2p_utils.metrics import mean_frequency, spectrum_metrics

    rows = dict(spectra)
    if len(rows) > 1:
        rows["mean of the above"] = np.mean(list(spectra.values()), axis=0)
    header = [*SHOWN, "omega_bias"]
    lines = ["| spectra | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    omega_true = mean_frequency(grid, targets)
    for name, prediction in rows.items():
        scores = spectrum_metrics(targets, prediction, grid=grid, kind="phdos")
        scores["omega_bias"] = float(np.nanmean(mean_frequency(grid, prediction) - omega_true))
        lines.append(f"| {name} | " + " | ".join(f"{scores[key]:.4f}" for key in header) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calculator", default="sevenn:7net-l3i5")
    parser.add_argument(
        "--part",
        choices=("train", "val", "unlabelled"),
        default="val",
        help="never the test part; 'unlabelled' labels the mirror's CIFs outside the e3nn set (JSON lines)",
    )
    parser.add_argument(
        "--backend", choices=("ase", "phonopy"), default="ase", help="finite displacements by"
    )
    parser.add_argument("--shard", default="0/1", help="with --part unlabelled: I/N, this worker's share")
    parser.add_argument("--threads", type=int, help="torch threads (one per worker when several run)")
    parser.add_argument("--n", type=int, default=40, help="crystals drawn from the part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-atoms", type=int, help="draw only among crystals with at most this many atoms")
    parser.add_argument("--min-length", type=float, default=9.0, help="smallest supercell side (Å)")
    parser.add_argument("--kpts", type=int, default=12)
    parser.add_argument("--width", type=float, default=10.0, help="Gaussian width of the DOS (cm⁻¹)")
    parser.add_argument("--model", default="s2p:e3nn_phdos_mass", help="model to compare with")
    parser.add_argument("--results-dir", default="benchmarks/out/mlip")
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="re-score the CSVs an earlier run of this --calculator, --part and --seed wrote (no potential needed)",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    options = {
        "min_length": args.min_length,
        "kpts": args.kpts,
        "width_cm": args.width,
        "backend": args.backend,
    }
    if args.part == "unlabelled":
        try:
            shard, n_shards = parse_shard(args.shard)
        except ValueError as error:
            parser.error(str(error))
        name = args.calculator.replace(":", "_").replace("-", "_")
        out = Path(args.results_dir) / "labels" / f"{name}_unlabelled_{shard}of{n_shards}.jsonl"
        label_unlabelled(args.calculator, out, shard, n_shards, args.n, **options)
        return

    from s2p_utils.config import get_preset
    from s2p_utils.experiment import select_rows

    label = f"mlip_{args.calculator.replace(':', '_').replace('-', '_')}_{args.part}_seed{args.seed}"
    folder = Path(args.results_dir) / "predictions"
    data = select_rows(get_preset("e3nn_phdos_mass"), "chen2021")
    grid = np.asarray(data.dataset.grid, dtype=np.float64)
    if args.score_only:
        from s2p_utils.results import read_predictions

        mlip_rows, model_rows = (
            read_predictions(folder / f"{name}.csv") for name in (label, f"{label}_shipped")
        )
        if list(mlip_rows["id"]) != list(model_rows["id"]):
            raise ValueError(f"{label}.csv and {label}_shipped.csv hold different crystals")
        targets, mlip = np.stack(mlip_rows["target"]), np.stack(mlip_rows["prediction"])
        model = np.stack(model_rows["prediction"])
        print(f"{len(targets)} {mlip_rows['split'][0]} crystals from {folder}")
    else:
        from tqdm.auto import tqdm

        from s2p_utils.prediction import load_predictor
        from s2p_utils.results import write_predictions

        rows = data.parts[args.part]
        if args.max_atoms:
            rows = np.array([row for row in rows if len(data.dataset.structures[row]) <= args.max_atoms])
        rows = sample_rows(rows, args.n, args.seed)
        structures = [data.dataset.structures[i] for i in rows]
        ids = [str(data.dataset.ids[i]) for i in rows]
        targets = np.asarray(data.dataset.targets[rows], dtype=np.float64)
        calculator = load_calculator(args.calculator)
        spectra, seconds = [], []
        for atoms in tqdm(structures, desc=f"phonons ({args.calculator})", unit="crystal"):
            start = time.perf_counter()
            spectra.append(phonon_dos(atoms, calculator, grid, **options))
            seconds.append(time.perf_counter() - start)
        mlip = np.stack(spectra)
        model = np.asarray(load_predictor(args.model).predict(structures).mean, dtype=np.float64)
        for name, prediction in ((label, mlip), (f"{label}_shipped", model)):
            write_predictions(name, ids, args.part, targets, prediction, results_dir=args.results_dir)
        print(
            f"{len(rows)} {args.part} crystals (seed {args.seed}); {args.calculator}: "
            f"{np.mean(seconds):.1f} s per crystal on average (max {np.max(seconds):.0f} s)"
        )
    print()
    print(score_table(targets, grid, {args.calculator: mlip, args.model: model}))
    if args.part == "train":
        from pseudo_labels import fitted_frequency_scale, frequency_scaled

        scale = fitted_frequency_scale(grid, targets, mlip)
        print(f"\nfrequency scale fitted on these training crystals (levers.py --mlip-scale): {scale:.4f}")
        print(
            score_table(
                targets, grid, {f"{args.calculator} x {scale:.4f}": frequency_scaled(grid, mlip, scale)}
            )
        )


if __name__ == "__main__":
    main()
