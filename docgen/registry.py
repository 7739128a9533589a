"""kafkascope's semantic-conventions registry (Weaver's YAML model), read back for the docs and
the tests that hold the code's name constants to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

REGISTRY_DIR: Final = (
    Path(__file__).resolve().parents[1] / "src" / "kafkascope" / "_core" / "registry"
)


@dataclass(frozen=True)
class Attribute:
    """One attribute the registry defines."""

    name: str
    type: str
    brief: str
    note: str
    examples: tuple[object, ...]
    stability: str
    members: tuple[str, ...]
    group: str


@dataclass(frozen=True)
class Metric:
    """One metric the registry defines."""

    name: str
    instrument: str
    unit: str
    brief: str
    attributes: tuple[str, ...]
    stability: str


def _groups(directory: Path = REGISTRY_DIR) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "registry_manifest.yaml":
            continue
        groups.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["groups"])
    return groups


def _type_of(raw: object) -> tuple[str, tuple[str, ...]]:
    if isinstance(raw, dict):
        return "enum", tuple(str(member["value"]) for member in raw["members"])
    return str(raw), ()


def _text(raw: object) -> str:
    return " ".join(str(raw or "").split())


def attributes(directory: Path = REGISTRY_DIR) -> list[Attribute]:
    """Every attribute of the registry's ``attribute_group`` groups, in file order."""
    found: list[Attribute] = []
    for group in _groups(directory):
        if group["type"] != "attribute_group":
            continue
        for raw in group["attributes"]:
            kind, members = _type_of(raw["type"])
            examples = raw.get("examples", [])
            found.append(
                Attribute(
                    name=raw["id"],
                    type=kind,
                    brief=_text(raw.get("brief")),
                    note=_text(raw.get("note")),
                    examples=tuple(examples if isinstance(examples, list) else [examples]),
                    stability=raw["stability"],
                    members=members,
                    group=group["id"],
                )
            )
    return found


def metrics(directory: Path = REGISTRY_DIR) -> list[Metric]:
    """Every ``metric`` group of the registry, in file order."""
    return [
        Metric(
            name=group["metric_name"],
            instrument=group["instrument"],
            unit=group["unit"],
            brief=_text(group.get("brief")),
            attributes=tuple(entry["ref"] for entry in group.get("attributes", [])),
            stability=group["stability"],
        )
        for group in _groups(directory)
        if group["type"] == "metric"
    ]
