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
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

#: 1 eV in cm⁻¹ (ASE's phonon energies are in eV).
EV_TO_CM = 8065.543937
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
) -> np.ndarray:
    """The finite-displacement phonon DOS of ``atoms`` under ``calculator``, float64 ``(n_grid,)`` on
    ``grid_cm`` (cm⁻¹), divided by its peak (all zeros if no mode falls on the grid).

    Positions are relaxed in the fixed cell first (at most ``relax_steps`` FIRE steps); ``atoms`` itself
    is not changed.
    """
    from ase.optimize import FIRE
    from ase.phonons import Phonons

    relaxed = atoms.copy()
    relaxed.calc = calculator
    FIRE(relaxed, logfile=None).run(fmax=0.01, steps=relax_steps)
    relaxed.calc = None
    grid_cm = np.asarray(grid_cm, dtype=np.float64)
    with tempfile.TemporaryDirectory(prefix="s2p-phonons-") as cache:
        phonons = Phonons(
            relaxed,
            calculator,
            supercell=supercell_for(relaxed.cell.lengths(), min_length),
            delta=0.01,
            name=os.path.join(cache, "phonon"),
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
    values = np.clip(np.asarray(sampled.get_weights(), dtype=np.float64), 0.0, None)
    peak = values.max()
    return values / peak if peak > 0 else values


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
    parser.add_argument("--part", choices=("train", "val"), default="val", help="never the test part")
    parser.add_argument("--n", type=int, default=40, help="crystals drawn from the part")
    parser.add_argument("--seed", type=int, default=0)
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

        rows = sample_rows(data.parts[args.part], args.n, args.seed)
        structures = [data.dataset.structures[i] for i in rows]
        ids = [str(data.dataset.ids[i]) for i in rows]
        targets = np.asarray(data.dataset.targets[rows], dtype=np.float64)
        calculator = load_calculator(args.calculator)
        spectra, seconds = [], []
        for atoms in tqdm(structures, desc=f"phonons ({args.calculator})", unit="crystal"):
            start = time.perf_counter()
            spectra.append(
                phonon_dos(
                    atoms, calculator, grid, min_length=args.min_length, kpts=args.kpts, width_cm=args.width
                )
            )
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


if __name__ == "__main__":
    main()
