"""The network: shapes, parameter counts of every preset, padding/masking, saving, the authors' weights."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from s2p_utils.config import (  # noqa: E402
    PRESETS,
    ExperimentConfig,  # noqa: E402
    ModelConfig,
)
from s2p_utils.model import (  # noqa: E402
    build_model,
    count_parameters,
    load_authors_model,
    load_model,
    save_model,
)
from s2p_utils.model_record import ModelRecord  # noqa: E402
from s2p_utils.weights import read_authors_file  # noqa: E402

TINY = ModelConfig(max_atoms=6, lstm_units=8, n_out=5)


def expected_parameters(cfg: ModelConfig) -> int:
    """Parameter count written out from the layer definitions (LSTM: 4 gates × (W, U, b))."""

    def lstm(n_in: int, units: int) -> int:
        return 4 * (units * (n_in + units) + units)

    row = cfg.n_pdf_bins
    count = 0
    if cfg.pdf_dense_units:  # per-atom Dense before the PDF BiLSTM
        count += cfg.n_pdf_bins * cfg.pdf_dense_units + cfg.pdf_dense_units
        row = cfg.pdf_dense_units
    count += 2 * lstm(row, cfg.pdf_lstm_units)  # bidirectional
    count += cfg.vocab_size * cfg.embedding_dim
    width = 2 * cfg.pdf_lstm_units + cfg.embedding_dim
    if cfg.grid_input:
        count += cfg.n_out * cfg.max_atoms + cfg.max_atoms
        width += 1
    count += lstm(width, cfg.lstm_units)
    count += cfg.lstm_units * cfg.n_out + cfg.n_out
    return count


# The numbers printed by the authors' notebooks' model.summary() (the recipe summary of the originals)
PUBLISHED = {
    "e3nn_phdos": 442_739,
    "mat2spec_edos": 462_528,
    "jarvis_phdos": 184_584,
    "surface_edos": 239_828,
}


@pytest.mark.parametrize(
    "name", sorted(name for name, preset in PRESETS.items() if preset.model.structure_encoder == "lstm")
)
def test_parameter_count_of_every_preset(name):
    """Every preset with the paper's LSTM encoder (the set encoder: ``tests/test_set_encoder.py``)."""
    model = build_model(name)
    cfg = PRESETS[name].model
    assert count_parameters(model) == expected_parameters(cfg)
    if name in PUBLISHED:
        assert count_parameters(model) == PUBLISHED[name]
    assert [t.name for t in model.inputs] == ["pdf", "tokens", *(["grid"] if cfg.grid_input else [])]
    steps = cfg.max_atoms if cfg.grid_input else None  # free length unless a grid branch fixes it
    assert tuple(model.inputs[0].shape) == (None, steps, cfg.n_pdf_bins)
    assert tuple(model.inputs[1].shape) == (None, steps)
    assert model.inputs[1].dtype == "int32"
    assert tuple(model.outputs[0].shape) == (None, cfg.n_out)
    for layer in ("pdf_bilstm", "element_embedding", "structure_lstm", "dos"):
        model.get_layer(layer)


def test_known_shapes_of_the_issue():
    assert count_parameters(build_model("e3nn_phdos")) == 442_739
    assert count_parameters(build_model("mat2spec_edos")) == 462_528
    lstm = build_model("e3nn_phdos").get_layer("structure_lstm")
    assert lstm.units == 256 and lstm.cell.kernel.shape == (144, 1024)


def padded(pdf_rows: np.ndarray, tokens: np.ndarray, max_atoms: int) -> dict[str, np.ndarray]:
    n = len(tokens)
    pdf = np.zeros((1, max_atoms, pdf_rows.shape[1]), np.float32)
    ids = np.zeros((1, max_atoms), np.int32)
    pdf[0, :n], ids[0, :n] = pdf_rows, tokens
    return {"pdf": pdf, "tokens": ids}


