"""report.html rendering: self-contained, has the verdict, the chart and the overlays."""

from __future__ import annotations

import re

import numpy as np

from nnbuild.check import report_html as report

from nnbuild.check import svg


def _report(verdict="fail"):
    layers = [{"index": i, "layer": f"conv{i}", "type": "Convolution", "blob": f"conv{i}",
               "ssa_blob": f"conv{i}", "bits": 8,
               "accumulated": {"cosine": 1 - 0.01 * i, "snr_db": 30.0 - i},
               "isolated": {"cosine": 1 - 0.002 * i} if i != 2 else None,
               "float_abs_max": 3.5} for i in range(5)]
    det = {"box": [10.0, 12.0, 50.0, 60.0], "score": 0.98,
           "landmarks": [[20.0, 30.0]] * 5}
    return {"schema_version": 1, "recipe": "demo-640", "verdict": verdict,
            "explanation": "bbox output cosine 0.93 < 0.95" if verdict == "fail" else "",
            "thresholds": {"min_layer_cosine": 0.97, "min_output_cosine": 0.95},
            "quant": {"mode": "int8"}, "target": {"chip": "hi3516dv300"},
            "images": [{"name": "a.jpg", "sha256": "ab" * 32}], "layers": layers,
            "outputs": [{"blob": "conv4", "metrics": {"cosine": 0.93, "cosine_min": 0.9}}],
            "first_divergent_layer": "conv3", "suggested_hp": ["conv3", "conv1", "conv2"],
            "task": {"name": "retinaface", "metrics": {"recall_vs_float": 0.9},
                     "per_image": [{"float": [det], "quant": [det]}]},
            "latency": {"chip": "hi3516dv300", "ms": 17.2, "mode": "int8"},
            "histograms": [{"layer": "conv3", "max_abs": 4.0, "bits": 8, "edges": [0, 1, 2, 4],
                            "counts": [100, 10, 1], "levels": [0.5, 1.0, 2.0, 4.0]}],
            "inputs": {"model.prototxt": "cd" * 32}}


def _loader(i):
    rgb = np.zeros((64, 80, 3), np.uint8)
    rgb[..., 0] = 200
    return report.jpeg_thumbnail(rgb), (80, 64)


def test_page_is_self_contained_and_shows_the_verdict():
    page = report.render_html(_report(), _loader)
    assert page.startswith("<!DOCTYPE html>")
    assert re.search(r'class="verdict fail">FAIL<', page)
    assert "conv3" in page and "17.2 ms" in page
    no_ms = dict(_report(), latency={"chip": "hi3559av100", "ms": None})
    assert "estimated latency" not in report.render_html(no_ms)
    # No external resources of any kind: every src/href is inline.
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<script" not in page
    assert 'name="viewport"' in page


def test_chart_has_one_point_per_layer_and_series_gap_for_missing_isolated():
    page = report.render_html(_report())
    chart = re.search(r'<svg class="chart layer-chart".*?</svg>', page).group(0)
    assert chart.count("<circle") == 5 + 4  # accumulated 5, isolated 4 (one null)
    assert chart.count("<polyline") == 1 + 2  # isolated split in two runs around the gap


def test_overlays_draw_float_and_quantized_boxes_over_the_thumbnail():
    page = report.render_html(_report(), _loader)
    overlay = re.search(r'<svg class="overlay".*?</svg>', page).group(0)
    assert 'viewBox="0 0 80 64"' in overlay
    assert overlay.count("<rect") == 2 and "stroke-dasharray" in overlay
    assert overlay.count("<circle") == 10
    assert "data:image/jpeg;base64," in overlay
    assert report.render_html(_report()).count('class="overlay"') == 0


def test_y_axis_covers_the_values_and_threshold():
    low, high = svg._y_range([[0.99, 0.95, None]], 0.9)
    assert low < 0.9 and high >= 0.99


def test_passing_report_has_green_verdict_and_no_explanation():
    page = report.render_html(_report("pass"))
    assert 'class="verdict pass">PASS<' in page
