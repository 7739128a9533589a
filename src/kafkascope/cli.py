"""The ``kafkascope`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from kafkascope import _settings
from kafkascope._semconv import SCHEMA_URL
from kafkascope._version import __version__


def _settings_command(_: argparse.Namespace) -> int:
    try:
        settings = _settings.Settings.from_env(os.environ)
    except ValueError as exc:
        print(f"kafkascope: {exc}", file=sys.stderr)
        return 2
    shown = {
        "parent": settings.parent,
        "capture_key": settings.capture_key,
        "trust_baggage": settings.trust_baggage,
        "lag": settings.lag,
        "schema_url": SCHEMA_URL,
        "otel": {k: v for k, v in sorted(os.environ.items()) if k.startswith("OTEL_")},
    }
    print(json.dumps(shown, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kafkascope`` command."""
    parser = argparse.ArgumentParser(prog="kafkascope", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kafkascope {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    settings = sub.add_parser(
        "settings", help="show the settings in force (OTEL_* and OTEL_PYTHON_KAFKASCOPE_*)"
    )
    settings.set_defaults(func=_settings_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kafkascope`` command."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
