"""End-to-end prediction throughput on the 3953 Materials Project binary CIFs of the data mirror.

Times the three stages of :func:`s2p_utils.prediction.predict` separately — reading the files
(:func:`s2p_utils.data.structures.read_structure`), featurising (:meth:`s2p_utils.prediction.Predictor.inputs`,
i.e. per-atom PDFs, tokens, padding) and the network (:meth:`s2p_utils.prediction.Predictor.run`) — and prints
structures per second for each stage and end to end.

The model is an untrained ``e3nn_phdos`` network (speed does not depend on the weights) unless
``--model`` names a saved ``.keras``, an ensemble directory or an authors' ``.h5``. Structures above
``max_atoms`` are truncated (``--no-truncate`` skips them instead).

    python benchmarks/predict_speed.py                   # all 3953 CIFs
    python benchmarks/predict_speed.py --limit 500 --json results/benchmarks/predict_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def default_cif_dir() -> Path:
    mirror = os.environ.get("S2P_DATA_MIRROR")
    base = Path(mirror) if mirror else REPO.parent / "shared" / "dos_datasets"
    return base / "mp_binaries_cif"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cif-dir", type=Path, default=None, help="folder of CIFs (default: the mirror's)")
    parser.add_argument("--model", default=None, help="saved model (default: untrained e3nn_phdos)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (sorted)")
    parser.add_argument("--batch-size", type=int, default=256, help="network batch size")
    parser.add_argument(
        "--n-jobs", type=int, default=1, help="processes that read and featurise the structures"
    )
    parser.add_argument("--no-truncate", action="store_true", help="skip structures above max_atoms")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return parser.parse_args(argv)


def load(model: str | None):
    from s2p_utils.prediction import load_predictor

    if model:
        return load_predictor(model)
    from s2p_utils.config import get_preset
    from s2p_utils.model import build_model
    from s2p_utils.model_record import ModelRecord

    record = ModelRecord.of(get_preset("e3nn_phdos"), grid=np.linspace(0, 1000, 51), grid_unit="cm^-1")
    return load_predictor(build_model("e3nn_phdos"), record=record)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cif_dir = args.cif_dir or default_cif_dir()
    files = sorted(cif_dir.glob("*.cif"))[: args.limit]
    if not files:
        print(f"no CIF files in {cif_dir} (set S2P_DATA_MIRROR or --cif-dir)", file=sys.stderr)
        return 2

    import tensorflow as tf

    from s2p_utils.data.structures import read_structure, read_structures

    loaded = load(args.model)
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    # warm-up: build the graph once so that the timing is the steady state
    warm = loaded.inputs([read_structure(files[0])], truncate=True)
    loaded.run(warm, batch_size=args.batch_size)

    t0 = time.perf_counter()
    read = read_structures(files, n_jobs=args.n_jobs, progress=True)
    structures = [atoms for atoms in read if not isinstance(atoms, Exception)]
    failed = [str(error) for error in read if isinstance(error, Exception)]
    t_read = time.perf_counter() - t0

    too_big = sum(len(a) > loaded.max_atoms for a in structures)
    if args.no_truncate:
        structures = [a for a in structures if len(a) <= loaded.max_atoms]
    t1 = time.perf_counter()
    inputs = loaded.inputs(structures, truncate=not args.no_truncate, n_jobs=args.n_jobs, progress=True)
    t_feat = time.perf_counter() - t1
    t2 = time.perf_counter()
    mean, _ = loaded.run(inputs, batch_size=args.batch_size)
    t_model = time.perf_counter() - t2
    n = len(structures)
    total = t_read + t_feat + t_model
    report = {
        "files": len(files),
        "structures": n,
        "unreadable": len(failed),
        "above_max_atoms": int(too_big),
        "truncated": bool(not args.no_truncate),
        "max_atoms": loaded.max_atoms,
        "batch_size": args.batch_size,
        "n_jobs": args.n_jobs,
        "model": args.model or "untrained e3nn_phdos",
        "devices": devices,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "seconds": {"read": t_read, "featurize": t_feat, "model": t_model, "total": total},
        "structures_per_second": {
            "read": n / t_read,
            "featurize": n / t_feat,
            "model": n / t_model,
            "end_to_end": n / total,
        },
        "output_shape": list(mean.shape),
    }
    print(f"{n} structures from {len(files)} files ({len(failed)} unreadable, {too_big} above max_atoms)")
    print(f"devices: {', '.join(devices)}; batch {args.batch_size}; featurisation jobs {args.n_jobs}")
    for stage in ("read", "featurize", "model"):
        seconds = report["seconds"][stage]
        share = 100 * seconds / total
        rate = report["structures_per_second"][stage]
        print(f"  {stage:<10} {seconds:8.2f} s  {share:5.1f} %  {rate:10.1f} structures/s")
    print(f"  {'end to end':<10} {total:8.2f} s  100.0 %  {n / total:10.1f} structures/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
