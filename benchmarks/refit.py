"""Refit on the training and validation crystals together, for a fixed number of epochs.

Once a configuration is chosen on validation, its validation crystals are 12 % more labelled data (152 on
top of chen2021's 1218 training crystals); the sixth round's learning curve (validation MSE ∝ N^−0.4) prices
that at about −4.6 % in MSE. A refit cannot stop early on validation, so every member trains for exactly
``--epochs`` epochs and keeps its last weights (``Recipe(stop_on="loss", restore_best=False)``); the σ
calibration, which needs crystals the ensemble has not seen, is taken from a train-only ensemble of the same
preset (default: the shipped ``s2p:e3nn_phdos_mass``, calibrated on validation) and written beside the refit
members with its source.

``--check`` measures the fixed-epoch recipe itself on validation first: one member, trained on the
training crystals only for ``--epochs`` epochs, last weights, scored on the validation part only (a JSON line
in the ``levers.py`` log format, name ``fixed<E>``, comparable with ``levers.py maxnorm``)::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/refit.py --check --epochs 150 [--seed 1]
    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/refit.py --epochs 150 --seeds 0 [1 2]

Without ``--check`` each seed trains the whole ensemble on train + validation and scores the test part once.

``--cross-fit K`` keeps early stopping instead (``TrainConfig.cross_fit``): the crystals to fit are cut into
``K`` folds, and member m trains on the others and stops on fold m mod K, so the ensemble learns from every
crystal and no member runs blind. ``--check --cross-fit K`` trains the whole cross-fitted ensemble on the
training crystals only, calibrates its σ and scores it on the validation part (a log line named
``crossfit<K>``, comparable with a ``lever_ensembles.py`` row of as many members); its model folder is then
the ``--calibration-from`` of the refit::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/refit.py --check --cross-fit 5 --seed 0
    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/refit.py --cross-fit 5 --seeds 0 1 2 \\
        --calibration-from benchmarks/out/refit/models/crossfit5
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def refit_parts(parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Parts whose training rows are the training and validation rows together (validation and test kept,
    so the validation crystals are listed twice: as training rows and, for the record, as themselves)."""
    if np.intersect1d(parts["train"], parts["test"]).size or np.intersect1d(parts["val"], parts["test"]).size:
        raise ValueError("test rows overlap the rows to refit on")
    return {
        "train": np.concatenate([parts["train"], parts["val"]]),
        "val": parts["val"],
        "test": parts["test"],
    }


