"""Griffe extension for the API reference: the docstrings' Sphinx roles and doctest examples in Markdown.

The docstrings are written for ``help()`` and doctest: ``:class:`~retinakit.Faces``` roles and bare
``>>>`` examples. Markdown would show the roles verbatim and the examples as block quotes, so this
turns each role into a code span and each run of doctest lines into a ``pycon`` code block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    """``:class:`~a.b.C``` -> ```C```; ``:class:`a.b.C``` -> ```a.b.C```."""
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def markdown(text: str) -> str:
    """``text`` with roles as code spans and doctest runs (``>>>`` up to a blank line) fenced."""
    text = ROLE.sub(_role, text)
    out: list[str] = []
    in_example = False
    for line in text.splitlines():
        starts = line.lstrip().startswith(">>>")
        if starts and not in_example:
            out.append("```pycon")
            in_example = True
        elif in_example and not line.strip():
            out.append("```")
            in_example = False
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out)


class DocstringMarkdown(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
