"""``nnbuild verify ARCHIVE``: re-check a package against its manifest."""

from __future__ import annotations

import pathlib


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a dist/*.tar.gz package against its manifest")
    p.add_argument("archives", nargs="+", type=pathlib.Path, metavar="ARCHIVE")
    p.set_defaults(func=run)


def run(args) -> int:
    from nnbuild.archive import verify

    for archive in args.archives:
        manifest = verify(archive)
        print(f"{archive}: ok ({len(manifest['files'])} files match manifest.json)")
    return 0