@pytest.mark.parametrize("grid_input", [False, True])
def test_padding_does_not_change_the_prediction(grid_input):
    rng = np.random.default_rng(1)
    rows, tokens = rng.random((4, 100)).astype(np.float32), np.array([7, 30, 30, 61], np.int32)
    keras.utils.set_random_seed(0)
    # without grid input the weights do not depend on max_atoms: the same weights fit 6 and 11 atoms
    small = build_model(replace(TINY, max_atoms=6, grid_input=grid_input))
    large = build_model(replace(TINY, max_atoms=6 if grid_input else 11, grid_input=grid_input))
    # non-zero biases everywhere, as after training (fresh LSTMs map zero input to state 0 exactly)
    small.set_weights(
        [w if w.ndim > 1 else rng.normal(size=w.shape).astype(np.float32) for w in small.get_weights()]
    )
    large.set_weights(small.get_weights())
    if grid_input:
        # the grid branch ties the weights to max_atoms and feeds non-zero values at padded atoms (the
        # issue's "third, unmasked branch"): compare with the structure LSTM run over the real atoms only
        x = padded(rows, tokens, 6)
        x["grid"] = np.linspace(0, 1, 5, dtype=np.float32)[None]
        merged = keras.Model(small.inputs, small.get_layer("concatenate").output).predict(x, verbose=0)
        assert np.abs(merged[0, 4:]).max() > 0  # padded steps are not zero here
        lstm = keras.layers.LSTM(TINY.lstm_units)
        lstm.build((None, 4, merged.shape[-1]))
        lstm.set_weights(small.get_layer("structure_lstm").get_weights())
        expected = small.get_layer("dos")(lstm(merged[:, :4]))
        np.testing.assert_allclose(small.predict(x, verbose=0), np.asarray(expected), atol=1e-6)
        return
    p_small = small.predict(padded(rows, tokens, 6), verbose=0)
    p_large = large.predict(padded(rows, tokens, 11), verbose=0)
    np.testing.assert_allclose(p_small, p_large, rtol=0, atol=1e-6)
    # ...while the atoms themselves matter (the comparison above can fail)
    changed = small.predict(padded(rows[:3], tokens[:3], 6), verbose=0)
    assert np.abs(changed - p_small).max() > 1e-4


def test_without_pdf_masking_the_padding_leaks_into_the_backward_lstm():
    # the e3nn/Mat2Spec notebooks had no Masking before the BiLSTM: its backward pass reads the padding
    rng = np.random.default_rng(2)
    rows, tokens = rng.random((3, 100)).astype(np.float32), np.array([5, 6, 7], np.int32)
    keras.utils.set_random_seed(0)
    small = build_model(TINY, mask_pdf=False)
    large = build_model(replace(TINY, max_atoms=40), mask_pdf=False)
    # fresh LSTMs have zero biases and stay exactly at state 0 on zero input; trained ones do not
    bilstm = small.get_layer("pdf_bilstm")
    bilstm.set_weights([w if w.ndim > 1 else rng.normal(size=w.shape) for w in bilstm.get_weights()])
    large.set_weights(small.get_weights())
    difference = small.predict(padded(rows, tokens, 6), verbose=0) - large.predict(
        padded(rows, tokens, 40), verbose=0
    )
    assert np.abs(difference).max() > 1e-6


def test_save_and_load_round_trip(tmp_path):
    keras.utils.set_random_seed(3)
    config = ExperimentConfig(name="tiny", dataset="", model=replace(TINY, grid_input=True))
    model = build_model(config)
    meta = ModelRecord.of(
        config, grid=np.linspace(-1, 1, 5), target_scaler={"min": [0.0] * 5, "scale": [2.0] * 5}
    )
    path = save_model(model, tmp_path / "m.keras", meta)
    assert path.is_file() and path.with_suffix(".json").is_file()
    loaded, record = load_model(path)
    assert record == meta  # the whole record comes back: config, recipe, scaler, grid, versions
    assert record.model.max_atoms == 6 and record.members == 1
    assert record.grid == pytest.approx(list(np.linspace(-1, 1, 5)))
    with pytest.raises(ValueError, match="does not match its model record"):
        save_model(
            model, tmp_path / "other.keras", ModelRecord.of(replace(config, model=replace(TINY, n_out=7)))
        )
    rng = np.random.default_rng(0)
    x = padded(rng.random((2, 100)).astype(np.float32), np.array([9, 10], np.int32), 6)
    x["grid"] = np.linspace(-1, 1, 5, dtype=np.float32)[None]
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), atol=1e-7)
    with pytest.raises(ValueError, match=".keras"):
        save_model(model, tmp_path / "m.h5", meta)
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="bad.keras"):
        load_model(tmp_path / "bad.keras")


