from __future__ import annotations

import ast
import inspect
from pathlib import Path

import kafkascope
import kafkascope.testing

REPO = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = {"kafkascope", "kafkascope.testing", "kafkascope.instrumentor", "kafkascope.cli"}


def test_all_lists_every_public_name_and_only_existing_ones():
    public = {
        name
        for name, value in vars(kafkascope).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name not in {"annotations"}
    }
    assert set(kafkascope.__all__) == public | {"__version__"}


def test_all_is_sorted_constants_then_classes_then_functions():
    def isort_style(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert kafkascope.__all__ == sorted(kafkascope.__all__, key=isort_style)


def test_every_public_name_has_a_docstring():
    missing = [
        name
        for name in kafkascope.__all__
        if name != "__version__"
        and not isinstance(getattr(kafkascope, name), dict)
        and not inspect.getdoc(getattr(kafkascope, name))
    ]
    assert missing == []


def test_testing_module_exports_exist():
    for name in kafkascope.testing.__all__:
        assert hasattr(kafkascope.testing, name), name


def test_the_pytest_plugin_is_registered_through_the_entry_point():
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("kafkascope") == "kafkascope.testing"


def _kafkascope_imports(path: Path) -> set[str]:
    """Every ``kafkascope...`` module ``path`` imports, at any depth (names brought in by
    ``from kafkascope import x`` count as the module ``kafkascope``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "kafkascope"}


def test_benchmarks_and_examples_import_only_the_public_api():
    files = sorted([*REPO.glob("benchmarks/**/*.py"), *REPO.glob("examples/**/*.py")])
    assert len(files) > 10
    private = {
        str(path.relative_to(REPO)): sorted(_kafkascope_imports(path) - PUBLIC_MODULES)
        for path in files
    }
    assert {path: names for path, names in private.items() if names} == {}
