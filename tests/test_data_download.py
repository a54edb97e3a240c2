"""Verified downloads against a local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import shutil
import socket
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from upstream_fixtures import make_jarvis_zip

from s2p_utils.data import registry
from s2p_utils.data.download import (
    ChecksumError,
    DownloadError,
    TrustLock,
    UnverifiedDownloadError,
    download_file,
    file_sha256,
    git_blob_sha1,
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture()
def server(tmp_path):
    """``(root, base_url)``: files written under ``root`` are served at ``base_url`` (loopback only)."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_git_blob_sha1_matches_git():
    # `printf 'hello world\n' | git hash-object --stdin` is a well-known value
    path = Path(__file__).with_name("_blob_probe.txt")
    try:
        path.write_bytes(b"hello world\n")
        assert git_blob_sha1(path) == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
        if shutil.which("git"):
            out = subprocess.run(
                ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
            )
            assert git_blob_sha1(path) == out.stdout.strip()
    finally:
        path.unlink(missing_ok=True)


def test_download_good_file_sha256_and_git_blob(server, tmp_path):
    root, url = server
    content = b"some upstream bytes\n" * 1000
    (root / "f.bin").write_bytes(content)
    dest = download_file(
        f"{url}/f.bin",
        tmp_path / "cache" / "f.bin",
        sha256=hashlib.sha256(content).hexdigest(),
        progress=False,
    )
    assert dest.read_bytes() == content
    blob = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    dest2 = download_file(
        f"{url}/f.bin", tmp_path / "cache" / "g.bin", git_sha1=blob, size=len(content), progress=False
    )
    assert file_sha256(dest2) == hashlib.sha256(content).hexdigest()
    assert sorted(p.name for p in _files(tmp_path / "cache")) == ["f.bin", "g.bin"]


def test_corrupted_download_is_deleted_and_named(server, tmp_path):
    root, url = server
    good, bad = b"expected content", b"tampered content"
    (root / "f.bin").write_bytes(bad)
    expected = hashlib.sha256(good).hexdigest()
    with pytest.raises(ChecksumError) as error:
        download_file(f"{url}/f.bin", tmp_path / "cache" / "f.bin", sha256=expected, progress=False)
    message = str(error.value)
    assert f"{url}/f.bin" in message and expected in message and hashlib.sha256(bad).hexdigest() in message
    assert _files(tmp_path / "cache") == []


def test_truncated_download_size_mismatch(server, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"x" * 500)
    with pytest.raises(ChecksumError, match="size mismatch.*expected 1000 bytes, got 500 bytes"):
        download_file(
            f"{url}/f.bin", tmp_path / "cache" / "f.bin", git_sha1="0" * 40, size=1000, progress=False
        )
    assert _files(tmp_path / "cache") == []


def test_first_download_is_recorded_then_verified_and_a_changed_file_refused(server, tmp_path, caplog):
    root, url = server
    (root / "f.zip").write_bytes(b"first content")
    lock = TrustLock.in_cache(tmp_path / "cache")
    digest = hashlib.sha256(b"first content").hexdigest()
    with caplog.at_level(logging.WARNING, logger="s2p_utils.data.download"):
        download_file(f"{url}/f.zip", tmp_path / "cache" / "a" / "f.bin", progress=False, lock=lock)
    message = caplog.text
    assert digest in message and f'sha256="{digest}", size=13' in message and "registry.py" in message
    entry = lock.entry(f"{url}/f.zip")
    assert entry["sha256"] == digest and entry["size"] == 13 and entry["filename"] == "f.bin"
    # second use: verified against the lock, nothing printed
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="s2p_utils.data.download"):
        download_file(f"{url}/f.zip", tmp_path / "cache" / "b" / "f.bin", progress=False, lock=lock)
    assert caplog.text == ""
    # the publisher's file changes: refused, naming file, expected and actual digest
    (root / "f.zip").write_bytes(b"other content")
    with pytest.raises(ChecksumError) as error:
        download_file(f"{url}/f.zip", tmp_path / "cache" / "c" / "f.bin", progress=False, lock=lock)
    text = str(error.value)
    assert f"{url}/f.zip" in text and digest in text and hashlib.sha256(b"other content").hexdigest() in text
    assert str(lock.path) in text
    assert not (tmp_path / "cache" / "c" / "f.bin").exists()
    assert list((tmp_path / "cache" / "c").glob("*")) == []
    assert lock.entry(f"{url}/f.zip")["sha256"] == digest


def test_strict_mode_refuses_unpinned_but_accepts_pinned(server, tmp_path, monkeypatch):
    root, url = server
    (root / "f.bin").write_bytes(b"abc")
    monkeypatch.setenv("S2P_STRICT_CHECKSUMS", "1")
    lock = TrustLock.in_cache(tmp_path / "cache")
    with pytest.raises(
        UnverifiedDownloadError, match="S2P_STRICT_CHECKSUMS.*not|S2P_STRICT_CHECKSUMS is set"
    ):
        download_file(f"{url}/f.bin", tmp_path / "cache" / "f.bin", progress=False, lock=lock)
    assert _files(tmp_path / "cache") == []
    pinned = hashlib.sha256(b"abc").hexdigest()
    out = download_file(
        f"{url}/f.bin", tmp_path / "cache" / "f.bin", sha256=pinned, progress=False, lock=lock
    )
    assert out.read_bytes() == b"abc" and not lock.path.exists()


