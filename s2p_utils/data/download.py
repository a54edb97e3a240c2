"""Verified downloads: pooch's HTTP transport (with a progress bar) plus our own checks.

Every upstream file in the registry carries what is known about it: a sha256, or — for files pinned
to a GitHub commit — the git blob SHA-1 (``sha1(b"blob <size>\\0" + content)``, the hash shown by
``git ls-tree``), and the byte size where known. :func:`download_file` writes to a temporary
``<dest>.part-<pid>`` file, checks size and hash, and only then renames it to ``dest``; on any
failure the partial file is deleted and an error names the URL, the expected and the obtained value,
so nothing unverified is ever left in the cache.

A file for which no checksum is known is refused unless the environment variable
``S2P_ALLOW_UNVERIFIED=1`` is set; then it is accepted (size still checked when known) and its
sha256 is logged so that it can be pinned.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

__all__ = [
    "ChecksumError",
    "DownloadError",
    "UnverifiedDownloadError",
    "allow_unverified",
    "download_file",
    "file_sha256",
    "git_blob_sha1",
    "verify_file",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's size or hash differs from the registry (the file has been deleted)."""


class DownloadError(RuntimeError):
    """The transfer itself failed (no network, HTTP error, connection cut)."""


class UnverifiedDownloadError(ValueError):
    """A download without a known checksum was refused (set ``S2P_ALLOW_UNVERIFIED=1``)."""


def allow_unverified() -> bool:
    """True when ``S2P_ALLOW_UNVERIFIED`` is set to a true value."""
    return os.environ.get("S2P_ALLOW_UNVERIFIED", "").strip().lower() in {"1", "true", "yes", "on"}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(path: str | os.PathLike) -> str:
    """Hex git blob SHA-1 of a file: ``sha1(b"blob %d\\0" % size + content)``."""
    size = os.path.getsize(path)
    digest = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(
    path: str | os.PathLike,
    *,
    sha256: str | None = None,
    git_sha1: str | None = None,
    size: int | None = None,
    origin: str | None = None,
) -> None:
    """Check ``path`` against the known size and hashes.

    Raises:
        ChecksumError: naming ``origin`` (URL or mirror path), what was expected and what was found.
    """
    path = Path(path)
    where = origin or str(path)
    if size is not None:
        got_size = path.stat().st_size
        if got_size != size:
            raise ChecksumError(
                f"size mismatch for {where}: expected {size} bytes, got {got_size} bytes "
                "(truncated or corrupted transfer?)"
            )
    if sha256 is not None:
        got = file_sha256(path)
        if got != sha256.lower():
            raise ChecksumError(f"sha256 mismatch for {where}: expected {sha256.lower()}, got {got}")
    if git_sha1 is not None:
        got = git_blob_sha1(path)
        if got != git_sha1.lower():
            raise ChecksumError(
                f"git blob SHA-1 mismatch for {where}: expected {git_sha1.lower()}, got {got}"
            )


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    git_sha1: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and verify it; return ``dest``.

    The transfer goes through :class:`pooch.HTTPDownloader` into ``<dest>.part-<pid>``; after the
    size/hash checks pass it is renamed to ``dest`` (atomic on one file system).

    Raises:
        UnverifiedDownloadError: no sha256/git hash known and ``S2P_ALLOW_UNVERIFIED`` is not set.
        DownloadError: the HTTP transfer failed (message names the URL).
        ChecksumError: size or hash mismatch (the partial file is deleted first).
    """
    dest = Path(dest)
    if sha256 is None and git_sha1 is None:
        if not allow_unverified():
            raise UnverifiedDownloadError(
                f"refusing to download {url} -> {dest}: no checksum for this file is recorded in the "
                "registry. Set S2P_ALLOW_UNVERIFIED=1 to accept it unverified (its sha256 will be logged "
                "so you can pin it), or place a copy you trust in the offline mirror (S2P_DATA_MIRROR)."
            )
        logger.warning("downloading %s without a known checksum (S2P_ALLOW_UNVERIFIED is set)", url)
    import pooch

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.part-{os.getpid()}")
    try:
        downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=_CHUNK, timeout=timeout)
        try:
            downloader(url, str(part), None)
        except Exception as error:  # requests raises many types: connection, HTTP status, chunking
            raise DownloadError(f"download of {url} failed: {type(error).__name__}: {error}") from error
        verify_file(part, sha256=sha256, git_sha1=git_sha1, size=size, origin=url)
        if sha256 is None and git_sha1 is None:
            logger.warning("%s has sha256 %s (unverified; pin it in the registry)", url, file_sha256(part))
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest
