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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def ensure_dir(path: Path, what: str) -> Path:
    """Create the directory ``path`` (and parents) and return it.

    Raises:
        ValueError: ``path`` or one of its parents is a file (named, with ``what`` it was meant for).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"{what} {path} is not a directory (a file of that name is in the way)") from None
    return path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write to; moved onto ``path`` when the block succeeds.

    The temporary file (``.<name>.tmp<pid>-<thread><suffix>``, ``suffix`` default: ``path``'s own, which
    Keras needs to pick the format) is deleted when the block raises or is interrupted
    (``KeyboardInterrupt``), so a crash or Ctrl-C never leaves half-written or stray files behind. The
    rename is atomic on one file system: readers see the old file or the whole new one.
    """
    path = Path(path)
    tag = f"{os.getpid()}-{threading.get_ident()}"
    tmp = path.with_name(f".{path.name}.tmp{tag}{path.suffix if suffix is None else suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful replace


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically, creating its folder; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    return path


@contextmanager
def exclusive_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if needed) for the block.

    An advisory ``fcntl.flock`` lock: the operating system releases it when the holder exits or is killed,
    so a lock file left by a dead process never blocks anyone. The file records the holder's pid for
    the message. Without ``fcntl`` (Windows) the block runs unlocked.

    Raises:
        RuntimeError: another process holds the lock (``what`` names the resource in the message).
    """
    path = Path(path)
    ensure_dir(path.parent, f"the folder of the lock for {what}")
    with open(path, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RuntimeError(
                    f"{what} is in use by {holder} (lock {path}); wait for it to finish or choose another name"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The download/feature cache directory (created on demand; a file in the way is a ``ValueError``)."""
    path = Path(override or os.environ.get("S2P_CACHE_DIR") or Path.home() / ".cache" / "s2p")
    return ensure_dir(path.expanduser(), "the cache directory (S2P_CACHE_DIR)")


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
    return ensure_dir(path, "the results directory (S2P_RESULTS_DIR or --results-dir)")


def smoke_mode() -> bool:
    """True when ``S2P_SMOKE`` is set to a true value (tiny data, 2 epochs)."""
    return os.environ.get("S2P_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}
