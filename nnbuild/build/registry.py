"""The stage registry: which stage modules exist, in pipeline order, with their contract checked.

A stage module (docs/design.md "Stages") defines ``NAME``, ``NEEDS``, ``READS``,
``run(ctx)`` and optionally ``external_inputs(spec)`` and ``tool_versions(spec)``; the code in
its key is derived from its import closure (``build.fingerprint``). The default pipeline is
``STAGE_ORDER``; ``NNBUILD_STAGES`` (comma-separated module names) replaces it, for tests. A
stage module that does not exist is an error (it used to be skipped silently).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from nnbuild.errors import NNBuildError

STAGE_PACKAGE = "nnbuild.stages"
STAGE_ORDER = ("fetch", "patch", "calibrate", "map", "check", "package")
_CONTRACT = (("NAME", str), ("NEEDS", tuple), ("READS", tuple))
_LOADED: dict[tuple[str, ...], dict[str, ModuleType]] = {}


def _check_contract(module: ModuleType) -> None:
    for attr, kind in _CONTRACT:
        if not isinstance(getattr(module, attr, None), kind):
            raise NNBuildError(module.__name__, f"stage module lacks {attr}",
                               expected=kind.__name__, got=type(getattr(module, attr, None)).__name__,
                               hint="see docs/design.md 'Stages'")
    if not callable(getattr(module, "run", None)):
        raise NNBuildError(module.__name__, "stage module lacks run(ctx)",
                           hint="see docs/design.md 'Stages'")


def stage_module_names() -> tuple[str, ...]:
    """Module names of the configured pipeline (``NNBUILD_STAGES`` or the default order)."""
    override = os.environ.get("NNBUILD_STAGES", "").strip()
    if override:
        return tuple(m.strip() for m in override.split(",") if m.strip())
    return tuple(f"{STAGE_PACKAGE}.{name}" for name in STAGE_ORDER)


def _import(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise NNBuildError("NNBUILD_STAGES" if os.environ.get("NNBUILD_STAGES") else "stage registry",
                           f"stage module {module_name!r} does not exist",
                           hint="name stage modules by their dotted path, e.g. nnbuild.stages.patch") from None


def stages() -> dict[str, ModuleType]:
    """``{name: module}`` of the usable stages, in pipeline order.

    A stage is usable when every stage in its ``NEEDS`` is usable.

    Raises:
        NNBuildError: a module breaks the contract, or two modules share a ``NAME``.
    """
    names = stage_module_names()
    if names in _LOADED:
        return _LOADED[names]
    found: dict[str, ModuleType] = {}
    for module_name in names:
        module = _import(module_name)
        _check_contract(module)
        if module.NAME in found:
            raise NNBuildError(module_name, f"duplicate stage name {module.NAME!r}",
                               hint="each stage module needs its own NAME")
        if all(need in found for need in module.NEEDS):
            found[module.NAME] = module
    _LOADED[names] = found
    return found


def final_stages(available: dict[str, ModuleType] | None = None) -> list[str]:
    """Stages no other usable stage needs: building them builds the whole recipe."""
    available = stages() if available is None else available
    needed = {need for module in available.values() for need in module.NEEDS}
    return [name for name in available if name not in needed]
