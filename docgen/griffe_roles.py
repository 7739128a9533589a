"""A Griffe extension (mkdocstrings' ``extensions:``): the docstrings' Sphinx roles, such as
``:func:`traced_handler``` or ``:class:`~kafkascope.Telemetry```, become Markdown: a link to the
API reference for a public name of ``kafkascope`` or ``kafkascope.testing``, code otherwise."""

from __future__ import annotations

import re
from typing import Any, Final

import griffe

import kafkascope
import kafkascope.testing

_ROLE: Final = re.compile(r":(?:func|class|data|mod|meth|attr|exc|obj):`~?([^`]+)`")
_PUBLIC: Final = {
    **{name: f"kafkascope.{name}" for name in kafkascope.__all__},
    **{f"testing.{name}": f"kafkascope.testing.{name}" for name in kafkascope.testing.__all__},
}


def _target(path: str) -> str | None:
    for prefix in ("kafkascope.", ""):
        if path.startswith(prefix) and path[len(prefix) :] in _PUBLIC:
            return _PUBLIC[path[len(prefix) :]]
    return None


def markdown_roles(text: str) -> str:
    """``text`` with each Sphinx role replaced by a reference link or inline code."""

    def replace(match: re.Match[str]) -> str:
        path = match.group(1)
        shown = path.rsplit(".", 1)[-1] if match.group(0).find("~") >= 0 else path
        target = _target(path)
        return f"[`{shown}`][{target}]" if target else f"`{shown}`"

    return _ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring loaded, once the object is complete."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring."""
        if obj.docstring is not None:
            obj.docstring.value = markdown_roles(obj.docstring.value)
