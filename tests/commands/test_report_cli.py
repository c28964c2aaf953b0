"""``nnbuild report`` refuses absolute paths and unsafe names with the recipe-name rule."""

from __future__ import annotations

import pytest

from nnbuild.cli import main


@pytest.mark.parametrize("name", ["/etc", "../../etc", "a/b", ".hidden", "a..b", "-"])
def test_unsafe_names_are_refused_in_one_line(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNBUILD_ROOT", raising=False)
    monkeypatch.delenv("NNBUILD_CACHE", raising=False)
    assert main(["report", name]) == 2
    err = capsys.readouterr().err
    assert err == (f"nnbuild: error: nnbuild report: not a safe recipe name. Expected letters, "
                   "digits, '.', '_', '+', '-' (no '/', no '..', not starting with '.' or '-'), "
                   f"got {name!r}. Hint: give a recipe's name: its file name in recipes/ without "
                   ".yaml.\n")


def test_a_safe_unknown_name_still_says_no_report_yet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNBUILD_ROOT", raising=False)
    monkeypatch.delenv("NNBUILD_CACHE", raising=False)
    assert main(["report", "nothing-built"]) == 2
    assert "recipe nothing-built: no check report yet" in capsys.readouterr().err
