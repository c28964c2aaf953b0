"""Strict YAML for recipes: the safe loader, minus duplicate keys and alias bombs.

PyYAML keeps the last of two equal keys silently, and builds aliases as shared references, so
``b: [*a, *a, ...]`` nine levels deep is a few hundred bytes that every later deep copy, merge
or schema walk expands to billions of nodes (33 s into a MemoryError). This loader composes the
node graph first, counts the nodes it stands for with aliases expanded (linear in the distinct
nodes), and refuses more than ``MAX_NODES`` before anything is constructed.
"""

from __future__ import annotations

import yaml

from nnbuild.errors import RecipeError

MAX_NODES = 100_000  # a zoo recipe fully merged is a few hundred nodes
_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class _StrictLoader(_BASE):  # type: ignore[misc, valid-type]
    """The safe loader refusing duplicate keys (``where`` names the file in messages)."""

    where = "<yaml>"

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self._refuse_duplicates(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_duplicates(self, node: yaml.MappingNode) -> None:
        first: dict = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node)
            mark = key_node.start_mark
            try:
                line = first.setdefault(key, mark.line + 1)
            except TypeError:  # unhashable: the base constructor reports it
                continue
            if line != mark.line + 1:
                raise RecipeError(f"{self.where}:{mark.line + 1}:{mark.column + 1}",
                                  f"duplicate key {key!r}", expected="each key once per map",
                                  got=f"{key!r} also on line {line}",
                                  hint="remove one of them (YAML would silently keep the last)")


def _expanded_size(node: yaml.Node, where: str) -> int:
    """Nodes ``node`` stands for with every alias expanded; refuses cycles and > MAX_NODES."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if isinstance(n, yaml.ScalarNode):
            return 1
        if id(n) in active:
            mark = n.start_mark
            raise RecipeError(f"{where}:{mark.line + 1}:{mark.column + 1}", "recursive alias",
                              expected="aliases to finished nodes", got="a node containing itself",
                              hint="remove the alias that refers back to its own anchor")
        active.add(id(n))
        children = n.value if isinstance(n, yaml.SequenceNode) else [
            c for pair in n.value for c in pair]
        total = 1 + sum(size(c) for c in children)
        active.discard(id(n))
        sizes[id(n)] = total
        if total > MAX_NODES:
            mark = n.start_mark
            raise RecipeError(f"{where}:{mark.line + 1}:{mark.column + 1}",
                              "YAML aliases expand too far", expected=f"at most {MAX_NODES} "
                              "nodes with aliases expanded", got=f"over {total}",
                              hint="write the values out instead of nesting aliases (alias bomb?)")
        return total

    return size(node)


def load_text(text: str, where: str) -> object:
    """Parse one YAML document strictly; ``where`` (the file) prefixes every message.

    Raises:
        RecipeError: duplicate keys, recursive aliases or an alias expansion past MAX_NODES.
        yaml.YAMLError: syntax errors (the caller names line and column).
    """
    loader = _StrictLoader(text)
    loader.where = where
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, where)
        return loader.construct_document(node)
    except RecursionError:
        raise RecipeError(where, "YAML nested too deeply", expected="a recipe-sized document",
                          got="more levels than Python can walk",
                          hint="flatten the nesting") from None
    finally:
        loader.dispose()
