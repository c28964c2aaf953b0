"""``nnbuild cache gc|stats|push|pull``: keep the cache in bounds, and share it with a team.

``gc --max-size SIZE``, ``stats [--remote]``, ``push [RECIPE ...]``, ``pull RECIPE ...``; the
work is ``nnbuild.build.gc`` and ``nnbuild.build.teamsync``, this module parses and prints.
"""

from __future__ import annotations

import argparse
from typing import Any

from nnbuild.build.gc import gc, parse_size, stats


def register(subparsers: Any) -> None:
    """Add ``cache gc`` and ``cache stats``."""
    parser = subparsers.add_parser("cache", help="cache maintenance (gc, stats, push, pull)",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    gc_parser = sub.add_parser("gc", help="remove unreferenced files and LRU entries")
    gc_parser.add_argument("--max-size", default=None, help="keep the content store under SIZE")
    gc_parser.add_argument("--grace", type=float, default=600.0,
                           help="keep unreferenced files younger than this many seconds")
    gc_parser.set_defaults(func=run_gc)
    stats_parser = sub.add_parser("stats", help="entries per stage, store size")
    stats_parser.add_argument("--remote", action="store_true",
                              help="the team cache's counters: hits, misses, bytes moved")
    stats_parser.set_defaults(func=run_stats)
    push = sub.add_parser("push", help="upload built stages to the remote cache")
    push.add_argument("recipes", nargs="*", metavar="RECIPE", help="default: every local entry")
    push.set_defaults(func=run_push)
    pull = sub.add_parser("pull", help="restore recipes from the remote cache, running nothing")
    pull.add_argument("recipes", nargs="+", metavar="RECIPE")
    pull.set_defaults(func=run_pull)


def _cache():
    from nnbuild.build.cache import Cache
    from nnbuild.build.doit_plugin import cache_root
    from nnbuild.recipe.load import project_root

    return Cache(cache_root(project_root()))


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def run_gc(args: argparse.Namespace) -> int:
    """Run gc and print what it removed."""
    limit = parse_size(args.max_size) if args.max_size is not None else None
    from nnbuild.recipe.load import recipes_dir
    from nnbuild.recipe.scan import scan

    folder = recipes_dir()
    names, problems = scan(folder)
    # no recipes/ here, or a file that cannot be read now: which recipes exist is unknown
    known = set(names) if folder.is_dir() and not problems else None
    result = gc(_cache(), limit, args.grace, known)
    print(f"removed {result['entries']} entries, {result['files']} files, "
          f"{result['folders']} output folders, {result['tmp']} stale staging items "
          f"({_human(result['bytes'])}); kept "
          f"{result['kept_entries']} entries ({_human(result['kept_bytes'])})")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print the cache statistics (``--remote``: the team cache's counters)."""
    if args.remote:
        return run_remote_stats()
    info = stats(_cache())
    print(f"cache: {info['root']}")
    print(f"content store: {info['files']} files, {_human(info['bytes'])}")
    print(f"materialised outputs: {_human(info['out_bytes'])}")
    print(f"per-image results (scratch): {_human(info['scratch_bytes'])}")
    print(f"staging (tmp): {_human(info['tmp_bytes'])}")
    total = info["bytes"] + info["out_bytes"] + info["scratch_bytes"] + info["tmp_bytes"]
    print(f"total: {_human(total)}")
    for stage, count in info["entries"].items():
        print(f"  {stage}: {count} entries")
    return 0


def run_remote_stats() -> int:
    """Print the remote URL and the counters of ``cache/v1/remote/stats.json``."""
    from nnbuild.build.teamcache import TeamCache, read_stats

    cache = _cache()
    counts = read_stats(cache)
    print(f"remote: {TeamCache(cache).url or 'none configured (NNBUILD_REMOTE)'}")
    print(f"hits: {counts['hits']}, misses: {counts['misses']}, corrupt records: {counts['bad']}, "
          f"failures: {counts['errors']}")
    print(f"downloaded: {_human(counts['bytes_down'])}, uploaded: {_human(counts['bytes_up'])} "
          f"in {counts['uploads']} records")
    return 0


def run_push(args: argparse.Namespace) -> int:
    """Upload the built entries of the named recipes (default: all) to the remote."""
    from nnbuild.build.teamsync import push
    from nnbuild.recipe.load import project_root

    pushed, skipped, ok = push(project_root(), list(args.recipes))
    print(f"pushed {pushed} entries" + (f" ({skipped} unreadable here, skipped)" if skipped
                                        else ""))
    return 0 if ok else 1


def run_pull(args: argparse.Namespace) -> int:
    """Restore every stage of the named recipes from the remote (nothing runs)."""
    from nnbuild.build.teamsync import pull
    from nnbuild.recipe.load import project_root

    return pull(project_root(), list(args.recipes))
