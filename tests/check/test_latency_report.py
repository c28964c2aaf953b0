"""The report's latency section: per-layer bars, totals, uncertainty (from a real estimate)."""

from __future__ import annotations

import json
import re
import types

import pytest

from conftest import MODELS
from nnbuild.check import report_json as check_report
from nnbuild.check import latency_report
from nnbuild.check import report_html as report
from nnbuild.caffe import io
from nnbuild.nnie import cost


@pytest.fixture(scope="module")
def latency(tmp_path_factory):
    """check_report.latency on a quant.json holding MobileFaceNet's real estimate."""
    graph = io.load(MODELS / "mobilefacenet" / "mobilefacenet.prototxt").graph
    folder = tmp_path_factory.mktemp("map")
    record = {"mode": "int8", "chip": "hi3516dv300", "cost": cost.estimate(graph, "hi3516dv300")}
    (folder / "quant.json").write_text(json.dumps(record), encoding="utf-8")
    ctx = types.SimpleNamespace(upstream=lambda stage: folder)
    return check_report.latency(ctx), record["cost"]


def test_report_json_latency_fields(latency):
    got, estimate = latency
    assert got["ms"] == pytest.approx(estimate["latency_ms"])
    assert got["totals"]["int16"] == pytest.approx(2 * got["totals"]["int8"])
    assert got["uncertainty"] == estimate["uncertainty"] and got["estimate"] is True
    assert sum(r["ms"] for r in got["layers"]) == pytest.approx(got["ms"], rel=1e-4)
    json.dumps(got, allow_nan=False)  # report.json must stay plain JSON


def test_html_names_the_costliest_layers(latency):
    got, _ = latency
    page = report.render_html({"recipe": "mobilefacenet", "verdict": "pass", "latency": got})
    section = re.search(r'<section id="latency">.*?</section>', page).group(0)
    top = sorted(got["layers"], key=lambda r: -r["ms"])[:15]
    assert section.count("<rect ") == 15
    for row in top:
        assert f">{row['name']}</text>" in section
    assert f"{got['totals']['int16']:.2f} ms" in section
    assert f"±{100 * got['uncertainty']:.0f}%" in section
    assert f"±{100 * got['uncertainty_all']:.0f}% over all" in section
    widths = [float(w) for w in re.findall(r'<rect x="260" y="[\d.]+" width="([\d.]+)"', section)]
    assert widths == sorted(widths, reverse=True) and widths[0] == pytest.approx(550.0)


def test_no_section_without_layers():
    assert latency_report.section({"latency": {"ms": 3.0}}) == ""
    assert "Where the time goes" not in report.render_html({"verdict": "pass"})


def test_front_chart_plots_every_tried_set_and_the_front():
    from nnbuild.check import suggest_budget

    gains = {"a": 0.05, "b": 0.01, "c": 0.2}
    extra = {"a": 1.0, "b": 0.2, "c": 3.0}
    result = suggest_budget.search(lambda hp: 0.5 + sum(gains[n] for n in hp), list(gains),
                                   extra, 10.0, 12.0)
    svg = latency_report.front_chart(result.tried, result.front(), 12.0)
    assert svg.count("<circle ") == len(result.tried)
    assert svg.count(",") >= len(result.front()) and "stroke-dasharray" in svg
    assert latency_report.front_chart([], []) == ""
