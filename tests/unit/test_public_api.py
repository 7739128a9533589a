from __future__ import annotations

import inspect

import kafkascope
import kafkascope.testing


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
