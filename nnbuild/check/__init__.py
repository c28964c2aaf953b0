"""The check: float vs quantized comparison, per-image work, task decoders and metrics
(``check.tasks``), report.json and report.html, and the suggest-hp search."""
