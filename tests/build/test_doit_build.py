"""`doit build` end to end in a throw-away project: real fetch stage (models through
NNBUILD_MIRROR) plus small test stages, exercising keys, uptodate, restore and errors."""

import gzip
import json
import re
import subprocess
import sys

from fakestages.project import ROOT, doit, env, make_project, runs


def _set_count(proj, name, count):
    path = proj / "recipes" / f"{name}.yaml"
    text = re.sub(r"calibration: \{count: \d+\}", f"calibration: {{count: {count}}}", path.read_text())
    path.write_text(text)


def test_build_then_noop_then_edit_reruns_only_readers(tmp_path):
    proj, e = make_project(tmp_path), env(tmp_path)
    first = doit(proj, "build", "mnet-small", env=e)
    assert first.returncode == 0, first.stderr
    assert runs(tmp_path) == ["digest:mnet-small", "slow:mnet-small", "package:mnet-small"]
    out = proj / "cache" / "v1" / "out" / "mnet-small"
    fetched = (out / "fetch" / "model.prototxt").read_bytes()
    assert fetched == (ROOT.parent / "shared/models/retinaface-mnet25/mnet.prototxt").read_bytes()
    assert gzip.decompress((proj / "dist" / "mnet-small.tar.gz").read_bytes()) == b"3\n"
    assert (proj / "cache" / "doit.sqlite3").is_file()

    again = doit(proj, "build", "mnet-small", env=e)
    assert again.returncode == 0 and runs(tmp_path) == []
    assert again.stdout.count("-- ") == 4, again.stdout

    _set_count(proj, "mnet-small", 5)  # calibration.count is read by `slow` only
    edited = doit(proj, "build", "mnet-small", env=e)
    assert edited.returncode == 0, edited.stderr
    # slow re-runs; package's input changed (done.txt), so it re-runs too; digest does not.
    assert runs(tmp_path) == ["slow:mnet-small", "package:mnet-small"]
    assert len(list((out / "slow" / "parts").iterdir())) == 5

    _set_count(proj, "mnet-small", 3)  # revert: earlier outputs come back from the cache
    reverted = doit(proj, "build", "mnet-small", env=e)
    assert reverted.returncode == 0 and runs(tmp_path) == []
    assert "restored from cache" in reverted.stderr
    assert len(list((out / "slow" / "parts").iterdir())) == 3
    assert gzip.decompress((proj / "dist" / "mnet-small.tar.gz").read_bytes()) == b"3\n"


def test_noop_build_imports_no_heavy_modules(tmp_path):
    proj, e = make_project(tmp_path), env(tmp_path)
    assert doit(proj, "build", env=e).returncode == 0
    code = ("import sys; from doit.doit_cmd import DoitMain; rc = DoitMain().run(['build']); "
            "heavy = [m for m in ('numpy', 'jsonschema', 'google.protobuf', 'PIL') "
            "if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], cwd=proj, env=e, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert result.stdout.count("-- ") == 8


def test_unknown_recipe_lists_known_ones(tmp_path):
    proj, e = make_project(tmp_path), env(tmp_path)
    result = doit(proj, "build", "mnet-smal", env=e)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown recipe" in lines[0]
    assert "mnet-small, pnet-small" in lines[0] and "'mnet-smal'" in lines[0]


def test_list_shows_stages_and_parallel_build(tmp_path):
    proj, e = make_project(tmp_path), env(tmp_path)
    listed = doit(proj, "list", env=e)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "digest", "fetch", "package", "slow"]
    both = doit(proj, "-n", "2", "build", "mnet-small", "pnet-small", env=e)
    assert both.returncode == 0, both.stderr
    assert sorted(runs(tmp_path)) == sorted(
        f"{s}:{r}" for s in ("digest", "slow", "package") for r in ("mnet-small", "pnet-small"))
    assert {p.name for p in (proj / "dist").iterdir()} == {"mnet-small.tar.gz", "pnet-small.tar.gz"}


def test_missing_stage_module_is_one_clear_line(tmp_path):
    # A misspelt stage module used to be skipped silently (with every stage needing it).
    proj = make_project(tmp_path)
    e = env(tmp_path, stages="nnbuild.stages.fetch,fakestages.not_there,fakestages.digest")
    result = doit(proj, "build", "pnet-small", env=e)
    assert result.returncode == 2, result.stderr
    assert "NNBUILD_STAGES: stage module 'fakestages.not_there' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_stage_error_is_one_line_and_nothing_cached(tmp_path):
    proj, e = make_project(tmp_path), env(tmp_path)
    path = proj / "recipes" / "pnet-small.yaml"
    path.write_text(path.read_text().replace("sha256: adc1756d", "sha256: 0dc1756d"))
    result = doit(proj, "build", "pnet-small", env=e)
    assert result.returncode != 0
    assert "fetch.prototxt: det1.prototxt (sha256 0dc1756d" in result.stdout + result.stderr
    assert "NNBUILD_MIRROR" in result.stdout + result.stderr
    entries = list((proj / "cache" / "v1" / "ac").glob("*/*/*.json"))
    assert [p.parent.parent.name for p in entries] in ([], ["fetch"])  # caffemodel fetched ok?
    assert not (proj / "cache" / "v1" / "out" / "pnet-small" / "fetch.json").exists()


def test_bad_recipe_exits_2_and_writes_nothing(tmp_path):
    proj, e = make_project(tmp_path, recipes=("pnet-small",)), env(tmp_path)
    (proj / "recipes" / "broken.yaml").write_text("schema_version: 1\nquant: {mode: int4}\n")
    result = doit(proj, "build", "broken", env=e)
    assert result.returncode == 2
    assert "quant.mode: expected one of int8, int16, mixed, got 'int4'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (proj / "cache" / "v1" / "ac").exists()
    assert not (proj / "cache" / "v1" / "out").exists()


def test_explain_reports_reasons(tmp_path):
    proj, e = make_project(tmp_path), env(tmp_path)
    assert doit(proj, "build", "mnet-small", env=e).returncode == 0
    _set_count(proj, "mnet-small", 4)
    result = subprocess.run([sys.executable, "-m", "nnbuild.cli", "explain", "mnet-small"],
                            cwd=proj, env=e, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "fetch:mnet-small: up to date" in text and "digest:mnet-small: up to date" in text
    assert "slow:mnet-small: would run\n  recipe_changed: calibration.count" in text
    assert "package:mnet-small: would run\n  upstream_changed: slow" in text
    marker = json.loads((proj / "cache/v1/out/mnet-small/fetch.json").read_text())
    assert "/" not in json.dumps(marker["doc"]["recipe"])  # no paths in keys
