"""Accuracy of the ``e3nn_phdos_plus`` preset on the chen2021 split: three full reruns with different seeds.

Each rerun trains the whole 5-member ensemble (seeds ``s, s+1000, …``) and evaluates it once on the test
set; the table gives every rerun and the mean ± standard deviation over reruns, beside the faithful
preset and the published peers (Kong et al., Nat. Commun. 13, 949 (2022), Table 1). Run::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/train_plus.py [--seeds 0 1 2] \\
        [--results-dir benchmarks/out/results] [--out benchmarks/out/train_plus.md] [--evaluate-only]

``--evaluate-only`` reloads the saved ensembles and scores them again (a minute per rerun, no training):
the table then reports each run's recorded training time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIGMA_COLUMNS = [
    ("raw_within_1sigma_active", "±1σ raw (active)"),
    ("raw_within_2sigma_active", "±2σ raw (active)"),
    ("std_scale", "σ scale a (val.)"),
    ("std_floor", "σ floor b (val.)"),
    ("within_1sigma_active", "±1σ calibrated (active)"),
    ("within_2sigma_active", "±2σ calibrated (active)"),
    ("within_1sigma", "±1σ calibrated (all points)"),
    ("within_2sigma", "±2σ calibrated (all points)"),
]


def _summary(rows: list[dict], keys: list[str]) -> list[str]:
    import numpy as np

    out = []
    for key in keys:
        values = np.array([row.get(key, np.nan) for row in rows], dtype=float)
        sd = values.std(ddof=1) if len(values) > 1 else 0.0
        digits = 1 if key in ("wasserstein", "omega_mae") else 4
        out.append(f"{values.mean():.{digits}f} ± {sd:.{digits}f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="e3nn_phdos_plus")
    parser.add_argument("--split", default="chen2021")
    parser.add_argument("--results-dir", default="benchmarks/out/results")
    parser.add_argument("--out", default="benchmarks/out/train_plus.md")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="reload the saved ensembles of these seeds and score them again (no training)",
    )
    args = parser.parse_args()

    from table1 import COLUMNS, cells, header, part_scores

    from s2p_utils.experiment import run_experiment
    from s2p_utils.results import read_metrics

    test_rows, val_rows = [], []
    for seed in args.seeds:
        started = time.perf_counter()
        result = run_experiment(
            args.preset,
            split=args.split,
            mode="fixed",
            seed=seed,
            run_name=f"{args.preset}_{args.split}_seed{seed}",
            results_dir=args.results_dir,
            train=not args.evaluate_only,
        )
        seconds = time.perf_counter() - started
        info = read_metrics(result.metrics_path)["info"]
        if args.evaluate_only:  # report the training time of the run, not of the re-scoring
            seconds = float(info.get("training_seconds") or float("nan"))
        test_rows.append(
            {**result.metrics, "seed": seed, "seconds": seconds, "epochs": info.get("member_epochs")}
        )
        val_rows.append({**part_scores(result.predictions_path, "val"), "seed": seed})
        print(
            f"seed {seed}: "
            + ", ".join(f"{label} {c}" for (_, label), c in zip(COLUMNS, cells(result.metrics), strict=True)),
            flush=True,
        )

    keys = [key for key, _ in COLUMNS]
    lines = [f"### {args.preset}, {args.split} test (Chen's third list)", "", *header()]
    for row in test_rows:
        lines.append(
            f"| seed {row['seed']} ({row['seconds'] / 60:.1f} min, member epochs {row['epochs']}) | "
            + " | ".join(cells(row))
            + " |"
        )
    lines.append("| **mean ± sd** | " + " | ".join(_summary(test_rows, keys)) + " |")
    lines.append("| train-mean baseline | " + " | ".join(cells(test_rows[0], "baseline_")) + " |")
    lines += [
        "",
        f"### {args.preset}, {args.split} validation (the set labelled `test` before 2026-12-01)",
        "",
        *header(),
    ]
    for row in val_rows:
        lines.append(f"| seed {row['seed']} | " + " | ".join(cells(row)) + " |")
    lines.append("| **mean ± sd** | " + " | ".join(_summary(val_rows, keys)) + " |")
    lines += ["", "### σ calibration (fitted on validation, scored on test)", ""]
    lines.append("| run | " + " | ".join(label for _, label in SIGMA_COLUMNS) + " |")
    lines.append("|---|" + "---|" * len(SIGMA_COLUMNS))
    for row in test_rows:
        lines.append(
            f"| seed {row['seed']} | "
            + " | ".join(f"{row.get(k, float('nan')):.3f}" for k, _ in SIGMA_COLUMNS)
            + " |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
