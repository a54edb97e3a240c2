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

from table1 import cells, header, part_scores

from s2p_utils.experiment import run_experiment


def markdown_table(rows: list[dict]) -> str:
    """Rows of ``{"split", "mode", "part", "metrics", "epochs", "best_epoch", "seconds"}`` as Table 1 columns."""
    lines = header("split · mode · part", ("epochs", "best epoch", "minutes"))
    for row in rows:
        lines.append(
            f"| {row['split']} · {row['mode']} · {row['part']} | "
            + " | ".join(cells(row["metrics"]))
            + f" | {row['epochs']} | {row['best_epoch'] or '–'} | {row['seconds'] / 60:.1f} |"
        )
    first = rows[0]["metrics"]
    lines.append(
        "| train-mean baseline (first row's part) | " + " | ".join(cells(first, "baseline_")) + " | | | |"
    )
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
            common = {
                "split": split,
                "mode": mode,
                "epochs": len(history),
                "best_epoch": best if mode == "fixed" else None,
                "seconds": time.perf_counter() - started,
            }
            rows.append({**common, "part": "test", "metrics": result.metrics})
            if split == "chen2021":  # the validation part: the set labelled `test` before 2026-12-01
                val = part_scores(result.predictions_path, "val")
                rows.append({**common, "part": "val", "metrics": val})
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
