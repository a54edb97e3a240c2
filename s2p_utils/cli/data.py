"""``s2p data list`` and ``s2p data fetch NAME...``."""

from __future__ import annotations

import argparse

from s2p_utils.data.registry import REGISTRY, dataset_status, human_size, load, upstream_size_text

__all__ = ["cmd_list", "cmd_fetch", "format_table"]


def format_table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned plain-text table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _size_text(name: str) -> str:
    spec = REGISTRY[name]
    if spec.files:
        return upstream_size_text(spec)
    if spec.prepared is not None:
        return f"{human_size(spec.prepared.size)} (prepared)"
    return "API"


def cmd_list(args: argparse.Namespace) -> int:
    """Print every dataset with kind, size, grid, licence and where it would load from."""
    mirror = getattr(args, "mirror", None)
    cache_dir = getattr(args, "cache_dir", None)
    rows = []
    for name, spec in REGISTRY.items():
        rows.append(
            [
                name,
                spec.kind,
                str(spec.n) if spec.n is not None else "?",
                str(spec.n_grid),
                _size_text(name),
                spec.license,
                dataset_status(name, mirror=mirror, cache_dir=cache_dir),
            ]
        )
    print(format_table(rows, ["name", "kind", "n", "points", "upstream size", "licence", "status"]))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Load (download or copy from the mirror, verify, convert, cache) each named dataset.

    ``--refresh`` deletes the prepared cache file first, so it is rebuilt from the mirror or the upstream
    files (cached upstream files are re-verified and fetched again when they fail).
    """
    names = args.name if isinstance(args.name, list) else [args.name]
    for name in names:
        dataset = load(
            name,
            mirror=getattr(args, "mirror", None),
            cache_dir=getattr(args, "cache_dir", None),
            refresh=bool(getattr(args, "refresh", False)),
        )
        splits = ", ".join(
            f"{split} {'/'.join(str(len(parts[p])) for p in ('train', 'val', 'test'))}"
            for split, parts in dataset.splits.items()
        )
        print(
            f"{name}: {len(dataset)} structures, targets {tuple(dataset.targets.shape)} "
            f"({dataset.grid_unit or 'no unit'}); splits: {splits}; from {dataset.meta.get('origin', '?')}"
        )
    return 0
