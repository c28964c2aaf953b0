"""The human report: one self-contained ``report.html`` rendered from ``report.json``.

No network, no scripts: charts are inline SVG generated here, thumbnails are inline JPEG data URIs
with the float and quantized detections drawn over them as SVG. The layout is a single column
that fits a phone (no horizontal scroll for the summary); wide tables scroll inside their own box.
Field names follow docs/report-json.md.
"""

from __future__ import annotations

import base64
import html
import io
import pathlib
from typing import Callable, Iterable, Sequence

from nnbuild.check import svg

CSS = """
body{font:15px/1.45 system-ui,-apple-system,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:12px}
section{background:#fff;border-radius:8px;padding:12px 14px;margin:12px 0;
 box-shadow:0 1px 2px #0001}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.1em;margin:.2em 0 .6em}
.verdict{font-weight:700;font-size:1.25em;padding:10px 14px;border-radius:8px;color:#fff}
.pass{background:#1f8a4c}.fail{background:#c0392b}
.kv{display:grid;grid-template-columns:fit-content(50%) minmax(0,1fr);gap:2px 12px;
 overflow-wrap:anywhere}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9em;width:100%}
td,th{padding:3px 6px;border-bottom:1px solid #e3e6ea;text-align:left;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}.thumbs figure{margin:0;flex:1 1 260px;max-width:320px}
figcaption{font-size:.85em;color:#555}svg{max-width:100%;height:auto}
.legend span{display:inline-block;margin-right:12px;font-size:.85em}
code{font-size:.9em;word-break:break-all}
"""

