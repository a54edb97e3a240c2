"""Reproduce the e3nn phonon-DOS result: legacy and fixed training on the random73 and chen2021 splits.

Runs :func:`s2p_utils.experiment.run_experiment` for each (split, mode) in turn and prints a markdown
table of the test scores (unscaled spectra) next to the training-mean-spectrum baseline. The original
notebook (``add/embed_e3nn_phdos.ipynb``, random 80/10/10 split of ``RandomState(73)``) printed
``MAE_test 0.0870`` / ``MSE_test 0.0271``.

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/train_e3nn.py \
        [--splits random73 chen2021] [--modes legacy fixed] [--seed 0] [--out benchmarks/results/train_e3nn.md]

Every run writes metrics, predictions, figures, the model and resumable checkpoints below
``$S2P_RESULTS_DIR`` (default ``results/``); run the command again after an interruption to resume.
About 10 s per epoch on 2 CPU cores: a legacy run (30 epochs) takes ~5 min, a fixed run (early stopping,
at most 200 epochs) ~10–20 min.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from s2p_utils.experiment import run_experiment

COLUMNS = [
    ("split", None),
    ("mode", None),
    ("test MAE", "mae"),
    ("test MSE", "mse"),
    ("R²", "r2"),
    ("baseline MAE", "baseline_mae"),
    ("baseline MSE", "baseline_mse"),
    ("C_V MAE (k_B)", "cv_mae"),
    ("epochs", None),
    ("best epoch", None),
    ("minutes", None),
]


def markdown_table(rows: list[dict]) -> str:
    """Rows of ``{"split", "mode", "metrics", "epochs", "best_epoch", "seconds"}`` as a markdown table."""
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        m = row["metrics"]
        cells = [
            row["split"],
            row["mode"],
            *(
                f"{m[key]:.4f}" if key in ("mae", "baseline_mae", "cv_mae") else f"{m[key]:.4g}"
                for _, key in COLUMNS[2:8]
            ),
            str(row["epochs"]),
            str(row["best_epoch"] or "–"),
            f"{row['seconds'] / 60:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", nargs="+", default=["random73", "chen2021"])
    parser.add_argument("--modes", nargs="+", choices=["legacy", "fixed"], default=["legacy", "fixed"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--out", default=None, help="also write the markdown table to this file")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 2 epochs (checks the script only)")
    args = parser.parse_args(argv)

    rows = []
    for split in args.splits:
        for mode in args.modes:
            started = time.perf_counter()
            result = run_experiment(
                "e3nn_phdos",
                split=split,
                mode=mode,
                seed=args.seed,
                smoke=True if args.smoke else None,
                results_dir=args.results_dir,
                verbose=2,
            )
            history = result.history
            best = None
            if len(history) and "val_loss" in history:
                best = int(history["epoch"].iloc[int(history["val_loss"].to_numpy().argmin())]) + 1
            rows.append(
                {
                    "split": split,
                    "mode": mode,
                    "metrics": result.metrics,
                    "epochs": len(history),
                    "best_epoch": best if mode == "fixed" else None,
                    "seconds": time.perf_counter() - started,
                }
            )
            m = result.metrics
            print(
                f"## {split} {mode}: test MAE {m['mae']:.4f} MSE {m['mse']:.4f} "
                f"(baseline MAE {m['baseline_mae']:.4f}), {len(history)} epochs",
                flush=True,
            )
    table = markdown_table(rows)
    print(table, flush=True)
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