# --------------------------------------------------------------------------- authors' legacy .h5 files
def write_keras2_h5(
    path, model, *, with_config: bool, mask_pdf: bool, out_name: str = "out_en", max_atoms: int | None = None
) -> None:
    """Write ``model``'s weights in the Keras-2.4 HDF5 layout of the authors' files (layer/weight names).

    Keras-2 files always store a fixed atom count: ``max_atoms`` (default: the model's input length).
    """
    steps = max_atoms or model.inputs[1].shape[1]
    cfg_layers = [
        {
            "class_name": "InputLayer",
            "name": "x1",
            "config": {"batch_input_shape": [None, steps, model.inputs[0].shape[2]]},
        },
        {
            "class_name": "InputLayer",
            "name": "types",
            "config": {"batch_input_shape": [None, steps], "dtype": "int32"},
        },
    ]
    if mask_pdf:
        cfg_layers.append({"class_name": "Masking", "name": "masking", "inbound_nodes": [[["x1", 0, 0, {}]]]})
    cfg_layers += [
        {
            "class_name": "Bidirectional",
            "name": "x1_blstm",
            "inbound_nodes": [[["masking" if mask_pdf else "x1", 0, 0, {}]]],
        },
        {"class_name": "Embedding", "name": "element_embdgs", "inbound_nodes": [[["types", 0, 0, {}]]]},
        {"class_name": "LSTM", "name": "lstm", "inbound_nodes": [[["concatenate", 0, 0, {}]]]},
        {"class_name": "Dense", "name": out_name, "inbound_nodes": [[["lstm", 0, 0, {}]]]},
    ]
    groups = {
        "x1_blstm": [
            (f"x1_blstm/{d}_x1_lstm/lstm_cell_{i}/{w}:0", v)
            for (d, i), arrays in zip(
                [("forward", 1), ("backward", 2)],
                np.split(np.array(model.get_layer("pdf_bilstm").get_weights(), dtype=object), 2),
                strict=True,
            )
            for w, v in zip(["kernel", "recurrent_kernel", "bias"], arrays, strict=True)
        ],
        "element_embdgs": [
            ("element_embdgs/embeddings:0", model.get_layer("element_embedding").get_weights()[0])
        ],
        "lstm": list(
            zip(
                [
                    "lstm/lstm_cell_3/kernel:0",
                    "lstm/lstm_cell_3/recurrent_kernel:0",
                    "lstm/lstm_cell_3/bias:0",
                ],
                model.get_layer("structure_lstm").get_weights(),
                strict=True,
            )
        ),
        out_name: list(
            zip(
                [f"{out_name}/kernel:0", f"{out_name}/bias:0"],
                model.get_layer("dos").get_weights(),
                strict=True,
            )
        ),
    }
    if any(layer.name == "grid_dense" for layer in model.layers):
        groups["dense"] = list(
            zip(["dense/kernel:0", "dense/bias:0"], model.get_layer("grid_dense").get_weights(), strict=True)
        )
        cfg_layers.insert(
            0,
            {
                "class_name": "InputLayer",
                "name": "input_1",
                "config": {"batch_input_shape": [None, model.inputs[2].shape[1]]},
            },
        )
        cfg_layers.append(
            {"class_name": "Dense", "name": "dense", "inbound_nodes": [[["input_1", 0, 0, {}]]]}
        )
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if with_config else f
        if with_config:
            config = {
                "class_name": "Functional",
                "config": {"layers": cfg_layers, "output_layers": [[out_name, 0, 0]]},
            }
            f.attrs["model_config"] = json.dumps(config)
        root.attrs["layer_names"] = [name.encode() for name in groups]
        for layer_name, weights in groups.items():
            group = root.create_group(layer_name)
            group.attrs["weight_names"] = [name.encode() for name, _ in weights]
            for name, value in weights:
                group.create_dataset(name, data=value)


