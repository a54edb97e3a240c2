"""The permutation-invariant set encoder (preset ``e3nn_phdos_set``): invariance to atom order and padding,
parameter count, saving/loading, and prediction from a saved (smoke-trained) model."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ase.build import bulk  # noqa: E402
from test_experiment import N_GRID, toy_dataset  # noqa: E402

from s2p_utils.config import PRESETS, ModelConfig, get_preset  # noqa: E402
from s2p_utils.model import (  # noqa: E402
    build_model,
    count_parameters,
    encoder_fields,
    load_model,
    save_model,
)
from s2p_utils.model_record import ModelRecord  # noqa: E402

#: A small set encoder with every size different from the defaults (fast, and catches swapped fields).
SMALL = ModelConfig(
    max_atoms=16,
    lstm_units=0,
    n_out=7,
    n_pdf_bins=12,
    embedding_dim=6,
    structure_encoder="set",
    set_width=24,
    set_heads=3,
    set_blocks=3,
    set_pdf_units=10,
)


def set_parameters(cfg: ModelConfig) -> int:
    """Parameter count written out from the layer definitions of the set encoder."""
    width = cfg.set_width
    count = cfg.n_pdf_bins * cfg.set_pdf_units + cfg.set_pdf_units  # pdf_dense
    count += cfg.vocab_size * cfg.embedding_dim  # element_embedding
    count += (cfg.set_pdf_units + cfg.embedding_dim) * width + width  # atom_projection
    per_block = 4 * (
        width * width + width
    )  # query, key, value and output projections (heads × key_dim = width)
    per_block += 2 * (2 * width)  # two LayerNormalizations (γ, β)
    per_block += width * 2 * width + 2 * width + 2 * width * width + width  # feed-forward
    count += cfg.set_blocks * per_block
    count += 2 * width  # set_output_norm
    count += 2 * width * width + width  # set_head on mean ‖ max
    count += width * cfg.n_out + cfg.n_out  # dos
    return count


def random_batch(
    rng: np.random.Generator, lengths: list[int], n_features: int, steps: int
) -> dict[str, np.ndarray]:
    """Post-padded inputs: ``pdf`` float32 ``(len(lengths), steps, n_features)``, ``tokens`` int32 ``(…, steps)``."""
    pdf = np.zeros((len(lengths), steps, n_features), np.float32)
    tokens = np.zeros((len(lengths), steps), np.int32)
    for row, length in enumerate(lengths):
        pdf[row, :length] = rng.uniform(0.0, 2.5, (length, n_features))
        tokens[row, :length] = rng.integers(1, 94, length)
    return {"pdf": pdf, "tokens": tokens}


def run(model: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(model({"pdf": inputs["pdf"], "tokens": inputs["tokens"]}, training=False))


@pytest.fixture(scope="module")
def set_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    model = build_model("e3nn_phdos_set")
    # non-zero output biases so that the ReLU outputs are not mostly exactly 0
    dense = model.get_layer("dos")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + 0.5])
    return model


def test_parameter_count_of_the_set_preset(set_model):
    cfg = PRESETS["e3nn_phdos_set"].model
    assert cfg.structure_encoder == "set"
    assert count_parameters(set_model) == set_parameters(cfg) == 348_211
    assert count_parameters(set_model) < count_parameters(build_model("e3nn_phdos_plus")) == 443_059
    assert count_parameters(build_model(SMALL)) == set_parameters(SMALL)
    names = {layer.name for layer in set_model.layers}
    assert {"pdf_dense", "element_embedding", "attention_mask", "set_pooling", "dos"} <= names
    assert {"structure_lstm", "pdf_bilstm"}.isdisjoint(names)
    assert [t.name for t in set_model.inputs] == ["pdf", "tokens"]
    assert tuple(set_model.inputs[0].shape) == (None, None, 105)
    assert tuple(set_model.outputs[0].shape) == (None, 51)


def test_preset_keeps_the_plus_features_without_order_augmentation():
    plus, new = get_preset("e3nn_phdos_plus"), get_preset("e3nn_phdos_set")
    same = ("dataset", "element_descriptors", "pdf_scale", "default_split", "featurizer", "grid_unit")
    assert all(getattr(plus, key) == getattr(new, key) for key in same)
    assert new.model.n_pdf_bins == plus.model.n_pdf_bins == 105
    assert (new.train.ensemble, new.train.target_smoothing, new.train.bucketed) == (5, 0.5, True)
    assert new.train.permute_atoms is False and new.train.test_time_permutations == 0
    assert (
        plus.model.structure_encoder == "lstm" and get_preset("e3nn_phdos").model.structure_encoder == "lstm"
    )


def test_atom_order_does_not_change_the_output(set_model):
    rng = np.random.default_rng(0)
    inputs = random_batch(rng, [2, 7, 13], 105, 13)
    permuted = {key: value.copy() for key, value in inputs.items()}
    for row, length in enumerate([2, 7, 13]):
        order = rng.permutation(length)
        while length > 1 and np.array_equal(order, np.arange(length)):
            order = rng.permutation(length)
        for key in permuted:
            permuted[key][row, :length] = inputs[key][row, order]
    before, after = run(set_model, inputs), run(set_model, permuted)
    assert np.count_nonzero(before) > before.size // 4
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)

    # the same check fails for the paper's atom-sequence LSTM: the test can tell the two apart
    keras.utils.set_random_seed(3)
    lstm = build_model(replace(PRESETS["e3nn_phdos_plus"].model, structure_dropout=0.0))
    assert np.abs(run(lstm, permuted) - run(lstm, inputs)).max() > 1e-4


def test_padding_atoms_do_not_change_the_output(set_model):
    rng = np.random.default_rng(1)
    lengths = [1, 4, 9]
    tight = random_batch(rng, lengths, 105, 9)
    reference = run(set_model, tight)
    # extra padded steps; the padding rows carry non-zero PDF values to show the mask comes from the tokens
    loose = {key: np.concatenate([value, np.zeros_like(value)], axis=1) for key, value in tight.items()}
    for row, length in enumerate(lengths):
        loose["pdf"][row, length:] = rng.uniform(0.0, 3.0, loose["pdf"][row, length:].shape)
    np.testing.assert_allclose(run(set_model, loose), reference, rtol=1e-5, atol=1e-5)
    # each crystal alone, cut to its own length (as length-bucketed batches do)
    for row, length in enumerate(lengths):
        alone = {key: value[row : row + 1, :length] for key, value in tight.items()}
        np.testing.assert_allclose(run(set_model, alone), reference[row : row + 1], rtol=1e-5, atol=1e-5)


def test_predictions_use_cut_batches(set_model, monkeypatch):
    """``predict_batched`` cuts the set encoder's batches to their longest crystal (same outputs), and
    runs them through the one traced inference function."""
    from s2p_utils import batching

    widths: list[int] = []
    traced = batching.inference_function

    def recording(model, batch):
        widths.append(batch["tokens"].shape[1])
        return traced(model, batch)

    monkeypatch.setattr(batching, "inference_function", recording)
    inputs = random_batch(np.random.default_rng(5), [3, 12, 5, 2, 8], 105, 128)
    got = batching.predict_batched(set_model, inputs, batch_size=2)
    assert sorted(widths) == [3, 8, 12]  # lengths sorted, in pairs: (2, 3), (5, 8), (12,)
    np.testing.assert_allclose(got, run(set_model, inputs), rtol=1e-5, atol=1e-5)
    assert batching._INFERENCE_FUNCTIONS[set_model].experimental_get_tracing_count() == 1  # one trace


def test_dropout_acts_in_training_only(set_model):
    inputs = random_batch(np.random.default_rng(2), [5, 5], 105, 5)
    np.testing.assert_array_equal(run(set_model, inputs), run(set_model, inputs))
    tensors = {key: inputs[key] for key in ("pdf", "tokens")}
    assert not np.allclose(set_model(tensors, training=True), set_model(tensors, training=True))


def test_save_and_load_round_trip(set_model, tmp_path):
    record = ModelRecord.of(get_preset("e3nn_phdos_set"), grid=np.arange(51) * 20.0)
    path = save_model(set_model, tmp_path / "set.keras", record)
    loaded, metadata = load_model(path)  # safe_mode (the default): registered layers only, no lambdas
    inputs = random_batch(np.random.default_rng(4), [3, 11, 6], 105, 11)
    np.testing.assert_array_equal(run(loaded, inputs), run(set_model, inputs))
    assert metadata == record and metadata.model.max_atoms == 128
    assert encoder_fields(set_model) == encoder_fields(loaded)
    assert encoder_fields(loaded)["structure_encoder"] == "set" and encoder_fields(loaded)["set_blocks"] == 2
    again = keras.saving.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_array_equal(run(again, inputs), run(set_model, inputs))

    sidecar = path.with_suffix(".json")
    described = json.loads(sidecar.read_text())
    described["config"]["model"]["structure_encoder"] = "lstm"  # a record that lies about the network
    sidecar.write_text(json.dumps(described))
    with pytest.raises(ValueError, match="structure_encoder: record 'lstm' vs network 'set'"):
        load_model(path)


def test_encoder_fields_rebuild_the_same_architecture():
    keras.utils.set_random_seed(0)
    model = build_model(SMALL)
    fields = encoder_fields(model)
    assert fields == {
        "structure_encoder": "set",
        "set_width": 24,
        "set_heads": 3,
        "set_blocks": 3,
        "set_pdf_units": 10,
        "embedding_dim": 6,
    }
    rebuilt = build_model(replace(ModelConfig(max_atoms=16, lstm_units=0, n_out=7, n_pdf_bins=12), **fields))
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]
    assert encoder_fields(build_model("e3nn_phdos")) == {
        "structure_encoder": "lstm",
        "readout": "last",
        "pdf_dense_units": 0,
    }


def test_bad_set_configurations():
    with pytest.raises(ValueError, match="multiple of set_heads"):
        build_model(replace(SMALL, set_heads=5))
    with pytest.raises(ValueError, match="grid input"):
        build_model(replace(SMALL, grid_input=True))
    with pytest.raises(ValueError, match="structure_encoder must be one of"):
        build_model(replace(SMALL, structure_encoder="transformer"))


def test_predict_loads_a_smoke_trained_set_model(tmp_path):
    """``run_experiment`` → saved ensemble → ``predict`` and ``s2p predict`` with the preset's features."""
    from ase.io import write

    from s2p_utils.cli import main
    from s2p_utils.experiment import run_experiment
    from s2p_utils.prediction import load_predictor, predict

    base = get_preset("e3nn_phdos_set")
    config = replace(  # the preset's name, features and encoder, sized for the 6-point toy spectra
        base,
        dataset="toy",
        default_split="toy",
        model=replace(base.model, max_atoms=4, n_out=N_GRID, set_width=16, set_heads=2, set_pdf_units=8),
        train=replace(base.train, ensemble=2, batch_size=4, max_epochs=2),
    )
    dataset = toy_dataset()
    result = run_experiment(config, dataset=dataset, results_dir=tmp_path, run_name="set_toy", smoke=False)
    assert sorted(p.name for p in result.model_path.glob("*.keras")) == ["member0.keras", "member1.keras"]

    loaded = load_predictor(result.model_path)
    assert loaded.record.config == config  # the whole config, as trained
    assert (
        loaded.record.config.model.structure_encoder == "set" and loaded.record.config.model.set_width == 16
    )
    assert (
        loaded.record.config.train.test_time_permutations == 0 and loaded.record.config.model.set_heads == 2
    )

    test_rows = [10, 11]
    predicted = predict(result.model_path, [dataset.structures[i] for i in test_rows])
    with result.predictions_path.open() as stream:
        written = {row["id"]: json.loads(row["prediction"]) for row in csv.DictReader(stream)}
    expected = np.array([written[dataset.ids[i]] for i in test_rows])
    np.testing.assert_allclose(predicted.mean, expected, rtol=1e-4, atol=1e-5)
    assert predicted.std is not None and predicted.std.shape == (2, N_GRID)

    files = [tmp_path / "cu.cif", tmp_path / "nacl.cif"]
    write(files[0], bulk("Cu", "fcc", a=3.6), format="cif")
    write(files[1], bulk("NaCl", "rocksalt", a=5.64), format="cif")
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(result.model_path), *map(str, files), "--out", str(out)]) == 0
    with out.open() as stream:
        rows = list(csv.DictReader(stream))
    assert [row["id"] for row in rows] == ["cu", "nacl"] and set(rows[0]) >= {"prediction", "std"}
    cli_mean = np.array([json.loads(row["prediction"]) for row in rows])
    np.testing.assert_allclose(cli_mean, predict(result.model_path, files).mean, rtol=1e-5, atol=1e-6)


def test_s2p_train_set_preset_smoke(mirror, tmp_path, monkeypatch, capsys):
    """The preset end to end on the first rows of the real chen2021 split (``s2p train … --smoke``)."""
    from s2p_utils.cli import main

    monkeypatch.setenv("S2P_DATA_MIRROR", str(mirror))
    code = main(["train", "e3nn_phdos_set", "--smoke", "--results-dir", str(tmp_path)])
    assert code == 0
    assert "e3nn_phdos_set_chen2021_fixed: test MAE" in capsys.readouterr().out
    members = sorted((tmp_path / "models" / "e3nn_phdos_set_chen2021_fixed").glob("*.keras"))
    assert len(members) == 5
    model, metadata = load_model(members[0])
    assert metadata.config == get_preset("e3nn_phdos_set") and metadata.model.structure_encoder == "set"
    assert count_parameters(model) == 348_211