def test_retired_allow_unverified_warns_and_is_ignored(server, tmp_path, monkeypatch):
    root, url = server
    (root / "f.bin").write_bytes(b"abc")
    monkeypatch.setenv("S2P_ALLOW_UNVERIFIED", "1")
    monkeypatch.setenv("S2P_STRICT_CHECKSUMS", "1")
    with pytest.warns(DeprecationWarning, match="S2P_ALLOW_UNVERIFIED is no longer needed"):
        with pytest.raises(UnverifiedDownloadError):
            download_file(f"{url}/f.bin", tmp_path / "cache" / "f.bin", progress=False)


class _DroppingHandler(http.server.BaseHTTPRequestHandler):
    """Announces the whole file, sends half of it, then drops the connection."""

    payload = b""

    def do_GET(self):  # noqa: N802 - http.server API
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


def test_interrupted_transfer_leaves_nothing_then_retry_succeeds(server, tmp_path):
    content = bytes(range(256)) * 4096  # 1 MiB
    handler = type("Handler", (_DroppingHandler,), {"payload": content})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    cache = tmp_path / "cache"
    lock = TrustLock.in_cache(cache)
    dest = cache / "d" / "f.bin"
    try:
        dropping = f"http://127.0.0.1:{httpd.server_address[1]}/f.bin"
        with pytest.raises(DownloadError, match=f"download of {dropping} failed"):
            download_file(dropping, dest, progress=False, lock=lock)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert _files(cache) == []  # no partial file, no lock entry
    root, url = server
    (root / "f.bin").write_bytes(content)
    assert download_file(f"{url}/f.bin", dest, progress=False, lock=lock).read_bytes() == content
    assert lock.entry(f"{url}/f.bin")["sha256"] == hashlib.sha256(content).hexdigest()
    assert [p.name for p in _files(cache / "d")] == ["f.bin"]


def test_stale_part_file_of_a_dead_process_is_removed(server, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"abc")
    dest = tmp_path / "cache" / "f.bin"
    dest.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (dest.parent / f".f.bin.tmp{dead.pid}-1").write_bytes(b"ab")  # paths.atomic_path's temporary name
    download_file(f"{url}/f.bin", dest, sha256=hashlib.sha256(b"abc").hexdigest(), progress=False)
    assert [p.name for p in _files(dest.parent)] == ["f.bin"]


def test_http_error_names_url(server, tmp_path):
    _, url = server
    with pytest.raises(DownloadError, match=f"{url}/missing.bin"):
        download_file(f"{url}/missing.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert not (tmp_path / "f.bin").exists()


# ----------------------------------------------------------------------------- through load()


def _jarvis_spec(url: str, **file_fields) -> registry.DatasetSpec:
    upstream = replace(registry.JARVIS_ZIP, url=url, folder=None, **file_fields)
    return replace(registry.REGISTRY["jarvis_edos"], name="toy_jarvis", files=(upstream,))


@pytest.fixture()
def jarvis_zip(tmp_path):
    path = tmp_path / "build" / registry.JARVIS_ZIP.filename
    info = make_jarvis_zip(path, 6)
    return path, info


def test_load_downloads_verifies_converts_and_caches(server, tmp_path, monkeypatch, jarvis_zip):
    root, url = server
    path, info = jarvis_zip
    shutil.copy(path, root / "j.zip")
    spec = _jarvis_spec(f"{url}/j.zip", sha256=file_sha256(path), size=path.stat().st_size)
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    cache = tmp_path / "cache"
    ds = registry.load(spec.name, cache_dir=cache, progress=False)
    assert ds.ids == info["ids"] and ds.targets.shape == (6, 300)
    np.testing.assert_allclose(ds.targets, info["edos"], rtol=1e-6)
    assert (cache / "toy_jarvis" / registry.JARVIS_ZIP.filename).is_file()
    assert (cache / "prepared" / "toy_jarvis.json.gz").is_file()
    (root / "j.zip").unlink()  # the second load must not touch the network
    again = registry.load(spec.name, cache_dir=cache, progress=False)
    assert again.meta["origin"].startswith("cache")
    np.testing.assert_array_equal(again.targets, ds.targets)


def test_load_corrupted_download_leaves_nothing(server, tmp_path, monkeypatch, jarvis_zip):
    root, url = server
    path, _ = jarvis_zip
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "j.zip").write_bytes(bytes(data))
    spec = _jarvis_spec(f"{url}/j.zip", sha256=file_sha256(path))
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    cache = tmp_path / "cache"
    with pytest.raises(
        ChecksumError, match=f"sha256 mismatch for {url}/j.zip: expected {file_sha256(path)}, got"
    ):
        registry.load(spec.name, cache_dir=cache, progress=False)
    assert _files(cache) == []


