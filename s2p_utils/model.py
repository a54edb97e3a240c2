"""The paper's network, its construction from a preset, and saving/loading with its model record.

Architecture (layer names in backticks)::

    pdf (max_atoms, 100) ─ Masking(0) `pdf_masking` ─ Bidirectional(LSTM(8, seq)) `pdf_bilstm` ─┐
    tokens (max_atoms,) ─ Embedding(94, 128, mask_zero) `element_embedding` ─────────────────────┼─ Concatenate
    grid (n_out,) ─ Dense(max_atoms) `grid_dense` ─ Reshape `grid_reshape` ─ Dropout `grid_dropout` ┘  (optional)
        ─ LSTM(H) `structure_lstm` (mask = tokens != 0, `atom_mask`) ─ Dense(n_out, relu) `dos`

Options beyond the paper (:class:`s2p_utils.config.ModelConfig`): ``output_norm="max"`` appends
``MaxNormalize`` `dos_max_norm` (each spectrum divided by its own peak; preset ``e3nn_phdos_mass``);
``readout="atom_mean"`` replaces the structure LSTM and `dos` by ``Bidirectional(LSTM(H/2, seq))``
`structure_bilstm` ─ Dense(n_out) `atom_dos` on every atom ─ ``MaskedMean`` `dos` over the real atoms;
``pdf_noise`` adds ``GaussianNoise`` `pdf_noise` (training only) after the PDF masking;
``pdf_dense_units`` > 0 puts ``Dense(pdf_dense_units, relu)`` `pdf_row_dense` on every atom's row before the
PDF BiLSTM.

``structure_encoder="set"`` (preset ``e3nn_phdos_set``; not in the paper) replaces the atom-sequence LSTM by an
encoder that does not see the order of the atoms; every per-atom layer acts on each atom on its own::

    pdf (atoms, n_pdf_bins) ─ Dense(set_pdf_units, relu) `pdf_dense` ───────────────┐
    tokens (atoms,) ─ Embedding(94, embedding_dim) `element_embedding` ─────────────┼─ Concatenate `atom_features`
        ─ Dense(set_width) `atom_projection`
        ─ set_blocks × [LayerNorm ─ MultiHeadAttention (keys: real atoms, `attention_mask`) ─ Dropout ─ Add,
                        LayerNorm ─ Dense(2·set_width, relu) ─ Dense(set_width) ─ Dropout ─ Add]  `set_block<k>_*`
        ─ LayerNorm `set_output_norm` ─ MaskedPooling (mean ‖ max over real atoms) `set_pooling`
        ─ Dense(set_width, relu) `set_head` ─ Dense(n_out, relu) `dos`

Padding atoms (token 0) are excluded from the attention keys and from both poolings, so the output is
unchanged by the atom order and by extra padding (``tests/test_set_encoder.py``).

The padding mask is handed to ``structure_lstm`` explicitly. Keras 2 carried the embedding mask through
``Concatenate`` (inputs without a mask counted as all-valid); Keras 3 does not do this the same way, and
without the explicit mask padded atoms change the prediction (the authors' weights then give errors up to
0.13). With it the authors' Keras-2 model is reproduced to ~1e-7 (``tests/test_model.py``).

TensorFlow/Keras are imported here; do not import this module from featurization or data code.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from s2p_utils.config import ExperimentConfig, ModelConfig, get_preset
from s2p_utils.model_record import ModelRecord, authors_record
from s2p_utils.paths import atomic_path
from s2p_utils.weights import read_authors_file

__all__ = [
    "TokenMask",
    "AttentionKeyMask",
    "MaskedPooling",
    "encoder_fields",
    "build_model",
    "distribution_strategy",
    "model_config_of",
    "save_model",
    "load_model",
    "load_authors_model",
    "network_shape",
    "check_network_matches",
    "model_config_from_network",
    "count_parameters",
    "INPUT_NAMES",
]

INPUT_NAMES = ("pdf", "tokens", "grid")


@keras.saving.register_keras_serializable(package="s2p")
class TokenMask(keras.layers.Layer):
    """``tokens != pad_id``: boolean ``(batch, max_atoms)`` mask of real atoms (padding token 0)."""

    def __init__(self, pad_id: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)

    def call(self, tokens):
        return keras.ops.not_equal(tokens, self.pad_id)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, tokens):
        return keras.KerasTensor(tokens.shape, dtype="bool")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad_id": self.pad_id}


@keras.saving.register_keras_serializable(package="s2p")
class AttentionKeyMask(keras.layers.Layer):
    """Attention mask from the atom mask: ``(batch, atoms)`` bool → ``(batch, atoms, atoms)`` bool.

    Entry ``[b, i, j]`` is ``True`` when atom ``j`` of crystal ``b`` is real: every atom (padding
    included) attends to the real atoms only, so padding never changes a real atom's output.
    """

    def call(self, atom_mask):
        keys = keras.ops.expand_dims(atom_mask, 1)  # (batch, 1, atoms)
        queries = keras.ops.expand_dims(keras.ops.ones_like(atom_mask), 2)  # (batch, atoms, 1), all True
        return keras.ops.logical_and(queries, keys)

    def compute_output_spec(self, atom_mask):
        batch, atoms = atom_mask.shape
        return keras.KerasTensor((batch, atoms, atoms), dtype="bool")


def masked_mean(features, atom_mask):
    """Mean of ``features`` ``(batch, atoms, d)`` over the real atoms of ``atom_mask`` ``(batch, atoms)``
    (zeros for a crystal without any) and the number of real atoms ``(batch, 1)``."""
    weights = keras.ops.cast(keras.ops.expand_dims(atom_mask, -1), features.dtype)  # (batch, atoms, 1)
    count = keras.ops.sum(weights, axis=1)  # (batch, 1)
    return keras.ops.sum(features * weights, axis=1) / keras.ops.maximum(count, 1.0), count


#: Smallest peak a spectrum is divided by in :func:`divide_by_peak` (no division by 0).
PEAK_FLOOR = 1e-3


def divide_by_peak(spectra, floor: float = PEAK_FLOOR):
    """Each spectrum of ``spectra`` ``(batch, n_out)`` divided by its own maximum, or by ``floor`` when the
    maximum is below it (a Keras op; :class:`MaxNormalize` and the ``renorm_weight`` loss term use it)."""
    peak = keras.ops.max(spectra, axis=-1, keepdims=True)
    return spectra / keras.ops.maximum(peak, floor)


@keras.saving.register_keras_serializable(package="s2p")
class MaskedPooling(keras.layers.Layer):
    """Mean and max over the real atoms: ``[features (batch, atoms, d), atom_mask (batch, atoms)]`` →
    ``(batch, 2·d)`` (mean first, then max). A crystal without any real atom pools to zeros.
    """

    def call(self, inputs):
        features, atom_mask = inputs
        mask = keras.ops.expand_dims(atom_mask, -1)  # (batch, atoms, 1)
        mean, count = masked_mean(features, atom_mask)
        lowest = keras.ops.full_like(features, -1e9)
        maximum = keras.ops.max(keras.ops.where(mask, features, lowest), axis=1)
        maximum = keras.ops.where(count > 0, maximum, keras.ops.zeros_like(maximum))
        return keras.ops.concatenate([mean, maximum], axis=-1)

    def compute_output_spec(self, inputs):
        features, _ = inputs
        return keras.KerasTensor((features.shape[0], 2 * features.shape[-1]), dtype=features.dtype)


@keras.saving.register_keras_serializable(package="s2p")
class MaskedMean(keras.layers.Layer):
    """Mean over the real atoms: ``[per_atom (batch, atoms, d), atom_mask (batch, atoms)]`` → ``(batch, d)``.

    A crystal without any real atom gives zeros. The atom mask is an explicit input; the Keras mask that
    arrives with ``per_atom`` is consumed here (the output has no atom axis left to mask).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs):
        per_atom, atom_mask = inputs
        return masked_mean(per_atom, atom_mask)[0]

    def compute_output_spec(self, inputs):
        per_atom, _ = inputs
        return keras.KerasTensor((per_atom.shape[0], per_atom.shape[-1]), dtype=per_atom.dtype)


