"""Experiment configuration: one frozen dataclass per paper dataset.

A preset bundles the model shape (:class:`ModelConfig`), the training recipe (:class:`TrainConfig`)
and the data choices (dataset name, featurizer, default split). Presets are immutable; derive a
variant with :func:`dataclasses.replace`::

    from dataclasses import replace
    cfg = get_preset("e3nn_phdos")
    quick = replace(cfg, train=replace(cfg.train, max_epochs=5))
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "ExperimentConfig",
    "Recipe",
    "MODES",
    "SMOKE_EPOCHS",
    "PRESETS",
    "get_preset",
    "resolve_recipe",
    "check_epochs",
    "recipe_from_dict",
    "config_to_dict",
    "config_from_dict",
]

MODES = ("legacy", "fixed")
"""``legacy``: the original notebooks' recipe, quirks included; ``fixed``: the corrected one (default)."""
SMOKE_EPOCHS = 2
"""Epochs of a smoke run (``S2P_SMOKE=1``), whatever the mode."""


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network.

    Inputs: per-atom PDF rows ``(max_atoms, n_pdf_bins)``, element tokens ``(max_atoms,)`` and,
    when ``grid_input``, the target grid ``(n_out,)`` (eV or cm⁻¹).

    ``structure_encoder``: ``"lstm"`` is the paper's network (a BiLSTM over the PDF rows, the element
    embedding, and an LSTM of ``lstm_units`` reading the atoms in their listed order); ``"set"`` is the
    permutation-invariant encoder of :func:`s2p_utils.model.build_model` (a per-atom Dense of
    ``set_pdf_units`` on each PDF row, the element embedding, a projection to ``set_width``, ``set_blocks``
    blocks of masked ``set_heads``-head self-attention over the atoms with a feed-forward sublayer, and
    masked mean + max pooling); ``lstm_units`` and ``pdf_lstm_units`` are unused by it.
    ``structure_dropout``: dropout rate during training, on the inputs of the atom-sequence LSTM (0 in
    the paper) or, for ``"set"``, on the attention weights and the residual branches.
    ``readout`` (``"lstm"`` encoder): ``"last"`` is the paper's (the structure LSTM's final state → Dense);
    ``"atom_mean"`` reads the atoms with a bidirectional structure LSTM (``lstm_units / 2`` per direction),
    gives every atom its own spectrum (Dense on each atom's output) and averages them over the real
    atoms: the DOS as the mean of atom-projected DOS.
    ``output_norm``: ``"none"`` (the paper's) or ``"max"``: every predicted spectrum is divided by its own
    maximum (layer ``dos_max_norm``), the scale of the e3nn targets and of the max-renormalised Table 1
    columns, so the loss sees the spectra as they are scored.
    ``pdf_noise``: standard deviation of Gaussian noise added to the PDF rows during training only (after
    ``pdf_scale``; 0 in the paper; no weights, so a saved network does not record it).
    ``pdf_dense_units`` (``"lstm"`` encoder): 0 (the paper's: the PDF BiLSTM reads each atom's row as it is)
    or the width of a per-atom ``Dense(relu)`` between the row and the PDF BiLSTM, so the row's blocks
    (g(r), its mass-weighted copies, bond lengths, descriptors) are combined non-linearly before the
    BiLSTM's ``pdf_lstm_units`` gates see them.
    """

    max_atoms: int
    lstm_units: int
    n_out: int
    grid_input: bool = False
    n_pdf_bins: int = 100
    pdf_lstm_units: int = 8
    vocab_size: int = 94
    embedding_dim: int = 128
    grid_dropout: float = 0.1
    output_activation: str = "relu"
    structure_dropout: float = 0.0
    structure_encoder: str = "lstm"
    set_width: int = 128
    set_heads: int = 4
    set_blocks: int = 2
    set_pdf_units: int = 64
    pdf_noise: float = 0.0
    pdf_dense_units: int = 0
    readout: str = "last"
    output_norm: str = "none"


@dataclass(frozen=True)
class TrainConfig:
    """The paper's training recipe.

    Learning rate at epoch ``e`` (0-based): ``max(lr_floor, lr * lr_decay ** floor((e + 1) / lr_drop_every))``.
    Legacy mode runs ``legacy_epochs`` (the notebook's ``epochs``) and stops on the *training* loss
    (``min_delta``, ``patience``; never fires in practice); the default runs at most ``max_epochs``, stops
    on the validation loss after ``fixed_patience`` epochs without improvement and restores the best weights.

    ``bucketed``: in the corrected mode, batches of similar-length crystals padded only to their longest
    member (:mod:`s2p_utils.batching`; same predictions for the same weights, several times faster). Legacy
    mode always pads to ``max_atoms`` as the original did. ``permute_atoms``: random atom order per
    training visit (augmentation); ``test_time_permutations``: average predictions over that many extra
    random atom orders; ``member_orders``: member k of an ensemble averages its own orders
    ``k·(P+1) … k·(P+1)+P`` (P = ``test_time_permutations``, order 0 is the listed one) instead of every
    member sharing orders ``0 … P``, so with P = 0 each member runs once and the ensemble still averages
    distinct orders; ``ensemble``: number of independently seeded members (their spread is the
    uncertainty). ``loss``: ``"mae"`` (the paper's), ``"mse"``, ``"mae_cdf"`` (MAE plus cumulative-
    spectrum terms, :func:`s2p_utils.train.spectrum_shape_loss`: ``shape_weight`` × mean |ΔCDF|, a W₁-like
    term, and ``mean_weight`` × |mean ΔCDF|, the mean-frequency ω̄ error; ``renorm_weight`` moves that share
    of the MAE term onto the prediction divided by its own peak; ``kl_weight`` adds that multiple of the
    Kullback–Leibler divergence of the unit-sum spectra, Mat2Spec's loss) or ``"mse_cdf"`` (the same with the
    squared error in place of the absolute one). ``target_smoothing``: Gaussian
    width in grid points applied to the *training* targets only (validation and test stay raw);
    ``target_smoothing_norm="max"`` divides each smoothed target by its own peak (smoothing lowers peaks,
    which a peak-normalised output cannot follow; :func:`s2p_utils.train.smooth_targets`), ``"none"``
    (the default) keeps the lowered peaks.
    ``rarity_exponent``: 0 (the paper's: every training crystal counts once) or the exponent α of
    :func:`s2p_utils.train.rarity_weights`: each training crystal's loss is weighted by ρ(ω̄)^(−α), ρ the
    smoothed density of the training targets' mean positions, so crystals with rare (high) mean frequencies
    count more; the validation loss and early stopping stay unweighted.
    ``weight_decay``: decoupled weight decay of Adam (AdamW; 0 = plain Adam, the paper's).
    ``ema_momentum``: 0 (the paper's) or the per-step momentum of an exponential moving average of the
    weights kept by Adam (Polyak averaging; 0.99 averages over ≈ 100 steps); the validation loss, early
    stopping and the restored best-epoch weights then use the averaged weights. ``atom_dropout``: with
    ``permute_atoms``, the share of a training crystal's atoms hidden on each visit (at least one atom
    stays; :func:`s2p_utils.batching.cut_batch`); each atom's PDF row still describes its whole
    neighbourhood, so the rest of the crystal still shows it. 0 in the paper.

    ``cross_fit``: 0 (the paper's: every member stops on the validation rows) or a number of folds k ≥ 2:
    the training rows are cut into k folds (a permutation seeded by the run's seed) and member m trains on
    every fold but fold m mod k and stops early on that fold. With k = ``ensemble`` the members together
    learn from every training crystal; with k > ``ensemble`` each member also sees more of them. The
    validation rows stay unseen by every member (for σ calibration and scoring).

    ``target_scaling``: ``"none"``, ``"minmax"`` (per grid point, like ``sklearn`` ``MinMaxScaler``) or
    ``"global_minmax"`` (one range), as in the preset's notebook. Legacy mode fits it on all rows (the
    original leak), the default on the training rows only. Metrics are always on unscaled spectra.
    """

    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_decay: float = 0.92
    lr_drop_every: int = 8
    lr_floor: float = 1e-4
    max_epochs: int = 200
    legacy_epochs: int = 64
    patience: int = 50
    min_delta: float = 0.01
    fixed_patience: int = 30
    fixed_min_delta: float = 0.0
    loss: str = "mae"
    target_scaling: str = "minmax"
    bucketed: bool = True
    permute_atoms: bool = False
    ensemble: int = 1
    test_time_permutations: int = 0
    target_smoothing: float = 0.0
    target_smoothing_norm: str = "none"
    rarity_exponent: float = 0.0
    shape_weight: float = 1.0
    mean_weight: float = 0.0
    member_orders: bool = False
    weight_decay: float = 0.0
    ema_momentum: float = 0.0
    atom_dropout: float = 0.0
    renorm_weight: float = 0.0
    kl_weight: float = 0.0
    cross_fit: int = 0


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one paper experiment."""

    name: str
    dataset: str
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    # "pdf" (per-atom PDF), "simple_rdf", "pdf_mass" or "pdf_mass_freq" (s2p_utils.featurize.METHODS)
    featurizer: str = "pdf"
    element_descriptors: bool = False  # append mass/radius/period descriptors to every PDF row
    # how a distance enters the corrected g(r) bins: "floor" (its bin) or "linear" (shared between the two
    # nearest bin centres, keeping sub-bin distances; s2p_utils.pdf.DEPOSITS)
    pdf_deposit: str = "floor"
    pdf_scale: float = (
        1.0  # multiplies the PDF values (g(r) peaks reach ~10; 0.25 keeps LSTM gates unsaturated)
    )
    default_split: str = "random73"
    grid_unit: str = ""
    description: str = ""


PRESETS: dict[str, ExperimentConfig] = {
    "e3nn_phdos": ExperimentConfig(
        name="e3nn_phdos",
        dataset="e3nn_phdos",
        model=ModelConfig(max_atoms=128, lstm_units=256, n_out=51),
        train=TrainConfig(batch_size=32, lr_drop_every=2, legacy_epochs=30, target_scaling="none"),
        default_split="chen2021",
        grid_unit="cm^-1",
        description="Phonon DOS of 1522 crystals (Chen 2021 / e3nn), 51 points on 0–1000 cm⁻¹.",
    ),
    "e3nn_phdos_plus": ExperimentConfig(
        name="e3nn_phdos_plus",
        dataset="e3nn_phdos",
        model=ModelConfig(max_atoms=128, lstm_units=256, n_out=51, n_pdf_bins=105, structure_dropout=0.2),
        train=TrainConfig(
            batch_size=32,
            lr_drop_every=8,
            max_epochs=300,
            fixed_patience=40,
            target_scaling="none",
            permute_atoms=True,
            test_time_permutations=4,
            ensemble=5,
            target_smoothing=0.5,
            loss="mae_cdf",
        ),
        element_descriptors=True,
        pdf_scale=0.25,
        default_split="chen2021",
        grid_unit="cm^-1",
        description=(
            "Beyond the paper on e3nn phonon DOS: the same network family (BiLSTM on per-atom g(r) + element "
            "embedding + LSTM), with element descriptors on every PDF row, atom-order augmentation, dropout "
            "0.2 on the structure LSTM inputs, training targets smoothed by half a grid point, a spectrum-shape "
            "loss (MAE + mean |ΔCDF|, a W₁-like term), validation early stopping and a 5-member seed ensemble whose "
            "spread, calibrated on validation, is the uncertainty."
        ),
    ),
    "mat2spec_edos": ExperimentConfig(
        name="mat2spec_edos",
        dataset="mat2spec_edos",
        model=ModelConfig(max_atoms=128, lstm_units=256, n_out=128),
        train=TrainConfig(batch_size=64, lr_drop_every=25, legacy_epochs=128),
        default_split="mat2spec",
        grid_unit="eV",
        description="Mat2Spec electronic DOS, 128 points on −4…4 eV.",
    ),
    "mat2spec_edos_simple_rdf": ExperimentConfig(
        name="mat2spec_edos_simple_rdf",
        dataset="mat2spec_edos",
        model=ModelConfig(max_atoms=128, lstm_units=256, n_out=128),
        # The notebook's logged run (batch 32, 192 epochs, LR step every 48) differs from its source
        # (64, 384, 32); the logged settings produced the published curves.
        train=TrainConfig(batch_size=32, lr_drop_every=48, legacy_epochs=192, target_scaling="global_minmax"),
        featurizer="simple_rdf",
        default_split="mat2spec",
        grid_unit="eV",
        description="Mat2Spec electronic DOS with the unit-cell-only simple RDF features.",
    ),
    "jarvis_phdos": ExperimentConfig(
        name="jarvis_phdos",
        dataset="jarvis_phdos",
        model=ModelConfig(max_atoms=64, lstm_units=128, n_out=200),
        train=TrainConfig(batch_size=16, lr_drop_every=8, legacy_epochs=64, target_scaling="none"),
        grid_unit="bin",
        description="JARVIS-DFT phonon DOS (pdos_elast), 200 points.",
    ),
    "jarvis_edos": ExperimentConfig(
        name="jarvis_edos",
        dataset="jarvis_edos",
        model=ModelConfig(max_atoms=160, lstm_units=128, n_out=300),
        train=TrainConfig(batch_size=32, lr_drop_every=8, legacy_epochs=64, target_scaling="none"),
        grid_unit="bin",
        description="JARVIS-DFT electronic DOS (edos_up), 300 points.",
    ),
    "sto_edos": ExperimentConfig(
        name="sto_edos",
        dataset="sto_edos",
        model=ModelConfig(max_atoms=8, lstm_units=128, n_out=500, grid_input=True),
        train=TrainConfig(batch_size=32, lr_drop_every=8, legacy_epochs=64),
        grid_unit="eV",
        description="SrTiO₃ eDOS (Fung et al. 2022), 500 points with per-structure energy grid.",
    ),
    "surface_edos": ExperimentConfig(
        name="surface_edos",
        dataset="surface_edos",
        model=ModelConfig(max_atoms=32, lstm_units=128, n_out=500, grid_input=True),
        train=TrainConfig(batch_size=16, lr_drop_every=8, legacy_epochs=64),
        grid_unit="eV",
        description="Alloy-surface eDOS (Fung et al. 2022), 500 points with per-structure energy grid.",
    ),
    "mp_phdos": ExperimentConfig(
        name="mp_phdos",
        dataset="mp_phdos",
        model=ModelConfig(max_atoms=64, lstm_units=256, n_out=128, grid_input=True),
        train=TrainConfig(batch_size=32, lr_drop_every=8),
        grid_unit="cm^-1",
        description="Materials Project phonon DOS (mp-api), 128 points with frequency grid.",
    ),
}

# The e3nn_phdos_plus recipe and features with a permutation-invariant atom encoder in place of the
# atom-sequence LSTM: the atom order means nothing to it, so no order augmentation, no test-time orders.
PRESETS["e3nn_phdos_set"] = replace(
    PRESETS["e3nn_phdos_plus"],
    name="e3nn_phdos_set",
    model=ModelConfig(
        max_atoms=128, lstm_units=0, n_out=51, n_pdf_bins=105, structure_dropout=0.1, structure_encoder="set"
    ),
    train=replace(PRESETS["e3nn_phdos_plus"].train, permute_atoms=False, test_time_permutations=0),
    description=(
        "e3nn phonon DOS with a permutation-invariant atom encoder: the features of e3nn_phdos_plus "
        "(g(r) × 0.25 + element descriptors per atom) through a per-atom Dense, the element embedding, "
        "two blocks of masked self-attention over the atoms and masked mean + max pooling, so no "
        "atom-order augmentation or test-time permutations are needed; validation early stopping, "
        "targets smoothed by half a grid point, a 5-member seed ensemble with calibrated spread."
    ),
)


@dataclass(frozen=True)
class Recipe:
    """The ``legacy``/``fixed`` switch resolved into explicit choices, once (:func:`resolve_recipe`).

    Nothing below :mod:`s2p_utils.config` reads a mode string: featurisation, scaling, training and
    prediction read these fields. ``mode`` is kept as a label for run names and reports only.

    Attributes:
        mode: ``"legacy"`` or ``"fixed"`` (label).
        legacy_features: the authors' featurisation bit for bit (PDF in Å⁻³ with misaligned shells; simple
            RDF without periodic images), see :mod:`s2p_utils.featurize`; otherwise the corrected g(r).
        scaler_fit_on: rows the target scaler is fitted on: ``"all_rows"`` (the notebooks' leak, test rows
            included) or ``"train_rows"``.
        stop_on: early-stopping monitor, ``"loss"`` (training loss; never fires in practice) or ``"val_loss"``.
        patience, min_delta: early-stopping settings for ``stop_on``.
        restore_best: restore the best-validation-epoch weights at the end (else the last epoch's).
        bucketed: length-bucketed batches (:mod:`s2p_utils.batching`), never for grid-input networks.
        epochs: maximum number of epochs.
        predict_batch_size: network batch size at evaluation and prediction (the notebooks' 32 in legacy).
    """

    mode: str
    legacy_features: bool
    scaler_fit_on: str
    stop_on: str
    patience: int
    min_delta: float
    restore_best: bool
    bucketed: bool
    epochs: int
    predict_batch_size: int


# e3nn_phdos_plus with mass-weighted g(r) channels beside g(r) on every atom (featurizer "pdf_mass_bond":
# g(r), the mass- and the 1/sqrt(mass)-weighted g(r), the neighbour counts by bond length over the sum of
# covalent radii, 4 × 100 bins + 5 element descriptors); 5 members, each
# averaging 2 atom orders of its own (10 distinct orders, 10 network passes per crystal instead of 25) and
# Adam at 3e-3 (three times the paper's rate). Chosen on the chen2021 validation split (benchmarks/README.md:
# lever tables averaged over seeds, ensemble size and test-time orders). Until 2026-12-02 it had 3 members
# sharing 5 orders and the paper's 1e-3; until the fourth lever round (same day) the 2-block "pdf_mass"
# (205 values per atom) and 2e-3; until the fifth round (same day) its spectra were not divided by their peak
# (output_norm "none"); until 2026-12-03 (tenth lever) the 3-block "pdf_mass_freq" (305 values per atom)
# without the bond-length block.
PRESETS["e3nn_phdos_mass"] = replace(
    PRESETS["e3nn_phdos_plus"],
    name="e3nn_phdos_mass",
    model=replace(PRESETS["e3nn_phdos_plus"].model, n_pdf_bins=405, output_norm="max"),
    train=replace(
        PRESETS["e3nn_phdos_plus"].train,
        ensemble=5,
        test_time_permutations=1,
        member_orders=True,
        learning_rate=3e-3,
    ),
    featurizer="pdf_mass_bond",
    description=(
        "e3nn phonon DOS, e3nn_phdos_plus with mass information in the structural input: every atom's row holds "
        "its g(r), the same g(r) with each neighbour weighted by its mass and by 1/sqrt(mass) (each over the "
        "crystal's mean; which shells hold heavy or light atoms, what sets phonon frequencies), its neighbours "
        "counted by bond length over the sum of covalent radii (short, stiff bonds) and 5 element "
        "descriptors, read by the paper's BiLSTM + element embedding + structure LSTM; atom-order augmentation, "
        "every predicted spectrum divided by its own peak (the targets' scale and that of the max-renormalised "
        "scores), the spectrum-shape loss, Adam at 3e-3, validation early stopping and a 5-member seed ensemble "
        "(each member averaging two atom orders of its own) with calibrated spread."
    ),
)


def check_epochs(epochs: Any) -> int:
    """``epochs`` as a positive int; 0 or fewer would save an untrained model labelled as trained.

    Raises:
        ValueError: not an integer ≥ 1.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"the number of epochs must be a whole number ≥ 1, got {epochs!r}")
    return int(epochs)


def resolve_recipe(
    config: ExperimentConfig, mode: str = "fixed", *, epochs: int | None = None, smoke: bool = False
) -> Recipe:
    """Resolve ``mode`` for ``config`` into a :class:`Recipe`.

    Args:
        config: the experiment.
        mode: ``"legacy"`` or ``"fixed"``.
        epochs: maximum epochs (default: :data:`SMOKE_EPOCHS` when ``smoke``, else ``legacy_epochs`` in
            legacy mode and ``max_epochs`` otherwise).
        smoke: a smoke run.

    Raises:
        ValueError: an unknown mode or ``epochs`` below 1.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    legacy = mode == "legacy"
    train = config.train
    if epochs is None:
        epochs = SMOKE_EPOCHS if smoke else (train.legacy_epochs if legacy else train.max_epochs)
    epochs = check_epochs(epochs)
    return Recipe(
        mode=mode,
        legacy_features=legacy,
        scaler_fit_on="all_rows" if legacy else "train_rows",
        stop_on="loss" if legacy else "val_loss",
        patience=train.patience if legacy else train.fixed_patience,
        min_delta=train.min_delta if legacy else train.fixed_min_delta,
        restore_best=not legacy,
        bucketed=train.bucketed and not legacy and not config.model.grid_input,
        epochs=epochs,
        predict_batch_size=32 if legacy else 256,
    )


def config_to_dict(config: ExperimentConfig | Recipe) -> dict[str, Any]:
    """A JSON-ready dict of ``config`` (nested dataclasses become dicts)."""
    return asdict(config)


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """The :class:`ExperimentConfig` written by :func:`config_to_dict`.

    Raises:
        ValueError: a missing or unknown field (e.g. a record written by a newer version).
    """

    def build(cls: type, values: Any, where: str) -> Any:
        if not isinstance(values, dict):
            raise ValueError(f"{where}: expected an object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown} (written by a newer struct2prop?)")
        return cls(**values)

    data = dict(data)
    try:
        data["model"] = build(ModelConfig, data.get("model"), "config.model")
        data["train"] = build(TrainConfig, data.get("train", {}), "config.train")
        return build(ExperimentConfig, data, "config")
    except TypeError as error:  # a required field missing
        raise ValueError(f"config: {error}") from None


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """The :class:`Recipe` written by :func:`config_to_dict`; ``ValueError`` on missing/unknown fields."""
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(Recipe)}:
        raise ValueError(f"recipe: expected the fields {[f.name for f in fields(Recipe)]}, got {data!r:.200}")
    return Recipe(**data)


def get_preset(name: str) -> ExperimentConfig:
    """Return the preset called ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None
