"""Length-bucketed batches: pad each batch only to its own longest structure.

Padding every crystal to ``max_atoms`` (128 for e3nn_phdos, whose crystals have 2–40 atoms) makes the
LSTMs walk mostly through padding. With the padding masked, the network's output does not depend on how
many padded steps follow the last atom, so a batch can be cut to its longest member: same weights, same
predictions, far fewer steps. Training batches are formed from rows of similar length (sorted by length
plus a random jitter, then the batch order shuffled), so batches stay random but short.

Atom-order augmentation (``permute_atoms=True``): the spectrum of a crystal does not depend on the order
in which its atoms are listed, but an LSTM reading the atom sequence does. Training on a random atom
order per visit teaches the invariance; :func:`predict_batched` with ``permutations=k`` averages the
prediction over the listed order and ``k`` random orders (test-time augmentation).

Arrays follow :func:`s2p_utils.inputs.model_inputs`: ``pdf`` float32 ``(n, max_atoms, n_features)``,
``tokens`` int32 ``(n, max_atoms)`` post-padded with zeros. No TensorFlow import at module level.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator

import numpy as np

__all__ = [
    "atom_counts",
    "bucketed_order",
    "cut_batch",
    "epoch_batches",
    "batch_dataset",
    "inference_function",
    "predict_batched",
]

SEQUENCE_INPUTS = ("pdf", "tokens")


def atom_counts(tokens: np.ndarray) -> np.ndarray:
    """Number of real atoms per row of post-padded ``tokens`` ``(n, max_atoms)`` → int ``(n,)``."""
    return np.count_nonzero(np.asarray(tokens), axis=1)


def bucketed_order(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, jitter: float = 3.0
) -> list[np.ndarray]:
    """Split rows into batches of similar length, in random batch order.

    Rows are sorted by ``length + uniform(0, jitter)`` (ties and near-ties broken at random), cut into
    consecutive batches of ``batch_size``, and the batches shuffled.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    key = lengths + rng.uniform(0.0, jitter, size=len(lengths))
    order = np.argsort(key, kind="stable")
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def check_atom_dropout(atom_dropout: float, shuffled: bool) -> None:
    """Refuse an ``atom_dropout`` outside ``[0, 1)``, or one without the random atom order it relies on."""
    if not 0 <= atom_dropout < 1:
        raise ValueError(f"atom_dropout must be in [0, 1), got {atom_dropout}")
    if atom_dropout and not shuffled:
        raise ValueError(
            "atom_dropout needs a random atom order (permute_atoms=True; a random subset follows a random order)"
        )


def cut_batch(
    inputs: dict[str, np.ndarray],
    rows: np.ndarray,
    *,
    bucketed: bool = True,
    permutation_rng: np.random.Generator | None = None,
    order_keys: np.ndarray | None = None,
    atom_dropout: float = 0.0,
) -> dict[str, np.ndarray]:
    """Rows ``rows`` of ``inputs``, sequence inputs cut to the longest member when ``bucketed``.

    With ``permutation_rng``, the real atoms of every row are put in a random order (same order for
    the ``pdf`` and ``tokens`` of that row; padding stays at the end). With ``order_keys`` (float
    ``(max_atoms,)``) instead, a row of ``m`` atoms is put in the order ``argsort(order_keys[:m])``: a
    fixed function of the keys and ``m``, so a structure gets the same order whatever batch it is in.
    ``atom_dropout`` (training only, with ``permutation_rng``): after the shuffle a row of ``m`` atoms keeps
    its first ``max(1, Binomial(m, 1 − atom_dropout))`` atoms, a random subset; the others become padding.
    """
    check_atom_dropout(atom_dropout, permutation_rng is not None)
    batch = {name: np.asarray(array[rows]) for name, array in inputs.items()}
    lengths = atom_counts(batch["tokens"])
    if bucketed and "grid" not in batch:
        width = max(int(lengths.max(initial=0)), 1)
        for name in SEQUENCE_INPUTS:
            batch[name] = np.ascontiguousarray(batch[name][:, :width])
    if permutation_rng is not None or order_keys is not None:
        for k, length in enumerate(lengths):
            if order_keys is not None:
                order = np.argsort(order_keys[: int(length)], kind="stable")
            else:
                order = permutation_rng.permutation(int(length))
            for name in SEQUENCE_INPUTS:
                batch[name][k, :length] = batch[name][k, order]
            if atom_dropout:
                kept = max(1, int(permutation_rng.binomial(int(length), 1.0 - atom_dropout)))
                for name in SEQUENCE_INPUTS:
                    batch[name][k, kept:length] = 0
    return batch


