"""Code fingerprints from the import closure: what code a cached result depends on, derived.

A stage's key (and every sub-result a stage caches) must change when any code that can change
its outputs changes. Hand-kept module lists went stale (redesign.md: they missed modules in 4
of 6 stages), so the set is derived: the *import closure* of a module is every ``nnbuild``
module reachable from it through ``import`` statements anywhere in its source (inside
functions too, which is where the stages import their heavy libraries), plus the ``__init__``
of every package on the way (Python runs them on import). Two conservative rules cover what
static reading cannot see:

* a module that imports by name at run time (``importlib.import_module``, ``pkgutil``) pulls in
  every module of its own package (the pass, task and stage registries work that way);
* third-party libraries enter by distribution version (numpy, Pillow, protobuf ...), read from
  their ``*.dist-info`` folder names, never by importing them.

Reading imports is cached by file content (sha256 from the stat cache), so the no-op build
parses nothing: it stats the closure's files and hashes the list.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

from nnbuild.hashing import StatCache, canonical_json, sha256_json

PACKAGE = "nnbuild"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
DYNAMIC_CALLS = frozenset({"import_module", "iter_modules", "walk_packages", "__import__"})
# Import names whose distribution is named differently (only for reading versions).
DIST_NAMES = {"PIL": "pillow", "yaml": "pyyaml", "google": "protobuf"}
_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


def module_path(name: str, root: Path = PACKAGE_DIR) -> Path | None:
    """Source file of ``nnbuild.x.y`` (``x/y.py`` or ``x/y/__init__.py`` below ``root``, the
    ``nnbuild`` package directory), found without importing."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = os.path.join(str(root), *parts[1:])
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return Path(candidate)
    return None


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    """Dotted name of a source file below the package directory ``root``."""
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def read_imports(source: str, name: str, is_package: bool) -> dict:
    """What one module's source imports: ``{"modules": [...], "external": [...], "dynamic": bool}``.

    ``modules`` are dotted ``nnbuild`` names (``from a import b`` lists both ``a`` and ``a.b``;
    callers keep the ones that exist), ``external`` the third-party top-level names.
    """
    tree = ast.parse(source)
    package = name if is_package else name.rpartition(".")[0]
    modules, external, dynamic = set(), set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(node, package)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
        else:
            if isinstance(node, ast.Call) and _called_name(node.func) in DYNAMIC_CALLS:
                dynamic = True
            continue
        for target in targets:
            top = target.partition(".")[0]
            if top == PACKAGE:
                modules.add(target)
            elif top and top not in _STDLIB:
                external.add(top)
    return {"modules": sorted(modules), "external": sorted(external), "dynamic": dynamic}


