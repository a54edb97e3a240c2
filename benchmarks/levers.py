"""One accuracy lever at a time: a single ``e3nn_phdos_plus`` model with some settings changed, scored on
the chen2021 *validation* split only (``run_experiment(evaluate_on="val")``: no test score is computed,
so a choice made from this table cannot have seen the test set).

Each ``key=value`` overrides a field of the preset's ``ModelConfig``, ``TrainConfig`` or
``ExperimentConfig`` (looked up in that order); the ensemble is always 1 member. Run::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/levers.py base
    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/levers.py smooth1 target_smoothing=1.0

One JSON line per run (every validation score of :func:`s2p_utils.metrics.spectrum_metrics`, prefixed
``val_``) is appended to ``--log`` (default ``benchmarks/out/levers_val.jsonl``). ``levers.py --table``
prints that log as the markdown table of ``benchmarks/README.md`` and applies the selection rule,
:data:`RULE`: the lowest mean rank over :data:`RANKED` (validation only; ties → lower MSE). Runs of the same
overrides with other ``--seed`` values are averaged into one row (column ``seeds``). ``--n-train N`` trains
on the first ``N`` training crystals only (a learning curve; part of the configuration); ``--pseudo-labels K``
adds ``K`` crystals labelled by the shipped model to the training part (``pseudo_labels.py``);
``--mlip-labels K`` the first ``K`` crystals a universal potential labelled (``mlip_phonons.py --part
unlabelled``, JSON lines under ``--labels-dir``), their frequencies times ``--mlip-scale`` (with ``--mlip-compounds``, only crystals
holding one of ``pseudo_labels.COMPOUND_ELEMENTS``). With
``--pretrain`` those added crystals are not mixed in: the member first trains on them alone, then fine-tunes
from those weights on the true training part (``run_experiment(init_from=...)``); both phases stop early on
the validation part.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


#: Validation columns the choice ranks on (lower is better): Mat2Spec's Table 1 columns that are not
#: functions of one another (pooled R² is 1 − MSE/Var, so it is left out), plus the paper's raw MAE.
RANKED = ("val_mse_renorm", "val_mae_renorm", "val_mae", "val_wasserstein", "val_omega_mae")
#: Preset the overrides apply to unless ``--preset`` names another (and of log lines that predate its logging).
DEFAULT_PRESET = "e3nn_phdos_plus"
RULE = "lowest mean rank over validation MSE (max-renorm.), MAE (max-renorm.), raw MAE, W₁ and ω̄ error"


def table(log: Path, min_seeds: int = 1) -> str:
    """The lever log as a markdown table, ranked by :data:`RULE`, the chosen row in bold.

    Only configurations run with at least ``min_seeds`` seeds are ranked (seed spread is as large as most
    lever effects, so a single lucky seed must not win); the others follow, unranked (mean rank ``–``).
    """
    import pandas as pd

    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    frame = pd.DataFrame(rows).drop_duplicates("name", keep="last")
    # One row per configuration (the same preset and overrides): scores averaged over its seeds, named by its
    # first run. Lines written before the preset was logged ran on DEFAULT_PRESET.
    frame["preset"] = frame.get("preset", pd.Series(index=frame.index, dtype=object)).fillna(DEFAULT_PRESET)
    n_train = frame.get("n_train", pd.Series(index=frame.index, dtype=float))
    pseudo = frame.get("pseudo_labels", pd.Series(index=frame.index, dtype=float))
    mlip = frame.get("mlip_labels", pd.Series(index=frame.index, dtype=float))
    pretrain = frame.get("pretrain", pd.Series(index=frame.index, dtype=object)).fillna(False)
    compounds = frame.get("mlip_compounds", pd.Series(index=frame.index, dtype=object)).fillna(False)
    scale = frame.get("mlip_scale", pd.Series(index=frame.index, dtype=float))
    frame["config"] = [
        " ".join(
            ([] if preset == DEFAULT_PRESET else [f"--preset {preset}"])
            + ([] if pd.isna(n) else [f"--n-train {int(n)}"])
            + ([] if pd.isna(k) else [f"--pseudo-labels {int(k)}"])
            + ([] if pd.isna(m) else [f"--mlip-labels {int(m)}"])
            + ([] if pd.isna(f) or f == 1.0 else [f"--mlip-scale {f:g}"])
            + (["--mlip-compounds"] if comp else [])
            + (["--pretrain"] if pre else [])
            + list(overrides)
        )
        for preset, n, k, m, f, comp, pre, overrides in zip(
            frame["preset"],
            n_train,
            pseudo,
            mlip,
            scale,
            compounds,
            pretrain,
            frame["overrides"],
            strict=True,
        )
    ]
    frame = frame.sort_values("seed", kind="stable")
    numeric = [c for c in frame.columns if c.startswith("val_") or c in ("epochs", "minutes")]
    grouped = frame.groupby("config", sort=False)
    frame = grouped[numeric].mean().join(grouped["name"].first())
    frame["seeds"] = grouped.size()
    frame = frame.reset_index().set_index("name")
    ranked = frame["seeds"] >= min_seeds
    frame["mean_rank"] = frame.loc[ranked, list(RANKED)].rank(method="average").mean(axis=1)
    frame = frame.sort_values(["mean_rank", "val_mse_renorm"], na_position="last")
    columns = [
        ("val_mse_renorm", "MSE (max-renorm.)", 4),
        ("val_mae_renorm", "MAE (max-renorm.)", 4),
        ("val_mae", "MAE (raw)", 4),
        ("val_wasserstein", "W₁ (cm⁻¹)", 1),
        ("val_omega_mae", "ω̄ MAE (cm⁻¹)", 1),
        ("val_r2_pooled_renorm", "R² pooled (max-renorm.)", 3),
        ("val_r2", "R² var.-weighted", 3),
        ("mean_rank", "mean rank", 2),
        ("seeds", "seeds", 0),
        ("epochs", "epochs", 0),
        ("minutes", "minutes", 1),
    ]
    lines = [
        "| configuration | overrides of the preset | " + " | ".join(label for _, label, _ in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for k, (name, row) in enumerate(frame.iterrows()):
        cells = ["–" if pd.isna(row[key]) else f"{row[key]:.{digits}f}" for key, _, digits in columns]
        label = f"**{name}** (chosen)" if k == 0 and not pd.isna(row["mean_rank"]) else name
        lines.append(f"| {label} | {row['config'] or '–'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def validation_scores(metrics: dict[str, float]) -> dict[str, float]:
    """The lever-log columns of a run scored on validation (``evaluate_on="val"``): every score of
    :func:`s2p_utils.metrics.spectrum_metrics`, prefixed ``val_``; baselines, members and part MAEs left out."""
    return {
        f"val_{key}": value
        for key, value in metrics.items()
        if not key.startswith(("baseline_", "member", "raw_", "train_", "val_"))
    }


def append_to_log(log: Path, line: dict[str, Any]) -> None:
    """Append ``line`` to the JSON-lines lever log ``log`` (created with its folder) and print it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


