"""Ship a trained ensemble with the package: ``s2p_utils/pretrained/<name>/`` plus its model card.

Exports the ensemble folder written by ``train_plus.py`` (``<results>/models/<run>/``) through
:func:`s2p_utils.packaged_models.export_ensemble` (no optimizer state, float16-precision weights), then
scores the *exported* files on the chen2021 test part through :func:`s2p_utils.prediction.predict` — the
path ``s2p predict`` uses — and writes those numbers into ``model_card.json`` and ``MODEL_CARD.md``.
``tests/test_packaged_models.py`` checks that the shipped files reproduce them. Run::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/package_model.py \\
        --run e3nn_phdos_plus_chen2021_seed0 [--results-dir benchmarks/out/results] [--name e3nn_phdos_plus]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CARD_METRICS = (
    "mse_renorm",
    "mae_renorm",
    "r2_pooled_renorm",
    "r2_spectrum_renorm",
    "r2",
    "wasserstein",
    "omega_mae",
    "cv_mae",
    "mae",
    "mse",
)


def markdown(card: dict) -> str:
    """``MODEL_CARD.md`` from the card dict."""
    m = card["test_metrics"]
    rows = "\n".join(
        f"| `{key}` | {m[key]:.4f} |" for key in (*CARD_METRICS, "within_1sigma", "within_2sigma")
    )
    return f"""# Model card: `{card["name"]}` (shipped with struct2prop)

**Predicts** {card["predicts"]}.

- **Architecture**: {card["architecture"]} ({card["parameters"]:,} parameters per member, {card["members"]} members).
- **Data**: `{card["dataset"]}` ({card["data_source"]}), split `{card["split"]}`:
  trained on {card["split_sizes"]["train"]} crystals, early stopping and σ calibration on
  {card["split_sizes"]["val"]}, scored once on the {card["split_sizes"]["test"]} test crystals (Chen et al.'s
  third list, the set of the published E3NN and Mat2Spec numbers).
- **Inputs**: any crystal with at most {card["max_atoms"]} atoms; elements outside the 94-token vocabulary
  are predicted through `[UNK]` and flagged.
- **Output**: {card["grid"]}; σ per point calibrated on validation (`calibration.json`).
- **Trained** {card["trained"]} by `{card["command"]}` ({card["training_minutes"]:.0f} min on a 2-core CPU);
  packaged {card["date"]} by `{card["package_command"]}`.
- **Weights**: {card["weights"]}; {card["size_bytes"] / 1e6:.1f} MB in all.
- **Licence**: the model, MIT like the package; the training data (Petretto et al. 2018) CC BY 4.0 —
  cite Petretto et al., Sci. Data 5, 180065 (2018) and Chen et al., Adv. Sci. 8, 2004214 (2021).

## Test metrics (chen2021 test, {card["split_sizes"]["test"]} crystals; definitions in `s2p_utils.metrics`)

| metric | value |
|---|---|
{rows}

Computed from these files through `s2p_utils.prediction.predict` (the `s2p predict` path);
`tests/test_packaged_models.py` re-computes them on the data mirror.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="e3nn_phdos_plus_chen2021_seed0")
    parser.add_argument("--results-dir", default="benchmarks/out/results")
    parser.add_argument("--name", default="e3nn_phdos_plus")
    args = parser.parse_args()

    import numpy as np

    from s2p_utils.config import get_preset
    from s2p_utils.data import load
    from s2p_utils.metrics import calibration, spectrum_metrics
    from s2p_utils.model import count_parameters
    from s2p_utils.packaged_models import export_ensemble, write_model_card
    from s2p_utils.prediction import load_predictor, predict
    from s2p_utils.results import read_metrics

    results = Path(args.results_dir)
    source = results / "models" / args.run
    record = read_metrics(results / "metrics" / f"{args.run}.json")
    info = record["info"]
    config = get_preset(info["preset"])
    ds = load(info["dataset"], progress=False)
    parts = ds.split(info["split"])
    card = {
        "name": args.name,
        "predicts": "phonon density of states, max-normalised, 51 points on 0–1000 cm⁻¹, with a per-point σ",
        "preset": config.name,
        "architecture": config.description,
        "members": int(info["members"]),
        "dataset": ds.name,
        "data_source": ds.meta.get("source", ""),
        "split": info["split"],
        "split_sizes": {k: int(len(v)) for k, v in parts.items()},
        "max_atoms": config.model.max_atoms,
        "grid": "51 points, 0–1000 cm⁻¹ (20 cm⁻¹ steps)",
        "trained": record["timestamp"][:10],
        "git_commit": record.get("git_commit"),
        "seed": int(info["seed"]),
        "command": (
            "S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/train_plus.py "
            f"--preset {config.name} --seeds {info['seed']} --results-dir {args.results_dir}"
        ),
        "training_minutes": float(info.get("training_seconds") or float("nan")) / 60,
        "date": dt.date.today().isoformat(),
        "package_command": (
            f"benchmarks/package_model.py --run {args.run} --results-dir {args.results_dir} --name {args.name}"
        ),
        "versions": record.get("versions", {}),
    }
    dest = export_ensemble(source, args.name)
    loaded = load_predictor(dest)
    card["parameters"] = count_parameters(loaded.networks[0])
    test = parts["test"]
    started = time.perf_counter()
    result = predict(loaded, [ds.structures[i] for i in test])
    seconds = time.perf_counter() - started
    scores = spectrum_metrics(ds.targets[test], result.mean, grid=ds.grid, kind="phdos", grid_unit="cm^-1")
    coverage = calibration(ds.targets[test], result.mean, result.std)
    card["test_metrics"] = {key: float(scores[key]) for key in CARD_METRICS} | {
        key: float(coverage[key]) for key in ("within_1sigma", "within_2sigma")
    }
    card["test_predict_seconds"] = round(seconds, 2)
    card["weights"] = "float16 precision, stored as float32"  # export_ensemble's default
    card = write_model_card(dest, card, markdown)
    print(json.dumps(card["test_metrics"], indent=1))
    print(
        f"{dest}: {card['size_bytes'] / 1e6:.2f} MB; test predicted in {seconds:.1f} s; "
        f"max |Δ| vs the run's own test MAE: {abs(scores['mae'] - record['metrics']['mae']):.2e}"
    )
    assert np.isfinite(list(card["test_metrics"].values())).all()


if __name__ == "__main__":
    main()
