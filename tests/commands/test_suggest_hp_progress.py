"""``nnbuild suggest-hp`` shows progress as the stages do (issue 13: it printed nothing for a
minute): plain lines when stderr is not a terminal, a bar on one (nnbuild.build.progress)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from e2e.e2e_project import doit, env, make_project, nnbuild
from nnbuild.build import progress

NAME = "mtcnn-pnet"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("hp") / "p", [NAME])
    assert doit(proj, "build").returncode == 0
    return proj


def test_lines_when_stderr_is_not_a_terminal(built):
    run = nnbuild(built, "suggest-hp", NAME)
    assert run.returncode == 0, run
    lines = run.stderr.splitlines()
    assert lines[:2] == ["suggest-hp: simulating 2 check image(s) in int8 and float",
                         "suggest-hp: ranking 5 weighted layers, each alone in 16-bit"], run
    assert any(line.startswith("suggest-hp: layers tried: 5/5 (") for line in lines), run
    assert lines.index(next(x for x in lines if "layers tried: 5/5" in x)) < lines.index(
        next(x for x in lines if x.startswith(f"# {NAME}:"))), "progress comes before the result"


def test_the_greedy_steps_say_they_started_and_how_far_they_are(built, capsys):
    from nnbuild.commands import suggest_hp

    run = nnbuild(built, "suggest-hp", NAME, "--budget", "3")
    lines = run.stderr.splitlines()
    greedy = "suggest-hp: greedy search: adding the layer that helps most, step by step"
    assert run.returncode == 0 and greedy in lines, run
    assert lines.index(greedy) > lines.index(next(x for x in lines if "layers tried: 5/5" in x))
    now = [0.0]
    counted = suggest_hp._Counted(lambda hp: len(hp), after=2, every=5.0)
    counted.clock = lambda: now[0]
    for step in range(6):
        now[0] = 3.0 * step
        assert counted(frozenset(range(step))) == step
    # calls at t = 0, 3 rank; greedy calls at t = 6, 9, 12, 15: a line once 5 s have passed
    assert capsys.readouterr().err.splitlines() == [
        greedy, "suggest-hp: greedy search: 3 layer sets tried"]


def test_a_bar_on_a_terminal(built):
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "nnbuild.cli", "suggest-hp", NAME],
                            cwd=built, env=env(), stdout=subprocess.DEVNULL, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=300) == 0
    text = b"".join(chunks).decode()
    assert "\rsuggest-hp: layers tried: [" in text and "] 5/5 (" in text, text


def test_progress_lines_are_spaced_and_end_with_the_last(monkeypatch):
    lines = []
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert list(progress.progress(range(4), label="work", log=lines.append, every=3600)) == [
        0, 1, 2, 3]
    assert [line.split(" (")[0] for line in lines] == ["work: 1/4", "work: 4/4"]
    assert progress.bar("work", 2, 4, 1.0, width=4) == "work: [##..] 2/4 (1.0 s)"
