"""The report's latency section: where the estimated time goes, as an inline SVG bar chart.

Reads ``report.json``'s ``latency`` object (the map stage's ``nnbuild.nnie.cost`` estimate):
per-operation estimated ms, totals all 8-bit / all 16-bit / the recipe's mode, and the model's
stated uncertainty (its largest leave-one-out error against published board times).
"""

from __future__ import annotations

import html

W, BAR_H, LABEL_W = 900, 16, 260


def bar_chart(rows: list[dict], top: int = 15) -> str:
    """Horizontal bars of the ``top`` costliest layers (``{name, ms, bits, bound}``), named."""
    rows = sorted((r for r in rows if r.get("ms")), key=lambda r: -r["ms"])[:top]
    if not rows:
        return ""
    peak = rows[0]["ms"]
    height = BAR_H * len(rows) + 24
    parts = [f'<svg class="chart latency-chart" viewBox="0 0 {W} {height}" width="{W}" '
             f'height="{height}" role="img" xmlns="http://www.w3.org/2000/svg">'
             "<title>estimated ms per layer</title>"]
    for i, row in enumerate(rows):
        y = 4 + i * BAR_H
        width = (W - LABEL_W - 90) * row["ms"] / peak
        color = "#e67e22" if row.get("bits") == 16 else "#2471a3"
        label = html.escape(str(row["name"]))
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + 12}" font-size="11" text-anchor="end">'
                     f"{label}</text>"
                     f'<rect x="{LABEL_W}" y="{y + 2}" width="{width:.1f}" height="{BAR_H - 4}" '
                     f'fill="{color}"><title>{label}: {row["ms"]:.3f} ms, {row.get("bits")}-bit, '
                     f'{html.escape(str(row.get("bound")))}-bound</title></rect>'
                     f'<text x="{LABEL_W + width + 4:.1f}" y="{y + 12}" font-size="11">'
                     f'{row["ms"]:.2f} ms</text>')
    parts.append(f'<text x="{LABEL_W}" y="{height - 4}" font-size="11">estimated ms per '
                 f"operation (blue 8-bit, orange 16-bit), the {len(rows)} costliest</text></svg>")
    return "".join(parts)


def section(report: dict) -> str:
    """The ``<section id="latency">`` for report.html ('' without per-layer estimates)."""
    latency = report.get("latency") or {}
    layers = latency.get("layers") or []
    if not layers:
        return ""
    totals = latency.get("totals") or {}
    cells = "".join(f"<div>{html.escape(k)}</div><div>{v:.2f} ms</div>"
                    for k, v in (("all 8-bit", totals.get("int8")),
                                 ("all 16-bit", totals.get("int16")),
                                 (f"this recipe ({latency.get('mode')})", totals.get("mode")))
                    if isinstance(v, (int, float)))
    uncertainty = latency.get("uncertainty")
    note = (f"Estimate for one NNIE core of {html.escape(str(latency.get('chip')))}, not a "
            "measurement")
    if isinstance(uncertainty, (int, float)):
        note += (f"; the model's leave-one-out error against published board times is up to "
                 f"±{100 * uncertainty:.0f}% on this chip's NNIE generation")
    overall = latency.get("uncertainty_all")
    if isinstance(overall, (int, float)):
        note += f" and up to ±{100 * overall:.0f}% over all of them (few points: read it as a guide)"
    return (f'<section id="latency"><h2>Where the time goes</h2><div class="kv">{cells}</div>'
            f"<p>{note}.</p>{bar_chart(layers)}</section>")


def front_chart(tried: list[dict], front: list[dict], budget_ms: float | None = None) -> str:
    """Scatter of tried ``_hp`` sets (worst output cosine vs estimated ms), the front as a line."""
    if not tried:
        return ""
    w, h, pad = 640, 320, 48
    xs, ys = [t["ms"] for t in tried], [t["score"] for t in tried]
    x0, x1 = min(xs + [budget_ms or xs[0]]), max(xs + [budget_ms or xs[0]])
    y0, y1 = min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-3)

    def px(v: float) -> float:
        return pad + (w - 2 * pad) * (v - x0) / (x1 - x0)

    def py(v: float) -> float:
        return h - pad - (h - 2 * pad) * (v - y0) / (y1 - y0)
    parts = [f'<svg class="chart front-chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
             'role="img" xmlns="http://www.w3.org/2000/svg"><title>output cosine vs estimated ms'
             "</title>"]
    for t in tried:
        label = html.escape(f"{t['ms']:.2f} ms, {t['score']:.4f}: {','.join(t['layers'])}")
        parts.append(f'<circle cx="{px(t["ms"]):.1f}" cy="{py(t["score"]):.1f}" r="2.5" '
                     f'fill="#9aa5b1"><title>{label}</title></circle>')
    points = " ".join(f"{px(t['ms']):.1f},{py(t['score']):.1f}" for t in front)
    parts.append(f'<polyline fill="none" stroke="#e67e22" stroke-width="2" points="{points}"/>')
    if budget_ms is not None:
        parts.append(f'<line x1="{px(budget_ms):.1f}" x2="{px(budget_ms):.1f}" y1="{pad}" '
                     f'y2="{h - pad}" stroke="#c0392b" stroke-dasharray="6 4"/>')
    parts.append(f'<text x="{pad}" y="{h - 12}" font-size="11">estimated ms {x0:.2f} .. '
                 f'{x1:.2f}; worst output cosine {y0:.4f} .. {y1:.4f}; orange: the front</text>'
                 "</svg>")
    return "".join(parts)
