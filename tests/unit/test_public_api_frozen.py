"""The public face, frozen: names, signatures, entry points and the command's flags and exit
statuses. A change here is a change for every user; update the snapshot only on purpose.

To see what changed: ``python -m tests.unit.test_public_api_frozen`` prints today's snapshot.
"""

from __future__ import annotations

import argparse
import inspect
import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import kafkascope
import kafkascope.testing
from kafkascope import cli

SNAPSHOT = Path(__file__).parent / "data" / "public_api.json"
_OURS = ("opentelemetry_instrumentor", "pytest11", "console_scripts")


def _signature(value: object) -> str | None:
    if not callable(value):
        return None
    try:
        return str(inspect.signature(value))
    except (TypeError, ValueError):
        return None


def _names(module: Any) -> dict[str, str | None]:
    return {name: _signature(getattr(module, name)) for name in module.__all__}


def _flags(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    return {
        action.dest: sorted(action.option_strings) or ["<positional>"]
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
    }


def _commands() -> dict[str, Any]:
    parser = cli.build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        "root": _flags(parser),
        "commands": {name: _flags(p) for name, p in sorted(sub.choices.items())},
        "exit_statuses": {k: v for k, v in sorted(vars(cli).items()) if k.startswith("EXIT_")},
    }


def current() -> dict[str, Any]:
    """Today's public face, in the snapshot's shape."""
    return {
        "kafkascope": _names(kafkascope),
        "kafkascope.testing": _names(kafkascope.testing),
        "entry_points": {
            group: sorted(
                f"{ep.name} = {ep.value}"
                for ep in entry_points(group=group)
                if ep.value.split(".")[0].split(":")[0] == "kafkascope"
            )
            for group in _OURS
        },
        "cli": _commands(),
    }


@pytest.fixture(scope="module")
def frozen() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return loaded


@pytest.fixture(scope="module")
def today() -> dict[str, Any]:
    return current()


def test_the_package_exports_the_same_names_with_the_same_signatures(frozen, today):
    assert today["kafkascope"] == frozen["kafkascope"]


def test_the_test_kit_exports_the_same_names_with_the_same_signatures(frozen, today):
    assert today["kafkascope.testing"] == frozen["kafkascope.testing"]


def test_the_entry_points_are_the_same(frozen, today):
    assert today["entry_points"] == frozen["entry_points"]


def test_the_command_has_the_same_subcommands_flags_and_exit_statuses(frozen, today):
    assert today["cli"] == frozen["cli"]


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["trace", "not-hex"], cli.EXIT_USAGE),
        (["trace", "abc", "--jaeger", "ftp://x"], cli.EXIT_USAGE),
        (["trace", "abc", "--jaeger", "http://127.0.0.1:1", "--timeout", "2"], 3),
        (["slowest", "--prometheus", "http://127.0.0.1:1", "--timeout", "2"], 3),
        (["topology", "--jaeger", "http://127.0.0.1:1", "--timeout", "2"], 3),
        (["settings"], 0),
    ],
)
def test_each_command_exits_with_its_documented_status(argv, status, capsys):
    got: object
    try:
        got = cli.main(argv)
    except SystemExit as exit_:  # argparse's own usage errors
        got = exit_.code
    assert got == status, capsys.readouterr()


def test_an_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_:
        cli.main(["no-such-command"])
    assert exit_.value.code == cli.EXIT_USAGE


if __name__ == "__main__":
    print(json.dumps(current(), indent=1, sort_keys=True))
