"""``s2p reproduce``: dataset selection, the results README, exit status, and one real papermill run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from s2p_utils import reproduce as rp
from s2p_utils.reproduce import runner as rp_runner
from s2p_utils.results import figure_path, write_metrics

REPO = Path(__file__).resolve().parents[1]


def _rows(readme: str, needle: str) -> list[str]:
    return [line for line in readme.splitlines() if line.startswith("|") and needle in line]


def _no_data(name: str) -> tuple[bool, str]:
    return False, f"no mirror and offline ({name})"


def _only(*names: str):
    return lambda name: (True, "") if name in names else (False, f"{name} missing")


def _recording_runner(calls: list, *, fail: set[str] = frozenset(), mae: float = 0.1234):
    """A stand-in for papermill: records the call and writes what the notebook would (metrics, figure)."""

    def run(source: Path, output: Path, parameters: dict, *, cwd: Path) -> None:
        calls.append((source.name, output.name, dict(parameters), Path(os.environ["S2P_RESULTS_DIR"])))
        if output.name in fail:
            raise RuntimeError(f"cell 7 raised in {output.name}")
        output.write_text("{}", encoding="utf-8")
        name = parameters["run_name"]
        write_metrics(
            name, {"mae": mae, "mse": 0.02, "r2": 0.5, "mae_renorm": 0.11}, split=parameters.get("split")
        )
        figure_path(name, "quartiles").write_bytes(b"\x89PNG\r\n\x1a\n")

    return run


def test_select_runs_pairs_notebooks_with_obtainable_datasets():
    status = {"e3nn_phdos": (True, ""), "mat2spec_edos": (False, "offline")}
    runs, not_run = rp.select_runs(None, status)
    assert [(run.output, dataset) for run, dataset in runs] == [
        ("01_create_input_data.ipynb", "e3nn_phdos"),
        ("04_embed_phdos.ipynb", "e3nn_phdos"),
        ("04_embed_phdos_random73_legacy.ipynb", "e3nn_phdos"),
        ("04_embed_phdos_plus.ipynb", "e3nn_phdos"),
    ]
    assert [(o.dataset, o.status, o.reason) for o in not_run] == [
        ("mat2spec_edos", "not run", "not obtainable: offline")
    ]
    # Notebook 01 follows whatever dataset is selected and obtainable.
    runs, _ = rp.select_runs(["mat2spec_edos"], {"mat2spec_edos": (True, "")})
    assert [(run.notebook[:2], dataset) for run, dataset in runs] == [
        ("01", "mat2spec_edos"),
        ("02", "mat2spec_edos"),
        ("03", "mat2spec_edos"),
    ]


def test_unknown_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="nope"):
        rp.reproduce(["nope"], results_dir=tmp_path, obtainable=_no_data, log=lambda _: None)


def test_nothing_obtainable_reports_every_dataset_and_exits_zero(tmp_path, monkeypatch):
    monkeypatch.delenv("S2P_SMOKE", raising=False)
    calls: list = []
    outcomes, readme_path = rp.reproduce(
        None, results_dir=tmp_path, obtainable=_no_data, runner=_recording_runner(calls), log=lambda _: None
    )
    assert calls == []
    readme = readme_path.read_text(encoding="utf-8")
    for name, notebooks in (("e3nn_phdos", "04"), ("mat2spec_edos", "02, 03")):
        (row,) = _rows(readme, f"| {name} |")
        assert row.startswith(f"| {notebooks} |")
        assert "**not run**" in row and f"no mirror and offline ({name})" in row
    assert "## Not run" in readme
    assert rp.exit_status(outcomes) == 0


def test_readme_tabulates_metrics_beside_references_and_figures(tmp_path, monkeypatch):
    monkeypatch.delenv("S2P_SMOKE", raising=False)
    monkeypatch.setenv("S2P_RESULTS_DIR", "/should/be/restored")
    calls: list = []
    outcomes, readme_path = rp.reproduce(
        ["e3nn_phdos"],
        results_dir=tmp_path,
        obtainable=_only("e3nn_phdos"),
        runner=_recording_runner(calls, mae=0.04321),
        log=lambda _: None,
    )
    assert os.environ["S2P_RESULTS_DIR"] == "/should/be/restored"
    assert [c[1] for c in calls] == [
        "01_create_input_data.ipynb",
        "04_embed_phdos.ipynb",
        "04_embed_phdos_random73_legacy.ipynb",
        "04_embed_phdos_plus.ipynb",
    ]
    assert all(c[3] == tmp_path.resolve() for c in calls), "kernels must write into the chosen results dir"
    assert calls[0][2]["dataset"] == "e3nn_phdos"
    assert calls[2][2] == {"split": "random73", "mode": "legacy", "run_name": "e3nn_phdos_random73_legacy"}
    assert calls[3][2]["preset"] == "e3nn_phdos_plus"
    assert rp.exit_status(outcomes) == 0

    readme = readme_path.read_text(encoding="utf-8")
    assert "SMOKE" not in readme
    (ours,) = _rows(readme, "e3nn_phdos | chen2021 | fixed | struct2prop `e3nn_phdos`")
    assert "0.04321" in ours and "| ok |" in ours
    # The published numbers for the same split follow our row.
    # Mat2Spec scores max-renormalised predictions: its numbers sit in the renorm columns
    assert re.search(
        r"\| e3nn_phdos \| chen2021 \| published \| Mat2Spec \(MaxNorm \+ MSE\) \[\d\] \| – \| – \| – \| 0\.086 \| 0\.029 \| 0\.63 \| – \| 33 \| 26\.2 \|",
        readme,
    )
    assert re.search(
        r"\| e3nn_phdos \| chen2021 \| published \| E3NN .*\| – \| – \| – \| 0\.094 \| 0\.034 \| 0\.56 \| – \| 39 \| 30\.9 \|",
        readme,
    )
    assert re.search(r"\| e3nn_phdos \| random73 \| published \| struct2prop notebook .*\| 0\.087 \|", readme)
    assert "Table 1" in readme and "b2c3ed94" in readme
    assert "![e3nn_phdos_chen2021_fixed_quartiles](figures/e3nn_phdos_chen2021_fixed_quartiles.png)" in readme
    assert "(executed/04_embed_phdos_random73_legacy.ipynb)" in readme
    assert "## Model inputs (notebook 01, e3nn_phdos)" in readme


def test_failures_are_reported_and_exit_status(tmp_path, monkeypatch):
    monkeypatch.delenv("S2P_SMOKE", raising=False)
    failing = {
        "01_create_input_data.ipynb",
        "04_embed_phdos.ipynb",
        "04_embed_phdos_random73_legacy.ipynb",
        "04_embed_phdos_plus.ipynb",
    }
    outcomes, readme_path = rp.reproduce(
        ["e3nn_phdos"],
        results_dir=tmp_path,
        obtainable=_only("e3nn_phdos"),
        runner=_recording_runner([], fail=failing),
        log=lambda _: None,
    )
    assert [o.status for o in outcomes] == ["failed"] * 4
    assert rp.exit_status(outcomes) == 1
    (row,) = _rows(
        readme_path.read_text(encoding="utf-8"), "e3nn_phdos | chen2021 | fixed | struct2prop `e3nn_phdos`"
    )
    assert "**failed**: RuntimeError: cell 7 raised in 04_embed_phdos.ipynb" in row

    # A stale metrics file of an earlier successful run must not show up beside a failure.
    write_metrics("e3nn_phdos_chen2021_fixed", {"mae": 0.5551}, results_dir=tmp_path)
    figure_path("e3nn_phdos_chen2021_fixed", "quartiles", tmp_path).write_bytes(b"\x89PNG")
    _, readme_path = rp.reproduce(
        ["e3nn_phdos"],
        results_dir=tmp_path,
        obtainable=_only("e3nn_phdos"),
        runner=_recording_runner([], fail=failing),
        log=lambda _: None,
    )
    readme = readme_path.read_text(encoding="utf-8")
    assert "0.5551" not in readme and "figures/e3nn_phdos_chen2021_fixed" not in readme

    outcomes, _ = rp.reproduce(
        ["e3nn_phdos"],
        results_dir=tmp_path / "partial",
        obtainable=_only("e3nn_phdos"),
        runner=_recording_runner([], fail={"04_embed_phdos.ipynb"}),
        log=lambda _: None,
    )
    assert [o.status for o in outcomes] == ["ok", "failed", "ok", "ok"]
    assert rp.exit_status(outcomes) == 0


def test_smoke_numbers_are_labelled(tmp_path, monkeypatch):
    monkeypatch.setenv("S2P_SMOKE", "1")
    calls: list = []
    _, readme_path = rp.reproduce(
        ["e3nn_phdos"],
        results_dir=tmp_path,
        obtainable=_only("e3nn_phdos"),
        runner=_recording_runner(calls),
        log=lambda _: None,
    )
    readme = readme_path.read_text(encoding="utf-8")
    assert readme.startswith("# struct2prop reproduction (SMOKE TEST)")
    assert "not results" in readme
    for row in _rows(readme, "struct2prop (this run)"):
        assert "smoke (not a result)" in row


def test_cli_without_data_writes_the_report(tmp_path, monkeypatch, capsys):
    from s2p_utils.cli import main

    monkeypatch.setattr(rp_runner, "check_obtainable", _no_data)
    assert main(["reproduce", "--datasets", "e3nn_phdos", "--results-dir", str(tmp_path)]) == 0
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "**not run**: not obtainable: no mirror and offline (e3nn_phdos)" in readme
    assert "nothing could be run" in capsys.readouterr().out


def test_cli_exit_status_when_everything_obtainable_fails(tmp_path, monkeypatch):
    from s2p_utils.cli import main

    def broken(source, output, parameters, *, cwd):
        raise RuntimeError("kernel died")

    monkeypatch.setattr(rp_runner, "check_obtainable", _only("e3nn_phdos"))
    monkeypatch.setattr(rp_runner, "execute_notebook", broken)
    assert main(["reproduce", "--datasets", "e3nn_phdos", "--results-dir", str(tmp_path)]) == 1


def test_notebooks_dir_finds_the_checkout(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert rp.notebooks_dir() == (REPO / "notebooks").resolve()


def test_papermill_run_of_the_phonon_notebook(mirror, isolated_env, monkeypatch):
    """One real run: papermill injects the parameters, the kernel writes into the chosen results folder."""
    pytest.importorskip("papermill")
    monkeypatch.setenv("S2P_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("S2P_SMOKE", "1")
    results = isolated_env / "reproduce"
    outcomes, readme_path = rp.reproduce(
        ["e3nn_phdos"], results_dir=results, only={"04_embed_phdos_random73_legacy.ipynb"}, log=lambda _: None
    )
    assert [(o.status, o.reason) for o in outcomes] == [("ok", "")]
    executed = json.loads((results / "executed" / "04_embed_phdos_random73_legacy.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'split = "random73"' in "".join(injected[0]["source"])
    record = json.loads((results / "metrics" / "e3nn_phdos_random73_legacy.json").read_text())
    assert record["info"]["split"] == "random73" and record["info"]["mode"] == "legacy"
    assert record["info"]["smoke"] is True
    assert (results / "figures" / "e3nn_phdos_random73_legacy_quartiles.png").stat().st_size > 1000
    (row,) = _rows(readme_path.read_text(encoding="utf-8"), "e3nn_phdos | random73 | legacy")
    assert f"| {record['metrics']['mae']:.4g} |" in row and "smoke (not a result)" in row


def test_relative_mirror_is_made_absolute_for_the_kernels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("S2P_DATA_MIRROR", "mirror")
    seen: list[str] = []

    def runner(source, output, parameters, *, cwd):
        seen.append(os.environ["S2P_DATA_MIRROR"])
        raise RuntimeError("stop")

    rp.reproduce(
        ["e3nn_phdos"],
        results_dir=tmp_path / "r",
        obtainable=_only("e3nn_phdos"),
        runner=runner,
        log=lambda _: None,
    )
    assert seen and all(value == str((tmp_path / "mirror").resolve()) for value in seen)
    assert os.environ["S2P_DATA_MIRROR"] == "mirror"  # restored afterwards


def test_reproduce_and_data_cli_do_not_load_tensorflow():
    """`s2p data list` and the reproduce driver start without TensorFlow (only the notebooks' kernels need it)."""
    code = (
        "import sys, s2p_utils.cli.data, s2p_utils.cli.models, s2p_utils.reproduce; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
