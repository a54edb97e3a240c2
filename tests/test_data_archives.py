"""Archive integrity checks and decompression limits (issue 12 item 11, issue 13)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest
from upstream_fixtures import JARVIS_JSON_NAME, make_fung_targz, make_jarvis_zip

from s2p_utils.data import converters
from s2p_utils.data.archives import ArchiveError, check_archive, read_zip_member


def _bomb_zip(path, n_bytes: int = 8 << 20) -> None:
    """A zip whose single JSON member is ``n_bytes`` of whitespace (compresses about 1000×)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(JARVIS_JSON_NAME, b"[" + b" " * (n_bytes - 2) + b"]")


def test_zip_bomb_refused_by_ratio_naming_member(tmp_path):
    path = tmp_path / "bomb.zip"
    _bomb_zip(path)
    assert path.stat().st_size < 100_000
    with pytest.raises(ArchiveError, match=rf"bomb.zip:{JARVIS_JSON_NAME} declares 8388608 bytes .* ratio"):
        converters.convert_jarvis_zip(path, progress=False)
    with pytest.raises(ArchiveError, match="ratio above the limit of 200"):
        check_archive(path)


def test_ratio_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "bomb.zip"
    _bomb_zip(path, 2 << 20)
    monkeypatch.setenv("S2P_MAX_COMPRESSION_RATIO", "1e6")
    with pytest.raises(ValueError, match="no record"):  # past the limits: an empty JSON list
        converters.convert_jarvis_zip(path, progress=False)


def test_absolute_member_limit(tmp_path, monkeypatch):
    path = tmp_path / "jarvis.zip"
    make_jarvis_zip(path, 3)
    monkeypatch.setenv("S2P_MAX_DECOMPRESSED_BYTES", "1000")
    with pytest.raises(
        ArchiveError, match=r"jarvis.zip:.*\.json declares \d+ bytes uncompressed, above the limit of 1000"
    ):
        converters.convert_jarvis_zip(path, progress=False)
    monkeypatch.delenv("S2P_MAX_DECOMPRESSED_BYTES")
    assert len(converters.convert_jarvis_zip(path, progress=False)) == 3


def test_zip_member_with_lying_size_header_is_an_error(tmp_path, monkeypatch):
    """A member larger than its declared size is an error (zipfile stops at the declared size, CRC fails)."""
    path = tmp_path / "jarvis.zip"
    make_jarvis_zip(path, 3)
    monkeypatch.setenv("S2P_MAX_DECOMPRESSED_BYTES", "1000")
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
        info.file_size = 10  # a lying header
        with pytest.raises(ArchiveError):
            read_zip_member(zf, info, path)


def test_corrupt_zip_member_is_named(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.json", json.dumps(list(range(2000))))
        zf.writestr("bad.json", json.dumps([float(i) / 7 for i in range(5000)]))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("bad.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"two.zip:bad.json: bad archive member"):
        check_archive(path)


def test_truncated_targz_names_member(tmp_path):
    make_fung_targz(tmp_path / "full.tar.gz", 3, "sto", n_energies=400)
    data = (tmp_path / "full.tar.gz").read_bytes()
    (tmp_path / "sto_dos.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    named = r"sto_dos.tar.gz(:data/\d+\.(npy|vasp): bad archive member|: bad archive member 'data/\d+\.(npy|vasp)')"
    with pytest.raises(ArchiveError, match=named):
        check_archive(tmp_path / "sto_dos.tar.gz")
    assert check_archive(tmp_path / "full.tar.gz") == 6


def test_tar_bomb_refused(tmp_path):
    path = tmp_path / "sto_dos.tar.gz"
    payload = b"\0" * (4 << 20)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("data/0.npy")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ArchiveError, match=r"sto_dos.tar.gz:data/0.npy declares 4194304 bytes .* ratio"):
        converters.convert_fung_targz(path, progress=False)
    with pytest.raises(ArchiveError, match="ratio"):
        check_archive(path)


def test_check_archive_passes_good_files_and_ignores_others(tmp_path):
    make_jarvis_zip(tmp_path / "j.zip", 3)
    assert check_archive(tmp_path / "j.zip") == 1
    (tmp_path / "x.csv").write_text("a,b\n")
    assert check_archive(tmp_path / "x.csv") is None
    (tmp_path / "j.zip.part-1").write_bytes((tmp_path / "j.zip").read_bytes())
    assert check_archive(tmp_path / "j.zip.part-1", name="j.zip") == 1
