"""``nnbuild explain`` after a reverted edit: every stage the build will restore from the cache
says "restored from cache", the stages after the first restored one included (issue 13: they
said "would run" because their upstream was not built yet)."""

from __future__ import annotations

from e2e.e2e_project import doit, executed, make_project, nnbuild

NAME = "mtcnn-pnet"
RESTORED = ["calibrate", "map", "check", "package"]


def test_explain_predicts_every_restore(tmp_path):
    proj = make_project(tmp_path / "p", [NAME])
    recipe = proj / "recipes" / f"{NAME}.yaml"
    first = recipe.read_text()
    assert doit(proj, "build").returncode == 0
    recipe.write_text(first.replace("calibration: {count: 4}", "calibration: {count: 3}"))
    assert first != recipe.read_text()
    assert doit(proj, "build").returncode == 0
    recipe.write_text(first)
    explained = nnbuild(proj, "explain", NAME)
    assert explained.returncode == 0, explained
    status = {line.split(": ", 1)[0]: line.split(": ", 1)[1]
              for line in explained.stdout.splitlines() if not line.startswith(" ")}
    assert status == {f"{s}:{NAME}": ("up to date" if s in ("fetch", "patch") else
                                      "restored from cache")
                      for s in ("fetch", "patch", *RESTORED)}, explained.stdout
    assert "  recipe_changed: calibration.count" in explained.stdout.splitlines()
    build = doit(proj, "build")
    assert build.returncode == 0, build
    assert executed(build.stdout) == sorted(f"{s}:{NAME}" for s in RESTORED)
    restored = sorted(line.split(":")[0] for line in build.stderr.splitlines()
                      if line.endswith(": restored from cache"))
    assert restored == sorted(RESTORED), build  # what explain said, nothing recomputed
    recipe.write_text(first.replace("check: {count: 2", "check: {count: 1"))
    again = nnbuild(proj, "explain", NAME).stdout.splitlines()
    assert f"check:{NAME}: would run" in again and f"package:{NAME}: would run" in again
    assert f"map:{NAME}: up to date" in again
