"""Ensemble size and test-time atom orders, on the chen2021 *validation* part only.

Takes saved ensembles of one preset (default: the three ``e3nn_phdos_mass`` reruns of ``train_plus.py``,
3 members each, so 9 members in all), runs every member on the validation crystals in the listed atom order
and ``--orders - 1`` random orders (:func:`s2p_utils.batching.predict_batched` with ``first_order``), and
scores ensembles of 1 … 9 members under three test-time schemes:

- ``distinct 1``: member k runs once, in its own order k (``member_orders=True``, 0 extra orders);
- ``distinct 2``: member k averages its own orders 2k and 2k + 1 (``member_orders=True``, 1 extra order);
- ``shared 5``: every member averages the same 5 orders (``member_orders=False``, 4 extra orders).

Each size is the mean over three ensembles (starting with each rerun's members in turn). Network passes per
crystal = members × orders per member: what prediction throughput pays. No test score is computed. Run::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/ensemble_size.py \\
        [--runs e3nn_phdos_mass_chen2021_seed0 ...] [--results-dir benchmarks/out/results]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

RUNS = [f"e3nn_phdos_mass_chen2021_seed{seed}" for seed in range(3)]
COLUMNS = (
    ("mse_renorm", 4),
    ("mae_renorm", 4),
    ("mae", 4),
    ("wasserstein", 2),
    ("omega_mae", 2),
    ("r2_pooled_renorm", 3),
)


def member_order_outputs(
    runs: list[str], results_dir: str, orders: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(outputs, targets, grid)``: float64 ``(members, orders, n_val, n_out)`` of every member of ``runs`` in
    atom orders ``0 … orders − 1`` (order 0 = listed), with the validation targets and grid."""
    from s2p_utils.batching import predict_batched
    from s2p_utils.experiment import build_inputs, load_members, select_rows

    outputs, data = [], None
    for run in runs:
        predictor = load_members(run, results_dir)
        record = predictor.record
        if data is None:
            data = select_rows(record.config)
            inputs = build_inputs(record.config, record.recipe, data)
            val = {key: value[data.mask("val")] for key, value in inputs.items()}
        for network in predictor.networks:
            outputs.append(
                [
                    record.unscale(
                        predict_batched(network, val, seed=record.prediction_seed, first_order=order)
                    )
                    for order in range(orders)
                ]
            )
    return np.asarray(outputs, dtype=np.float64), data.targets[data.mask("val")], data.grids("val")


def table(outputs: np.ndarray, targets: np.ndarray, grid: np.ndarray, per_run: int) -> str:
    """The markdown table of ensemble size × test-time scheme (validation scores)."""
    from s2p_utils.metrics import spectrum_metrics

    n_members, n_orders = outputs.shape[:2]
    schemes = {
        "distinct 1": (1, lambda k: [k % n_orders]),
        "distinct 2": (2, lambda k: [(2 * k) % n_orders, (2 * k + 1) % n_orders]),
        "shared 5": (5, lambda k: list(range(min(5, n_orders)))),
    }
    lines = [
        "| members | test-time orders | passes / crystal | MSE (max-renorm.) | MAE (max-renorm.) | MAE (raw) "
        "| W₁ (cm⁻¹) | ω̄ MAE (cm⁻¹) | R² pooled (max-renorm.) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    starts = range(0, n_members, per_run)
    for size in range(1, n_members + 1):
        for name, (per_member, orders_of) in schemes.items():
            if size > 5 and name != "distinct 1":
                continue
            scores = []
            for start in starts:
                members = [(start + k) % n_members for k in range(size)]
                mean = np.mean([outputs[m, orders_of(k)].mean(axis=0) for k, m in enumerate(members)], axis=0)
                scores.append(spectrum_metrics(targets, mean, grid=grid, kind="phdos"))
            cells = [f"{np.mean([s[key] for s in scores]):.{digits}f}" for key, digits in COLUMNS]
            lines.append(f"| {size} | {name} | {size * per_member} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=RUNS, help="saved ensembles (run names), same preset")
    parser.add_argument("--results-dir", default="benchmarks/out/results")
    parser.add_argument("--orders", type=int, default=10, help="atom orders run per member")
    args = parser.parse_args()
    outputs, targets, grid = member_order_outputs(args.runs, args.results_dir, args.orders)
    print(table(outputs, targets, grid, per_run=len(outputs) // len(args.runs)), end="")


if __name__ == "__main__":
    main()
