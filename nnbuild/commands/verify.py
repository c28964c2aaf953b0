"""``nnbuild verify ARCHIVE``: re-check a package against its manifest (and its .wk, if any)."""

from __future__ import annotations

import pathlib


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a dist/*.tar.gz package against its manifest")
    p.add_argument("archives", nargs="+", type=pathlib.Path, metavar="ARCHIVE")
    p.set_defaults(func=run)


def run(args) -> int:
    from nnbuild.archive import read_files, verify
    from nnbuild.nnie.wk.package_check import check_package_wk, packaged_wk

    for archive in args.archives:
        manifest = verify(archive)
        print(f"{archive}: ok ({len(manifest['files'])} files match manifest.json)")
        contents = read_files(archive, lambda name: name.endswith(".wk") and "/" not in name)
        for name in packaged_wk(contents):   # a real mapper's .wk: inspect-wk + manifest outputs
            doc = check_package_wk(f"{archive}: {name}", contents[name], manifest)
            print(f"{archive}: {name} ok (NNIE {doc['nnie']}, {doc['data_width']}-bit, "
                  f"{len(doc['segments'][-1]['outputs'])} outputs match manifest.json)")
    return 0
