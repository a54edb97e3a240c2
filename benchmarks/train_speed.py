"""Training speed: length-bucketed batches vs the padded-to-128 recipe, same machine, same run.

For the e3nn_phdos preset on its chen2021 training split (1218 crystals of 2–40 atoms) this times
``--epochs`` training epochs (after one untimed warm-up epoch that pays for tracing) with

* ``padded``: every batch padded to ``max_atoms`` = 128 (the original recipe), and
* ``bucketed``: batches of similar-length crystals cut to their longest member (:mod:`s2p_utils.batching`),

then checks that, for the same weights, the bucketed and the padded forward passes give the same
predictions, and prints the per-epoch ratio. Run::

    S2P_DATA_MIRROR=../shared/dos_datasets .venv/bin/python benchmarks/train_speed.py [--epochs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per variant (after 1 warm-up)")
    parser.add_argument("--preset", default="e3nn_phdos")
    parser.add_argument("--split", default="chen2021")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args()

    import keras
    import numpy as np

    from s2p_utils.batching import batch_dataset, predict_batched
    from s2p_utils.config import get_preset
    from s2p_utils.data.registry import load
    from s2p_utils.inputs import model_inputs
    from s2p_utils.model import build_model
    from s2p_utils.train import compile_model

    config = get_preset(args.preset)
    dataset = load(config.dataset)
    rows = dataset.split(args.split)["train"]
    inputs = model_inputs([dataset.structures[i] for i in rows], config, legacy=False, progress=False)
    targets = dataset.targets[rows]
    lengths = np.count_nonzero(inputs["tokens"], axis=1)
    steps = math.ceil(len(rows) / config.train.batch_size)
    print(
        f"{args.preset}/{args.split}: {len(rows)} training crystals, {lengths.min()}–{lengths.max()} atoms "
        f"(mean {lengths.mean():.1f}), padded to {config.model.max_atoms}; {steps} batches of {config.train.batch_size}"
    )

    seconds: dict[str, float] = {}
    for variant in ("padded", "bucketed"):
        keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, replace(config.train), jit_compile=False)
        data = batch_dataset(
            inputs,
            targets,
            batch_size=config.train.batch_size,
            seed=0,
            first_epoch=0,
            last_epoch=1 + args.epochs,
            bucketed=variant == "bucketed",
        )
        timer = EpochTimer()
        model.fit(data, epochs=1 + args.epochs, steps_per_epoch=steps, verbose=0, callbacks=[timer])
        seconds[variant] = float(np.mean(timer.durations[1:]))
        print(f"{variant:>9}: {seconds[variant]:.2f} s/epoch (warm-up epoch {timer.durations[0]:.2f} s)")

    padded_out = np.asarray(model.predict(inputs, batch_size=256, verbose=0))
    bucketed_out = predict_batched(model, inputs, batch_size=256, bucketed=True)
    difference = float(np.abs(padded_out - bucketed_out).max())
    ratio = seconds["padded"] / seconds["bucketed"]
    print(f"same weights, padded vs bucketed predictions: max |difference| = {difference:.2e}")
    print(f"SPEED-UP per epoch (padded / bucketed): {ratio:.1f}x")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "seconds_per_epoch": seconds,
                    "ratio": ratio,
                    "max_abs_difference": difference,
                    "n_train": int(len(rows)),
                    "epochs_timed": args.epochs,
                },
                handle,
                indent=1,
            )


class EpochTimer:
    """Keras callback recording wall seconds per epoch (defined lazily to keep imports cheap)."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.durations: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.durations.append(time.perf_counter() - self._start)

        return _Timer()


if __name__ == "__main__":
    main()
