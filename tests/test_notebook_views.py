"""s2p_utils.notebook_views without training: the smoke switch and the published-rows table."""

from types import SimpleNamespace

from s2p_utils import notebook_views as views


def test_smoke_run_follows_the_environment_and_prints_the_note(monkeypatch, capsys):
    monkeypatch.setenv("S2P_SMOKE", "1")
    assert views.smoke_run(None) is True
    assert views.SMOKE_NOTE in capsys.readouterr().out
    assert views.smoke_run(False) is False
    assert capsys.readouterr().out == ""


def test_published_comparison_marks_smoke_rows_and_keeps_published_ones():
    data = SimpleNamespace(dataset=SimpleNamespace(name="e3nn_phdos"), split="random73")
    table = views.published_comparison({"mae": 0.1, "mse": 0.02}, data, smoke=True)
    assert "ours" not in table.columns and "MAE" in table.columns
    assert table["model"].iloc[0].endswith("(SMOKE: not a result)")
    assert len(table) > 1 and not table["model"].iloc[1].endswith("(SMOKE: not a result)")
