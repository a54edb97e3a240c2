"""Verified downloads: pooch's HTTP transport (with a tqdm progress bar) plus our own checks.

Every upstream file in the registry carries what is known about it: a sha256, or — for files pinned
to a GitHub commit — the git blob SHA-1 (``sha1(b"blob <size>\\0" + content)``, the hash shown by
``git ls-tree``), and the byte size where known. :func:`download_file` writes to a temporary
``.<dest>.tmp<pid>-<thread>`` file (:func:`s2p_utils.paths.atomic_path`), checks size, hash and (for a zip or tarball) archive integrity, and only
then renames it to ``dest``; on any failure — a checksum mismatch, a dropped connection, Ctrl-C — the
partial file is deleted, so a partial file never counts as the file and the next attempt restarts
cleanly (stale temporary files of dead processes are removed too).

Trust model for files whose publisher gives no checksum (Mat2Spec_DATA.zip, the JARVIS zip, the Fung
et al. tarballs): *trust on first use*. The sha256 and size of the first successful download (or of a
cached copy found without a record) are recorded in the lock file ``<cache>/checksums.lock.json``
(:class:`TrustLock`, keyed by URL) and logged (``logging`` warning, on stderr unless logging is
configured otherwise) with how to pin them in the registry; every later
download or use of that file is verified against the lock, and a mismatch is a :class:`ChecksumError`
naming the file, the expected and the actual digest. ``S2P_STRICT_CHECKSUMS=1`` refuses every file
not pinned in the package itself (:class:`UnverifiedDownloadError`). ``S2P_ALLOW_UNVERIFIED`` (the
old opt-in for such downloads) is no longer needed and is ignored, with a deprecation warning.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pooch

from s2p_utils.paths import atomic_path, atomic_write_text

__all__ = [
    "LOCK_FILENAME",
    "ChecksumError",
    "DownloadError",
    "TrustLock",
    "UnverifiedDownloadError",
    "allow_unverified",
    "discard_corrupt",
    "download_file",
    "file_sha256",
    "git_blob_sha1",
    "strict_checksums",
    "verify_file",
    "verify_local_file",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: The trust-on-first-use lock file, in the cache root.
LOCK_FILENAME = "checksums.lock.json"
LOCK_FORMAT = "s2p-checksums/1"
_TRUE = {"1", "true", "yes", "on"}
# The temporary names of paths.atomic_path(dest, suffix=""): ".<dest name>.tmp<pid>-<thread>".
_PART = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)-\d+$")


class ChecksumError(ValueError):
    """A file's size or hash differs from the registry (the file has been deleted)."""


class DownloadError(RuntimeError):
    """The transfer itself failed (no network, HTTP error, connection cut)."""


class UnverifiedDownloadError(ValueError):
    """Strict mode (``S2P_STRICT_CHECKSUMS=1``) refused a file whose checksum is not pinned in the package."""


def strict_checksums() -> bool:
    """True when ``S2P_STRICT_CHECKSUMS`` is set to a true value: only files pinned in the package are used."""
    return os.environ.get("S2P_STRICT_CHECKSUMS", "").strip().lower() in _TRUE


def allow_unverified() -> bool:
    """Deprecated: files without a published checksum are now accepted on first use (trust on first use).

    Returns ``True`` unless strict mode is on; warns when the retired ``S2P_ALLOW_UNVERIFIED`` is set.
    """
    if os.environ.get("S2P_ALLOW_UNVERIFIED", "").strip():
        warnings.warn(
            "S2P_ALLOW_UNVERIFIED is no longer needed and is ignored: files without a published checksum "
            "are verified against the sha256 recorded at first use (<cache>/checksums.lock.json); set "
            "S2P_STRICT_CHECKSUMS=1 to refuse them instead",
            DeprecationWarning,
            stacklevel=2,
        )
    return not strict_checksums()


