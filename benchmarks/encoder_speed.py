"""Atom-sequence LSTM vs set encoder: parameters, seconds per training epoch and network throughput.

For each preset (default ``e3nn_phdos_plus`` and ``e3nn_phdos_set``), on the chen2021 training split
(1218 crystals), one model is built and trained the way :func:`s2p_utils.train.train_model` trains it
(the preset's length-bucketed batches, atom-order augmentation when the preset asks for it, validation
pass every epoch, no XLA) for ``--epochs`` timed epochs after one untimed warm-up epoch (tracing). Then
the validation + test crystals are predicted with the preset's test-time permutations
(:func:`s2p_utils.batching.predict_batched`), network only (featurisation excluded), per ensemble member.
Presets are measured one after the other in the same process. Run::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/encoder_speed.py [--epochs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["e3nn_phdos_plus", "e3nn_phdos_set"])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per preset (after 1 warm-up)")
    parser.add_argument("--split", default="chen2021")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args()

    import keras
    import numpy as np
    from train_speed import EpochTimer

    from s2p_utils.batching import batch_dataset, predict_batched
    from s2p_utils.config import get_preset
    from s2p_utils.data.registry import load
    from s2p_utils.inputs import model_inputs
    from s2p_utils.model import build_model, count_parameters
    from s2p_utils.train import _validation_data, compile_model

    numbers: dict[str, dict[str, float]] = {}
    for name in args.presets:
        config = get_preset(name)
        dataset = load(config.dataset)
        parts = dataset.split(args.split)
        inputs, targets = {}, {}
        for part in ("train", "val", "test"):
            rows = parts[part]
            structures = [dataset.structures[i] for i in rows]
            inputs[part] = model_inputs(structures, config, legacy=False, progress=False)
            targets[part] = np.asarray(dataset.targets[rows], dtype=np.float32)
        steps = math.ceil(len(targets["train"]) / config.train.batch_size)
        keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config.train, jit_compile=False)
        data = batch_dataset(
            inputs["train"],
            targets["train"],
            batch_size=config.train.batch_size,
            seed=0,
            first_epoch=0,
            last_epoch=1 + args.epochs,
            bucketed=config.train.bucketed,
            permute_atoms=config.train.permute_atoms,
        )
        validation = _validation_data(inputs["val"], targets["val"], config.train.batch_size, True)
        timer = EpochTimer()
        model.fit(
            data,
            epochs=1 + args.epochs,
            steps_per_epoch=steps,
            validation_data=validation,
            verbose=0,
            callbacks=[timer],
        )
        held_out = {key: np.concatenate([inputs["val"][key], inputs["test"][key]]) for key in inputs["val"]}
        n_held_out = len(held_out["tokens"])
        permutations = config.train.test_time_permutations
        predict_batched(model, held_out, batch_size=256, permutations=permutations)  # warm-up
        tick = time.perf_counter()
        predict_batched(model, held_out, batch_size=256, permutations=permutations)
        per_member = n_held_out / (time.perf_counter() - tick)
        numbers[name] = {
            "parameters": count_parameters(model),
            "seconds_per_epoch": float(np.mean(timer.durations[1:])),
            "epoch_seconds": [round(d, 2) for d in timer.durations[1:]],
            "warm_up_seconds": round(timer.durations[0], 2),
            "structures_per_second_per_member": per_member,
            "ensemble_structures_per_second": per_member / max(1, config.train.ensemble),
            "test_time_permutations": permutations,
        }
        print(
            f"{name}: {numbers[name]['parameters']:,} parameters; "
            f"{numbers[name]['seconds_per_epoch']:.1f} s/epoch {numbers[name]['epoch_seconds']} "
            f"(warm-up {timer.durations[0]:.1f} s); network {per_member:.0f} structures/s per member "
            f"({permutations} test-time orders), {numbers[name]['ensemble_structures_per_second']:.0f}/s "
            f"for the {config.train.ensemble}-member ensemble"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"split": args.split, "epochs_timed": args.epochs, "presets": numbers}, handle, indent=1
            )


if __name__ == "__main__":
    main()
