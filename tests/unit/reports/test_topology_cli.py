"""``kafkascope topology``'s URL options are checked like the other commands'."""

from __future__ import annotations

import pytest

from kafkascope.cli import EXIT_USAGE, main


@pytest.mark.parametrize(
    ("option", "variable"),
    [("--jaeger", "KAFKASCOPE_JAEGER_URL"), ("--prometheus", "KAFKASCOPE_PROMETHEUS_URL")],
)
def test_a_bad_url_is_a_usage_error_naming_the_option_and_its_variable(option, variable, capsys):
    assert main(["topology", option, "ftp://x"]) == EXIT_USAGE
    assert f"'ftp://x' (from {option} or {variable})" in capsys.readouterr().err
