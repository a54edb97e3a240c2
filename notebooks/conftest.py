"""nbval set-up for the paper notebooks: ``pytest --nbval-lax --nbval-current-env notebooks/``.

Before the first kernel starts this plugin

- turns on smoke mode (``S2P_SMOKE=1`` unless already set): every notebook trains on a few dozen
  structures for 2 epochs, with the real converters and featurizers;
- builds a temporary data mirror: links to every entry of the real offline mirror (``$S2P_DATA_MIRROR`` or
  ``../shared/dos_datasets``; the phonon notebook needs its ``e3nn_phdos.json.gz``) plus a *miniature*
  ``mat2spec_edos/Mat2Spec_DATA.zip`` in the exact upstream layout (``tests/upstream_fixtures.py``), so the
  eDOS notebooks run through the real Mat2Spec converter in seconds;
- points ``S2P_DATA_MIRROR``, ``S2P_CACHE_DIR`` and ``S2P_RESULTS_DIR`` at it / at scratch folders, so no
  run touches ``~/.cache/s2p`` or ``results/``, and puts this checkout first on ``PYTHONPATH`` (kernels start
  in ``notebooks/``, where another installed ``s2p_utils`` would win). Kernels inherit this environment.

Without the real mirror the notebooks that need the e3nn data (01, 04) are skipped locally and fail
under ``CI=true``, like the ``mirror`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDS_E3NN = ("01_create_input_data.ipynb", "04_embed_phdos.ipynb")
MINI_MAT2SPEC_EDOS = 60  # materials in the miniature Mat2Spec zip (enough for a smoke split)

_state: dict[str, object] = {}


def _nbval_active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False))


def _real_mirror() -> Path | None:
    for candidate in (os.environ.get("S2P_DATA_MIRROR"), REPO.parent / "shared" / "dos_datasets"):
        if candidate and (Path(candidate) / "e3nn_phdos.json.gz").is_file():
            return Path(candidate).resolve()
    return None


def _upstream_fixtures():
    path = REPO / "tests" / "upstream_fixtures.py"
    spec = importlib.util.spec_from_file_location("s2p_upstream_fixtures", path)
    if spec is None or spec.loader is None:
        raise pytest.UsageError(f"cannot import {path} (needed to build the miniature Mat2Spec zip)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config: pytest.Config) -> None:
    if not _nbval_active(config):
        return
    scratch = Path(tempfile.mkdtemp(prefix="s2p-nbval-"))
    mirror = scratch / "mirror"
    mirror.mkdir()
    real = _real_mirror()
    if real is not None:
        for entry in real.iterdir():
            if entry.name != "mat2spec_edos":  # always the miniature zip below, never a 241 MB conversion
                (mirror / entry.name).symlink_to(entry)
    _upstream_fixtures().make_mat2spec_zip(
        mirror / "mat2spec_edos" / "Mat2Spec_DATA.zip", n_edos=MINI_MAT2SPEC_EDOS, seed=0
    )
    saved = {
        key: os.environ.get(key)
        for key in ("S2P_SMOKE", "S2P_DATA_MIRROR", "S2P_CACHE_DIR", "S2P_RESULTS_DIR", "PYTHONPATH")
    }
    os.environ.setdefault("S2P_SMOKE", "1")
    os.environ["S2P_DATA_MIRROR"] = str(mirror)
    os.environ["S2P_CACHE_DIR"] = str(scratch / "cache")
    os.environ["S2P_RESULTS_DIR"] = str(scratch / "results")
    # Kernels start in notebooks/: put this checkout first so they test its s2p_utils, not another install.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), saved["PYTHONPATH"])))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    _state.update(scratch=scratch, saved=saved, real_mirror=real)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if "scratch" not in _state:
        return []
    return [
        f"s2p notebooks: S2P_SMOKE={os.environ.get('S2P_SMOKE')}, mirror {_state['real_mirror']} + miniature "
        f"Mat2Spec zip, scratch {_state['scratch']}"
    ]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "scratch" not in _state or _state["real_mirror"] is not None or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(
        reason="data mirror not available (set S2P_DATA_MIRROR): needs e3nn_phdos.json.gz"
    )
    for item in items:
        if item.path.name in NEEDS_E3NN:
            item.add_marker(skip)


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = _state.pop("scratch", None)
    saved = _state.pop("saved", {})
    for key, value in dict(saved).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if scratch is not None and not os.environ.get("S2P_KEEP_NBVAL_SCRATCH"):
        shutil.rmtree(scratch, ignore_errors=True)
