"""Where the mean-frequency (ω̄) error of a phonon model comes from, on the chen2021 *validation* part only.

Runs a saved model (default: the shipped ``s2p:e3nn_phdos_mass``) on the validation crystals and prints
the signed ω̄ error (bias, median, quantiles of |error|), the same by range of the reference ω̄ (where the
error comes from: a model trained on few high-frequency crystals pulls them toward the common ones), the
least-squares line ω̄_true ≈ a·ω̄_pred + b, and what a post-hoc **frequency stretch** would do: each predicted spectrum p(ω) is replaced by
p(ω / s) with ``s = (a·ω̄_p + b) / ω̄_p``, the line fitted on one half of the validation crystals and applied
to the other (2-fold, three random halvings), so the scores are out-of-sample. No test score is computed::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/omega_bias.py [--model s2p:e3nn_phdos_mass] \
        [--figure benchmarks/out/omega_parity.png]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

SHOWN = ("mse_renorm", "mae_renorm", "mae", "wasserstein", "omega_mae", "r2_pooled_renorm")
#: Edges (cm⁻¹) of the reference-ω̄ ranges of the error table.
OMEGA_RANGES = (0.0, 100.0, 200.0, 300.0, 400.0, np.inf)


def error_by_range(
    omega_true: np.ndarray, error: np.ndarray, edges: tuple[float, ...] = OMEGA_RANGES
) -> list[tuple[str, int, float, float, float]]:
    """Per range of the reference ω̄ ``(n,)`` (cm⁻¹): its label, the crystals in it, the mean signed and
    absolute ω̄ ``error`` ``(n,)`` (cm⁻¹) and its share of the summed |error|."""
    total = np.nansum(np.abs(error))
    table = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (omega_true >= low) & (omega_true < high)
        label = f"{low:.0f}–{high:.0f}" if np.isfinite(high) else f"≥ {low:.0f}"
        if not inside.any():
            table.append((label, 0, np.nan, np.nan, 0.0))
            continue
        part = error[inside]
        table.append(
            (
                label,
                int(inside.sum()),
                float(np.nanmean(part)),
                float(np.nanmean(np.abs(part))),
                float(np.nansum(np.abs(part)) / total),
            )
        )
    return table


def stretch(grid: np.ndarray, spectra: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Spectra ``(n, n_grid)`` with their frequency axis stretched by ``factors`` ``(n,)`` (p(ω) → p(ω/s))."""
    return np.stack([np.interp(grid / s, grid, p, right=0.0) for p, s in zip(spectra, factors, strict=True)])


def omega_line(omega_true: np.ndarray, omega_pred: np.ndarray) -> np.ndarray:
    """``(a, b)`` of the least-squares line ω̄_true ≈ a·ω̄_pred + b (cm⁻¹, arrays ``(n,)``)."""
    design = np.vstack([omega_pred, np.ones_like(omega_pred)]).T
    return np.linalg.lstsq(design, omega_true, rcond=None)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="s2p:e3nn_phdos_mass")
    parser.add_argument("--preset", default="e3nn_phdos_mass", help="preset whose dataset and split to use")
    parser.add_argument("--figure", help="also write the ω̄ parity plot (PNG) here")
    args = parser.parse_args()

    from s2p_utils.config import get_preset
    from s2p_utils.experiment import select_rows
    from s2p_utils.metrics import mean_frequency, spectrum_metrics
    from s2p_utils.prediction import load_predictor

    data = select_rows(get_preset(args.preset), "chen2021")
    rows = data.parts["val"]
    grid = np.asarray(data.grids(), dtype=np.float64)
    y = np.asarray(data.dataset.targets[rows], dtype=np.float64)
    p = np.asarray(load_predictor(args.model).predict([data.dataset.structures[i] for i in rows]).mean)
    omega_true, omega_pred = mean_frequency(grid, y), mean_frequency(grid, p)
    error = omega_pred - omega_true
    print(f"validation crystals: {len(rows)}; model {args.model}")
    print(
        f"signed ω̄ error (pred − true): mean {np.nanmean(error):+.2f} cm⁻¹, median {np.nanmedian(error):+.2f}"
    )
    quantiles = np.nanpercentile(np.abs(error), [50, 75, 90, 100])
    print("|ω̄ error| quantiles 50/75/90/100 %: " + " / ".join(f"{q:.1f}" for q in quantiles) + " cm⁻¹")
    print("\n| reference ω̄ (cm⁻¹) | crystals | signed error | mean abs. error | share of abs. error |")
    print("|---|---|---|---|---|")
    for label, count, signed, absolute, share in error_by_range(omega_true, error):
        print(f"| {label} | {count} | {signed:+.1f} | {absolute:.1f} | {100 * share:.0f} % |")
    if args.figure:
        from s2p_utils.plots import parity_figure

        parity_figure(
            omega_true,
            omega_pred,
            r"$\bar\omega$",
            "cm$^{-1}$",
            path=args.figure,
            title=f"{args.model}, chen2021 validation",
        )
        print(f"wrote {args.figure}")
    a, b = omega_line(omega_true, omega_pred)
    print(f"ω̄_true ≈ {a:.4f} · ω̄_pred {b:+.2f} cm⁻¹ (all validation crystals)")

    def scores(prediction: np.ndarray) -> str:
        metrics = spectrum_metrics(y, prediction, grid=grid, kind="phdos")
        return " | ".join(f"{metrics[key]:.4f}" for key in SHOWN)

    print("\n| prediction | " + " | ".join(SHOWN) + " |\n|---|" + "---|" * len(SHOWN))
    print(f"| as predicted | {scores(p)} |")
    rng = np.random.default_rng(0)
    for repeat in range(3):
        halves = np.array_split(rng.permutation(len(rows)), 2)
        stretched = p.copy()
        for fit_half, apply_half in ((halves[0], halves[1]), (halves[1], halves[0])):
            a, b = omega_line(omega_true[fit_half], omega_pred[fit_half])
            omega_p = omega_pred[apply_half]
            stretched[apply_half] = stretch(grid, p[apply_half], (a * omega_p + b) / omega_p)
        print(f"| stretched, 2-fold halving {repeat} | {scores(stretched)} |")


if __name__ == "__main__":
    main()
