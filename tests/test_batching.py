"""Length-bucketed batches: exact same predictions for the same weights, atom-order augmentation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from s2p_utils.batching import atom_counts, bucketed_order, cut_batch, epoch_batches, predict_batched
from s2p_utils.config import ModelConfig
from s2p_utils.element_features import element_descriptors

TINY = ModelConfig(max_atoms=12, lstm_units=6, n_out=7, pdf_lstm_units=3, embedding_dim=5)


def _inputs(lengths, max_atoms=12, n_bins=100, seed=0):
    rng = np.random.default_rng(seed)
    n = len(lengths)
    pdf = np.zeros((n, max_atoms, n_bins), np.float32)
    tokens = np.zeros((n, max_atoms), np.int32)
    for i, length in enumerate(lengths):
        pdf[i, :length] = rng.random((length, n_bins))
        tokens[i, :length] = rng.integers(4, 93, length)
    return {"pdf": pdf, "tokens": tokens}


def test_bucketed_order_visits_every_row_once_in_similar_lengths():
    lengths = np.array([1, 12, 2, 11, 3, 10, 4, 9, 5, 8, 6, 7] * 5)
    batches = bucketed_order(lengths, 6, np.random.default_rng(0), jitter=0.5)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    spans = [lengths[b].max() - lengths[b].min() for b in batches]
    assert max(spans) <= 1  # 5 copies of each length, batches of 6 → at most two neighbouring lengths
    order_a = [b.tolist() for b in bucketed_order(lengths, 6, np.random.default_rng(1))]
    order_b = [b.tolist() for b in bucketed_order(lengths, 6, np.random.default_rng(1))]
    assert order_a == order_b


def test_cut_batch_trims_to_the_longest_member_and_permutes_atoms_consistently():
    inputs = _inputs([3, 5, 2])
    inputs["tokens"][1, :5] = [10, 11, 12, 13, 14]  # distinct, so pairs can be matched by token
    batch = cut_batch(inputs, np.array([0, 2]))
    assert batch["pdf"].shape == (2, 3, 100) and batch["tokens"].shape == (2, 3)
    permuted = cut_batch(inputs, np.array([1]), permutation_rng=np.random.default_rng(3))
    original_pairs = {
        int(t): row.tobytes() for t, row in zip(inputs["tokens"][1, :5], inputs["pdf"][1, :5], strict=True)
    }
    permuted_pairs = {
        int(t): row.tobytes() for t, row in zip(permuted["tokens"][0], permuted["pdf"][0], strict=True)
    }
    assert permuted_pairs == original_pairs  # every token still carries its own PDF row
    assert not np.array_equal(permuted["tokens"][0], inputs["tokens"][1, :5])
    assert atom_counts(permuted["tokens"]).tolist() == [5]


def test_atom_dropout_hides_a_random_subset_and_keeps_pairs_and_one_atom():
    lengths = [12, 8, 1, 2] * 10
    inputs = _inputs(lengths)
    for i, length in enumerate(lengths):
        inputs["tokens"][i, :length] = np.arange(10, 10 + length)  # distinct per row: pairs matchable
    rows = np.arange(len(lengths))
    batch = cut_batch(inputs, rows, permutation_rng=np.random.default_rng(0), atom_dropout=0.5)
    kept = atom_counts(batch["tokens"])
    assert (kept >= 1).all() and (kept <= np.array(lengths)).all()
    assert kept[::4].mean() < 9  # about half of the 12-atom rows' atoms are hidden
    for i, length in enumerate(lengths):
        k = int(kept[i])
        assert (batch["tokens"][i, :k] > 0).all() and not batch["tokens"][i, k:].any()
        assert not batch["pdf"][i, k:].any()  # hidden atoms are padding, PDF rows included
        source = {
            int(t): r.tobytes()
            for t, r in zip(inputs["tokens"][i, :length], inputs["pdf"][i, :length], strict=True)
        }
        assert all(
            source[int(t)] == r.tobytes()
            for t, r in zip(batch["tokens"][i, :k], batch["pdf"][i, :k], strict=True)
        )
    unchanged = cut_batch(inputs, rows, permutation_rng=np.random.default_rng(0))
    assert (atom_counts(unchanged["tokens"]) == np.array(lengths)).all()
    with pytest.raises(ValueError, match="atom_dropout"):
        cut_batch(inputs, rows, atom_dropout=0.2)
    with pytest.raises(ValueError, match="atom_dropout"):
        cut_batch(inputs, rows, permutation_rng=np.random.default_rng(0), atom_dropout=1.0)


def test_epoch_batches_are_a_function_of_seed_and_epoch():
    inputs = _inputs([1, 2, 3, 4, 5, 6, 7, 8])
    targets = np.arange(8, dtype=np.float32)[:, None]

    def run(epoch):
        batches = epoch_batches(inputs, targets, batch_size=3, seed=5, epoch=epoch, bucketed=True)
        return [t.ravel().tolist() for _, t in batches]

    assert run(0) == run(0) and run(0) != run(1)
    assert sorted(sum(run(2), [])) == list(range(8))


def test_bucketed_prediction_equals_padded_prediction():
    import keras

    from s2p_utils.model import build_model

    keras.utils.set_random_seed(2)
    model = build_model(TINY)
    inputs = _inputs([1, 12, 4, 7, 2, 9, 3], seed=4)
    padded = np.asarray(model.predict(inputs, verbose=0))
    bucketed = predict_batched(model, inputs, batch_size=3, bucketed=True)
    np.testing.assert_allclose(bucketed, padded, atol=2e-6)
    assert np.abs(padded).max() > 1e-3  # a real, non-trivial output
    averaged = predict_batched(model, inputs, batch_size=3, permutations=2)
    assert averaged.shape == padded.shape and not np.allclose(averaged, padded, atol=1e-7)
    # a structure gets the same test-time atom orders alone, in another batch size or among other rows
    for row in (1, 3):
        alone = predict_batched(model, {k: v[row : row + 1] for k, v in inputs.items()}, permutations=2)
        np.testing.assert_allclose(alone[0], averaged[row], atol=2e-6)
    reordered = predict_batched(model, {k: v[::-1] for k, v in inputs.items()}, batch_size=2, permutations=2)
    np.testing.assert_allclose(reordered[::-1], averaged, atol=2e-6)
    other_seed = predict_batched(model, inputs, batch_size=3, permutations=2, seed=9)
    assert not np.allclose(other_seed, averaged, atol=1e-7)


def test_unmasked_pdf_branch_is_never_cut():
    import keras

    from s2p_utils.model import build_model

    keras.utils.set_random_seed(2)
    model = build_model(TINY, mask_pdf=False)  # the e3nn notebook's BiLSTM also reads the padding
    inputs = _inputs([2, 5], seed=1)
    np.testing.assert_allclose(
        predict_batched(model, inputs, batch_size=2), np.asarray(model.predict(inputs, verbose=0)), atol=1e-6
    )


def test_bucketed_training_runs_and_learns(tmp_path):
    import keras

    from s2p_utils.config import ExperimentConfig, TrainConfig, resolve_recipe
    from s2p_utils.model import build_model
    from s2p_utils.train import train_model, uses_buckets

    keras.utils.set_random_seed(0)
    model = build_model(TINY)
    inputs = _inputs([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] * 2, seed=7)
    targets = np.tile(np.linspace(0.1, 1, 7, dtype=np.float32), (24, 1))
    config = TrainConfig(batch_size=4, max_epochs=3, permute_atoms=True, learning_rate=1e-2)
    fixed, legacy = (
        resolve_recipe(ExperimentConfig("t", "", TINY, config), m, epochs=3) for m in ("fixed", "legacy")
    )
    assert uses_buckets(model, inputs, fixed) and not uses_buckets(model, inputs, legacy)
    history = train_model(
        model,
        inputs,
        targets,
        inputs,
        targets,
        config=config,
        recipe=fixed,
        seed=1,
        run_dir=tmp_path / "run",
    )
    assert len(history) == 3 and history["loss"].iloc[-1] < history["loss"].iloc[0]


def test_element_descriptors_against_tabulated_values():
    from ase.data import atomic_masses, covalent_radii

    d = element_descriptors(np.array([1, 10, 11, 26, 86, 87]))
    assert d.shape == (6, 5) and d.dtype == np.float32
    np.testing.assert_allclose(d[:, 0], np.log(atomic_masses[[1, 10, 11, 26, 86, 87]]) / 5, rtol=1e-6)
    np.testing.assert_allclose(d[:, 2], covalent_radii[[1, 10, 11, 26, 86, 87]] / 2, rtol=1e-6)
    assert (d[:, 3] * 7).round().tolist() == [1, 2, 3, 4, 6, 7]  # periods
    assert (d[:, 4] * 32).round().tolist() == [1, 8, 1, 8, 32, 1]  # position in the period
    with pytest.raises(ValueError, match="1..118"):
        element_descriptors(np.array([0, 5]))


def test_free_length_models_keep_parameter_counts():
    from s2p_utils.model import build_model, count_parameters

    assert count_parameters(build_model("e3nn_phdos")) == 442_739
    assert count_parameters(build_model(replace(TINY, grid_input=True))) > count_parameters(build_model(TINY))


def test_first_order_shifts_the_test_time_orders_and_member_orders_give_each_member_its_own():
    import keras

    from s2p_utils.config import ExperimentConfig, TrainConfig
    from s2p_utils.model import build_model
    from s2p_utils.model_record import ModelRecord
    from s2p_utils.prediction import load_predictor

    keras.utils.set_random_seed(3)
    model = build_model(TINY)
    inputs = _inputs([1, 12, 4, 7, 2, 9, 3], seed=5)
    orders = [predict_batched(model, inputs, batch_size=3, first_order=k) for k in range(4)]
    assert not np.allclose(orders[1], orders[2], atol=1e-7)  # the LSTM sees the order
    np.testing.assert_allclose(orders[0], predict_batched(model, inputs, batch_size=3), atol=2e-6)
    np.testing.assert_allclose(
        predict_batched(model, inputs, batch_size=2, permutations=1, first_order=2),
        (orders[2] + orders[3]) / 2,
        atol=2e-6,
    )
    with pytest.raises(ValueError, match="≥ 0"):
        predict_batched(model, inputs, first_order=-1)

    grid = np.linspace(0, 1, TINY.n_out)
    for member_orders, expected in ((False, [orders[0], orders[0]]), (True, [orders[0], orders[1]])):
        config = ExperimentConfig(
            name="tiny",
            dataset="none",
            model=TINY,
            train=TrainConfig(target_scaling="none", ensemble=2, member_orders=member_orders),
        )
        record = replace(ModelRecord.of(config, grid=grid, grid_unit="bin"), prediction_seed=0)
        predictor = load_predictor([model, model], record=record)
        outputs = predictor.member_outputs(inputs, batch_size=3)
        for member, want in enumerate(expected):
            np.testing.assert_allclose(outputs[member], want, atol=2e-6)


def test_an_ensemble_predicts_without_retracing_warnings(caplog):
    """Each member is traced once into its own function; TensorFlow's "excessive retracing" warning (which
    groups traces by Python code object) must not fire for a 6-member ensemble."""
    import logging

    import keras

    from s2p_utils import batching
    from s2p_utils.model import build_model

    keras.utils.set_random_seed(3)
    members = [build_model(TINY) for _ in range(6)]
    inputs = _inputs([2, 5, 9, 3], seed=1)
    with caplog.at_level(logging.WARNING):
        outputs = [predict_batched(member, inputs, batch_size=2) for member in members]
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    assert all(batching._INFERENCE_FUNCTIONS[m].experimental_get_tracing_count() == 1 for m in members)
    assert not np.allclose(outputs[0], outputs[1])  # distinct members, each on its own trace
