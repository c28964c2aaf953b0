"""Recipe validation against ``recipe.schema.json``: one message line per problem.

jsonschema's own messages name schema internals; these say, per problem, the dotted key, what
was expected and what was found, with a "did you mean" for misspelt keys and enum values.
``task_problems`` adds what only the task registry knows (gate keys, ``task_args``). A passing
result is remembered in ``cache/v1/valid/`` under the hash of schema, validating code and
resolved recipe, so an unchanged recipe is not validated again (``validate``).
"""

from __future__ import annotations

import re
from pathlib import Path

from nnbuild.errors import RecipeError
from nnbuild.hashing import sha256_json

SCHEMA_PATH = Path(__file__).with_name("recipe.schema.json")


class RecipeProblems(RecipeError):
    """Several schema problems of one recipe, reported one per line."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        super().__init__(where, problems[0])

    def line(self) -> str:
        return "\n".join(f"{self.where}: {p}" for p in self.problems)


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
    if kind == "type" and where.endswith("sha256") and isinstance(value, int):
        # YAML reads an all-digit value as a number (leading zeros lost, 0-prefixed as octal)
        return [f"{where}: expected 64 lowercase hex digits (a sha256) as a string, got the "
                f"number {value}; YAML reads an all-digit value as a number: quote it"]
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
        # Or a field inside the value with the wrong type (an all-digit sha256 is a number).
        typed = typed or [e for e in err.context if len(e.absolute_path) > len(err.absolute_path)]
        if typed:
            return _describe(max(typed, key=lambda e: len(e.absolute_path)))
        return [f"{where}: expected {schema.get('description') or _shape(schema)}, got {value!r}"]
    if kind == "propertyNames":
        return [f"{where}: unknown name {value!r}"]
    return [f"{where}: {err.message}"]


def _shape(schema: dict) -> str:
    def option(alt: dict) -> str:
        if alt.get("type") == "object" and alt.get("required"):
            return "{" + ", ".join(alt["required"]) + ", ...}"  # "object or object" said nothing
        return str(alt.get("$ref", "").rsplit("/", 1)[-1] or alt.get("type", "?"))

    return " or ".join(option(alt) for alt in schema["anyOf"])


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


def task_problems(data: dict) -> list[str]:
    """Problems only the task registry can judge: gate keys and ``task_args`` of ``check.task``
    (each task declares its own ``GATES`` and ``ARGS``), with the closest valid key."""
    from nnbuild.check.tasks import registry
    from nnbuild.recipe.spec import GENERIC_GATES, CheckSpec

    check = data.get("check") or {}
    task_name = check.get("task", CheckSpec.task)
    try:
        task = registry.get(task_name)
    except RecipeError:
        return []  # the schema's enum already names an unknown task
    gates = set(GENERIC_GATES) | {row[0] for row in task.GATES}
    lines = [f"check.{key}: unknown gate for task {task_name}{_suggest(key, gates)}"
             for key in sorted(check) if key.startswith(("min_", "max_")) and key not in gates]
    args = set(registry.COMMON_ARGS) | set(task.ARGS)
    lines += [f"check.task_args.{key}: unknown argument of task {task_name}{_suggest(key, args)}"
              for key in sorted(check.get("task_args") or {}) if key not in args]
    return lines


def validate(data: dict, where: str, cache=None) -> None:
    """Check a resolved recipe against the schema, or skip when this exact content passed before.

    Args:
        data: the resolved recipe (after extends, matrix and path resolution).
        where: file name for messages.
        cache: optional ``nnbuild.build.cache.Cache`` remembering passing results.

    Raises:
        RecipeProblems: one line per problem.
    """
    marker = None
    if cache is not None:
        # Keyed by the schema, the recipe and the code judging it (this module's closure).
        code = cache.prints.digest(__name__)
        marker = cache.base / "valid" / sha256_json([cache.stats.sha256(SCHEMA_PATH), code, data])
        if marker.exists():
            return
    problems = schema_problems(data) or task_problems(data)
    if problems:
        raise RecipeProblems(where, problems)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
