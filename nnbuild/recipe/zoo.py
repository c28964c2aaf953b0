"""The recipe zoo: nnbuild's own recipes, usable from any project as ``extends: zoo:NAME``.

In a checkout the zoo is ``recipes/`` beside the package; an installed wheel carries the same
files as ``nnbuild/zoo/`` (setup.py maps the ``nnbuild.zoo`` package onto ``recipes/``): the
recipes, the ``_base/`` files and the ``_data/`` manifests of public photos (url + sha256 lines),
never the photos or models themselves. ``zoo:retinaface-640`` names ``retinaface-640.yaml``,
``zoo:_base/retinaface-mnet25`` a base. Standard library only (the no-op build resolves it).
"""

from __future__ import annotations

from pathlib import Path

from nnbuild.errors import RecipeError

PREFIX = "zoo:"
_PACKAGE = Path(__file__).resolve().parent.parent


def zoo_dir() -> Path:
    """Where the zoo's files are: ``nnbuild/zoo`` when installed, the checkout's ``recipes/``."""
    for candidate in (_PACKAGE / "zoo", _PACKAGE.parent / "recipes"):
        if (candidate / "_base").is_dir():
            return candidate
    raise RecipeError("zoo", "the recipe zoo is not installed", expected=str(_PACKAGE / "zoo"),
                      got="nothing", hint="reinstall nnbuild (pip install nnbuild)")


def zoo_names() -> list[str]:
    """Recipe files of the zoo (bases excluded), by stem."""
    return sorted(p.stem for p in zoo_dir().glob("*.yaml") if not p.name.startswith("_"))


def zoo_path(ref: str, where: str) -> Path:
    """The file ``zoo:NAME`` names.

    Raises:
        RecipeError: no such zoo recipe (the message lists them).
    """
    name = ref[len(PREFIX):].strip()
    path = (zoo_dir() / f"{name}.yaml").resolve()
    if ".." in Path(name).parts or not path.is_file():
        raise RecipeError(where, f"no zoo recipe {name!r}",
                          expected="one of " + ", ".join(zoo_names()), got=ref,
                          hint="`nnbuild zoo` lists the zoo; bases are zoo:_base/NAME")
    return path