def test_load_truncated_zip_with_known_size(server, tmp_path, monkeypatch, jarvis_zip):
    root, url = server
    path, _ = jarvis_zip
    data = path.read_bytes()
    (root / "j.zip").write_bytes(data[: len(data) // 2])
    spec = _jarvis_spec(f"{url}/j.zip", sha256=file_sha256(path), size=len(data))
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="size mismatch"):
        registry.load(spec.name, cache_dir=cache, progress=False)
    assert _files(cache) == []


def test_load_truncated_zip_without_checksum(server, tmp_path, monkeypatch, jarvis_zip):
    root, url = server
    path, _ = jarvis_zip
    data = path.read_bytes()
    (root / "j.zip").write_bytes(data[: len(data) // 2])
    spec = _jarvis_spec(f"{url}/j.zip")
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="not a readable zip archive.*truncated or corrupted"):
        registry.load(spec.name, cache_dir=cache, progress=False)
    assert _files(cache) == []


def test_load_strict_mode_refused_before_any_download(server, tmp_path, monkeypatch, jarvis_zip):
    root, url = server
    path, _ = jarvis_zip
    shutil.copy(path, root / "j.zip")
    spec = _jarvis_spec(f"{url}/j.zip")
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    monkeypatch.setenv("S2P_STRICT_CHECKSUMS", "1")
    with pytest.raises(UnverifiedDownloadError, match=f"S2P_STRICT_CHECKSUMS is set .*{url}/j.zip"):
        registry.load(spec.name, cache_dir=tmp_path / "cache", progress=False)
    assert _files(tmp_path / "cache") == []
    assert registry.dataset_status(spec.name, cache_dir=tmp_path / "cache").startswith("refused")


def test_load_trust_on_first_use_cycle(server, tmp_path, monkeypatch, jarvis_zip, caplog):
    """First load records the digest; later uses verify the cached copy; a changed upstream is refused."""
    root, url = server
    path, info = jarvis_zip
    shutil.copy(path, root / "j.zip")
    spec = _jarvis_spec(f"{url}/j.zip", size=path.stat().st_size)
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    cache = tmp_path / "cache"
    assert registry.dataset_status(spec.name, cache_dir=cache) == "download (trust on first use)"
    with caplog.at_level(logging.WARNING, logger="s2p_utils.data.download"):
        assert registry.load(spec.name, cache_dir=cache, progress=False).ids == info["ids"]
    assert file_sha256(path) in caplog.text
    lock = TrustLock.in_cache(cache)
    assert lock.entry(f"{url}/j.zip")["sha256"] == file_sha256(path)
    # second use: the cached upstream copy is verified against the lock before converting again
    cached_zip = cache / "toy_jarvis" / registry.JARVIS_ZIP.filename
    (cache / "prepared" / "toy_jarvis.json.gz").unlink()
    (root / "j.zip").unlink()
    assert registry.load(spec.name, cache_dir=cache, progress=False).ids == info["ids"]
    # the publisher's file changes (same size): the new download is refused, nothing is kept
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    (root / "j.zip").write_bytes(bytes(data))
    cached_zip.unlink()
    (cache / "prepared" / "toy_jarvis.json.gz").unlink()
    with pytest.raises(ChecksumError) as error:
        registry.load(spec.name, cache_dir=cache, progress=False)
    message = str(error.value)
    assert f"{url}/j.zip" in message and file_sha256(path) in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
    assert not cached_zip.exists() and not (cache / "prepared" / "toy_jarvis.json.gz").exists()


def test_load_corrupt_cached_upstream_copy_is_fetched_again(
    server, tmp_path, monkeypatch, jarvis_zip, caplog
):
    root, url = server
    path, info = jarvis_zip
    shutil.copy(path, root / "j.zip")
    spec = _jarvis_spec(f"{url}/j.zip")
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    cache = tmp_path / "cache"
    registry.load(spec.name, cache_dir=cache, progress=False)
    cached_zip = cache / "toy_jarvis" / registry.JARVIS_ZIP.filename
    cached_zip.write_bytes(path.read_bytes()[:100])  # truncated on disk
    (cache / "prepared" / "toy_jarvis.json.gz").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="s2p_utils.data.download"):
        again = registry.load(spec.name, cache_dir=cache, progress=False)
    assert again.ids == info["ids"] and cached_zip.read_bytes() == path.read_bytes()
    assert f"cached file {cached_zip}" in caplog.text


def test_offline_error_says_which_file_to_put_where(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port with nothing listening: connection refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = _jarvis_spec(f"http://127.0.0.1:{port}/j.zip", sha256="0" * 64)
    monkeypatch.setitem(registry.REGISTRY, spec.name, spec)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with pytest.raises(FileNotFoundError) as error:
        registry.load(spec.name, mirror=mirror, cache_dir=tmp_path / "cache", progress=False)
    message = str(error.value)
    assert f"{mirror}/toy_jarvis/{registry.JARVIS_ZIP.filename}" in message
    assert f"http://127.0.0.1:{port}/j.zip" in message and "download of" in message
    assert _files(tmp_path / "cache") == []
