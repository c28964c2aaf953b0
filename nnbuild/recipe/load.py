"""Recipes: YAML files (safe loader) with ``extends`` and ``matrix``, validated by a JSON Schema.

Rules (docs/design.md "Recipe"):

* ``recipes/<name>.yaml`` is a recipe named by its file stem; files under ``recipes/_base/`` (and
  any directory starting with ``_``) are bases, not recipes.
* ``extends: FILE`` (relative to the file, or ``zoo:NAME`` for a recipe of nnbuild's zoo,
  ``recipe.zoo``) deep-merges the file over its base: maps merge; lists, scalars, REFs and
  image selections (``{manifest, skip}``) replace. Chains are allowed, cycles and missing bases
  are errors. A base's ``matrix`` is not inherited.
* Paths (``source.*``, ``*.images`` and their manifests, ``mapper.path``) are relative to the
  file that states them and are resolved to absolute paths; string REFs become ``{"path": ...}``.
* ``matrix: {dotted.key: [v1, v2], ...}`` expands one file into the cross product of variants.
  A variant's name is the stem plus ``-<label>`` per matrix key in file order; a list value's
  label is its items joined by ``x`` (``[1, 3, 640, 640]`` -> ``1x3x640x640``), a scalar's its
  text; ``{label: value, ...}`` maps give explicit labels (``input.shape: {"640": [1,3,640,640]}``
  -> ``retinaface-640``). The file itself is then not a recipe.
* Names match ``[A-Za-z0-9][A-Za-z0-9._+-]*`` so that no recipe can make nnbuild write outside
  ``cache/`` or ``dist/``.

Validation (``nnbuild/recipe/schema.py``, jsonschema imported lazily) runs only when the
resolved recipe changed: a passing result is remembered in ``cache/v1/valid/``.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from nnbuild.errors import RecipeError
from nnbuild.hashing import sha256_file
from nnbuild.recipe import zoo
from nnbuild.recipe.schema import validate
from nnbuild.recipe.spec import RecipeSpec
from nnbuild.recipe.yamlsafe import load_text

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
IMAGE_SECTIONS = ("patch_check", "calibration", "check")


@dataclass(frozen=True)
class Recipe:
    """A resolved recipe: ``name``, the ``path`` of its file, the merged ``data`` dict (kept for
    packaging it as written) and its typed ``spec``, which is what stages and libraries read."""

    name: str
    path: Path
    data: dict

    @functools.cached_property
    def spec(self) -> RecipeSpec:
        return RecipeSpec.from_data(self.data, display(Path(self.path)))

    @functools.cached_property
    def values(self) -> dict:
        """``spec.to_dict()``: every field with its default filled in (stage keys read it)."""
        return self.spec.to_dict()


def project_root() -> Path:
    """The project directory: ``$NNBUILD_ROOT`` or the current directory."""
    return Path(os.environ.get("NNBUILD_ROOT") or os.getcwd()).resolve()


def recipes_dir(root: Path | None = None) -> Path:
    """``<root>/recipes``."""
    return (root or project_root()) / "recipes"


def display(path: Path) -> str:
    """``path`` relative to the current directory when below it (for messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_name(name: str, where: str = "recipe name", *, typed: bool = False) -> str:
    """Reject names that are not plain file-name tokens (they end up in cache/ and dist/ paths).

    With ``typed`` the name is a command-line argument: the hint says to fix it, not to rename
    a file.
    """
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        hint = ("give a recipe's name: its file name in recipes/ without .yaml" if typed else
                "rename the file; names become paths in cache/ and dist/")
        raise RecipeError(where, "not a safe recipe name", expected="letters, digits, '.', '_', "
                          "'+', '-' (no '/', no '..', not starting with '.' or '-')",
                          got=repr(name), hint=hint)
    return name


def load_yaml(path: Path) -> dict:
    """Parse one YAML file with the safe loader; syntax errors name the line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RecipeError(display(path), "cannot read the file", expected="a readable file",
                          got=err.strerror, hint="check the path") from None
    try:
        data = load_text(text, display(path))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{display(path)}:{mark.line + 1}:{mark.column + 1}" if mark else display(path)
        raise RecipeError(where, f"YAML syntax error: {err.problem or err.context}",
                          hint="fix the YAML at that line") from None
    except yaml.YAMLError as err:
        raise RecipeError(display(path), f"YAML error: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(display(path), "not a mapping", expected="key: value pairs at the top",
                          got=type(data).__name__)
    return data


# A map with one of these keys is one value (a REF or an image selection), replaced whole: a
# recipe overriding ``check.images: {manifest: B}`` must not keep the base's ``skip: 16``.
WHOLE_VALUE_KEYS = frozenset({"url", "sha256", "path", "manifest"})


def deep_merge(base: dict, over: dict) -> dict:
    """Return ``base`` with ``over`` merged in: maps merge recursively, everything else (and a
    REF or image-selection map, see ``WHOLE_VALUE_KEYS``) replaces."""
    merged = dict(base)
    for key, value in over.items():
        if (isinstance(value, dict) and isinstance(merged.get(key), dict)
                and not WHOLE_VALUE_KEYS & (set(value) | set(merged[key]))):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _map_ref(ref: object, fn) -> object:
    if isinstance(ref, str):
        return {"path": fn(ref)}
    if isinstance(ref, dict) and isinstance(ref.get("path"), str):
        return dict(ref, path=fn(ref["path"]))
    return ref


def _map_paths(data: dict, fn) -> dict:
    """A copy of ``data`` with ``fn`` applied to every path a recipe states (module doc)."""
    data = copy.deepcopy(data)
    source = data.get("source")
    if isinstance(source, dict):
        for role in ("prototxt", "caffemodel", "onnx"):
            if role in source:
                source[role] = _map_ref(source[role], fn)
    for section in IMAGE_SECTIONS:
        images = (data.get(section) or {}).get("images") if isinstance(data.get(section), dict) else None
        if isinstance(images, list):
            data[section]["images"] = [_map_ref(r, fn) for r in images]
        elif isinstance(images, dict) and isinstance(images.get("manifest"), str):
            images["manifest"] = fn(images["manifest"])
    inp = data.get("input")
    if isinstance(inp, dict) and inp.get("mean_file"):
        inp["mean_file"] = _map_ref(inp["mean_file"], fn)  # per-pixel mean image (board.frames)
    mapper = data.get("mapper")
    if isinstance(mapper, dict) and isinstance(mapper.get("path"), str) and "/" in mapper["path"]:
        mapper["path"] = fn(mapper["path"])  # bare names are looked up on PATH
    return data


def resolve_paths(data: dict, folder: Path) -> dict:
    """Make the paths one file states absolute (relative to ``folder``, that file's directory)."""
    return _map_paths(data, lambda path: str((folder / path).resolve()))


def load_merged(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """Load ``path`` with its ``extends`` chain merged in and paths resolved."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(display(p) for p in chain + (path,))
        raise RecipeError(display(chain[0]), "extends cycle", expected="a chain ending in a base",
                          got=cycle, hint="remove one of the extends")
    data = resolve_paths(load_yaml(path), path.parent)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise RecipeError(f"{display(path)}: extends", "not a file name", expected="a path string",
                          got=repr(parent))
    if parent.startswith(zoo.PREFIX):
        base_path = zoo.zoo_path(parent, f"{display(path)}: extends")
    else:
        base_path = (path.parent / parent).resolve()
    if not base_path.is_file():
        raise RecipeError(f"{display(path)}: extends", "base file not found",
                          expected="an existing file relative to the recipe", got=parent,
                          hint=f"create {display(base_path)} or fix the path")
    base = load_merged(base_path, chain + (path,))
    base.pop("matrix", None)
    return deep_merge(base, data)


def set_dotted(data: dict, dotted: str, value: object) -> None:
    """Set ``data[a][b]`` for ``"a.b"``, creating maps on the way."""
    *parents, last = dotted.split(".")
    for part in parents:
        node = data.get(part)
        if not isinstance(node, dict):
            node = data[part] = {}
        data = node
    data[last] = copy.deepcopy(value)


def get_dotted(data: dict, dotted: str, default: object = None) -> object:
    """Return ``data[a][b]`` for ``"a.b"`` or ``default`` when any part is missing."""
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data


def _label(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(_label(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def expand_matrix(stem: str, data: dict, where: str) -> dict[str, dict]:
    """``{name: data}`` for a recipe file: one entry, or one per matrix combination."""
    matrix = data.get("matrix")
    if matrix is None:
        return {stem: data}
    if not isinstance(matrix, dict) or not matrix:
        raise RecipeError(f"{where}: matrix", "not a map", expected="{dotted.key: [values]}",
                          got=repr(matrix))
    axes = []
    for key, values in matrix.items():
        if isinstance(values, dict) and values:
            axes.append([(str(label), key, v) for label, v in values.items()])
        elif isinstance(values, list) and values:
            axes.append([(_label(v), key, v) for v in values])
        else:
            raise RecipeError(f"{where}: matrix.{key}", "no values", expected="a non-empty list "
                              "or {label: value} map", got=repr(values))
    variants = {}
    base = {k: v for k, v in data.items() if k != "matrix"}
    for combo in itertools.product(*axes):
        name = "-".join([stem] + [label for label, _k, _v in combo])
        variant = copy.deepcopy(base)
        for _label_, key, value in combo:
            set_dotted(variant, key, value)
        variants[name] = variant
    return variants


# -- discovery -------------------------------------------------------------------------------
def recipe_files(folder: Path) -> list[Path]:
    """Recipe files directly in ``folder`` (``*.yaml``/``*.yml``), bases excluded."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")
                  and not p.name.startswith(("_", ".")) and p.is_file())


def load_file(path: Path, cache=None) -> dict[str, Recipe]:
    """All recipes one file defines (several with ``matrix``), validated."""
    where = display(path)
    check_name(path.stem, where)
    merged = load_merged(path)
    recipes = {}
    for name, data in expand_matrix(path.stem, merged, where).items():
        check_name(name, f"{where}: matrix")
        validate(data, where if name == path.stem else f"{where} [{name}]", cache)
        recipes[name] = Recipe(name, path.resolve(), data)
        recipes[name].spec  # the checks the schema cannot express fail at load time, too
    return recipes


def load_all(folder: Path | None = None, cache=None) -> dict[str, Recipe]:
    """Every recipe in ``folder`` (default ``recipes/``) by name; duplicate names are errors."""
    found: dict[str, Recipe] = {}
    for path in recipe_files(folder or recipes_dir()):
        for name, recipe in load_file(path, cache).items():
            if name in found:
                raise RecipeError(display(path), f"recipe name {name!r} defined twice",
                                  expected="unique names", got=f"also in {display(found[name].path)}",
                                  hint="rename a file or a matrix label")
            found[name] = recipe
    return found


def _load_path(path: Path, cache=None) -> Recipe:
    if not path.is_file():
        raise RecipeError(str(path), "no such recipe file", expected="a YAML recipe file",
                          got="nothing there", hint="give a recipe name or an existing file path")
    found = load_file(path.resolve(), cache)
    if len(found) != 1:
        raise RecipeError(display(path), "the file defines several recipes (matrix)",
                          expected="one recipe", got=", ".join(sorted(found)),
                          hint="name one of them instead of the file")
    return next(iter(found.values()))


def names_in(folder: Path | None = None) -> list[str]:
    """Recipe names without validating (file stems; matrix files are expanded)."""
    names = []
    for path in recipe_files(folder or recipes_dir()):
        data = load_yaml(path)
        names.extend(expand_matrix(path.stem, data, display(path)) if "matrix" in data
                     else [path.stem])
    return sorted(names)


def load(name: str, folder: Path | None = None, cache=None) -> Recipe:
    """Load one recipe by name (a file stem or a matrix variant name) or by file path
    (``path/to/recipe.yaml``, anywhere: a name ending in .yaml/.yml; its name is the stem).

    Raises:
        RecipeError: unknown name (the message lists the known ones) or an invalid recipe.
    """
    if name.endswith((".yaml", ".yml")):
        return _load_path(Path(name), cache)  # its name (the stem) is checked like any other
    folder = folder or recipes_dir()
    check_name(name, typed=True)
    direct = [folder / f"{name}.yaml", folder / f"{name}.yml"]
    for path in direct:
        if path.is_file() and "matrix" not in load_yaml(path):
            return load_file(path, cache)[name]
    for path in recipe_files(folder):
        if name.startswith(path.stem) and "matrix" in load_yaml(path):
            recipes = load_file(path, cache)
            if name in recipes:
                return recipes[name]
    raise unknown_recipe(name, names_in(folder), folder)


def unknown_recipe(name: str, known: list[str], folder: Path) -> RecipeError:
    """The error for a recipe name that ``folder`` does not define (it may define none)."""
    if not known:
        return RecipeError(name, f"unknown recipe: {display(folder)}/ holds no recipe yet",
                           hint=f"write {display(folder)}/{name}.yaml, e.g. one line "
                           "`extends: zoo:retinaface-640` (`nnbuild zoo` lists the zoo)")
    return RecipeError(name, "unknown recipe", expected="one of " + ", ".join(known),
                       got=repr(name), hint=f"add {display(folder)}/{name}.yaml or fix the name")


def portable(data: dict, root: Path | None = None) -> dict:
    """A copy of a resolved recipe with its paths relative to ``root`` (the project root), for
    packages that must not depend on where the project was checked out. Paths outside the root
    (``../shared/...``, a base recipe elsewhere) become ``../`` paths rather than absolute ones.
    """
    base = str(root or project_root())

    def relative(path: str) -> str:
        return Path(os.path.relpath(path, base)).as_posix() if os.path.isabs(path) else path

    return _map_paths(data, relative)


def new_recipe(name: str, source: str, folder: Path | None = None) -> Path:
    """Write ``recipes/NAME.yaml`` extending recipe ``source`` and return its path."""
    folder = folder or recipes_dir()
    check_name(name, typed=True)
    target = folder / f"{name}.yaml"
    if target.exists():
        raise RecipeError(display(target), "already exists", hint="choose another name")
    base = load(source, folder)
    lines = ["schema_version: 1", f"extends: {os.path.relpath(base.path, folder)}",
             f"description: {name} (from {source})"]
    if base.name != base.path.stem:
        overrides = _matrix_values(base)
        lines += [f"# values of matrix variant {source}:"] + [
            yaml.safe_dump(o, default_flow_style=None, sort_keys=False).strip() for o in overrides]
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _matrix_values(recipe: Recipe) -> list[dict]:
    matrix = load_yaml(recipe.path).get("matrix") or {}
    out: dict = {}
    for key in matrix:
        set_dotted(out, key, get_dotted(recipe.data, key))
    return [{k: v} for k, v in out.items()]


def file_digest(path: Path) -> str:
    """sha256 of a recipe file (for callers that key on recipe text)."""
    return sha256_file(path)
