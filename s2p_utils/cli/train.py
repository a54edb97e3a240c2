"""``s2p train PRESET``: train and evaluate one preset; results under ``results/``."""

from __future__ import annotations

import argparse

from s2p_utils.experiment import run_experiment

__all__ = ["cmd_train"]


def cmd_train(args: argparse.Namespace) -> int:
    """``s2p train PRESET [--split S] [--mode legacy|fixed] [--epochs N] [--seed K] [--smoke]
    [--init-from MODEL] ...``."""
    result = run_experiment(
        args.preset,
        split=args.split,
        mode=args.mode,
        epochs=args.epochs,
        seed=args.seed,
        smoke=True if getattr(args, "smoke", False) else None,
        run_name=args.run_name,
        results_dir=args.results_dir,
        verbose=2,
        init_from=getattr(args, "init_from", None),
    )
    m = result.metrics
    print(
        f"{result.run_name}: test MAE {m['mae']:.4f} (train-mean baseline {m.get('baseline_mae', float('nan')):.4f}), "
        f"MSE {m['mse']:.5f}, R² {m.get('r2', float('nan')):.3f}, {len(result.history)} epochs"
    )
    print(
        f"metrics: {result.metrics_path}\npredictions: {result.predictions_path}\nmodel: {result.model_path}"
    )
    return 0
