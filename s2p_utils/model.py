"""The paper's network, its construction from a preset, and saving/loading with metadata.

Architecture (layer names in backticks)::

    pdf (max_atoms, 100) ─ Masking(0) `pdf_masking` ─ Bidirectional(LSTM(8, seq)) `pdf_bilstm` ─┐
    tokens (max_atoms,) ─ Embedding(94, 128, mask_zero) `element_embedding` ─────────────────────┼─ Concatenate
    grid (n_out,) ─ Dense(max_atoms) `grid_dense` ─ Reshape `grid_reshape` ─ Dropout `grid_dropout` ┘  (optional)
        ─ LSTM(H) `structure_lstm` (mask = tokens != 0, `atom_mask`) ─ Dense(n_out, relu) `dos`

The padding mask is handed to ``structure_lstm`` explicitly. Keras 2 carried the embedding mask through
``Concatenate`` (inputs without a mask counted as all-valid); Keras 3 does not do this the same way, and
without the explicit mask padded atoms change the prediction (the authors' weights then give errors up to
0.13). With it the authors' Keras-2 model is reproduced to ~1e-7 (``tests/test_model.py``).

TensorFlow/Keras are imported here; do not import this module from featurization or data code.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import numpy as np

from s2p_utils.config import PRESETS as PRESETS_BY_NAME
from s2p_utils.config import ExperimentConfig, ModelConfig, get_preset
from s2p_utils.paths import atomic_path

__all__ = [
    "TokenMask",
    "build_model",
    "distribution_strategy",
    "model_config_of",
    "save_model",
    "load_model",
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
    """Build the (uncompiled) network of a preset.

    Args:
        preset_or_config: preset name (e.g. ``"e3nn_phdos"``), ``ExperimentConfig`` or ``ModelConfig``.
        mask_pdf: put ``Masking(0)`` before the PDF BiLSTM (the authors' later models). ``False`` builds
            the e3nn/Mat2Spec notebooks' variant whose BiLSTM also reads the zero padding; only the
            backward direction differs, and only for :func:`s2p_utils.weights.load_authors_weights` of such files.
        name: model name (default: the preset name, or ``"struct2prop"``).

    Returns:
        ``keras.Model`` with inputs ``pdf`` float32 ``(batch, atoms, n_pdf_bins)``, ``tokens`` int32
        ``(batch, atoms)`` (``atoms`` free, at most ``max_atoms`` by the data; fixed to ``max_atoms`` for
        grid-input presets, whose grid branch is reshaped to ``(max_atoms, 1)``) and, when ``grid_input``, ``grid`` float32 ``(batch, n_out)``; output
        ``(batch, n_out)`` (non-negative with the default ReLU).
    """
    cfg = model_config_of(preset_or_config)
    if name is None:
        name = (
            preset_or_config if isinstance(preset_or_config, str) else getattr(preset_or_config, "name", None)
        )
    name = name or "struct2prop"
    layers = keras.layers
    with distribution_strategy().scope():
        # Without a grid branch nothing depends on the number of atom steps: leave it free so that
        # length-bucketed batches (s2p_utils.batching) can be cut to their longest structure.
        steps = cfg.max_atoms if cfg.grid_input else None
        pdf = keras.Input((steps, cfg.n_pdf_bins), dtype="float32", name="pdf")
        tokens = keras.Input((steps,), dtype="int32", name="tokens")
        inputs = [pdf, tokens]
        pdf_seq = layers.Masking(0.0, name="pdf_masking")(pdf) if mask_pdf else pdf
        pdf_seq = layers.Bidirectional(
            layers.LSTM(cfg.pdf_lstm_units, return_sequences=True, name="pdf_lstm"), name="pdf_bilstm"
        )(pdf_seq)
        embedded = layers.Embedding(
            cfg.vocab_size, cfg.embedding_dim, mask_zero=True, name="element_embedding"
        )(tokens)
        branches = [pdf_seq, embedded]
        if cfg.grid_input:
            grid = keras.Input((cfg.n_out,), dtype="float32", name="grid")
            inputs.append(grid)
            g = layers.Dense(cfg.max_atoms, name="grid_dense")(grid)
            g = layers.Reshape((cfg.max_atoms, 1), name="grid_reshape")(g)
            branches.append(layers.Dropout(cfg.grid_dropout, name="grid_dropout")(g))
        merged = layers.Concatenate(name="concatenate")(branches)
        atom_mask = TokenMask(name="atom_mask")(tokens)
        encoded = layers.LSTM(cfg.lstm_units, dropout=cfg.structure_dropout, name="structure_lstm")(
            merged, mask=atom_mask
        )
        output = layers.Dense(cfg.n_out, activation=cfg.output_activation, name="dos")(encoded)
        return keras.Model(inputs=inputs, outputs=output, name=name)


def count_parameters(model: keras.Model) -> int:
    """Total number of weights (trainable and not)."""
    return int(sum(np.prod(w.shape) for w in model.weights))


def _metadata_jsonable(metadata: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, (np.floating, np.integer, np.bool_)):
            return value.item()
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, (ModelConfig, ExperimentConfig)):
            return convert(asdict(value))
        return value

    return convert(dict(metadata))


DEFAULT_METADATA: dict[str, Any] = {
    "preset": None,
    "featurizer": "pdf",
    "legacy": False,
    "max_atoms": None,
    "grid": None,
    "grid_unit": "",
    "kind": "",
    "target_scaler": None,
    "members": 1,
}


def save_model(model: keras.Model, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Save ``model`` as ``path`` (``.keras``) and ``metadata`` as the sidecar ``path.with_suffix(".json")``.

    ``metadata`` keys (see ``COMMON`` contract): preset, featurizer, legacy, max_atoms, grid, grid_unit,
    kind, target_scaler (``{"min", "scale"}`` or ``None``), members. Missing keys get defaults;
    ``max_atoms`` defaults to the model's input length. Both files are written atomically.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: models are saved in the .keras format (got suffix {path.suffix!r})")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**DEFAULT_METADATA, **_metadata_jsonable(metadata)}
    if meta["max_atoms"] is None and _has_layer(model, "tokens"):
        steps = model.get_layer("tokens").batch_shape[1]
        preset = PRESETS_BY_NAME.get(meta.get("preset") or "")
        meta["max_atoms"] = int(steps) if steps is not None else (preset.model.max_atoms if preset else None)
    if meta["max_atoms"] is None:
        raise ValueError(
            f"{path}: the network has a free atom axis; give metadata['max_atoms'] (or a preset)"
        )
    with atomic_path(path) as tmp:
        model.save(tmp)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return path


def _has_layer(model: keras.Model, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def load_model(path: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """Load a model saved by :func:`save_model` (``.keras`` + ``.json`` sidecar) or an authors' ``.h5``.

    For a legacy Keras-2 ``.h5`` file the weights are mapped with
    :func:`s2p_utils.weights.load_authors_weights`; its metadata says ``legacy=True`` and, when the model
    has a grid input, leaves ``grid`` to the caller (the authors' files do not store it). A ``.keras`` file
    is loaded with Keras' ``safe_mode=True`` (no Lambda layers or other code from the file).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file: a corrupt or unsafe ``.keras`` (e.g. a truncated zip), a ``.keras``
            without its ``.json`` sidecar (the target scaler, grid and featurizer live there; without it
            predictions would silently stay scaled), unreadable metadata, a malformed ``.h5``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix in {".h5", ".hdf5"}:
        return _load_authors_model(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras model (or an authors' legacy .h5)")
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise ValueError(
            f"{path}: its metadata file {sidecar.name} is missing (it holds the target scaler, grid and "
            "featurizer; without it predictions would be wrong). Keep the two files together, as "
            "s2p_utils.model.save_model writes them"
        )
    try:
        meta = {**DEFAULT_METADATA, **json.loads(sidecar.read_text(encoding="utf-8"))}
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
        raise ValueError(f"{sidecar}: metadata is not a valid JSON object ({error})") from error
    try:
        model = keras.saving.load_model(
            path, compile=False, safe_mode=True, custom_objects={"TokenMask": TokenMask}
        )
    except Exception as error:  # a corrupt zip raises BadZipFile, EOFError, KeyError, OSError, ValueError...
        raise ValueError(f"{path}: not a readable .keras model ({type(error).__name__}: {error})") from error
    if meta.get("max_atoms") is None:
        meta["max_atoms"] = int(model.get_layer("tokens").batch_shape[1])
    return model, meta


def _load_authors_model(path: Path) -> tuple[keras.Model, dict[str, Any]]:
    """An authors' Keras-2 ``.h5`` (read with h5py, no code execution) and its metadata."""
    from s2p_utils.weights import load_authors_weights

    try:
        model = load_authors_weights(path)
    except Exception as error:  # malformed HDF5 content: KeyError, TypeError, IndexError, JSON errors...
        if isinstance(error, ValueError) and str(path) in str(error):
            raise  # already a message naming the file
        raise ValueError(
            f"{path}: not a readable authors' .h5 model ({type(error).__name__}: {error})"
        ) from error
    meta = {**DEFAULT_METADATA, "legacy": True, "max_atoms": int(model.get_layer("tokens").batch_shape[1])}
    return model, meta
