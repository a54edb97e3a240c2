"""Read the authors' trained legacy Keras-2 ``.h5`` models: weights and shape, without building a network.

The original repository (``dmamur/struct2prop``) ships models saved by Keras 2.4 with ``model.save(...h5)``.
Keras 3 cannot rebuild those graphs, so :func:`read_authors_file` reads the HDF5 file with ``h5py``
(no pickle, no code execution), identifies the layers from the stored JSON ``model_config`` (or, for a
weights-only file, from the weight names and shapes) and infers the :class:`ModelConfig`;
:func:`s2p_utils.model.load_authors_model` builds that network and copies the arrays in. This module
imports no network code (and no TensorFlow).

Layer correspondence (authors' name → ours): Bidirectional ``x1_blstm`` → ``pdf_bilstm``; Embedding
``element_embdgs`` → ``element_embedding``; Dense on the grid input (``dense``) → ``grid_dense``; the LSTM
after the concatenation (``lstm``) → ``structure_lstm``; the output Dense (``out_en``/``out_edos``) → ``dos``.
Keras 2 and Keras 3 store LSTM weights identically: kernel ``(n_in, 4u)``, recurrent kernel ``(u, 4u)``,
bias ``(4u,)``, gate order i, f, c, o; a Bidirectional layer holds the forward then the backward weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from s2p_utils.config import ModelConfig

__all__ = ["read_authors_file", "AuthorsFile"]


class AuthorsFile:
    """The content of an authors' ``.h5``: per-layer weight arrays plus the inferred :class:`ModelConfig`.

    Attributes:
        path: the file.
        weights: our layer name → list of arrays in Keras 3 ``layer.get_weights()`` order.
        config: model shape inferred from the weight shapes.
        mask_pdf: whether the stored graph puts a ``Masking`` layer before the PDF BiLSTM.
        source_layers: our layer name → the authors' layer name.
    """

    def __init__(
        self,
        path: Path,
        weights: dict[str, list[np.ndarray]],
        config: ModelConfig,
        mask_pdf: bool,
        source_layers: dict[str, str],
    ) -> None:
        self.path = path
        self.weights = weights
        self.config = config
        self.mask_pdf = mask_pdf
        self.source_layers = source_layers

    def __repr__(self) -> str:
        return f"AuthorsFile({str(self.path)!r}, config={self.config}, mask_pdf={self.mask_pdf})"


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _layer_arrays(group, layer_name: str) -> list[np.ndarray]:
    """Arrays of ``layer_name`` in the order of its ``weight_names`` attribute (Keras-2 HDF5 layout)."""
    layer_group = group[layer_name]
    names = [_decode(n) for n in layer_group.attrs.get("weight_names", [])]
    return [np.asarray(layer_group[name]) for name in names]


def _graph_roles(model_config: dict[str, Any]) -> tuple[dict[str, str], bool]:
    """Map our roles to the authors' layer names from the stored functional graph."""
    layers = model_config["config"]["layers"]
    by_name = {layer["name"]: layer for layer in layers}
    outputs = {entry[0] for entry in model_config["config"].get("output_layers", [])}

    def inbound(layer: dict[str, Any]) -> list[str]:
        nodes = layer.get("inbound_nodes") or []
        names: list[str] = []
        for node in nodes:
            for entry in node:
                if isinstance(entry, (list, tuple)) and entry:
                    names.append(entry[0])
        return names

    roles: dict[str, str] = {}
    mask_pdf = False
    for layer in layers:
        kind, name = layer["class_name"], layer["name"]
        if kind == "Bidirectional":
            roles["pdf_bilstm"] = name
            mask_pdf = any(by_name.get(src, {}).get("class_name") == "Masking" for src in inbound(layer))
        elif kind == "Embedding":
            roles["element_embedding"] = name
        elif kind == "LSTM":
            roles["structure_lstm"] = name
        elif kind == "Dense":
            sources = inbound(layer)
            if name in outputs:
                roles["dos"] = name
            elif sources and all(by_name.get(src, {}).get("class_name") == "InputLayer" for src in sources):
                roles["grid_dense"] = name
    return roles, mask_pdf