@pytest.mark.parametrize(
    ("grid_input", "with_config", "mask_pdf"),
    [(False, True, False), (False, True, True), (True, True, True), (True, False, True)],
    ids=["e3nn_style", "masked", "grid_input", "weights_only"],
)
def test_keras2_layout_round_trip(tmp_path, grid_input, with_config, mask_pdf):
    keras.utils.set_random_seed(4)
    cfg = replace(TINY, grid_input=grid_input, max_atoms=7, n_out=9, lstm_units=12)
    original = build_model(cfg, mask_pdf=mask_pdf)
    path = tmp_path / "authors.h5"
    write_keras2_h5(
        path,
        original,
        with_config=with_config,
        mask_pdf=mask_pdf,
        out_name="out_edos",
        max_atoms=cfg.max_atoms,
    )
    info = read_authors_file(path)
    assert info.config == cfg
    assert info.mask_pdf is mask_pdf
    loaded = load_authors_model(path)
    rng = np.random.default_rng(5)
    x = padded(rng.random((3, 100)).astype(np.float32), np.array([4, 50, 92], np.int32), 7)
    if grid_input:
        x["grid"] = np.linspace(-3, 3, 9, dtype=np.float32)[None]
    np.testing.assert_allclose(original.predict(x, verbose=0), loaded.predict(x, verbose=0), atol=1e-7)
    with pytest.raises(ValueError, match="max_atoms"):
        load_authors_model(path, preset=replace(cfg, max_atoms=8))


def test_bad_authors_file(tmp_path):
    path = tmp_path / "junk.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5"):
        load_authors_model(path)
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("model_weights")
    with pytest.raises(ValueError, match="cannot find"):
        load_authors_model(tmp_path / "empty.h5")


def test_authors_weights_reproduce_their_golden_outputs(mirror):
    """``edosBulk_pdf.h5`` run under Keras 2 (TF 2.15) on 5 structures: reproduced within 1e-4."""
    from s2p_utils.data import load_prepared
    from s2p_utils.pdf import atomic_pdf
    from s2p_utils.vocab import element_tokens, pad_atoms

    weights = mirror / "authors_weights" / "edosBulk_pdf.h5"
    with gzip.open(mirror / "authors_weights" / "edosBulk_pdf_golden.json.gz", "rt") as handle:
        golden = json.load(handle)
    info = read_authors_file(weights)
    assert info.config == ModelConfig(max_atoms=128, lstm_units=128, n_out=500, grid_input=True)
    assert info.mask_pdf
    model = load_authors_model(weights)
    with pytest.raises(ValueError, match="max_atoms"):
        load_authors_model(weights, preset="surface_edos")  # 32 atoms, the file has 128

    dataset = load_prepared(mirror / "e3nn_phdos.json.gz")
    atoms = [dataset.structures[dataset.ids.index(i)] for i in golden["ids"]]
    pdf, tokens = pad_atoms(
        [atomic_pdf(a, legacy=True) for a in atoms],
        [element_tokens(a.get_chemical_symbols()) for a in atoms],
        128,
    )
    grid = np.tile(np.asarray(golden["grid"], np.float32), (len(atoms), 1))
    prediction = model.predict({"pdf": pdf, "tokens": tokens, "grid": grid}, verbose=0)
    reference = np.asarray(golden["outputs"])
    assert reference.shape == (5, 500) and np.abs(reference).max() > 0.05
    np.testing.assert_allclose(prediction, reference, rtol=0, atol=1e-4)

    # the same file through the generic loader
    loaded, record = load_model(weights)
    assert record.recipe.legacy_features and record.model.max_atoms == 128 and record.grid is None
    np.testing.assert_allclose(
        loaded.predict({"pdf": pdf, "tokens": tokens, "grid": grid}, verbose=0), prediction, atol=1e-7
    )


