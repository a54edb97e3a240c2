"""Where things live: the download cache, the offline data mirror, the results folder.

Every location can be overridden by an environment variable, so that notebooks, ``make`` and CI
agree without passing paths around:

``S2P_CACHE_DIR``    download and feature cache (default ``~/.cache/s2p``)
``S2P_DATA_MIRROR``  an offline copy of the upstream/prepared files (default: none)
``S2P_RESULTS_DIR``  metrics, predictions and figures (default ``./results``)
``S2P_SMOKE``        ``1`` shrinks every experiment to tiny data and 2 epochs (tests, CI)
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The download/feature cache directory (created on demand)."""
    path = Path(override or os.environ.get("S2P_CACHE_DIR") or Path.home() / ".cache" / "s2p")
    path = path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dir(override: str | os.PathLike | None = None) -> Path | None:
    """The offline data mirror, or ``None`` when none is configured."""
    value = override or os.environ.get("S2P_DATA_MIRROR")
    if not value:
        return None
    return Path(value).expanduser()


def _default_results() -> Path:
    # A notebook opened from ``notebooks/`` writes to the checkout's ``results/``, not ``notebooks/results``.
    here = Path.cwd()
    if here.name == "notebooks" and (here.parent / "pyproject.toml").is_file():
        return here.parent / "results"
    return Path("results")


def results_dir(override: str | os.PathLike | None = None) -> Path:
    """The results folder (``metrics/``, ``predictions/``, ``figures/`` below it; created on demand).

    ``override``, else ``$S2P_RESULTS_DIR``, else ``./results`` (``../results`` when run from ``notebooks/``).
    """
    path = Path(override or os.environ.get("S2P_RESULTS_DIR") or _default_results()).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def smoke_mode() -> bool:
    """True when ``S2P_SMOKE`` is set to a true value (tiny data, 2 epochs)."""
    return os.environ.get("S2P_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}