def epoch_batches(
    inputs: dict[str, np.ndarray],
    targets: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    bucketed: bool,
    permute_atoms: bool = False,
    atom_dropout: float = 0.0,
    weights: np.ndarray | None = None,
) -> Iterator[
    tuple[dict[str, np.ndarray], np.ndarray] | tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]
]:
    """The training batches of one epoch; a fixed function of ``(seed, epoch)`` (resumable).

    Each batch is ``(inputs, targets)``, or ``(inputs, targets, weights[rows])`` when per-row loss
    ``weights`` ``(n,)`` are given (Keras' ``sample_weight``).

    Unbucketed: rows in ``default_rng([seed, epoch]).permutation(n)`` order, padded to ``max_atoms``
    (the original recipe). Bucketed: :func:`bucketed_order` with the same generator. ``atom_dropout``
    (needs ``permute_atoms``): see :func:`cut_batch`.
    """
    rng = np.random.default_rng([seed, epoch])
    n = len(targets)
    if bucketed and "grid" not in inputs:
        batches = bucketed_order(atom_counts(inputs["tokens"]), batch_size, rng)
    else:
        order = rng.permutation(n)
        batches = [order[start : start + batch_size] for start in range(0, n, batch_size)]
    permutation_rng = np.random.default_rng([seed, epoch, 1]) if permute_atoms else None
    for rows in batches:
        batch = cut_batch(
            inputs, rows, bucketed=bucketed, permutation_rng=permutation_rng, atom_dropout=atom_dropout
        )
        yield (batch, targets[rows]) if weights is None else (batch, targets[rows], weights[rows])


def batch_dataset(
    inputs: dict[str, np.ndarray],
    targets: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    first_epoch: int,
    last_epoch: int,
    bucketed: bool,
    permute_atoms: bool = False,
    atom_dropout: float = 0.0,
    weights: np.ndarray | None = None,
):
    """``tf.data.Dataset`` of the training batches of epochs ``first_epoch .. last_epoch - 1``, in order
    (with per-row loss ``weights`` ``(n,)``: each element also carries its rows' weights).

    The sequence dimension is declared ``None`` so one traced training step serves every batch width.
    """
    import tensorflow as tf

    names = sorted(inputs)

    def generate():
        for epoch in range(first_epoch, last_epoch):
            yield from epoch_batches(
                inputs,
                targets,
                batch_size=batch_size,
                seed=seed,
                epoch=epoch,
                bucketed=bucketed,
                permute_atoms=permute_atoms,
                atom_dropout=atom_dropout,
                weights=weights,
            )

    def spec(array: np.ndarray, name: str):
        shape = (None, *array.shape[1:])
        if bucketed and name in SEQUENCE_INPUTS and "grid" not in inputs:
            shape = (None, None, *array.shape[2:])
        return tf.TensorSpec(shape, tf.as_dtype(array.dtype))

    signature = (
        {name: spec(inputs[name], name) for name in names},
        tf.TensorSpec((None, *targets.shape[1:]), tf.as_dtype(targets.dtype)),
    )
    if weights is not None:
        signature = (*signature, tf.TensorSpec((None,), tf.float32))
    return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(2)


