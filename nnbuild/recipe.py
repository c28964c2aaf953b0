"""Recipes: YAML files (safe loader) with ``extends`` and ``matrix``, validated by a JSON Schema.

Rules (docs/design.md "Recipe"):

* ``recipes/<name>.yaml`` is a recipe named by its file stem; files under ``recipes/_base/`` (and
  any directory starting with ``_``) are bases, not recipes.
* ``extends: FILE`` (relative to the file) deep-merges the file over its base: maps merge, lists
  and scalars replace. Chains are allowed, cycles and missing bases are errors. A base's
  ``matrix`` is not inherited.
* Paths (``source.*``, ``*.images`` and their manifests, ``mapper.path``) are relative to the
  file that states them and are resolved to absolute paths; string REFs become ``{"path": ...}``.
* ``matrix: {dotted.key: [v1, v2], ...}`` expands one file into the cross product of variants.
  A variant's name is the stem plus ``-<label>`` per matrix key in file order; a list value's
  label is its items joined by ``x`` (``[1, 3, 640, 640]`` -> ``1x3x640x640``), a scalar's its
  text; ``{label: value, ...}`` maps give explicit labels (``input.shape: {"640": [1,3,640,640]}``
  -> ``retinaface-640``). The file itself is then not a recipe.
* Names match ``[A-Za-z0-9][A-Za-z0-9._+-]*`` so that no recipe can make nnbuild write outside
  ``cache/`` or ``dist/``.

Validation (jsonschema, imported lazily) runs only when the resolved recipe changed: a passing
result is remembered in ``cache/v1/valid/`` under the hash of schema + resolved recipe.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from nnbuild.errors import RecipeError
from nnbuild.hashing import sha256_json, sha256_file

SCHEMA_PATH = Path(__file__).with_name("recipe.schema.json")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
IMAGE_SECTIONS = ("patch_check", "calibration", "check")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Recipe:
    """A resolved recipe: ``name``, the ``path`` of its file, and the merged ``data`` dict."""

    name: str
    path: Path
    data: dict


class RecipeProblems(RecipeError):
    """Several schema problems of one recipe, reported one per line."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        super().__init__(where, problems[0])

    def line(self) -> str:
        return "\n".join(f"{self.where}: {p}" for p in self.problems)


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


def check_name(name: str, where: str = "recipe name") -> str:
    """Reject names that are not plain file-name tokens (they end up in cache/ and dist/ paths)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise RecipeError(where, "not a safe recipe name", expected="letters, digits, '.', '_', "
                          "'+', '-' (no '/', no '..', not starting with '.' or '-')",
                          got=repr(name), hint="rename the file; names become paths in cache/ and dist/")
    return name


def load_yaml(path: Path) -> dict:
    """Parse one YAML file with the safe loader; syntax errors name the line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RecipeError(display(path), "cannot read the file", expected="a readable file",
                          got=err.strerror, hint="check the path") from None
    try:
        data = yaml.load(text, Loader=_LOADER)
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


