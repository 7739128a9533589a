"""Every public name reads well in the API reference: its docstring (Google style, as
mkdocstrings renders it) documents each argument, what it returns and, for a class, each
argument of its constructor or each field."""

from __future__ import annotations

import logging
from pathlib import Path

import griffe
import pytest

import kafkascope
import kafkascope.testing

SRC = Path(kafkascope.__file__).resolve().parents[1]
_PACKAGE = griffe.load("kafkascope", search_paths=[str(SRC)], resolve_aliases=True)
PUBLIC = [
    *(f"kafkascope.{n}" for n in kafkascope.__all__ if n != "__version__"),
    *(f"kafkascope.testing.{n}" for n in kafkascope.testing.__all__),
]
_NOT_ARGUMENTS = {"self", "cls", "args", "kwargs"}
RETURNED_BY = {
    "kafkascope.ConsumerHealth": "observe_health",
    "kafkascope.LagObserver": "observe_lag",
    "kafkascope.ProcessSpan": "process_span",
    "kafkascope.Telemetry": "configure",
    "kafkascope.testing.Capotel": "capotel",
}
"""Classes users get from a function and never construct: their docstring names it instead of
documenting the constructor."""


def _object(path: str) -> griffe.Object:
    found = _PACKAGE[path.removeprefix("kafkascope.")]
    return found.final_target if isinstance(found, griffe.Alias) else found


def _sections(obj: griffe.Object, caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    assert obj.docstring is not None, f"{obj.path} has no docstring"
    # reStructuredText's literal block ("...::" and an indented block) shows as text in Markdown.
    assert "::\n" not in obj.docstring.value, f"{obj.path}: use a ```python fence"
    with caplog.at_level(logging.WARNING):
        parsed = obj.docstring.parse("google")
    # griffe warns of an argument not in the signature, a section it cannot read, ...
    assert [r.getMessage() for r in caplog.records] == []
    found: dict[str, list[str]] = {}
    for section in parsed:
        items = section.value if isinstance(section.value, list) else []
        names = [getattr(item, "name", "") for item in items]
        found.setdefault(section.kind.value, []).extend(n for n in names if isinstance(n, str))
    return found


def _arguments(function: griffe.Function) -> list[str]:
    return [
        p.name
        for p in function.parameters
        if p.name not in _NOT_ARGUMENTS and not p.name.startswith("_")
    ]


@pytest.mark.parametrize("path", [p for p in PUBLIC if _object(p).is_function])
def test_each_public_function_documents_its_arguments_and_its_result(path, caplog):
    function = _object(path)
    assert isinstance(function, griffe.Function)
    sections = _sections(function, caplog)
    assert sorted(sections.get("parameters", [])) == sorted(_arguments(function))
    if function.returns is not None and str(function.returns) != "None":
        assert "returns" in sections or "yields" in sections, f"{path}: no Returns section"


@pytest.mark.parametrize("path", [p for p in PUBLIC if _object(p).is_class])
def test_each_public_class_documents_its_constructor_or_its_fields(path, caplog):
    cls = _object(path)
    assert isinstance(cls, griffe.Class)
    sections = _sections(cls, caplog)
    if path in RETURNED_BY:
        assert RETURNED_BY[path] in str(cls.docstring and cls.docstring.value)
        return
    init = cls.members.get("__init__")
    wanted = _arguments(init) if isinstance(init, griffe.Function) else []
    documented = sections.get("parameters", []) + sections.get("attributes", [])
    fields_with_docstrings = [
        name
        for name, member in cls.members.items()
        if member.is_attribute and member.docstring is not None
    ]
    missing = [a for a in wanted if a not in documented and a not in fields_with_docstrings]
    assert missing == [], f"{path}: arguments not documented: {missing}"
