"""``s2p reproduce [--datasets NAME ...]``: run the paper notebooks headless, write results/README.md."""

from __future__ import annotations

import argparse

from s2p_utils.reproduce import exit_status, reproduce

__all__ = ["cmd_reproduce"]


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``s2p reproduce [--datasets NAME ...] [--results-dir DIR]``."""
    outcomes, readme = reproduce(
        getattr(args, "datasets", None), results_dir=getattr(args, "results_dir", None)
    )
    attempted = [o for o in outcomes if o.run is not None]
    failed = [o for o in attempted if o.status != "ok"]
    missing = [o for o in outcomes if o.run is None]
    print(
        f"[reproduce] {len(attempted) - len(failed)} notebook run(s) ok, {len(failed)} failed, "
        f"{len(missing)} dataset(s) not obtainable; see {readme}"
    )
    if not attempted:
        print("[reproduce] nothing could be run: set S2P_DATA_MIRROR or go online (see `s2p data list`)")
    return exit_status(outcomes)