def _resolve_relative(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


class Fingerprints:
    """Import closures and code fingerprints, memoised per process and cached on disk.

    Args:
        stats: the project's stat cache (file -> sha256 without re-reading unchanged files).
        table: JSON file remembering each source file's imports by its sha256 (None: memory only).
        root: the ``nnbuild`` package directory to read (default: this installation's).
    """

    def __init__(self, stats: StatCache, table: Path | None = None, root: Path = PACKAGE_DIR):
        self.stats, self.table_path, self.root = stats, table, root.resolve()
        self._table: dict[str, dict] | None = None
        self._dirty = False
        self._closures: dict[str, tuple[list[Path], list[str]]] = {}
        self._nodes: dict[str, tuple[Path, str, dict] | None] = {}
        self._shas: dict[str, str] = {}  # file -> sha256, once per process
        self._prints: dict[str, dict] = {}

    # -- imports of one file ---------------------------------------------------------------------
    def _sha(self, path: Path) -> str:
        key = str(path)
        if key not in self._shas:
            self._shas[key] = self.stats.sha256(key)
        return self._shas[key]

    def _imports(self, path: Path) -> dict:
        digest = self._sha(path)
        table = self._load()
        hit = table.get(digest)
        if hit is None:
            inside = path.is_relative_to(self.root)
            name = module_name(path, self.root) if inside else path.stem
            hit = read_imports(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
            table[digest] = hit
            self._dirty = True
        return hit

    def _load(self) -> dict[str, dict]:
        if self._table is None:
            self._table = {}
            if self.table_path is not None and self.table_path.is_file():
                try:
                    loaded = json.loads(self.table_path.read_text())
                except (OSError, ValueError):
                    loaded = {}  # only a hint: a torn file is re-read from the sources
                self._table = loaded if isinstance(loaded, dict) else {}
        return self._table

    def save(self) -> None:
        """Write the imports table back if it changed (atomic replace)."""
        if not self._dirty or self.table_path is None:
            return
        self.table_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.table_path.with_name(f".{self.table_path.name}.{os.getpid()}.tmp")
        tmp.write_text(canonical_json(self._table))
        os.replace(tmp, self.table_path)
        self._dirty = False

    # -- closure -----------------------------------------------------------------------------------
    def _node(self, name: str, is_root: bool) -> tuple[Path, str, dict] | None:
        """(file, dotted name, imports) of module ``name``, memoised per process."""
        if name not in self._nodes:
            path = module_path(name, self.root) or (_foreign_path(name) if is_root else None)
            if path is None:
                self._nodes[name] = None
            else:
                inside = path.is_relative_to(self.root)
                self._nodes[name] = (path, module_name(path, self.root) if inside else "",
                                     self._imports(path))
        return self._nodes[name]

    def closure(self, root: str) -> tuple[list[Path], list[str]]:
        """``(source files, third-party names)`` reachable from module ``root``, sorted."""
        if root in self._closures:
            return self._closures[root]
        seen: dict[str, Path] = {}
        external: set[str] = set()
        todo = [root]
        while todo:
            name = todo.pop()
            node = self._node(name, name == root)
            if node is None or str(node[0]) in seen:
                continue
            path, dotted, found = node
            seen[str(path)] = path
            external.update(found["external"])
            todo.extend(found["modules"])
            if dotted:  # inside the package: its parents run too, registries pull in siblings
                todo.extend(_parents(dotted))
                if found["dynamic"]:
                    todo.extend(self._siblings(path))
        result = ([seen[k] for k in sorted(seen)], sorted(external))
        self._closures[root] = result
        return result

    def _siblings(self, path: Path) -> list[str]:
        return [module_name(p, self.root) for p in sorted(path.parent.rglob("*.py"))
                if "__pycache__" not in p.parts]

    def of(self, root: str) -> dict:
        """The code fingerprint of ``root``: ``{"files": {relpath: sha256}, "libraries": {...}}``.

        Paths are relative to the ``nnbuild`` package, so the fingerprint is the same for every
        checkout and installation of the same code.
        """
        if root not in self._prints:
            files, external = self.closure(root)
            self._prints[root] = {
                "files": {_label(p, self.root): self._sha(p) for p in files},
                "libraries": library_versions(external)}
        return self._prints[root]

    def digest(self, root: str) -> str:
        """sha256 of ``of(root)``: a short value for sub-result keys."""
        return sha256_json(self.of(root))


def _foreign_path(name: str) -> Path | None:
    """Source of a stage module outside ``nnbuild`` (``NNBUILD_STAGES`` in tests): its own
    file counts, and the ``nnbuild`` modules it imports are followed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    return Path(origin).resolve() if origin and origin.endswith(".py") else None


def _label(path: Path, root: Path) -> str:
    text, prefix = str(path), str(root) + os.sep
    return text[len(prefix):].replace(os.sep, "/") if text.startswith(prefix) else f"<{path.name}>"


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


_VERSIONS: dict[str, dict[str, str]] = {}


def library_versions(names: list[str]) -> dict[str, str]:
    """``{import name: version}`` from the ``*.dist-info`` folders on ``sys.path`` ("unknown"
    when none matches). One ``listdir`` per path entry per process; nothing is imported."""
    if not _VERSIONS:
        found: dict[str, str] = {}
        for entry in sys.path:
            try:
                listing = os.listdir(entry or ".")
            except OSError:
                continue
            for item in listing:
                if item.endswith(".dist-info") and "-" in item:
                    dist, _, version = item[: -len(".dist-info")].partition("-")
                    found.setdefault(dist.lower().replace("_", "-"), version)
        _VERSIONS["all"] = found
    table = _VERSIONS["all"]
    return {n: table.get(DIST_NAMES.get(n, n).lower().replace("_", "-"), "unknown") for n in names}
