"""``nnbuild init``: the files of a new nnbuild project of one's own.

A project is a folder with ``recipes/`` (recipes may extend the zoo: ``extends: zoo:NAME``),
a ``pyproject.toml`` holding the doit wiring (``[tool.doit]``, the same table as
``doit_plugin.DOIT_CONFIG``) and the project's mirror directories (``[tool.nnbuild] mirror``),
a ``.gitignore`` for ``cache/`` and ``dist/``, and a README naming the two commands. Existing
files are never overwritten.
"""

from __future__ import annotations

from pathlib import Path

from nnbuild.errors import NNBuildError

EXAMPLE = """\
# An example recipe: nnbuild's RetinaFace mnet0.25 at 640x640 from the zoo (`nnbuild zoo`),
# with smaller calibration and check sets. Override any field; see the zoo recipe for the rest.
extends: zoo:retinaface-640
description: example - RetinaFace mnet0.25 640x640, 8-bit, Hi3516DV300
calibration: {count: 8}
check: {count: 4}
"""

README = """\
# {name}

NNIE builds with [nnbuild](https://pypi.org/project/nnbuild/): one recipe per model variant in
`recipes/`.

```console
$ nnbuild build example        # or: doit build example
$ nnbuild validate             # check every recipe
```

Packages land in `dist/`, the content-addressed cache in `cache/`. Models and photos are fetched
by URL and sha256, or found in the mirror directories of `pyproject.toml` (`[tool.nnbuild]
mirror`) or `NNBUILD_MIRROR`.
"""


def pyproject_text() -> str:
    """``pyproject.toml`` of a new project: mirrors, then the doit wiring."""
    from nnbuild.build.doit_plugin import DOIT_CONFIG

    glob, loader, command = (DOIT_CONFIG[k] for k in ("GLOBAL", "LOADER", "COMMAND"))
    lines = ["[tool.nnbuild]",
             "# Directories searched for pinned files (matched by sha256, any name), relative",
             "# to this file; NNBUILD_MIRROR (os.pathsep-separated) replaces them.",
             "mirror = []", "", "[tool.doit]"]
    lines += [f'{k} = "{v}"' for k, v in glob.items()]
    lines += ["", "[tool.doit.plugins.loader]"] + [f'{k} = "{v}"' for k, v in loader.items()]
    lines += ["", "[tool.doit.plugins.command]"] + [f'{k} = "{v}"' for k, v in command.items()]
    return "\n".join(lines) + "\n"


def project_files(folder: Path) -> dict[Path, str]:
    """Every file ``init`` writes, with its text."""
    return {folder / "recipes" / "example.yaml": EXAMPLE,
            folder / "pyproject.toml": pyproject_text(),
            folder / ".gitignore": "cache/\ndist/\n",
            folder / "README.md": README.format(name=folder.resolve().name)}


def init(folder: Path) -> list[Path]:
    """Write a new project into ``folder`` (created if needed); returns the files written.

    Raises:
        NNBuildError: one of the files exists already (none is written then).
    """
    files = project_files(folder)
    present = [p for p in files if p.exists()]
    if present:
        raise NNBuildError(f"nnbuild init {folder}", "would overwrite existing files",
                           expected="none of them present",
                           got=", ".join(str(p) for p in present),
                           hint="run it in an empty folder, or move those files away")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
