"""report.html of a real build, opened in headless Chromium: no console errors, the verdict,
chart and overlays are on the page with non-zero size, and the summary fits a phone's width."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import IMAGES, MODELS, ROOT
from browser import Browser, find_chromium

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built_report(tmp_path_factory):
    """A real ultraface-slim-320 build (small counts) in a throw-away project."""
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "recipes", project / "recipes")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "recipes" / "browser-demo.yaml").write_text(
        "extends: ultraface-slim-320.yaml\ncalibration: {count: 4}\ncheck: {count: 3}\n")
    env = dict(os.environ, NNBUILD_MIRROR=f"{MODELS}{os.pathsep}{IMAGES}")
    env.pop("NNBUILD_CACHE", None)
    done = subprocess.run([sys.executable, "-m", "doit", "build", "browser-demo"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return project / "cache" / "v1" / "out" / "browser-demo" / "check" / "report.html"


def test_report_renders_in_chromium(built_report, tmp_path):
    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium; "
                    "apt-get install chromium to run this test)")
    pytest.importorskip("websocket", reason="websocket-client is in the test extra")
    with Browser(exe) as page:
        page.open(built_report.as_uri())
        verdict = page.evaluate("document.querySelector('.verdict').textContent")
        chart = page.evaluate("(r => [r.width, r.height])(document.querySelector("
                              "'.layer-chart').getBoundingClientRect())")
        overlays = page.evaluate("document.querySelectorAll('svg.overlay rect').length")
        images = page.evaluate("Array.from(document.images).length + "
                               "document.querySelectorAll('svg image').length")
        page.screenshot(tmp_path / "desktop.png", 1000, 1400)
        page.screenshot(tmp_path / "phone.png", 390, 844)
        # On a phone the summary's values keep a readable column (not one letter per line).
        narrowest = page.evaluate("Math.min(...Array.from(document.querySelectorAll("
                                  "'#summary .kv > div:nth-child(2n)')).map("
                                  "e => e.getBoundingClientRect().width))")
        scroll = page.evaluate("[document.documentElement.scrollWidth, "
                               "document.querySelector('#summary').scrollWidth, window.innerWidth]")
        problems = list(page.problems)
    assert problems == []
    assert verdict in ("PASS", "FAIL")
    assert chart[0] > 100 and chart[1] > 50
    assert overlays > 0 and images > 0
    assert scroll[0] <= scroll[2] and scroll[1] <= scroll[2], scroll  # no horizontal scroll
    assert narrowest >= 120, narrowest
    assert (tmp_path / "desktop.png").stat().st_size > 10_000