def evaluation_batches(inputs: dict[str, np.ndarray], batch_size: int, bucketed: bool) -> list[np.ndarray]:
    """Row batches for inference: sorted by length when ``bucketed`` (fewest padded steps), else in order."""
    n = len(inputs["tokens"])
    order = np.argsort(atom_counts(inputs["tokens"]), kind="stable") if bucketed else np.arange(n)
    return [order[start : start + batch_size] for start in range(0, n, batch_size)]


_INFERENCE_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _call_for_inference(model, inputs):
    return model(inputs, training=False)


def inference_function(model, batch: dict[str, np.ndarray]):
    """``model(batch, training=False)`` as one traced TensorFlow graph per model, reused for every batch.

    Calling a Keras model eagerly walks its LSTMs step by step in Python; traced once (a signature with a
    free batch size and, for the atom-sequence inputs, a free sequence length, so bucketed batches of any
    width reuse the one trace) the same network runs ≈ 6× faster on CPU with the same weights and the same
    operations. Other Keras backends get the eager call.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda inputs: model(inputs, training=False)
    function = _INFERENCE_FUNCTIONS.get(model)
    if function is None:
        import tensorflow as tf

        def spec(name: str, array: np.ndarray):
            shape = (None, None, *array.shape[2:]) if name in SEQUENCE_INPUTS else (None, *array.shape[1:])
            return tf.TensorSpec(shape, tf.as_dtype(array.dtype), name=name)

        signature = {name: spec(name, array) for name, array in batch.items()}
        # A partial per model (not a lambda): TensorFlow groups traces by code object, so one lambda traced
        # once per ensemble member would be reported as "excessive retracing".
        function = tf.function(functools.partial(_call_for_inference, model), input_signature=[signature])
        _INFERENCE_FUNCTIONS[model] = function
    return function


def predict_batched(
    model,
    inputs: dict[str, np.ndarray],
    *,
    batch_size: int = 256,
    bucketed: bool = True,
    permutations: int = 0,
    seed: int = 0,
    first_order: int = 0,
) -> np.ndarray:
    """Model outputs float32 ``(n, n_out)`` for ``inputs``, in row order.

    ``bucketed`` cuts each batch to its longest structure (only for a model built with a free sequence
    length and a masked PDF branch, see :func:`s2p_utils.model.build_model`; otherwise batches keep the
    full padded width). ``permutations=k`` averages over the listed atom order and ``k`` random orders:
    order ``j`` of a structure depends only on ``(seed, j)`` and its atom count, not on the other rows
    or the batch size, so a structure predicted alone or among thousands gets the same orders.
    ``first_order=f`` averages orders ``f … f + permutations`` instead (order 0 is the listed order), so the
    members of an ensemble can each see different orders.
    """
    if first_order < 0 or permutations < 0:
        raise ValueError(f"first_order and permutations must be ≥ 0, got {first_order}, {permutations}")
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    layer_names = {layer.name for layer in model.layers}
    # cutting is exact only when padding is masked on every branch (not the e3nn notebook's unmasked BiLSTM;
    # the set encoder masks padding by its tokens: `set_pooling`)
    masked = "pdf_masking" in layer_names or "set_pooling" in layer_names
    bucketed = bucketed and "grid" not in names and model.inputs[0].shape[1] is None and masked
    n = len(inputs["tokens"])
    total = None
    for k in range(first_order, first_order + permutations + 1):
        keys = np.random.default_rng([seed, k]).random(inputs["tokens"].shape[1]) if k else None
        out = None
        for rows in evaluation_batches(inputs, batch_size, bucketed):
            batch = cut_batch(
                {name: inputs[name] for name in names}, rows, bucketed=bucketed, order_keys=keys
            )
            values = np.asarray(inference_function(model, batch)(batch), dtype=np.float32)
            if out is None:
                out = np.zeros((n, values.shape[1]), dtype=np.float32)
            out[rows] = values
        total = out if total is None else total + out
    return total / (permutations + 1)