@keras.saving.register_keras_serializable(package="s2p")
class MaxNormalize(keras.layers.Layer):
    """Each spectrum divided by its own maximum: ``(batch, n_out)`` → ``(batch, n_out)``, max 1.

    The scale the Table 1 columns are scored on (max-renormalised spectra) and that the e3nn targets already
    have; a spectrum whose maximum is below ``floor`` is divided by ``floor`` instead (no division by 0).
    """

    def __init__(self, floor: float = PEAK_FLOOR, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.floor = float(floor)

    def call(self, spectra):
        return divide_by_peak(spectra, self.floor)

    def compute_output_spec(self, spectra):
        return keras.KerasTensor(spectra.shape, dtype=spectra.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "floor": self.floor}


ENCODERS = ("lstm", "set")
OUTPUT_NORMS = ("none", "max")
READOUTS = ("last", "atom_mean")


@functools.lru_cache(maxsize=1)
def distribution_strategy():
    """``tf.distribute.MirroredStrategy`` when more than one GPU is visible, else the default strategy.

    Cached, so that building (:func:`build_model`) and compiling (:func:`s2p_utils.train.train_model`)
    use the same strategy object.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def model_config_of(preset_or_config: str | ExperimentConfig | ModelConfig) -> ModelConfig:
    """The :class:`ModelConfig` of a preset name, an :class:`ExperimentConfig` or a ``ModelConfig``."""
    if isinstance(preset_or_config, str):
        return get_preset(preset_or_config).model
    if isinstance(preset_or_config, ExperimentConfig):
        return preset_or_config.model
    if isinstance(preset_or_config, ModelConfig):
        return preset_or_config
    raise ValueError(
        f"build_model expects a preset name, ExperimentConfig or ModelConfig, got {type(preset_or_config).__name__}"
    )


def build_model(
    preset_or_config: str | ExperimentConfig | ModelConfig,
    *,
    mask_pdf: bool = True,
    name: str | None = None,
) -> keras.Model:
    """Build the (uncompiled) network of a preset: the paper's atom-sequence LSTM, or the set encoder when
    ``structure_encoder="set"`` (module docstring).

    Args:
        preset_or_config: preset name (e.g. ``"e3nn_phdos"``), ``ExperimentConfig`` or ``ModelConfig``.
        mask_pdf: put ``Masking(0)`` before the PDF BiLSTM (the authors' later models). ``False`` builds
            the e3nn/Mat2Spec notebooks' variant whose BiLSTM also reads the zero padding; only the
            backward direction differs, and only for :func:`load_authors_model` of such files.
        name: model name (default: the preset name, or ``"struct2prop"``).

    Returns:
        ``keras.Model`` with inputs ``pdf`` float32 ``(batch, atoms, n_pdf_bins)``, ``tokens`` int32
        ``(batch, atoms)`` (``atoms`` free, at most ``max_atoms`` by the data; fixed to ``max_atoms`` for
        grid-input presets, whose grid branch is reshaped to ``(max_atoms, 1)``) and, when ``grid_input``, ``grid`` float32 ``(batch, n_out)``; output
        ``(batch, n_out)`` (non-negative with the default ReLU).

    Raises:
        ValueError: an unknown ``structure_encoder``, a set encoder with a grid input or
            ``pdf_dense_units``, or ``set_width``
            not a multiple of ``set_heads``.
    """
    cfg = model_config_of(preset_or_config)
    if cfg.structure_encoder not in ENCODERS:
        raise ValueError(f"structure_encoder must be one of {ENCODERS}, got {cfg.structure_encoder!r}")
    if cfg.output_norm not in OUTPUT_NORMS:
        raise ValueError(f"output_norm must be one of {OUTPUT_NORMS}, got {cfg.output_norm!r}")
    if cfg.readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {cfg.readout!r}")
    if cfg.readout == "atom_mean" and (cfg.structure_encoder != "lstm" or cfg.lstm_units % 2):
        raise ValueError(
            "readout='atom_mean' needs structure_encoder='lstm' and an even lstm_units (two directions), "
            f"got {cfg.structure_encoder!r} and {cfg.lstm_units}"
        )
    if cfg.structure_encoder == "set" and cfg.pdf_dense_units:
        raise ValueError(
            "pdf_dense_units is a layer of the LSTM encoder (the set encoder has its own set_pdf_units), "
            f"got structure_encoder='set' with pdf_dense_units={cfg.pdf_dense_units}"
        )
    if cfg.structure_encoder == "set" and cfg.grid_input:
        raise ValueError(
            "the set encoder takes no grid input (grid_input=True needs structure_encoder='lstm')"
        )
    if name is None:
        name = (
            preset_or_config if isinstance(preset_or_config, str) else getattr(preset_or_config, "name", None)
        )
    name = name or "struct2prop"
    with distribution_strategy().scope():
        # Without a grid branch nothing depends on the number of atom steps: leave it free so that
        # length-bucketed batches (s2p_utils.batching) can be cut to their longest structure.
        steps = cfg.max_atoms if cfg.grid_input else None
        pdf = keras.Input((steps, cfg.n_pdf_bins), dtype="float32", name="pdf")
        tokens = keras.Input((steps,), dtype="int32", name="tokens")
        inputs = [pdf, tokens]
        if cfg.structure_encoder == "set":
            output = _set_encoder(cfg, pdf, tokens)
        else:
            output = _lstm_encoder(cfg, pdf, tokens, inputs, mask_pdf)
        if cfg.output_norm == "max":
            output = MaxNormalize(name="dos_max_norm")(output)
        return keras.Model(inputs=inputs, outputs=output, name=name)


def _lstm_encoder(
    cfg: ModelConfig, pdf: keras.KerasTensor, tokens: keras.KerasTensor, inputs: list, mask_pdf: bool
) -> keras.KerasTensor:
    """The paper's layers from the ``pdf``/``tokens`` inputs to the ``dos`` output ``(batch, n_out)``.

    Appends the ``grid`` input to ``inputs`` when ``cfg.grid_input``.
    """
    layers = keras.layers
    pdf_seq = layers.Masking(0.0, name="pdf_masking")(pdf) if mask_pdf else pdf
    if cfg.pdf_noise:  # active in training only; passes the padding mask on
        pdf_seq = layers.GaussianNoise(cfg.pdf_noise, name="pdf_noise")(pdf_seq)
    if cfg.pdf_dense_units:  # each atom's row on its own; passes the padding mask on
        pdf_seq = layers.Dense(cfg.pdf_dense_units, activation="relu", name="pdf_row_dense")(pdf_seq)
    pdf_seq = layers.Bidirectional(
        layers.LSTM(cfg.pdf_lstm_units, return_sequences=True, name="pdf_lstm"), name="pdf_bilstm"
    )(pdf_seq)
    embedding = layers.Embedding(cfg.vocab_size, cfg.embedding_dim, mask_zero=True, name="element_embedding")
    embedded = embedding(tokens)
    branches = [pdf_seq, embedded]
    if cfg.grid_input:
        grid = keras.Input((cfg.n_out,), dtype="float32", name="grid")
        inputs.append(grid)
        g = layers.Dense(cfg.max_atoms, name="grid_dense")(grid)
        g = layers.Reshape((cfg.max_atoms, 1), name="grid_reshape")(g)
        branches.append(layers.Dropout(cfg.grid_dropout, name="grid_dropout")(g))
    merged = layers.Concatenate(name="concatenate")(branches)
    atom_mask = TokenMask(name="atom_mask")(tokens)
    if cfg.readout == "atom_mean":
        # every atom's own spectrum, read in the context of both neighbours in the sequence, then averaged
        # over the real atoms: the crystal's DOS as the mean of atom-projected DOS
        sequence = layers.Bidirectional(
            layers.LSTM(
                cfg.lstm_units // 2,
                dropout=cfg.structure_dropout,
                return_sequences=True,
                name="structure_lstm",
            ),
            name="structure_bilstm",
        )(merged, mask=atom_mask)
        atom_dos = layers.Dense(cfg.n_out, activation=cfg.output_activation, name="atom_dos")(sequence)
        return MaskedMean(name="dos")([atom_dos, atom_mask])
    encoded = layers.LSTM(cfg.lstm_units, dropout=cfg.structure_dropout, name="structure_lstm")(
        merged, mask=atom_mask
    )
    return layers.Dense(cfg.n_out, activation=cfg.output_activation, name="dos")(encoded)


def _set_encoder(cfg: ModelConfig, pdf: keras.KerasTensor, tokens: keras.KerasTensor) -> keras.KerasTensor:
    """Permutation-invariant layers from ``pdf`` ``(batch, atoms, n_pdf_bins)`` and ``tokens``
    ``(batch, atoms)`` to the ``dos`` output ``(batch, n_out)`` (see the module docstring)."""
    layers = keras.layers
    width, dropout = cfg.set_width, cfg.structure_dropout
    if width % cfg.set_heads:
        raise ValueError(f"set_width={width} must be a multiple of set_heads={cfg.set_heads}")
    atom_mask = TokenMask(name="atom_mask")(tokens)
    attention_mask = AttentionKeyMask(name="attention_mask")(atom_mask)
    pdf_features = layers.Dense(cfg.set_pdf_units, activation="relu", name="pdf_dense")(pdf)
    embedded = layers.Embedding(cfg.vocab_size, cfg.embedding_dim, name="element_embedding")(tokens)
    atoms = layers.Concatenate(name="atom_features")([pdf_features, embedded])
    hidden = layers.Dense(width, name="atom_projection")(atoms)
    for block in range(cfg.set_blocks):
        prefix = f"set_block{block}"
        normed = layers.LayerNormalization(name=f"{prefix}_attention_norm")(hidden)
        attended = layers.MultiHeadAttention(
            cfg.set_heads, width // cfg.set_heads, dropout=dropout, name=f"{prefix}_attention"
        )(normed, normed, attention_mask=attention_mask)
        attended = layers.Dropout(dropout, name=f"{prefix}_attention_dropout")(attended)
        hidden = layers.Add(name=f"{prefix}_attention_residual")([hidden, attended])
        normed = layers.LayerNormalization(name=f"{prefix}_feedforward_norm")(hidden)
        fed = layers.Dense(2 * width, activation="relu", name=f"{prefix}_feedforward_dense")(normed)
        fed = layers.Dense(width, name=f"{prefix}_feedforward_output")(fed)
        fed = layers.Dropout(dropout, name=f"{prefix}_feedforward_dropout")(fed)
        hidden = layers.Add(name=f"{prefix}_feedforward_residual")([hidden, fed])
    hidden = layers.LayerNormalization(name="set_output_norm")(hidden)
    pooled = MaskedPooling(name="set_pooling")([hidden, atom_mask])
    encoded = layers.Dense(width, activation="relu", name="set_head")(pooled)
    return layers.Dense(cfg.n_out, activation=cfg.output_activation, name="dos")(encoded)


def encoder_fields(model: keras.Model) -> dict[str, Any]:
    """The :class:`ModelConfig` fields of the structure encoder, read off a built or loaded network.

    ``{"structure_encoder": "lstm", "readout": …, "pdf_dense_units": …}`` for the paper's network family;
    for the set encoder also ``set_width``, ``set_heads``, ``set_blocks``, ``set_pdf_units`` and
    ``embedding_dim``, so that
    ``build_model(replace(config, **encoder_fields(model)))`` rebuilds the same architecture.
    """
    if not _has_layer(model, "set_pooling"):
        return {
            "structure_encoder": "lstm",
            "readout": "atom_mean" if _has_layer(model, "atom_dos") else "last",
            "pdf_dense_units": (
                int(model.get_layer("pdf_row_dense").units) if _has_layer(model, "pdf_row_dense") else 0
            ),
        }
    attention = model.get_layer("set_block0_attention") if _has_layer(model, "set_block0_attention") else None
    return {
        "structure_encoder": "set",
        "set_width": int(model.get_layer("atom_projection").units),
        "set_heads": int(attention.num_heads) if attention is not None else ModelConfig.set_heads,
        "set_blocks": sum(
            1
            for layer in model.layers
            if layer.name.startswith("set_block") and layer.name.endswith("_attention")
        ),
        "set_pdf_units": int(model.get_layer("pdf_dense").units),
        "embedding_dim": int(model.get_layer("element_embedding").output_dim),
    }


def count_parameters(model: keras.Model) -> int:
    """Total number of weights (trainable and not)."""
    return int(sum(np.prod(w.shape) for w in model.weights))


CUSTOM_OBJECTS = {
    "TokenMask": TokenMask,
    "AttentionKeyMask": AttentionKeyMask,
    "MaskedPooling": MaskedPooling,
    "MaskedMean": MaskedMean,
    "MaxNormalize": MaxNormalize,
}


def _structure_lstm_units(model: keras.Model) -> int:
    """Width of the structure LSTM (both directions of ``structure_bilstm`` together); 0 for the set encoder."""
    if _has_layer(model, "structure_lstm"):
        return int(model.get_layer("structure_lstm").units)
    if _has_layer(model, "structure_bilstm"):
        return 2 * int(model.get_layer("structure_bilstm").forward_layer.units)
    return 0


def network_shape(model: keras.Model) -> dict[str, Any]:
    """What the saved network itself says about its shape: input names, features per atom, outputs,
    structure encoder (:func:`encoder_fields`) and the structure LSTM width (0 for the set encoder)."""
    shapes = {tensor.name.split(":")[0]: tuple(tensor.shape) for tensor in model.inputs}
    return {
        "inputs": sorted(shapes),
        "n_pdf_bins": int(shapes["pdf"][-1]) if "pdf" in shapes else None,
        "n_out": int(model.outputs[0].shape[-1]),
        "lstm_units": _structure_lstm_units(model),
        "output_norm": "max" if _has_layer(model, "dos_max_norm") else "none",
        **encoder_fields(model),
    }


def check_network_matches(model: keras.Model, config: ModelConfig, source: str) -> None:
    """Refuse a network whose shape differs from the :class:`ModelConfig` of its record.

    Raises:
        ValueError: naming ``source`` and the differing fields.
    """
    found = network_shape(model)
    expected = {
        "inputs": sorted(["pdf", "tokens", *(["grid"] if config.grid_input else [])]),
        "n_pdf_bins": config.n_pdf_bins,
        "n_out": config.n_out,
        "lstm_units": config.lstm_units if config.structure_encoder == "lstm" else 0,
        "output_norm": config.output_norm,
        **{key: getattr(config, key) for key in encoder_fields(model) if hasattr(config, key)},
        "structure_encoder": config.structure_encoder,
    }
    differing = {key: (expected[key], found.get(key)) for key in expected if expected[key] != found.get(key)}
    if differing:
        detail = ", ".join(f"{key}: record {a!r} vs network {b!r}" for key, (a, b) in differing.items())
        raise ValueError(f"{source}: the network does not match its model record ({detail})")


def save_model(model: keras.Model, path: str | os.PathLike, record: ModelRecord) -> Path:
    """Save ``model`` as ``path`` (``.keras``) and its :class:`~s2p_utils.model_record.ModelRecord` as the
    sidecar ``path.with_suffix(".json")``, both atomically.

    Raises:
        ValueError: ``path`` does not end in ``.keras``, or the network does not match ``record.config.model``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: models are saved in the .keras format (got suffix {path.suffix!r})")
    check_network_matches(model, record.model, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        model.save(tmp)
    record.write(path.with_suffix(".json"))
    return path


def _has_layer(model: keras.Model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def load_model(path: str | os.PathLike) -> tuple[keras.Model, ModelRecord]:
    """Load a model saved by :func:`save_model` (``.keras`` + ``.json`` record) or an authors' ``.h5``.

    An authors' Keras-2 ``.h5`` is read with :func:`s2p_utils.weights.read_authors_file` (h5py, no code
    execution) into the network of :func:`build_model`; its record (:func:`s2p_utils.model_record.authors_record`)
    says legacy featurisation and leaves the grid to the caller (the files do not store it). A ``.keras``
    file is loaded with Keras' ``safe_mode=True`` (no Lambda layers or other code from the file).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file: a corrupt or unsafe ``.keras`` (e.g. a truncated zip), a ``.keras``
            without its ``.json`` record (the target scaler, grid and featurisation live there; without it
            predictions would silently be wrong), an unreadable or mismatching record, a malformed ``.h5``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix in {".h5", ".hdf5"}:
        model = load_authors_model(path)
        return model, authors_record(model_config_from_network(model), name=path.stem, source=str(path))
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras model (or an authors' legacy .h5)")
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise ValueError(
            f"{path}: its model record {sidecar.name} is missing (it holds the target scaler, grid and "
            "featurisation; without it predictions would be wrong). Keep the two files together, as "
            "s2p_utils.model.save_model writes them"
        )
    record = ModelRecord.read(sidecar)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True, custom_objects=CUSTOM_OBJECTS)
    except Exception as error:  # a corrupt zip raises BadZipFile, EOFError, KeyError, OSError, ValueError...
        raise ValueError(f"{path}: not a readable .keras model ({type(error).__name__}: {error})") from error
    check_network_matches(model, record.model, str(path))
    return model, record


def model_config_from_network(model: keras.Model) -> ModelConfig:
    """The :class:`ModelConfig` of a network built by :func:`build_model` with a fixed atom axis (the
    authors' files)."""
    shape = network_shape(model)
    embedding = model.get_layer("element_embedding")
    fields = {
        key: value
        for key, value in encoder_fields(model).items()
        if key != "structure_encoder" or value != "lstm"
    }
    return ModelConfig(
        max_atoms=int(model.get_layer("tokens").batch_shape[1]),
        lstm_units=shape["lstm_units"],
        n_out=shape["n_out"],
        grid_input="grid" in shape["inputs"],
        n_pdf_bins=shape["n_pdf_bins"],
        pdf_lstm_units=int(model.get_layer("pdf_bilstm").forward_layer.units),
        vocab_size=int(embedding.input_dim),
        embedding_dim=int(embedding.output_dim),
        output_norm=shape["output_norm"],
        **fields,
    )


def load_authors_model(path: str | os.PathLike, preset: str | ExperimentConfig | ModelConfig | None = None):
    """Build the network for an authors' legacy Keras-2 ``.h5`` and load its weights.

    Args:
        path: the ``.h5`` file (e.g. ``edosBulk_pdf.h5``; inputs ``x1`` PDF, ``types`` tokens, ``input_1`` grid).
        preset: preset/config whose shape the file must match; ``None`` infers every shape from the file
            (``max_atoms``, ``lstm_units``, ``n_out``, ``grid_input``, ...).

    Returns:
        A ``keras.Model`` of :func:`build_model` (inputs ``pdf``, ``tokens``[, ``grid``]), with ``Masking``
        before the PDF BiLSTM exactly when the stored graph has one.

    Raises:
        ValueError: naming the file: not a struct2prop model, or its shapes differ from ``preset``'s.
    """
    try:
        authors = read_authors_file(path)
        config = authors.config
        if preset is not None:
            wanted = model_config_of(preset)
            differences = {
                name: (getattr(wanted, name), getattr(config, name))
                for name in AUTHORS_SHAPE_FIELDS
                if getattr(wanted, name) != getattr(config, name)
            }
            if differences:
                detail = ", ".join(f"{k}: preset {a} vs file {b}" for k, (a, b) in differences.items())
                raise ValueError(f"{authors.path}: weights do not fit the preset ({detail})")
            config = wanted
        model = build_model(config, mask_pdf=authors.mask_pdf, name=Path(path).stem)
        for ours, arrays in authors.weights.items():
            layer = model.get_layer(ours)
            expected = [tuple(w.shape) for w in layer.get_weights()]
            got = [tuple(a.shape) for a in arrays]
            if expected != got:
                raise ValueError(
                    f"{authors.path}: layer {authors.source_layers[ours]!r} has shapes {got}, expected {expected}"
                )
            layer.set_weights(arrays)
    except Exception as error:  # malformed HDF5 content: KeyError, TypeError, IndexError, JSON errors...
        if isinstance(error, ValueError) and str(path) in str(error):
            raise  # already a message naming the file
        raise ValueError(
            f"{path}: not a readable authors' .h5 model ({type(error).__name__}: {error})"
        ) from error
    return model


AUTHORS_SHAPE_FIELDS = (
    "max_atoms",
    "lstm_units",
    "n_out",
    "grid_input",
    "n_pdf_bins",
    "vocab_size",
    "embedding_dim",
)
