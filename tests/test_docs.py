"""``make docs``: the static site of the executed notebooks, and a headless Chromium that opens it.

The end-to-end test runs the four notebooks in smoke mode through ``s2p reproduce`` (papermill, the same
code as ``make reproduce``), builds the site and opens notebook 04's page in the system Chromium; the
screenshot lands in ``results/docs_check/04_page.png``. Without Chromium the browser tests are skipped
locally and fail under ``CI`` (``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest

from s2p_utils import gallery
from s2p_utils import reproduce as rp
from s2p_utils.cli import main

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "results" / "docs_check" / "04_page.png"
FOUR = ("01_create_input_data.ipynb", "02_embed_mat2spec.ipynb", "03_embed_mat2spec_simpleRDF.ipynb")
FOUR += ("04_embed_phdos.ipynb",)
BLANK_STD = 10.0  # grey-level std of a screenshot below which the page counts as blank


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("playwright.sync_api", reason="playwright (docs extra) is not installed")
    executable = gallery.find_chromium()
    if executable is None:
        message = "no Chromium (system package `chromium`, or S2P_CHROMIUM): the browser check cannot run"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}; .ci/run installs it with apt-get")
        pytest.skip(message)
    return executable


def _png(width: int = 40, height: int = 30) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _notebook(title: str, *, error: str | None = None) -> dict:
    """A small executed notebook: a title, one figure output and, with ``error``, a failing cell."""
    figure = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": base64.b64encode(_png()).decode(), "text/plain": ["<Figure>"]},
    }
    cells = [
        {"cell_type": "markdown", "id": "t", "metadata": {}, "source": f"# {title}\n\nSome prose."},
        {"cell_type": "code", "id": "f", "metadata": {}, "execution_count": 1, "source": "plot()",
         "outputs": [figure]},
    ]  # fmt: skip
    if error:
        cells.append(
            {"cell_type": "code", "id": "e", "metadata": {}, "execution_count": 2, "source": "boom()",
             "outputs": [{"output_type": "error", "ename": "RuntimeError", "evalue": error, "traceback": []}]}
        )  # fmt: skip
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    metadata["papermill"] = {"exception": bool(error), "duration": 1.5, "start_time": "2026-01-01T00:00:00"}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def _fake_runner(fail: set[str]):
    """Stands in for papermill: writes an executed notebook; a failing one is written, then raises."""

    def run(source: Path, output: Path, parameters: dict, *, cwd: Path) -> None:
        error = f"cell 2 raised in {output.name}" if output.name in fail else None
        output.write_text(json.dumps(_notebook(f"Notebook {source.stem}", error=error)), encoding="utf-8")
        if error:
            raise RuntimeError(error)

    return run


def _text(html: Path) -> str:
    return html.read_text(encoding="utf-8")


def test_missing_and_failed_notebooks_get_banner_pages(tmp_path):
    """mat2spec_edos not obtainable (02, 03), one 04 run failed, one not selected: each says so."""
    results = tmp_path / "results"
    outcomes, _ = rp.reproduce(
        None,
        results_dir=results,
        only={"01_create_input_data.ipynb", "04_embed_phdos.ipynb", "04_embed_phdos_random73_legacy.ipynb"},
        runner=_fake_runner({"04_embed_phdos_random73_legacy.ipynb"}),
        obtainable=lambda name: (name == "e3nn_phdos", "" if name == "e3nn_phdos" else "offline, no mirror"),
        log=lambda _: None,
    )
    assert sorted(o.status for o in outcomes) == ["failed", "not run", "ok", "ok"]

    site = gallery.build_site(results, source_dir=tmp_path / "docs-src")
    assert site.status == 0, site.warnings
    status = {page.run.output: (page.status, page.reason) for page in site.pages}
    assert status["01_create_input_data.ipynb"] == ("ok", "")
    assert status["04_embed_phdos.ipynb"] == ("ok", "")
    assert status["02_embed_mat2spec.ipynb"] == ("not run", "not obtainable: offline, no mirror")
    assert status["03_embed_mat2spec_simpleRDF.ipynb"][0] == "not run"
    assert status["04_embed_phdos_random73_legacy.ipynb"][0] == "failed"
    assert (
        "cell 2 raised in 04_embed_phdos_random73_legacy.ipynb"
        in status["04_embed_phdos_random73_legacy.ipynb"][1]
    )
    assert status["04_embed_phdos_plus.ipynb"][0] == "not run"
    assert "not executed by the latest" in status["04_embed_phdos_plus.ipynb"][1]

    banner = _text(site.page_html("02_embed_mat2spec.ipynb"))
    assert "not run (not obtainable: offline, no mirror)" in banner
    failed = _text(site.page_html("04_embed_phdos_random73_legacy.ipynb"))
    assert "failed (RuntimeError" in failed and "<img" in failed  # banner above the outputs it has
    ok = _text(site.page_html("04_embed_phdos.ipynb"))
    assert "<title>Notebook 04_embed_phdos" in ok and "<img" in ok and "not run (" not in ok
    index = _text(site.index)
    assert index.count("not run</strong>") == 3 and index.count("failed</strong>") == 1
    assert "struct2prop reproduction" in _text(site.index.parent / "results.html")
    # The source is generated: a rebuild rewrites it, and a folder `s2p docs` did not make is left alone.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(ValueError, match="not made by `s2p docs`"):
        gallery.build_site(results, site_dir=tmp_path / "mine", source_dir=tmp_path / "docs-src")
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep"


def test_s2p_docs_before_any_reproduce_shows_only_banners(tmp_path, capsys):
    results = tmp_path / "results"
    code = main(["docs", "--results-dir", str(results), "--source-dir", str(tmp_path / "src")])
    out = capsys.readouterr().out
    assert code == 0 and f"open {results / 'site' / 'index.html'}" in out
    assert f"0 notebook page(s) ok, 0 failed, {len(rp.NOTEBOOK_RUNS)} not run" in out
    assert "has not been run: no README.md" in _text(results / "site" / "executed" / "04_embed_phdos.html")
    assert "not run (no results/README.md" in _text(results / "site" / "results.html")


def test_browser_check_catches_broken_images_and_blank_pages(tmp_path, chromium):
    (tmp_path / "ok.png").write_bytes(_png(400, 300))
    good = tmp_path / "good.html"
    good.write_text(
        '<html><head><title>good</title></head><body><h1>A figure</h1><div class="cell_output">'
        '<img src="ok.png"></div></body></html>',
        encoding="utf-8",
    )
    broken = tmp_path / "broken.html"
    broken.write_text('<html><head><title>b</title></head><body><img src="gone.png"></body></html>')
    check = gallery.check_page(good, tmp_path / "good_shot.png", executable=chromium)
    assert check.title == "good" and check.broken == [] and check.figures == 1
    assert check.pixel_std > BLANK_STD
    check = gallery.check_page(broken, tmp_path / "broken_shot.png", executable=chromium)
    assert check.broken == ["gone.png"] and check.figures == 0
    assert check.pixel_std < BLANK_STD  # a white page with a broken-image icon counts as blank


def _smoke_mirror(real: Path, folder: Path) -> Path:
    """The real mirror plus a miniature Mat2Spec zip, as notebooks/conftest.py builds for nbval."""
    from upstream_fixtures import make_mat2spec_zip

    folder.mkdir()
    for entry in real.iterdir():
        if entry.name != "mat2spec_edos":
            (folder / entry.name).symlink_to(entry)
    make_mat2spec_zip(folder / "mat2spec_edos" / "Mat2Spec_DATA.zip", n_edos=60, seed=0)
    return folder


def test_site_of_a_smoke_reproduce_opens_in_chromium(mirror, tmp_path, monkeypatch, chromium):
    """The four notebooks through papermill (smoke), the site, and notebook 04's page in Chromium."""
    pytest.importorskip("papermill")
    monkeypatch.setenv("S2P_SMOKE", "1")
    monkeypatch.setenv("S2P_DATA_MIRROR", str(_smoke_mirror(mirror, tmp_path / "mirror")))
    monkeypatch.setenv("S2P_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The kernels import the package from this checkout, whatever the environment has installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    results = tmp_path / "results"
    outcomes, _ = rp.reproduce(None, results_dir=results, only=set(FOUR), log=lambda _: None)
    assert [(o.run.output, o.status, o.reason) for o in outcomes] == [(name, "ok", "") for name in FOUR]

    site = gallery.build_site(results, source_dir=tmp_path / "docs-src")
    assert site.status == 0, site.warnings
    assert [page.status for page in site.pages if page.run.output in FOUR] == ["ok"] * 4
    source = json.loads((REPO / "notebooks" / "04_embed_phdos.ipynb").read_text(encoding="utf-8"))
    heading = next(
        line[2:].strip()
        for cell in source["cells"]
        if cell["cell_type"] == "markdown"
        for line in "".join(cell["source"]).splitlines()
        if line.startswith("# ")
    )

    check = gallery.check_page(site.page_html("04_embed_phdos.ipynb"), SCREENSHOT, executable=chromium)
    assert check.title == f"{heading} — {gallery.SITE_TITLE}"
    assert check.images and check.broken == [], check.images
    assert check.figures >= 1
    assert check.pixel_std > BLANK_STD, f"screenshot {SCREENSHOT} looks blank (std {check.pixel_std:.1f})"