def _strict_refusal(url: str, what: str) -> UnverifiedDownloadError:
    return UnverifiedDownloadError(
        f"refusing {what} ({url}): S2P_STRICT_CHECKSUMS is set and no sha256 or git blob for this file is "
        "pinned in the package registry (s2p_utils/data/registry.py). Pin it there, or unset "
        "S2P_STRICT_CHECKSUMS to verify it against the digest recorded at first use."
    )


@dataclass(frozen=True)
class TrustLock:
    """The trust-on-first-use lock file: URL → ``{"sha256", "size", "filename", "recorded"}``.

    JSON ``{"format": "s2p-checksums/1", "files": {url: entry}}``, written atomically (temporary file
    plus rename). A missing file is an empty lock; an unreadable one is an error naming it.
    """

    path: Path

    @classmethod
    def in_cache(cls, cache_dir: str | os.PathLike) -> TrustLock:
        """The lock of cache folder ``cache_dir``: ``<cache_dir>/checksums.lock.json``."""
        return cls(Path(cache_dir) / LOCK_FILENAME)

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every recorded file, by URL."""
        if not self.path.is_file():
            return {}
        try:
            payload = json.loads(self.path.read_text(encoding="utf-8"))
            files = payload["files"]
            if payload.get("format") != LOCK_FORMAT or not isinstance(files, dict):
                raise ValueError(f"format {payload.get('format')!r}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{self.path}: unreadable checksum lock file ({error}); fix or delete it "
                "(the next download of each file is then trusted again on first use)"
            ) from error
        return files

    def entry(self, url: str) -> dict[str, Any] | None:
        """The recorded entry of ``url``, or ``None``."""
        return self.entries().get(url)

    def record(self, url: str, sha256: str, size: int, filename: str) -> dict[str, Any]:
        """Record ``url``'s digest (re-reading the file first, so concurrent records of other URLs survive)."""
        files = self.entries()
        entry = {
            "sha256": sha256,
            "size": int(size),
            "filename": filename,
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        files[url] = entry
        atomic_write_text(
            self.path, json.dumps({"format": LOCK_FORMAT, "files": files}, indent=1, sort_keys=True) + "\n"
        )
        return entry


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


def _check_against_lock(url: str, path: Path, lock: TrustLock, origin: str) -> str | None:
    """Compare an unpinned file with its lock entry; return its sha256 when it is not recorded yet."""
    digest = file_sha256(path)
    entry = lock.entry(url)
    if entry is None:
        return digest
    if digest != entry["sha256"]:
        raise ChecksumError(
            f"sha256 mismatch for {origin}: expected {entry['sha256']} (recorded at first use on "
            f"{entry.get('recorded', '?')} in {lock.path}), got {digest}. The file changed since it was "
            f"first trusted, or it is corrupt; if the change is legitimate, delete the entry of {url} "
            f"from {lock.path}"
        )
    return None


def _trust_on_first_use(url: str, path: Path, digest: str, lock: TrustLock | None, origin: str) -> None:
    """Record ``digest`` in ``lock`` and log it (a warning: an unpinned file was accepted) with how to pin it."""
    size = path.stat().st_size
    if lock is not None:
        lock.record(url, digest, size, _final_name(path))
    recorded = (
        f"recorded in {lock.path}, and every later use is verified against it"
        if lock is not None
        else "not recorded (no lock file given)"
    )
    logger.warning(
        "first use of %s (%s): sha256 %s, %d bytes; %s. To pin it in the package, add "
        'sha256="%s", size=%d to its UpstreamFile in s2p_utils/data/registry.py.',
        url,
        origin,
        digest,
        size,
        recorded,
        digest,
        size,
    )


def verify_local_file(
    path: str | os.PathLike,
    url: str,
    *,
    sha256: str | None = None,
    git_sha1: str | None = None,
    size: int | None = None,
    lock: TrustLock | None = None,
    origin: str | None = None,
    check: Callable[[Path], Any] | None = None,
) -> None:
    """Verify a copy (cached, mirrored or just downloaded) of the file published at ``url``.

    Pinned files are checked against their size and sha256 / git blob; unpinned ones against the
    digest recorded in ``lock``, or refused in strict mode. ``check`` (e.g.
    :func:`s2p_utils.data.archives.check_archive`) runs next; only then is an unpinned file seen for
    the first time recorded in ``lock`` (trust on first use), so a corrupt archive is never trusted.
    With ``lock=None`` (the user's own mirror copy) an unpinned file is taken as it is, after ``check``.

    Raises:
        ChecksumError: size or digest mismatch (naming file, expected, actual).
        UnverifiedDownloadError: strict mode and nothing pinned.
        ValueError: ``check`` failed (e.g. a bad archive member).
    """
    path = Path(path)
    where = origin or str(path)
    verify_file(path, sha256=sha256, git_sha1=git_sha1, size=size, origin=where)
    new_digest = None
    if not (sha256 or git_sha1):
        if strict_checksums():
            raise _strict_refusal(url, where)
        if lock is not None:
            new_digest = _check_against_lock(url, path, lock, where)
    if check is not None:
        try:
            check(path)
        except ValueError as error:
            if where == str(path):
                raise
            raise type(error)(f"{where}: {error}") from error
    if new_digest is not None:
        _trust_on_first_use(url, path, new_digest, lock, where)


def discard_corrupt(path: Path, reason: str, then: str = "fetching it again") -> None:
    """Delete a cached file that failed verification, saying so (a logged warning: ``<reason>; deleting ...``)."""
    logger.warning("%s; deleting it and %s", reason, then)
    path.unlink(missing_ok=True)


def _final_name(path: Path) -> str:
    """The file name a download's temporary file will get (``path.name`` if it is not one)."""
    match = _PART.match(path.name)
    return match["name"] if match else path.name


def _remove_stale_parts(dest: Path) -> None:
    """Delete partial downloads of ``dest`` left by processes that no longer run (a killed download)."""
    for stale in dest.parent.glob(f".{dest.name}.tmp*"):
        match = _PART.match(stale.name)
        if match is None or match["name"] != dest.name or int(match["pid"]) == os.getpid():
            continue
        pid_text = match["pid"]
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            stale.unlink(missing_ok=True)
        except OSError:
            pass


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    git_sha1: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    lock: TrustLock | None = None,
    check: Callable[[Path], Any] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and verify it; return ``dest``.

    The transfer goes through :class:`pooch.HTTPDownloader` (tqdm progress bar) into
    a temporary sibling (:func:`s2p_utils.paths.atomic_path`); after the size/hash checks (pinned values, else the digest recorded in
    ``lock``) and ``check(part)`` pass, an unpinned file's digest is recorded in ``lock`` on first use
    and the file is renamed to ``dest`` (atomic on one file system). An interrupted transfer leaves
    nothing behind; calling again restarts it cleanly.

    Raises:
        UnverifiedDownloadError: strict mode (``S2P_STRICT_CHECKSUMS=1``) and no checksum pinned.
        DownloadError: the HTTP transfer failed or was cut (message names the URL).
        ChecksumError: size or hash mismatch (the partial file is deleted first).
        ValueError: ``check`` refused the file (e.g. a bad archive member).
    """
    dest = Path(dest)
    pinned = bool(sha256 or git_sha1)
    if not pinned and not allow_unverified():  # strict mode (warns about the retired variable too)
        raise _strict_refusal(url, f"to download {dest.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(dest)
    with atomic_path(dest, suffix="") as part:
        downloader = pooch.HTTPDownloader(progressbar=progress, chunk_size=_CHUNK, timeout=timeout)
        try:
            downloader(url, str(part), None)
        except Exception as error:  # requests raises many types: connection, HTTP status, chunking
            raise DownloadError(f"download of {url} failed: {type(error).__name__}: {error}") from error
        verify_local_file(
            part, url, sha256=sha256, git_sha1=git_sha1, size=size, lock=lock, origin=url, check=check
        )
        if lock is None and not pinned:  # nowhere to record it: say what was accepted
            _trust_on_first_use(url, part, file_sha256(part), None, url)
    return dest
