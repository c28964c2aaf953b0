"""Small inline-SVG charts for the HTML report (no plotting library, no scripts).

Every chart has a fixed ``viewBox`` and scales to its container's width, so it reads on a phone.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

W, H = 900, 300
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 12, 34


def _open(width: int, height: int, cls: str, title: str) -> str:
    return (f'<svg class="{cls}" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{html.escape(title)}</title>")


def _y_range(series: Sequence[Sequence[float | None]], threshold: float | None) -> tuple[float, float]:
    values = [v for s in series for v in s if v is not None and math.isfinite(v)]
    if threshold is not None:
        values.append(threshold)
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if high - low < 1e-3:
        low -= 5e-4
        high += 5e-4
    margin = 0.05 * (high - low)
    return low - margin, min(high + margin, 1.0) if high <= 1.0 else high + margin


def line_chart(series: Sequence[tuple[str, Sequence[float | None], str]], *, labels: Sequence[str],
               threshold: float | None = None, y_label: str = "") -> str:
    """Lines over a categorical x axis (layers in execution order); ``None`` leaves a gap."""
    n = max((len(values) for _, values, _ in series), default=0)
    low, high = _y_range([values for _, values, _ in series], threshold)
    def x(i: int) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (i / max(n - 1, 1))
    def y(v: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - (v - low) / (high - low))
    parts = [_open(W, H, "chart layer-chart", y_label)]
    for k in range(5):
        v = low + (high - low) * k / 4
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#e3e6ea"/><text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{v:.4f}</text>')
    if threshold is not None:
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(threshold):.1f}" '
                     f'y2="{y(threshold):.1f}" stroke="#c0392b" stroke-dasharray="6 4"/>')
    for name, values, color in series:
        for run in _runs(values):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" '
                         f'points="{points}"><title>{html.escape(name)}</title></polyline>')
        for i, v in enumerate(values):
            if v is not None:
                label = html.escape(f"{labels[i] if i < len(labels) else i}: {name} {v:.5f}")
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="1.8" fill="{color}">'
                             f"<title>{label}</title></circle>")
    parts.append(f'<text x="{PAD_L}" y="{H - 8}" font-size="11">layers in execution order '
                 f'(1..{n}); hover a point for its name</text></svg>')
    return "".join(parts)


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    runs, current = [], []
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((i, v))
    if current:
        runs.append(current)
    return runs


def histogram(edges: Sequence[float], counts: Sequence[int], levels: Sequence[float]) -> str:
    """Bars of |activation| counts (log scale) with the quantizer's levels as ticks below."""
    w, h, base = 320, 160, 130
    if not counts or len(edges) != len(counts) + 1:
        return _open(w, h, "chart hist", "no data") + "</svg>"
    lo, hi = edges[0], edges[-1] if edges[-1] > edges[0] else edges[0] + 1
    top = max(math.log1p(c) for c in counts) or 1.0
    def x(v: float) -> float:
        return 4 + (w - 8) * (v - lo) / (hi - lo)
    parts = [_open(w, h, "chart hist", "activation histogram")]
    for i, c in enumerate(counts):
        bar = (base - 6) * math.log1p(c) / top
        parts.append(f'<rect x="{x(edges[i]):.1f}" y="{base - bar:.1f}" '
                     f'width="{max(x(edges[i + 1]) - x(edges[i]) - 0.5, 0.5):.1f}" '
                     f'height="{bar:.1f}" fill="#2471a3"/>')
    for v in levels:
        if lo <= v <= hi:
            parts.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{base + 2}" y2="{base + 12}" '
                         f'stroke="#e67e22" stroke-width="0.7"/>')
    parts.append(f'<text x="4" y="{h - 4}" font-size="10">0</text><text x="{w - 4}" y="{h - 4}" '
                 f'font-size="10" text-anchor="end">{hi:.3g}</text></svg>')
    return "".join(parts)


def detections(image_uri: str, size: tuple[int, int], float_dets: Sequence[dict],
               quant_dets: Sequence[dict], float_color: str, quant_color: str) -> str:
    """The image with float (solid) and quantized (dashed) boxes and landmarks over it.

    Coordinates are network-input pixels; the viewBox is the network input, so the thumbnail,
    whatever its own resolution, is stretched to it.
    """
    width, height = size
    parts = [_open(width, height, "overlay", "detections"),
             f'<image href="{image_uri}" x="0" y="0" width="{width}" height="{height}" '
             f'preserveAspectRatio="none"/>']
    stroke = max(width, height) / 200
    for dets, color, dash in ((float_dets, float_color, ""), (quant_dets, quant_color, "6 4")):
        for det in dets:
            x1, y1, x2, y2 = det["box"]
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" '
                         f'height="{y2 - y1:.1f}" fill="none" stroke="{color}" '
                         f'stroke-width="{stroke:.1f}"{dash_attr}><title>{det["score"]:.3f}'
                         f"</title></rect>")
            for lx, ly in det.get("landmarks") or []:
                parts.append(f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="{stroke:.1f}" '
                             f'fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)
