"""Why a stage would run: its current key document against the one of its last build.

Reasons (``cache/v1/out/<recipe>/<stage>.json`` holds the last key document):
``recipe_changed: calibration.count``, ``input_changed: <file>``, ``code_changed: <file>``,
``library_changed: <name>``, ``upstream_changed: <stage>``, ``tool_changed: <tool>``,
``missing_output`` (never built, or outputs deleted/edited). A stage whose new key is already
in the cache is restored instead of recomputed; with a team cache (``build.teamcache``) a
stage whose key is on the remote is "on remote" (it would be downloaded, not run), and an up
to date stage whose outputs came from there says so.
"""

from __future__ import annotations

STATUSES = ("up to date", "restored from cache", "would run",
            "up to date (restored from remote)", "on remote (would be restored from remote)")


def _leaf_diff(old: object, new: object, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _leaf_diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if old == new else [path]


def reasons(old: dict | None, new: dict, labels_old: dict, labels_new: dict) -> list[str]:
    """Why a stage with key document ``new`` differs from its last build's ``old``."""
    if old is None:
        return ["missing_output (never built)"]
    out = []
    if old.get("cache") != new.get("cache") or old.get("stage") != new.get("stage"):
        out.append("cache_version_changed")
    old_code, new_code = old.get("code") or {}, new["code"]
    out += [f"code_changed: nnbuild/{f}" for f in
            _leaf_diff(old_code.get("files", {}), new_code.get("files", {}), "")]
    out += [f"library_changed: {lib}" for lib in
            _leaf_diff(old_code.get("libraries", {}), new_code.get("libraries", {}), "")]
    out += [f"recipe_changed: {p}" for p in _leaf_diff(old.get("recipe", {}), new["recipe"], "")]
    for group in sorted(set(old.get("inputs", {})) | set(new["inputs"])):
        before, after = set(old.get("inputs", {}).get(group, [])), set(new["inputs"].get(group, []))
        out += [f"input_changed: {labels_new.get(d, d[:12])} (new in {group})" for d in
                sorted(after - before)]
        out += [f"input_changed: {labels_old.get(d, d[:12])} (gone from {group})" for d in
                sorted(before - after)]
    out += [f"upstream_changed: {s}" for s in sorted(new["upstream"])
            if old.get("upstream", {}).get(s) != new["upstream"][s]]
    out += [f"tool_changed: {t}" for t in _leaf_diff(old.get("tools", {}), new["tools"], "")]
    return out


def explain(pipe, rec) -> list[tuple[str, str, list[str]]]:
    """``[(stage, status, reasons)]`` for every stage of ``rec``; status is one of
    ``STATUSES``: up to date, restored from cache (its key is in the store) or would run.

    A stage after one that is restored is keyed with the restored outputs (the cache entry
    holds their hashes), so it too shows "restored from cache" when its entry is there.
    """
    rows, known = [], {}  # known: stage -> output hashes it has or will have, without running
    for stage in pipe.modules:
        pipe.forget(rec)
        if pipe.is_current(rec, stage):
            rows.append((stage, STATUSES[3 if _from_remote(pipe, rec, stage) else 0], []))
            known[stage] = _hashes(pipe.read_marker(rec.name, stage))
            continue
        key, doc, labels = pipe.key_doc(rec, stage, loose=True, assumed=known)
        marker = pipe.read_marker(rec.name, stage)
        why = reasons(marker and marker.get("doc"), doc, (marker or {}).get("labels", {}), labels)
        if marker and marker.get("key") == key or not why:
            why = why or ["missing_output (outputs deleted or edited)"]
        pending = "pending" in doc["upstream"].values()
        entry = None if pending else pipe.cache.read_entry(stage, key)
        if entry is not None:
            known[stage] = _hashes(entry)
            status = STATUSES[1]
        elif not pending and pipe.team.on_remote(stage, key):
            status = STATUSES[4]
        else:
            status = STATUSES[2]
        rows.append((stage, status, why))
    return rows


def _hashes(record: dict | None) -> dict:
    """``{output name: sha256}`` of a marker or cache entry."""
    return {n: o["sha256"] for n, o in ((record or {}).get("outputs") or {}).items()}


def _from_remote(pipe, rec, stage: str) -> bool:
    """True when the local entry of the stage's last build was downloaded from the remote."""
    import json

    key = (pipe.read_marker(rec.name, stage) or {}).get("key")
    try:
        return json.loads(pipe.cache.entry_path(stage, key).read_text()).get("origin") == "remote"
    except (OSError, ValueError, TypeError, AttributeError):
        return False
