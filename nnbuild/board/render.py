"""C text from the templates in ``nnbuild/board/templates``: ``@KEY@`` placeholders and C literals.

Templates are plain C text (one module per file, ``TEXT``); ``render`` fills every ``@KEY@`` and
refuses to leave one unfilled or to ignore a value nobody asked for (a template and its generator
cannot drift apart silently).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def template(name: str) -> str:
    """The text of template ``name`` (e.g. ``retinaface.c.in``)."""
    from nnbuild.board.templates import TEMPLATES

    return TEMPLATES[name]


def render(text: str, values: Mapping[str, object]) -> str:
    """Replace each ``@KEY@`` of ``text`` with ``str(values[KEY])``.

    Raises:
        KeyError: a placeholder has no value, or a value has no placeholder.
    """
    wanted = set(PLACEHOLDER.findall(text))
    missing, unused = wanted - set(values), set(values) - wanted
    if missing or unused:
        raise KeyError(f"render: missing {sorted(missing)}, unused {sorted(unused)}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def c_double(value: float) -> str:
    """A C double literal that reads back as exactly ``value`` (``0.5``, ``1e-05``)."""
    text = repr(float(value))
    return text if any(ch in text for ch in ".en") else text + ".0"


def c_string(text: str) -> str:
    """A C string literal (the names are ASCII; anything else is escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("".join(f"\\{b:03o}" for b in ch.encode()))
    return '"' + "".join(out) + '"'


def c_list(items: Iterable[object], per_line: int = 8, indent: str = "    ") -> str:
    """Comma-separated items, ``per_line`` to a line, for an array initialiser."""
    items = [str(i) for i in items]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ("\n" + indent + (",\n" + indent).join(lines) + "\n") if len(items) > per_line \
        else ", ".join(items)