def fixed_epoch_recipe(recipe, epochs: int):
    """``recipe`` training exactly ``epochs`` epochs and keeping the last weights (no early stopping)."""
    return replace(
        recipe, stop_on="loss", patience=epochs + 1, min_delta=0.0, restore_best=False, epochs=epochs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="e3nn_phdos_mass")
    parser.add_argument(
        "--epochs", type=int, help="epochs every member trains (no early stop); with --cross-fit the maximum"
    )
    parser.add_argument(
        "--cross-fit",
        type=int,
        default=0,
        metavar="K",
        help="cut the crystals to fit into K folds; member m stops early on fold m mod K",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--seed", type=int, help="with --check: the one seed (default: the first of --seeds)")
    parser.add_argument("--check", action="store_true", help="one member on training crystals, scored on val")
    parser.add_argument("--calibration-from", default="s2p:e3nn_phdos_mass", help="train-only ensemble")
    parser.add_argument("--results-dir", default="benchmarks/out/refit")
    parser.add_argument("--log", default="benchmarks/out/levers_val.jsonl", help="with --check")
    parser.add_argument("--out", default="benchmarks/out/refit.md")
    args = parser.parse_args()
    if args.epochs is None and not args.cross_fit:
        parser.error("--epochs is needed without --cross-fit")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be ≥ 1")

    from levers import append_to_log, validation_scores
    from table1 import COLUMNS, cells, header

    from s2p_utils.config import get_preset, resolve_recipe
    from s2p_utils.evaluation import evaluate, write_outputs
    from s2p_utils.experiment import build_inputs, fit_scaler, model_paths, select_rows, train_members
    from s2p_utils.packaged_models import resolve_model_spec
    from s2p_utils.prediction import Predictor
    from s2p_utils.train import read_history
    from s2p_utils.uncertainty import read_calibration, write_calibration

    calibration = None
    if not args.check:  # only the calibration.json of the ensemble folder is needed, not its networks
        calibration = read_calibration(resolve_model_spec(args.calibration_from))
        if calibration is None:
            parser.error(
                f"--calibration-from {args.calibration_from}: no calibration.json (name an ensemble)"
            )
    config = get_preset(args.preset)
    check_seed = args.seeds[0] if args.seed is None else args.seed
    if args.cross_fit:
        config = replace(config, train=replace(config.train, cross_fit=args.cross_fit))
        if args.check:
            cross_fit_check(config, check_seed, args)
            return
        recipe = resolve_recipe(config, "fixed", epochs=args.epochs)
    else:
        if args.check:
            config = replace(config, train=replace(config.train, ensemble=1))
        recipe = fixed_epoch_recipe(resolve_recipe(config, "fixed"), args.epochs)
    data = select_rows(config, "chen2021")
    if not args.check:
        data = replace(data, parts=refit_parts(data.parts), split="chen2021 train+val refit")
    inputs = build_inputs(config, recipe, data)
    scaler = fit_scaler(config, recipe, data)
    seeds = [check_seed] if args.check else args.seeds
    rows = []
    for seed in seeds:
        if args.check:
            name = f"fixed{args.epochs}" + (f"_s{seed}" if seed else "")
        elif args.cross_fit:
            name = f"crossfit{args.cross_fit}_refit_seed{seed}"
        else:
            name = f"refit{args.epochs}_seed{seed}"
        started = time.perf_counter()
        predictor = train_members(
            config, recipe, data, inputs, scaler, run_name=name, seed=seed, results_dir=args.results_dir
        )
        seconds = time.perf_counter() - started
        model_path, _, member_dirs = model_paths(name, Path(args.results_dir), len(predictor.networks))
        if calibration is not None:
            write_calibration(
                model_path, calibration, source=f"{args.calibration_from} (train-only, on validation)"
            )
            predictor = Predictor(predictor.networks, predictor.record, calibration, predictor.sources)
        evaluation = evaluate(predictor, data, inputs, evaluate_on="val" if args.check else "test")
        histories = [read_history(d) for d in member_dirs]
        info = {
            "training_seconds": seconds,
            "member_epochs": [len(h) for h in histories],
            "refit": not args.check,
        }
        write_outputs(
            evaluation, data, predictor, run_name=name, history=histories[0], info=info,
            results_dir=args.results_dir,
        )  # fmt: skip
        scores = evaluation.scores
        if args.check:
            line = {
                "name": name,
                "preset": args.preset,
                "overrides": [f"fixed_epochs={args.epochs}"],
                "seed": seed,
                **validation_scores(scores),
                "epochs": args.epochs,
                "minutes": round(seconds / 60, 2),
            }
            append_to_log(Path(args.log), line)
        else:
            rows.append({**scores, "seed": seed, "seconds": seconds})
            print(f"seed {seed} ({seconds / 60:.1f} min): " + ", ".join(
                f"{label} {c}" for (_, label), c in zip(COLUMNS, cells(scores), strict=True)
            ), flush=True)  # fmt: skip
    if rows:
        recipe_text = (
            f"cross-fitted over {args.cross_fit} folds" if args.cross_fit else f"{args.epochs} epochs"
        )
        lines = [
            f"### {args.preset} refit on train + validation, {recipe_text}, chen2021 test",
            "",
            *header(),
        ]
        lines += [
            f"| seed {r['seed']} ({r['seconds'] / 60:.1f} min) | " + " | ".join(cells(r)) + " |" for r in rows
        ]
        lines += ["", "| seed | ±1σ (all points) | ±2σ (all points) |", "|---|---|---|"]
        lines += [
            f"| {r['seed']} | {r.get('within_1sigma', float('nan')):.3f} | {r.get('within_2sigma', float('nan')):.3f} |"
            for r in rows
        ]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n\n")
        print("\n".join(lines))


def cross_fit_check(config, seed: int, args: argparse.Namespace) -> None:
    """Train ``config`` (cross-fitted) on the training crystals only, calibrate and score it on the validation
    part, and append its ``levers.py`` log line (name ``crossfit<K>``; its overrides replay it in ``levers.py``)."""
    from levers import append_to_log, validation_scores

    from s2p_utils.experiment import run_experiment

    started = time.perf_counter()
    name = f"crossfit{config.train.cross_fit}" + (f"_s{seed}" if seed else "")
    result = run_experiment(
        config, split="chen2021", seed=seed, epochs=args.epochs, run_name=name,
        results_dir=args.results_dir, evaluate_on="val",
    )  # fmt: skip
    line = {
        "name": name,
        "preset": args.preset,
        "overrides": [f"cross_fit={config.train.cross_fit}", f"ensemble={config.train.ensemble}"],
        "seed": seed,
        "members": int(config.train.ensemble),
        **validation_scores(result.metrics),
        "epochs": len(result.history),
        "minutes": round((time.perf_counter() - started) / 60, 2),
    }
    append_to_log(Path(args.log), line)  # and prints it


if __name__ == "__main__":
    main()
