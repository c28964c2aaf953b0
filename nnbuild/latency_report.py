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
    return (f'<section id="latency"><h2>Where the time goes</h2><div class="kv">{cells}</div>'
            f"<p>{note}.</p>{bar_chart(layers)}</section>")