def test_structure_dropout_acts_in_training_only():
    rng = np.random.default_rng(2)
    x = padded(rng.random((4, 100)).astype(np.float32), np.array([7, 30, 30, 61], np.int32), 6)
    keras.utils.set_random_seed(0)
    model = build_model(replace(TINY, max_atoms=6, structure_dropout=0.5))
    assert model.get_layer("structure_lstm").dropout == 0.5
    assert count_parameters(model) == count_parameters(build_model(replace(TINY, max_atoms=6)))
    inputs = {key: keras.ops.convert_to_tensor(value) for key, value in x.items()}
    inference = [np.asarray(model(inputs, training=False)) for _ in range(2)]
    training = [np.asarray(model(inputs, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    assert np.abs(training[0] - training[1]).max() > 0


def test_pdf_noise_acts_in_training_only_and_keeps_the_padding_masked():
    rng = np.random.default_rng(3)
    x = padded(rng.random((3, 100)).astype(np.float32), np.array([7, 30, 61], np.int32), 6)
    keras.utils.set_random_seed(0)
    noisy = build_model(replace(TINY, pdf_noise=0.3))
    plain = build_model(TINY)
    plain.set_weights(noisy.get_weights())  # the noise layer has no weights
    assert noisy.get_layer("pdf_noise").stddev == 0.3
    inputs = {key: keras.ops.convert_to_tensor(value) for key, value in x.items()}
    np.testing.assert_allclose(
        np.asarray(noisy(inputs, training=False)), np.asarray(plain(inputs, training=False)), atol=1e-6
    )
    training = [np.asarray(noisy(inputs, training=True)) for _ in range(2)]
    assert np.abs(training[0] - training[1]).max() > 0
    assert noisy.get_layer("pdf_noise").supports_masking  # the padding mask reaches the PDF BiLSTM


def padding_free_prediction(model_config: ModelConfig, rows: np.ndarray, tokens: np.ndarray, rng):
    """Build ``model_config`` (``max_atoms`` 6) with random biases, check that 5 more padding atoms leave its
    prediction for ``rows`` ``(atoms, n_pdf_bins)`` and ``tokens`` unchanged; return the model and prediction."""
    small = build_model(model_config)
    small.set_weights(
        [w if w.ndim > 1 else rng.normal(size=w.shape).astype(np.float32) for w in small.get_weights()]
    )
    large = build_model(replace(model_config, max_atoms=model_config.max_atoms + 5))
    large.set_weights(small.get_weights())
    prediction = small.predict(padded(rows, tokens, model_config.max_atoms), verbose=0)
    bigger = large.predict(padded(rows, tokens, model_config.max_atoms + 5), verbose=0)
    np.testing.assert_allclose(prediction, bigger, atol=1e-6)
    return small, prediction


def test_atom_mean_readout_is_the_mean_of_atom_spectra_ignores_padding_and_round_trips(tmp_path):
    rng = np.random.default_rng(4)
    rows, tokens = rng.random((3, 100)).astype(np.float32), np.array([7, 30, 61], np.int32)
    keras.utils.set_random_seed(0)
    model_config = replace(TINY, readout="atom_mean", output_activation="linear")
    small, prediction = padding_free_prediction(replace(model_config, max_atoms=6), rows, tokens, rng)
    assert "structure_bilstm" in {layer.name for layer in small.layers}
    per_atom = keras.Model(small.inputs, small.get_layer("atom_dos").output).predict(
        padded(rows, tokens, 6), verbose=0
    )
    np.testing.assert_allclose(prediction[0], per_atom[0, :3].mean(axis=0), atol=1e-6)
    # the network says what it is: a record with the paper's readout is refused, the right one round-trips
    config = ExperimentConfig(name="tiny", dataset="", model=replace(model_config, max_atoms=6))
    path = save_model(small, tmp_path / "m.keras", ModelRecord.of(config))
    loaded, record = load_model(path)
    assert record.model.readout == "atom_mean"
    np.testing.assert_allclose(loaded.predict(padded(rows, tokens, 6), verbose=0), prediction, atol=1e-6)
    with pytest.raises(ValueError, match="readout"):
        save_model(
            small,
            tmp_path / "o.keras",
            ModelRecord.of(replace(config, model=replace(config.model, readout="last"))),
        )
    with pytest.raises(ValueError, match="readout"):
        build_model(replace(TINY, readout="sum"))
    with pytest.raises(ValueError, match="even"):
        build_model(replace(TINY, readout="atom_mean", lstm_units=7))


def test_max_output_norm_gives_unit_peaks_and_is_recorded_by_the_network(tmp_path):
    rng = np.random.default_rng(5)
    keras.utils.set_random_seed(0)
    model_config = replace(TINY, output_norm="max", output_activation="softplus")
    model = build_model(model_config)
    model.set_weights(
        [w if w.ndim > 1 else rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
    )
    x = padded(rng.random((3, 100)).astype(np.float32), np.array([7, 30, 61], np.int32), 6)
    prediction = model.predict(x, verbose=0)
    raw = keras.Model(model.inputs, model.get_layer("dos").output).predict(x, verbose=0)
    assert raw.max() > 0 and not np.isclose(raw.max(), 1.0)
    np.testing.assert_allclose(prediction, raw / raw.max(axis=-1, keepdims=True), rtol=1e-5)
    config = ExperimentConfig(name="tiny", dataset="", model=model_config)
    loaded, record = load_model(save_model(model, tmp_path / "m.keras", ModelRecord.of(config)))
    assert record.model.output_norm == "max"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), prediction, atol=1e-6)
    with pytest.raises(ValueError, match="output_norm"):
        save_model(model, tmp_path / "o.keras", ModelRecord.of(replace(config, model=TINY)))
    with pytest.raises(ValueError, match="output_norm"):
        build_model(replace(TINY, output_norm="sum"))


def test_pdf_row_dense_reads_each_row_alone_ignores_padding_and_is_recorded_by_the_network(tmp_path):
    rng = np.random.default_rng(6)
    rows, tokens = rng.random((3, 100)).astype(np.float32), np.array([7, 30, 61], np.int32)
    keras.utils.set_random_seed(0)
    model_config = replace(TINY, pdf_dense_units=12)
    small, prediction = padding_free_prediction(model_config, rows, tokens, rng)
    assert count_parameters(small) == expected_parameters(model_config)
    dense = small.get_layer("pdf_row_dense")
    assert dense.units == 12 and dense.supports_masking  # the padding mask reaches the PDF BiLSTM
    # each atom's features depend on its own row only
    features = keras.Model(small.inputs, dense.output)
    changed = rows.copy()
    changed[1] += 1.0
    before = features.predict(padded(rows, tokens, 6), verbose=0)[0]
    after = features.predict(padded(changed, tokens, 6), verbose=0)[0]
    np.testing.assert_allclose(before[[0, 2]], after[[0, 2]], atol=1e-6)
    assert np.abs(before[1] - after[1]).max() > 1e-3
    # the network says what it is: a record without the layer is refused, the right one round-trips
    config = ExperimentConfig(name="tiny", dataset="", model=model_config)
    loaded, record = load_model(save_model(small, tmp_path / "m.keras", ModelRecord.of(config)))
    assert record.model.pdf_dense_units == 12
    np.testing.assert_allclose(loaded.predict(padded(rows, tokens, 6), verbose=0), prediction, atol=1e-6)
    with pytest.raises(ValueError, match="pdf_dense_units"):
        save_model(small, tmp_path / "o.keras", ModelRecord.of(replace(config, model=TINY)))
    with pytest.raises(ValueError, match="pdf_dense_units"):
        build_model(replace(TINY, structure_encoder="set", set_width=8, set_heads=2, pdf_dense_units=4))