def _parse(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        if value not in ("True", "False", "true", "false", "1", "0"):
            raise SystemExit(f"expected a boolean, got {value!r}")
        return value in ("True", "true", "1")
    return type(current)(value) if current is not None else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", help="label of this configuration (also the run name)")
    parser.add_argument("overrides", nargs="*", help="key=value settings to change")
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, help="train on the first N training crystals only")
    parser.add_argument(
        "--pseudo-labels", type=int, help="add K teacher-labelled unlabelled crystals to the training part"
    )
    parser.add_argument(
        "--mlip-labels",
        type=int,
        help="add the first K crystals a universal potential labelled to the training part",
    )
    parser.add_argument("--mlip-scale", type=float, default=1.0, help="with --mlip-labels: frequency factor")
    parser.add_argument("--labels-dir", default="benchmarks/out/mlip/labels", help="with --mlip-labels")
    parser.add_argument(
        "--mlip-compounds",
        action="store_true",
        help="with --mlip-labels: only crystals holding H, B, C, N, O, F, P, S, Cl, Se, Br, Te or I",
    )
    parser.add_argument(
        "--pretrain",
        action="store_true",
        help="with --pseudo-labels/--mlip-labels: train on the added crystals alone, then fine-tune",
    )
    parser.add_argument("--results-dir", default="benchmarks/out/levers")
    parser.add_argument("--log", default="benchmarks/out/levers_val.jsonl")
    parser.add_argument("--table", action="store_true", help="print the log as a ranked markdown table")
    parser.add_argument(
        "--min-seeds", type=int, default=1, help="with --table: rank only configurations with this many seeds"
    )
    args = parser.parse_args()
    if args.table:
        print(table(Path(args.log), args.min_seeds), end="")
        return
    if not args.name:
        parser.error("a configuration name is needed (or --table)")

    from s2p_utils.config import get_preset
    from s2p_utils.experiment import run_experiment

    base = get_preset(args.preset)
    changes: dict[str, dict[str, Any]] = {"model": {}, "train": {"ensemble": 1}, "top": {}}
    for item in args.overrides:
        key, _, value = item.partition("=")
        for part, obj in (("model", base.model), ("train", base.train), ("top", base)):
            if key in {f.name for f in fields(obj)}:
                changes[part][key] = _parse(value, getattr(obj, key))
                break
        else:
            raise SystemExit(f"{key!r} is not a field of the preset's model, train or experiment config")
    config = replace(
        base,
        name=f"lever_{args.name}",
        model=replace(base.model, **changes["model"]),
        train=replace(base.train, **changes["train"]),
        **changes["top"],
    )
    started = time.perf_counter()
    dataset, split = None, "chen2021"
    if args.pseudo_labels and args.mlip_labels:
        parser.error("--pseudo-labels and --mlip-labels are separate levers: give one")
    if args.pretrain and not (args.pseudo_labels or args.mlip_labels):
        parser.error("--pretrain needs the crystals to pretrain on: give --pseudo-labels or --mlip-labels")
    if args.pseudo_labels or args.mlip_labels:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from pseudo_labels import mlip_labelled_dataset, pseudo_labelled_dataset

        if args.pseudo_labels:
            dataset, split = pseudo_labelled_dataset(config, args.pseudo_labels)
        else:
            files = sorted(Path(args.labels_dir).glob("*_unlabelled_*.jsonl"))
            dataset, split = mlip_labelled_dataset(
                config, files, args.mlip_labels, scale=args.mlip_scale, compounds_only=args.mlip_compounds
            )
    pretrained = None
    if args.pretrain:
        pretrained = run_experiment(
            config,
            split=f"{split}-only",
            dataset=dataset,
            seed=args.seed,
            results_dir=args.results_dir,
            run_name=f"lever_{args.name}_pretrain",
            evaluate_on="val",
        )
        split = split.removesuffix("+pseudo")
    result = run_experiment(
        config,
        split=split,
        dataset=dataset,
        seed=args.seed,
        results_dir=args.results_dir,
        run_name=f"lever_{args.name}",
        evaluate_on="val",
        n_train=args.n_train,
        init_from=None if pretrained is None else pretrained.predictor,
    )
    minutes = (time.perf_counter() - started) / 60
    line = {
        "name": args.name,
        "preset": args.preset,
        "overrides": args.overrides,
        "seed": args.seed,
        **({} if args.n_train is None else {"n_train": args.n_train}),
        **({} if not args.pseudo_labels else {"pseudo_labels": args.pseudo_labels}),
        **({} if not args.mlip_labels else {"mlip_labels": args.mlip_labels, "mlip_scale": args.mlip_scale}),
        **({} if not args.mlip_compounds else {"mlip_compounds": True}),
        **({} if pretrained is None else {"pretrain": True, "pretrain_epochs": len(pretrained.history)}),
        **validation_scores(result.metrics),
        "epochs": len(result.history),
        "minutes": round(minutes, 2),
    }
    append_to_log(Path(args.log), line)


if __name__ == "__main__":
    main()