FLOAT_COLOR, QUANT_COLOR = "#2471a3", "#e67e22"
Loader = Callable[[int], "tuple[bytes, tuple[int, int]] | None"]


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _kv(pairs: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<div>{html.escape(k)}</div><div>{_fmt(v)}</div>" for k, v in pairs)
    return f'<div class="kv">{rows}</div>'


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{_fmt(c)}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
        else f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def summary(report: dict) -> str:
    verdict = report.get("verdict", "fail")
    task = report.get("task") or {}
    pairs = [("recipe", report.get("recipe")), ("chip", (report.get("target") or {}).get("chip")),
             ("quantization", (report.get("quant") or {}).get("mode")),
             ("first divergent layer", report.get("first_divergent_layer") or "none"),
             ("suggested _hp layers", ", ".join(report.get("suggested_hp") or []) or "none")]
    latency = report.get("latency") or {}
    ms = latency.get("ms", latency.get("latency_ms"))
    if isinstance(ms, (int, float)):
        pairs.append((f"estimated latency ({latency.get('chip')}, cost model)", f"{ms:.1f} ms"))
    pairs += [(k, v) for k, v in sorted((task.get("metrics") or {}).items())]
    explanation = report.get("explanation") or ""
    return (f'<section id="summary"><div class="verdict {verdict}">{verdict.upper()}</div>'
            f"<p>{html.escape(explanation)}</p>{_kv(pairs)}</section>")


def layer_chart(report: dict) -> str:
    layers = report.get("layers") or []
    acc = [((layer.get("accumulated") or {}).get("cosine")) for layer in layers]
    iso = [((layer.get("isolated") or {}).get("cosine")) for layer in layers]
    threshold = (report.get("thresholds") or {}).get("min_layer_cosine")
    chart = svg.line_chart([("accumulated", acc, QUANT_COLOR), ("isolated", iso, FLOAT_COLOR)],
                           labels=[layer.get("layer", "") for layer in layers],
                           threshold=threshold, y_label="cosine (float vs quantized)")
    return (f'<section id="layers"><h2>Cosine along the network</h2>{chart}'
            f'<p class="legend"><span style="color:{QUANT_COLOR}">■ accumulated (end to end)</span>'
            f'<span style="color:{FLOAT_COLOR}">■ isolated (layer alone)</span></p></section>')


def worst_layers(report: dict, n: int = 12) -> str:
    def key(layer):
        c = (layer.get("accumulated") or {}).get("cosine")
        return 2.0 if c is None else c
    rows = [(l.get("index"), l.get("layer"), l.get("type"), l.get("bits"),
             (l.get("accumulated") or {}).get("cosine"), (l.get("isolated") or {}).get("cosine"),
             (l.get("accumulated") or {}).get("snr_db"), l.get("float_abs_max"))
            for l in sorted(report.get("layers") or [], key=key)[:n]]
    outs = [(o.get("blob"), (o.get("metrics") or {}).get("cosine"),
             (o.get("metrics") or {}).get("cosine_min"), (o.get("metrics") or {}).get("snr_db"),
             (o.get("metrics") or {}).get("max_abs")) for o in report.get("outputs") or []]
    return ('<section id="worst"><h2>Outputs</h2>'
            + _table(["output", "cosine", "worst image", "SNR dB", "max abs err"], outs)
            + "<h2>Worst layers</h2>"
            + _table(["#", "layer", "type", "bits", "acc. cos", "iso. cos", "SNR dB", "range"],
                     rows) + "</section>")


def histograms(report: dict) -> str:
    items = report.get("histograms") or []
    if not items:
        return ""
    charts = "".join(
        f"<figure>{svg.histogram(h.get('edges') or [], h.get('counts') or [], h.get('levels') or [])}"
        f"<figcaption>{html.escape(str(h.get('layer')))} — |activation| vs {h.get('bits')}-bit "
        f"levels (range {_fmt(h.get('max_abs'))})</figcaption></figure>" for h in items)
    return (f'<section id="histograms"><h2>Activation ranges vs quantizer levels</h2>'
            f'<div class="thumbs">{charts}</div></section>')


def thumbnails(report: dict, loader: Loader | None) -> str:
    per_image = (report.get("task") or {}).get("per_image") or []
    images = report.get("images") or []
    if not loader or not per_image or "float" not in per_image[0]:
        return ""
    figures = []
    for i, (meta, result) in enumerate(zip(images, per_image)):
        picture = loader(i)
        if picture is None:
            continue
        jpeg, size = picture
        overlay = svg.detections(data_uri(jpeg), size, result.get("float", []),
                                 result.get("quant", []), FLOAT_COLOR, QUANT_COLOR)
        figures.append(f"<figure>{overlay}"
                       f"<figcaption>{html.escape(str(meta.get('name')))}: "
                       f"{len(result.get('float', []))} float / {len(result.get('quant', []))} "
                       f"quantized</figcaption></figure>")
    return (f'<section id="overlays"><h2>Detections</h2><p class="legend">'
            f'<span style="color:{FLOAT_COLOR}">■ float</span>'
            f'<span style="color:{QUANT_COLOR}">■ quantized</span></p>'
            f'<div class="thumbs">{"".join(figures)}</div></section>')


def inputs(report: dict) -> str:
    rows = sorted((report.get("inputs") or {}).items())
    thresholds = sorted((report.get("thresholds") or {}).items())
    return ('<section id="inputs"><h2>Thresholds</h2>' + _kv(thresholds)
            + "<h2>Inputs (sha256)</h2>"
            + "".join(f"<div><code>{html.escape(str(v))}</code> {html.escape(k)}</div>"
                      for k, v in rows) + "</section>")


def render_html(report: dict, image_loader: Loader | None = None) -> str:
    """Render the report as one self-contained HTML page.

    Args:
        report: the report.json dict (docs/report-json.md).
        image_loader: ``image_loader(i) -> (jpeg_bytes, (width, height))`` for check image *i* as
            the network saw it (after resizing; width/height are the network input's, the
            coordinates of the detections), or None. Without it no overlays are drawn.
    """
    from nnbuild.check import latency_report

    body = "".join([summary(report), latency_report.section(report), layer_chart(report),
                    thumbnails(report, image_loader),
                    worst_layers(report), histograms(report), inputs(report)])
    title = html.escape(f"nnbuild report: {report.get('recipe', '')}")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{title}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{title}</h1>{body}</main></body></html>\n")


def jpeg_thumbnail(rgb, max_side: int = 320) -> bytes:
    """JPEG bytes of an HxWx3 uint8 RGB array, scaled so its longer side is ``max_side``."""
    from PIL import Image

    image = Image.fromarray(rgb)
    scale = max_side / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=80, optimize=True)
    return buf.getvalue()


def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def write(report: dict, out: pathlib.Path, image_loader=None) -> pathlib.Path:
    out.write_text(render_html(report, image_loader), encoding="utf-8")
    return out