def deep_merge(base: dict, over: dict) -> dict:
    """Return ``base`` with ``over`` merged in: maps merge recursively, everything else replaces."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_ref(ref: object, folder: Path) -> object:
    if isinstance(ref, str):
        return {"path": str((folder / ref).resolve())}
    if isinstance(ref, dict) and isinstance(ref.get("path"), str):
        return dict(ref, path=str((folder / ref["path"]).resolve()))
    return ref


def resolve_paths(data: dict, folder: Path) -> dict:
    """Make the paths one file states absolute (relative to ``folder``, that file's directory)."""
    data = copy.deepcopy(data)
    source = data.get("source")
    if isinstance(source, dict):
        for role in ("prototxt", "caffemodel"):
            if role in source:
                source[role] = _resolve_ref(source[role], folder)
    for section in IMAGE_SECTIONS:
        images = (data.get(section) or {}).get("images") if isinstance(data.get(section), dict) else None
        if isinstance(images, list):
            data[section]["images"] = [_resolve_ref(r, folder) for r in images]
        elif isinstance(images, dict) and isinstance(images.get("manifest"), str):
            images["manifest"] = str((folder / images["manifest"]).resolve())
    mapper = data.get("mapper")
    if isinstance(mapper, dict) and isinstance(mapper.get("path"), str) and "/" in mapper["path"]:
        mapper["path"] = str((folder / mapper["path"]).resolve())  # bare names are looked up on PATH
    return data


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


# -- validation ------------------------------------------------------------------------------
def _key_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _suggest(word: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else f" (valid: {', '.join(sorted(choices))})"


def _describe(err) -> list[str]:
    """One or more problem lines for a jsonschema error."""
    where, value, schema = _key_path(err.absolute_path), err.instance, err.schema
    kind = err.validator
    if kind == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed and not any(
            re.search(p, k) for p in schema.get("patternProperties", {})))
        prefix = "" if where == "(top level)" else f"{where}."
        return [f"{prefix}{k}: unknown key{_suggest(k, allowed)}" for k in extra]
    if kind == "enum":
        return [f"{where}: expected one of {', '.join(map(str, err.validator_value))}, "
                f"got {value!r}{_suggest(value, map(str, err.validator_value))}"]
    if kind == "const":
        return [f"{where}: expected {err.validator_value!r}, got {value!r}"]
    if kind == "type":
        return [f"{where}: expected {err.validator_value}, got {type(value).__name__} {value!r}"]
    if kind == "required":
        return [f"{where}: {err.message.split(' is ')[0]} is required but missing"]
    if kind == "pattern" and err.validator_value.startswith("^[0-9a-f]{64}"):
        return [f"{where}: expected 64 lowercase hex digits (a sha256), got {value!r}"]
    if kind == "anyOf" and err.context:
        # Prefer the alternative whose type fits: it says what is really wrong.
        typed = [e for e in err.context if e.validator not in ("type", "anyOf", "required",
                                                               "additionalProperties")]
        if typed:
            return _describe(max(typed, key=lambda e: len(e.absolute_path)))
        return [f"{where}: expected {schema.get('description') or _shape(schema)}, got {value!r}"]
    if kind == "propertyNames":
        return [f"{where}: unknown name {value!r}"]
    return [f"{where}: {err.message}"]


def _shape(schema: dict) -> str:
    options = [s.get("$ref", "").rsplit("/", 1)[-1] or s.get("type", "?") for s in schema["anyOf"]]
    return " or ".join(str(o) for o in options)


def _schema() -> dict:
    import json

    return json.loads(SCHEMA_PATH.read_text())


def schema_problems(data: dict) -> list[str]:
    """All schema problems of a resolved recipe, one line each, in key order."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    lines: list[str] = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.path]):
        lines.extend(line for line in _describe(err) if line not in lines)
    return lines


def validate(data: dict, where: str, cache=None) -> None:
    """Check a resolved recipe against the schema, or skip when this exact content passed before.

    Args:
        data: the resolved recipe (after extends, matrix and path resolution).
        where: file name for messages.
        cache: optional ``nnbuild.cache.Cache`` remembering passing results.

    Raises:
        RecipeProblems: one line per problem.
    """
    marker = None
    if cache is not None:
        marker = cache.base / "valid" / sha256_json([cache.stats.sha256(SCHEMA_PATH), data])
        if marker.exists():
            return
    problems = schema_problems(data)
    if problems:
        raise RecipeProblems(where, problems)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


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


def names_in(folder: Path | None = None) -> list[str]:
    """Recipe names without validating (file stems; matrix files are expanded)."""
    names = []
    for path in recipe_files(folder or recipes_dir()):
        data = load_yaml(path)
        names.extend(expand_matrix(path.stem, data, display(path)) if "matrix" in data
                     else [path.stem])
    return sorted(names)


def load(name: str, folder: Path | None = None, cache=None) -> Recipe:
    """Load one recipe by name (a file stem or a matrix variant name).

    Raises:
        RecipeError: unknown name (the message lists the known ones) or an invalid recipe.
    """
    folder = folder or recipes_dir()
    check_name(name)
    direct = [folder / f"{name}.yaml", folder / f"{name}.yml"]
    for path in direct:
        if path.is_file() and "matrix" not in load_yaml(path):
            return load_file(path, cache)[name]
    for path in recipe_files(folder):
        if name.startswith(path.stem) and "matrix" in load_yaml(path):
            recipes = load_file(path, cache)
            if name in recipes:
                return recipes[name]
    known = names_in(folder)
    raise RecipeError(name, "unknown recipe", expected="one of " + (", ".join(known) or "(none)"),
                      got=repr(name), hint=f"add {display(folder)}/{name}.yaml or fix the name")


def portable(data: dict, root: Path | None = None) -> dict:
    """A copy of a resolved recipe with paths below ``root`` made relative to it (for packages
    that must not depend on where the project was checked out)."""
    prefix = str(root or project_root()) + os.sep

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith(prefix):
            return value[len(prefix):]
        return value

    return walk(data)


def new_recipe(name: str, source: str, folder: Path | None = None) -> Path:
    """Write ``recipes/NAME.yaml`` extending recipe ``source`` and return its path."""
    folder = folder or recipes_dir()
    check_name(name)
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
