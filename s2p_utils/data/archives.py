"""Reading archive members with decompression limits, and whole-archive integrity checks.

Upstream data arrives as zip files (Mat2Spec, JARVIS) and gzip tarballs (Fung et al.). A small
archive can declare or hold a huge member (a "zip bomb": a 1.5 MB zip that inflates to gigabytes),
so every member read by the converters goes through :func:`read_zip_member` /
:func:`read_tar_member`, which refuse a member when

* its uncompressed size exceeds :func:`max_member_bytes` — default 2 GiB (``2**31`` bytes), raise
  it with ``S2P_MAX_DECOMPRESSED_BYTES``; no upstream member is near it (the largest, the JARVIS
  JSON, is a few hundred MB); or
* it inflates more than :func:`max_ratio` times its compressed size — default 200, set with
  ``S2P_MAX_COMPRESSION_RATIO``; real DOS data (float text and ``.npy``) compresses 2–20×. Members
  below 1 MiB are exempt from the ratio test (tiny files of zeros legitimately compress well).

Both are checked against the size the archive declares *and* while reading (a member cannot inflate
past the limit by lying in its header). For a tarball the ratio is that of everything read so far
to the whole ``.tar.gz`` file. Errors are :class:`ArchiveError` (a ``ValueError``) naming the
archive and the member.

:func:`check_archive` reads every member once (zip CRCs and the gzip trailer are verified by the
standard library on the way) before a download is accepted or an archive converted, so a truncated
or corrupted archive is reported naming the bad member instead of failing half-way through a
conversion.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

__all__ = [
    "ArchiveError",
    "MIN_RATIO_CHECKED_BYTES",
    "check_archive",
    "max_member_bytes",
    "max_ratio",
    "read_tar_member",
    "read_zip_member",
]

#: Default cap on one member's uncompressed size, bytes (2 GiB).
DEFAULT_MAX_MEMBER_BYTES = 2**31
#: Default cap on uncompressed / compressed size.
DEFAULT_MAX_RATIO = 200.0
#: Members (or tarball prefixes) below this many uncompressed bytes are exempt from the ratio test.
MIN_RATIO_CHECKED_BYTES = 1 << 20
_CHUNK = 1 << 20
_HINT = "; the archive is truncated or corrupted — delete it and fetch it again"
_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError)


class ArchiveError(ValueError):
    """An archive member is unreadable, corrupt or larger than the decompression limits allow."""


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a number") from None
    if value <= 0:
        raise ValueError(f"{name}={text!r}: expected a positive number")
    return value


def max_member_bytes() -> int:
    """Largest uncompressed member accepted, bytes (``S2P_MAX_DECOMPRESSED_BYTES``, default 2 GiB)."""
    return int(_env_number("S2P_MAX_DECOMPRESSED_BYTES", DEFAULT_MAX_MEMBER_BYTES))


def max_ratio() -> float:
    """Largest accepted uncompressed/compressed size ratio (``S2P_MAX_COMPRESSION_RATIO``, default 200)."""
    return _env_number("S2P_MAX_COMPRESSION_RATIO", DEFAULT_MAX_RATIO)


def _check_size(size: int, compressed: int, where: str, *, declared: bool) -> None:
    """Raise :class:`ArchiveError` when ``size`` (uncompressed bytes) breaks a limit."""
    how = "declares" if declared else "inflates to"
    limit = max_member_bytes()
    if size > limit:
        raise ArchiveError(
            f"{where} {how} {size} bytes uncompressed, above the limit of {limit} bytes "
            "(raise S2P_MAX_DECOMPRESSED_BYTES if this archive is trusted)"
        )
    ratio = max_ratio()
    if size >= MIN_RATIO_CHECKED_BYTES and size > ratio * max(compressed, 1):
        raise ArchiveError(
            f"{where} {how} {size} bytes from {compressed} compressed bytes, a ratio above the limit "
            f"of {ratio:g} (a decompression bomb?; raise S2P_MAX_COMPRESSION_RATIO if this archive is trusted)"
        )


def _read_limited(handle: IO[bytes], compressed: int, where: str, *, keep: bool) -> bytes:
    """Read ``handle`` to the end in chunks, checking the limits as bytes arrive."""
    parts: list[bytes] = []
    total = 0
    while chunk := handle.read(_CHUNK):
        total += len(chunk)
        _check_size(total, compressed, where, declared=False)
        if keep:
            parts.append(chunk)
    return b"".join(parts)


def _read_zip(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: str | os.PathLike, *, keep: bool) -> bytes:
    where = f"{archive}:{info.filename}"
    _check_size(info.file_size, info.compress_size, where, declared=True)
    try:
        with zf.open(info) as handle:  # CRC-32 checked by zipfile at the end of the member
            return _read_limited(handle, info.compress_size, where, keep=keep)
    except ArchiveError:
        raise
    except _READ_ERRORS as error:
        raise ArchiveError(f"{where}: bad archive member ({type(error).__name__}: {error}){_HINT}") from error


def read_zip_member(zf: zipfile.ZipFile, member: str | zipfile.ZipInfo, archive: str | os.PathLike) -> bytes:
    """The bytes of ``member`` of ``zf``, within the decompression limits.

    Raises:
        KeyError: no such member.
        ArchiveError: the member is over a limit or unreadable (named ``<archive>:<member>``).
    """
    info = member if isinstance(member, zipfile.ZipInfo) else zf.getinfo(member)
    return _read_zip(zf, info, archive, keep=True)


def _read_tar(
    tar: tarfile.TarFile, member: tarfile.TarInfo, archive: str | os.PathLike, read_so_far: int, *, keep: bool
) -> bytes:
    where = f"{archive}:{member.name}"
    compressed = Path(archive).stat().st_size
    _check_size(member.size, compressed, where, declared=True)
    _check_size(
        read_so_far + member.size, compressed, f"{archive} (up to member {member.name})", declared=True
    )
    try:
        handle = tar.extractfile(member)
        if handle is None:
            return b""
        with handle:
            return _read_limited(handle, compressed, where, keep=keep)
    except ArchiveError:
        raise
    except _READ_ERRORS as error:
        raise ArchiveError(f"{where}: bad archive member ({type(error).__name__}: {error}){_HINT}") from error


def read_tar_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, archive: str | os.PathLike, *, read_so_far: int = 0
) -> bytes:
    """The bytes of regular-file ``member`` of ``tar``, within the decompression limits.

    ``read_so_far`` (uncompressed bytes of the earlier members) makes the ratio test apply to the
    whole stream: ``read_so_far + member.size`` against the size of the ``.tar.gz`` file.
    """
    return _read_tar(tar, member, archive, read_so_far, keep=True)


def _check_zip(path: Path) -> int:
    try:
        zf = zipfile.ZipFile(path)
    except _READ_ERRORS as error:
        raise ArchiveError(f"{path}: not a readable zip archive ({error}){_HINT}") from error
    with zf:
        infos = [info for info in zf.infolist() if not info.is_dir()]
        for info in infos:
            _read_zip(zf, info, path, keep=False)
    return len(infos)


def _check_targz(path: Path) -> int:
    total, count, current = 0, 0, "(archive header)"
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                current = member.name
                if member.isfile():
                    _read_tar(tar, member, path, total, keep=False)
                    total += member.size
                    count += 1
    except ArchiveError:
        raise
    except _READ_ERRORS as error:
        raise ArchiveError(
            f"{path}: bad archive member {current!r} ({type(error).__name__}: {error}){_HINT}"
        ) from error
    return count


def check_archive(path: str | os.PathLike, name: str | None = None) -> int | None:
    """Read every member of a ``.zip`` or ``.tar.gz``/``.tgz`` once; return the number of files.

    ``name`` decides the format when ``path`` has a temporary name (``.<file>.tmp<pid>-<thread>``); other
    names return ``None`` without reading.

    Raises:
        ArchiveError: unreadable archive or member (named), or a member over the decompression limits.
    """
    path = Path(path)
    lower = (name or path.name).lower()
    if lower.endswith(".zip"):
        return _check_zip(path)
    if lower.endswith((".tar.gz", ".tgz")):
        return _check_targz(path)
    return None