def _name_roles(group) -> dict[str, str]:
    """Fallback for weights-only files: identify layers from weight names and shapes."""
    roles: dict[str, str] = {}
    dense: list[str] = []
    for layer_name in group:
        names = [_decode(n) for n in group[layer_name].attrs.get("weight_names", [])]
        if not names:
            continue
        joined = " ".join(names)
        if "forward" in joined and "backward" in joined:
            roles["pdf_bilstm"] = layer_name
        elif "embeddings" in joined:
            roles["element_embedding"] = layer_name
        elif "recurrent_kernel" in joined:
            roles["structure_lstm"] = layer_name
        else:
            dense.append(layer_name)
    hidden = None
    if "structure_lstm" in roles:
        hidden = _layer_arrays(group, roles["structure_lstm"])[1].shape[0]
    for layer_name in dense:
        kernel = _layer_arrays(group, layer_name)[0]
        if layer_name.startswith("out") or (kernel.shape[0] == hidden and "dos" not in roles):
            roles.setdefault("dos", layer_name)
        else:
            roles.setdefault("grid_dense", layer_name)
    return roles


def read_authors_file(path: str | os.PathLike) -> AuthorsFile:
    """Read an authors' legacy Keras-2 ``.h5`` (full model or weights only) without building a model.

    Raises ``ValueError`` naming the file when it is not HDF5 or lacks one of the expected layers.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not an HDF5 file ({error})") from error
    with handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        mask_pdf = True
        roles: dict[str, str] = {}
        if "model_config" in handle.attrs:
            model_config = json.loads(_decode(handle.attrs["model_config"]))
            roles, mask_pdf = _graph_roles(model_config)
        if not {"pdf_bilstm", "element_embedding", "structure_lstm", "dos"} <= set(roles):
            roles = _name_roles(group)
        missing = {"pdf_bilstm", "element_embedding", "structure_lstm", "dos"} - set(roles)
        if missing:
            raise ValueError(f"{path}: cannot find the layer(s) {sorted(missing)} of the struct2prop network")
        weights = {ours: _layer_arrays(group, theirs) for ours, theirs in roles.items()}

    bilstm = weights["pdf_bilstm"]
    if len(bilstm) != 6:
        raise ValueError(f"{path}: layer {roles['pdf_bilstm']!r} has {len(bilstm)} arrays, expected 6")
    embeddings = weights["element_embedding"][0]
    lstm_kernel, lstm_recurrent, _ = weights["structure_lstm"]
    out_kernel = weights["dos"][0]
    grid_input = "grid_dense" in weights
    max_atoms = weights["grid_dense"][0].shape[1] if grid_input else None
    if max_atoms is None:
        max_atoms = _input_length(path)
    pdf_units = bilstm[1].shape[0]
    expected_in = 2 * pdf_units + embeddings.shape[1] + (1 if grid_input else 0)
    if lstm_kernel.shape[0] != expected_in:
        raise ValueError(
            f"{path}: structure LSTM input width {lstm_kernel.shape[0]} does not match "
            f"2×{pdf_units} + {embeddings.shape[1]}{' + 1' if grid_input else ''}"
        )
    config = ModelConfig(
        max_atoms=int(max_atoms),
        lstm_units=int(lstm_recurrent.shape[0]),
        n_out=int(out_kernel.shape[1]),
        grid_input=grid_input,
        n_pdf_bins=int(bilstm[0].shape[0]),
        pdf_lstm_units=int(pdf_units),
        vocab_size=int(embeddings.shape[0]),
        embedding_dim=int(embeddings.shape[1]),
    )
    if grid_input and weights["grid_dense"][0].shape[0] != config.n_out:
        raise ValueError(
            f"{path}: grid input length {weights['grid_dense'][0].shape[0]} differs from the output length {config.n_out}"
        )
    return AuthorsFile(path, weights, config, mask_pdf, roles)


def _input_length(path: Path) -> int:
    """``max_atoms`` from the stored input shape of a model without grid input."""
    import h5py

    with h5py.File(path, "r") as handle:
        if "model_config" not in handle.attrs:
            raise ValueError(f"{path}: weights-only file without grid input; pass preset= to give max_atoms")
        model_config = json.loads(_decode(handle.attrs["model_config"]))
    for layer in model_config["config"]["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = layer["config"].get("batch_input_shape") or layer["config"].get("batch_shape")
            if shape and len(shape) == 3:
                return int(shape[1])
            if shape and len(shape) == 2 and layer["config"].get("dtype") == "int32":
                return int(shape[1])
    raise ValueError(f"{path}: cannot find the atom-sequence length in the stored model config")
