"""Training: learning-rate schedule, target scaling, early stopping per mode, checkpoint/resume."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from s2p_utils.config import ExperimentConfig, ModelConfig, TrainConfig, get_preset, resolve_recipe  # noqa: E402  # noqa: E402
from s2p_utils.model import build_model  # noqa: E402
from s2p_utils.train import (  # noqa: E402
    TargetScaler,
    fit_target_scaler,
    learning_rate,
    read_history,
    train_model,
)

TINY = ModelConfig(max_atoms=6, lstm_units=8, n_out=5)
TINY_GRID = replace(TINY, grid_input=True)


def tiny_data(n: int, seed: int, grid: bool = False):
    """Random padded inputs: 1..6 atoms, PDF rows in [0, 1), tokens 2..93, targets in [0, 1)."""
    rng = np.random.default_rng(seed)
    pdf = np.zeros((n, 6, 100), np.float32)
    tokens = np.zeros((n, 6), np.int32)
    for i in range(n):
        k = rng.integers(1, 7)
        pdf[i, :k] = rng.random((k, 100))
        tokens[i, :k] = rng.integers(2, 94, k)
    inputs = {"pdf": pdf, "tokens": tokens}
    if grid:
        inputs["grid"] = np.tile(np.linspace(-1, 1, 5, dtype=np.float32), (n, 1))
    return inputs, rng.random((n, 5)).astype(np.float32)


# ------------------------------------------------------------------------------------ schedule
@pytest.mark.parametrize(
    ("drop", "epoch", "expected"),
    [
        (2, 0, 1e-3),
        (2, 1, 9.2e-4),
        (2, 3, 1e-3 * 0.92**2),
        (2, 29, 1e-3 * 0.92**15),
        (25, 24, 9.2e-4),
        (8, 6, 1e-3),
    ],
)
def test_learning_rate_matches_the_paper_schedule(drop, epoch, expected):
    assert learning_rate(epoch, TrainConfig(lr_drop_every=drop)) == pytest.approx(expected, rel=1e-12)


def test_learning_rate_is_floored():
    config = TrainConfig(lr_drop_every=2)
    # 0.92**k < 0.1 from k = 28, i.e. epoch 55 with a drop every 2 epochs
    assert learning_rate(54, config) > 1e-4
    assert learning_rate(55, config) == 1e-4
    assert learning_rate(1000, config) == 1e-4


def test_logged_learning_rates_of_the_e3nn_notebook():
    # the notebook's log: epoch 1 (0-based 0) 1e-3, epoch 2 9.2e-4, epoch 4 8.464e-4, epoch 30 2.863e-4
    config = get_preset("e3nn_phdos").train
    assert [round(learning_rate(e, config), 7) for e in (0, 1, 3, 29)] == [1e-3, 9.2e-4, 8.464e-4, 2.863e-4]


# ------------------------------------------------------------------------------------- scaling
def test_minmax_scaler_matches_hand_computation():
    y = np.array([[0.0, 2.0, 5.0], [1.0, 4.0, 5.0], [0.5, 3.0, 5.0]])
    scaler = fit_target_scaler(y, "minmax")
    scaled = scaler.transform(y)
    expected = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.5, 0.5, 0.0]])  # constant column → 0 (sklearn)
    np.testing.assert_allclose(scaled, expected, atol=1e-7)
    np.testing.assert_allclose(scaler.inverse_transform(scaled), y, atol=1e-6)
    # sklearn's convention: scaled = y * scale + min
    np.testing.assert_allclose(scaler.scale, [1.0, 0.5, 1.0])
    np.testing.assert_allclose(scaler.min, [0.0, -1.0, -5.0])
    again = TargetScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_allclose(again.inverse_transform(scaled), y, atol=1e-6)


def test_global_minmax_and_none():
    y = np.array([[1.0, 3.0], [2.0, 5.0]])
    scaler = fit_target_scaler(y, "global_minmax")
    np.testing.assert_allclose(scaler.transform(y), (y - 1.0) / 4.0, atol=1e-7)
    assert fit_target_scaler(y, "none") is None
    assert TargetScaler.from_dict(None) is None
    with pytest.raises(ValueError, match="unknown target scaling"):
        fit_target_scaler(y, "zscore")


# ------------------------------------------------------------------------------------ training
def _recipe(config, model_config=TINY, mode="fixed", epochs=1):
    return resolve_recipe(ExperimentConfig("t", "", model_config, config), mode, epochs=epochs)


def _train(run_dir, epochs, mode="fixed", seed=3, callbacks=(), config=None, model_config=TINY):
    train_x, train_y = tiny_data(20, 0, model_config.grid_input)
    val_x, val_y = tiny_data(6, 1, model_config.grid_input)
    keras.utils.set_random_seed(seed)
    model = build_model(model_config)
    config = config or TrainConfig(batch_size=8, lr_drop_every=1)
    history = train_model(
        model,
        train_x,
        train_y,
        val_x,
        val_y,
        config=config,
        recipe=_recipe(config, model_config, mode, epochs),
        seed=seed,
        run_dir=run_dir,
        callbacks=callbacks,
    )
    return model, history


def test_training_logs_every_epoch_and_lowers_the_loss(tmp_path):
    config = TrainConfig(batch_size=4, lr_drop_every=1, learning_rate=1e-2)
    _, history = _train(tmp_path / "run", 3, config=config)
    assert list(history["epoch"]) == [0, 1, 2]
    assert {"loss", "val_loss", "mse", "learning_rate"} <= set(history.columns)
    np.testing.assert_allclose(
        history["learning_rate"], [learning_rate(e, config) for e in range(3)], rtol=1e-6
    )
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["epoch"] == 2 and (tmp_path / "run" / state["checkpoint"]).is_file()
    assert len(list((tmp_path / "run").glob("epoch_*.keras"))) == 1  # older checkpoints removed


class StopAfter(keras.callbacks.Callback):
    """Simulates a kill after ``epoch`` (the checkpoint of that epoch is written, nothing later)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    model_config = TINY_GRID  # with the grid branch's dropout: its randomness must repeat too
    reference, _ = _train(tmp_path / "straight", 3, model_config=model_config)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed", 3, callbacks=[StopAfter(0)], model_config=model_config)
    assert json.loads((tmp_path / "resumed" / "state.json").read_text())["epoch"] == 0
    resumed, history = _train(tmp_path / "resumed", 3, model_config=model_config)
    assert list(history["epoch"]) == [0, 1, 2]
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    straight_log = read_history(tmp_path / "straight")
    np.testing.assert_allclose(history["val_loss"], straight_log["val_loss"], rtol=1e-5)
    # a finished run is not trained again: same weights (fixed mode: the best epoch's), same log
    again, history_again = _train(tmp_path / "resumed", 3, model_config=model_config)
    assert len(history_again) == 3
    for a, b in zip(resumed.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fixed_mode_restores_the_best_validation_weights(tmp_path):
    # a huge learning rate makes validation loss jump around; the returned weights must be the best epoch's
    config = TrainConfig(batch_size=4, lr_drop_every=100, learning_rate=0.3, lr_floor=0.3)
    model, history = _train(tmp_path / "run", 4, config=config)
    val_x, val_y = tiny_data(6, 1)
    loss = float(np.mean(np.abs(model.predict(val_x, verbose=0) - val_y)))
    assert loss == pytest.approx(history["val_loss"].min(), rel=1e-4)


def test_legacy_mode_keeps_the_last_weights_and_stops_on_training_loss(tmp_path):
    config = TrainConfig(
        batch_size=4, lr_drop_every=100, learning_rate=0.3, lr_floor=0.3, patience=1, min_delta=10.0
    )
    model, history = _train(tmp_path / "run", 6, mode="legacy", config=config)
    # min_delta 10 means no epoch improves on the first: training stops once patience (1) is used up
    assert len(history) == 2
    val_x, val_y = tiny_data(6, 1)
    loss = float(np.mean(np.abs(model.predict(val_x, verbose=0) - val_y)))
    assert loss == pytest.approx(history["val_loss"].iloc[-1], rel=1e-4)
    # the run directory holds a run stopping on the training loss: it cannot be resumed as another
    with pytest.raises(ValueError, match="stopping on 'loss'"):
        _train(tmp_path / "run", 6, mode="fixed", config=config)


def test_bad_inputs_are_rejected(tmp_path):
    x, y = tiny_data(4, 0)
    model = build_model(TINY)
    with pytest.raises(ValueError, match="rows"):
        train_model(
            model, x, y[:3], x, y, config=TrainConfig(), recipe=_recipe(TrainConfig()), run_dir=tmp_path
        )
    with pytest.raises(ValueError, match="mode"):
        _recipe(TrainConfig(), mode="best")
    assert math.isfinite(learning_rate(0, TrainConfig()))


def test_spectrum_shape_loss_by_hand_and_it_penalises_a_shifted_peak():
    from s2p_utils.train import spectrum_shape_loss

    y = np.array([[0.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    near = np.array([[0.0, 0.0, 1.0, 0.0]], dtype=np.float32)
    far = np.array([[0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    # same MAE (0.5); CDFs [0,1,1,1] vs [0,0,1,1] and [0,0,0,1]: mean |Δ| 1/4 and 2/4
    assert float(spectrum_shape_loss(y, near)[0]) == pytest.approx(0.5 + 0.25, abs=1e-5)
    assert float(spectrum_shape_loss(y, far)[0]) == pytest.approx(0.5 + 0.5, abs=1e-5)
    assert float(spectrum_shape_loss(y, y)[0]) == pytest.approx(0.0, abs=1e-6)


def test_shape_loss_run_resumes_from_its_checkpoint(tmp_path):
    config = TrainConfig(batch_size=8, lr_drop_every=1, loss="mae_cdf")
    reference, _ = _train(tmp_path / "straight", 2, config=config)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed", 2, callbacks=[StopAfter(0)], config=config)
    resumed, history = _train(tmp_path / "resumed", 2, config=config)  # loads the compiled checkpoint
    assert list(history["epoch"]) == [0, 1]
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="loss must be one of"):
        _train(tmp_path / "bad", 1, config=TrainConfig(batch_size=8, loss="hinge"))


def test_target_smoothing():
    from s2p_utils.train import smooth_targets

    spike = np.zeros((1, 21), dtype=np.float32)
    spike[0, 10] = 1.0
    assert smooth_targets(spike, 0.0) is spike
    smoothed = smooth_targets(spike, 2.0)
    assert smoothed.sum() == pytest.approx(1.0, rel=1e-5) and smoothed.max() < 0.25
    assert np.argmax(smoothed) == 10 and (smoothed >= 0).all()
    with pytest.raises(ValueError, match="≥ 0"):
        smooth_targets(spike, -1.0)


def test_target_smoothing_norm_max_restores_each_peak_and_keeps_the_shape():
    from s2p_utils.train import smooth_targets

    rng = np.random.default_rng(0)
    spectra = rng.random((4, 31)).astype(np.float32)
    spectra /= spectra.max(axis=1, keepdims=True)  # e3nn targets: peak 1
    lowered = smooth_targets(spectra, 0.5)
    assert (lowered.max(axis=1) < 0.999).all()  # smoothing lowers the peaks
    restored = smooth_targets(spectra, 0.5, "max")
    np.testing.assert_allclose(restored.max(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(restored * lowered.max(axis=1, keepdims=True), lowered, rtol=1e-5, atol=1e-7)
    zero = np.zeros((1, 31), dtype=np.float32)  # an all-zero row stays zero, no division by 0
    assert not smooth_targets(zero, 0.5, "max").any()
    assert smooth_targets(spectra, 0.0, "max") is spectra  # width 0: unchanged, as with "none"
    with pytest.raises(ValueError, match="target_smoothing_norm"):
        smooth_targets(spectra, 0.5, "sum")


def test_shape_loss_weights_scale_the_cdf_term_and_the_mean_term_sees_the_direction():
    from s2p_utils.train import _loss, spectrum_shape_loss

    y = np.array([[0.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    far = np.array([[0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    # half the mass one bin lower, half one bin higher: CDF [.5,.5,1,1] vs [0,1,1,1], Δ = [.5,-.5,0,0]
    split = np.array([[0.5, 0.0, 0.5, 0.0]], dtype=np.float32)
    assert float(spectrum_shape_loss(y, far, 3.0)[0]) == pytest.approx(0.5 + 3 * 0.5, abs=1e-5)
    # |mean ΔCDF| is the mean-frequency error: 2 bins / 4 for `far`, 0 for the symmetric split
    assert float(spectrum_shape_loss(y, far, 1.0, 2.0)[0]) == pytest.approx(0.5 + 0.5 + 2 * 0.5, abs=1e-5)
    mae_split = 1.0 / 2  # |0.5| + |−1| + |0.5| over 4 bins
    assert float(spectrum_shape_loss(y, split, 1.0, 2.0)[0]) == pytest.approx(mae_split + 0.25, abs=1e-5)
    weighted = _loss("mae_cdf", 3.0, 2.0)
    assert float(weighted(y, far)[0]) == pytest.approx(0.5 + 3 * 0.5 + 2 * 0.5, abs=1e-5)
    assert _loss("mae_cdf") is spectrum_shape_loss and _loss("mae", 3.0) == "mae"
    with pytest.raises(ValueError, match="≥ 0"):
        _loss("mae_cdf", -1.0)


def test_weight_decay_reaches_the_optimizer_and_negative_is_refused():
    from s2p_utils.config import TrainConfig
    from s2p_utils.model import build_model
    from s2p_utils.train import compile_model

    model = build_model(ModelConfig(max_atoms=4, lstm_units=4, n_out=3, pdf_lstm_units=2, embedding_dim=3))
    compile_model(model, TrainConfig(weight_decay=0.1))
    assert model.optimizer.weight_decay == pytest.approx(0.1)
    compile_model(model, TrainConfig())
    assert model.optimizer.weight_decay is None
    with pytest.raises(ValueError, match="weight_decay"):
        compile_model(model, TrainConfig(weight_decay=-0.1))


def test_weight_average_is_what_validation_and_the_restored_weights_use(tmp_path):
    # a huge learning rate: the raw weights jump around, their average does not; the restored weights must
    # be the averaged weights of the best epoch (the ones its val_loss was computed with), not the raw ones
    config = TrainConfig(batch_size=4, lr_drop_every=100, learning_rate=0.3, lr_floor=0.3, ema_momentum=0.9)
    model, history = _train(tmp_path / "ema", 4, config=config)
    val_x, val_y = tiny_data(6, 1)
    loss = float(np.mean(np.abs(model.predict(val_x, verbose=0) - val_y)))
    assert loss == pytest.approx(history["val_loss"].min(), rel=1e-4)
    plain, plain_history = _train(tmp_path / "plain", 4, config=replace(config, ema_momentum=0.0))
    assert not np.allclose(history["val_loss"], plain_history["val_loss"], rtol=1e-3)
    assert model.optimizer.use_ema and not plain.optimizer.use_ema
    with pytest.raises(ValueError, match="ema_momentum"):
        _train(tmp_path / "bad", 1, config=replace(config, ema_momentum=1.0))


def test_weight_average_run_resumes_to_the_same_weights(tmp_path):
    config = TrainConfig(batch_size=8, lr_drop_every=1, learning_rate=1e-2, ema_momentum=0.8)
    reference, _ = _train(tmp_path / "straight", 3, config=config)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed", 3, callbacks=[StopAfter(1)], config=config)
    resumed, history = _train(tmp_path / "resumed", 3, config=config)
    assert list(history["epoch"]) == [0, 1, 2]
    np.testing.assert_allclose(
        history["val_loss"], read_history(tmp_path / "straight")["val_loss"], rtol=1e-5
    )
    for a, b in zip(reference.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_atom_dropout_trains_and_needs_the_atom_shuffle(tmp_path):
    config = TrainConfig(batch_size=8, lr_drop_every=1, permute_atoms=True, atom_dropout=0.3)
    _, history = _train(tmp_path / "run", 2, config=config)
    assert list(history["epoch"]) == [0, 1] and np.isfinite(history["val_loss"]).all()
    with pytest.raises(ValueError, match="permute_atoms"):
        _train(tmp_path / "bad", 1, config=replace(config, permute_atoms=False))


def test_renorm_weight_scores_part_of_the_mae_on_the_peak_normalised_prediction():
    from s2p_utils.train import _loss, spectrum_shape_loss

    y = np.array([[0.0, 1.0, 0.5, 0.0]], dtype=np.float32)
    half = 0.5 * y  # the right shape at half the height: no CDF error, raw MAE 0.375 / 4
    assert float(spectrum_shape_loss(y, half)[0]) == pytest.approx(0.75 / 4, abs=1e-6)
    assert float(spectrum_shape_loss(y, half, renorm_weight=1.0)[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(spectrum_shape_loss(y, half, renorm_weight=0.25)[0]) == pytest.approx(
        0.75 * 0.75 / 4, abs=1e-6
    )
    with pytest.raises(ValueError, match="renorm_weight"):
        _loss("mae_cdf", renorm_weight=1.5)
    with pytest.raises(ValueError, match="renorm_weight"):
        _loss("mae", renorm_weight=0.5)


def test_kl_weight_adds_the_divergence_of_the_unit_sum_spectra():
    """``kl_weight`` adds ``w · KL(y ‖ p)`` of the sum-normalised spectra: zero for a prediction of the
    target's shape at any scale, the closed form for two two-bin spectra, and only with ``mae_cdf``."""
    from s2p_utils.train import KL_FLOOR, _loss, spectrum_shape_loss

    y = np.array([[0.0, 1.0, 3.0, 0.0]], dtype=np.float32)
    base = float(spectrum_shape_loss(y, 2 * y)[0])
    assert float(spectrum_shape_loss(y, 2 * y, kl_weight=5.0)[0]) == pytest.approx(base, abs=1e-5)
    target = np.array([[1.0, 1.0]], dtype=np.float32)
    prediction = np.array([[1.0, 3.0]], dtype=np.float32)
    plain = float(spectrum_shape_loss(target, prediction)[0])
    p, q = np.array([0.5, 0.5]) + KL_FLOOR, np.array([0.25, 0.75]) + KL_FLOOR
    expected = np.sum(np.array([0.5, 0.5]) * np.log(p / q))
    assert float(spectrum_shape_loss(target, prediction, kl_weight=2.0)[0]) - plain == pytest.approx(
        2 * expected, rel=1e-3
    )
    with pytest.raises(ValueError, match="kl_weight"):
        _loss("mae", kl_weight=0.5)
    with pytest.raises(ValueError, match="kl_weight"):
        _loss("mae_cdf", kl_weight=-1.0)


def test_mse_cdf_puts_the_squared_error_in_the_pointwise_term():
    """``loss="mse_cdf"``: the shape terms of ``mae_cdf`` plus the mean *squared* error (not the absolute)."""
    from s2p_utils.train import _loss, spectrum_shape_loss

    y = np.array([[0.0, 1.0, 0.5, 0.0]], dtype=np.float32)
    p = np.array([[0.0, 0.5, 0.5, 0.0]], dtype=np.float32)
    absolute = float(spectrum_shape_loss(y, p)[0])
    squared = float(_loss("mse_cdf")(y, p)[0])
    assert absolute - squared == pytest.approx(np.mean(np.abs(y - p)) - np.mean((y - p) ** 2), abs=1e-6)
    renormalised = float(_loss("mse_cdf", renorm_weight=1.0)(y, p)[0])  # p / max p = [0, 1, 1, 0]
    assert renormalised - squared == pytest.approx(
        np.mean((np.array([0, 1, 1, 0]) - y) ** 2) - np.mean((y - p) ** 2), abs=1e-6
    )


def test_rarity_weights_favour_rare_mean_frequencies():
    from s2p_utils.train import rarity_weights

    spectra = np.zeros((10, 30), dtype=np.float32)
    spectra[:9, 5] = 1.0  # nine crystals peaked at step 5
    spectra[9, 20] = 1.0  # one at step 20
    weights = rarity_weights(spectra, 0.5)
    assert weights.shape == (10,) and weights.dtype == np.float32
    assert weights.mean() == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(weights[:9], weights[0])
    # kernel density: 9/10 at the common centre, 1/10 at the rare one (the kernels do not overlap)
    assert weights[9] / weights[0] == pytest.approx(3.0, rel=1e-4)
    assert rarity_weights(spectra, 1.0)[9] / rarity_weights(spectra, 1.0)[0] == pytest.approx(9.0, rel=1e-4)
    np.testing.assert_allclose(rarity_weights(spectra, 0.0), 1.0)
    with pytest.raises(ValueError, match="rarity_exponent"):
        rarity_weights(spectra, -0.5)


def test_epoch_batches_carry_the_weights_of_their_own_rows():
    from s2p_utils.batching import epoch_batches

    inputs, targets = tiny_data(11, 0, False)
    targets = np.repeat(np.arange(11, dtype=np.float32)[:, None], targets.shape[1], axis=1)
    weights = np.arange(11, dtype=np.float32) * 10.0
    seen = []
    for _batch, batch_targets, batch_weights in epoch_batches(
        inputs, targets, batch_size=4, seed=1, epoch=0, bucketed=True, permute_atoms=True, weights=weights
    ):
        np.testing.assert_array_equal(batch_weights, batch_targets[:, 0] * 10.0)
        seen.extend(batch_targets[:, 0].astype(int))
    assert sorted(seen) == list(range(11))


def test_rarity_weighted_training_changes_the_updates_but_not_the_validation_loss(tmp_path):
    config = TrainConfig(batch_size=20, lr_drop_every=1, learning_rate=1e-2)
    plain, plain_history = _train(tmp_path / "plain", 1, config=config)
    weighted, weighted_history = _train(tmp_path / "weighted", 1, config=replace(config, rarity_exponent=1.0))
    moved = max(np.abs(a - b).max() for a, b in zip(plain.get_weights(), weighted.get_weights(), strict=True))
    assert moved > 1e-6  # the weights reached the loss
    assert np.isfinite(weighted_history["val_loss"]).all()
    # the validation loss is unweighted: the weighted network scored by hand gives the logged value
    val_x, val_y = tiny_data(6, 1, False)
    from s2p_utils.train import _loss

    by_hand = np.mean(np.abs(weighted.predict(val_x, verbose=0) - val_y))
    assert _loss(config.loss) == "mae"
    assert weighted_history["val_loss"].iloc[-1] == pytest.approx(by_hand, rel=1e-4)
