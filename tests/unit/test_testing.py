from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from kafkascope import traced_handler
from kafkascope._core import semconv as sc
from kafkascope.testing import (
    assert_linked,
    assert_messaging_attributes,
    assert_parent,
    assert_same_trace,
    make_record,
)

pytest_plugins = ["pytester"]

tracer = trace.get_tracer("tests")


def _two_roots(capotel):
    with tracer.start_as_current_span("a"):
        pass
    with tracer.start_as_current_span("b"):
        pass
    return capotel.span("a"), capotel.span("b")


def test_span_lookup_failure_lists_the_spans_found(capotel):
    _two_roots(capotel)
    with pytest.raises(AssertionError, match=r"expected one span named 'c', found 0: \['a', 'b'\]"):
        capotel.span("c")


def test_same_trace_failure_shows_each_trace(capotel):
    a, b = _two_roots(capotel)
    with pytest.raises(AssertionError, match=r"not in one trace: 'a' \(trace [0-9a-f]{32}"):
        assert_same_trace(a, b)


def test_parent_and_link_failures_name_both_spans(capotel):
    a, b = _two_roots(capotel)
    with pytest.raises(AssertionError, match=r"'a' .* is not a child of 'b'"):
        assert_parent(a, b)
    with pytest.raises(AssertionError, match=r"'a' .* has no link to 'b' .*; links: \[\]"):
        assert_linked(a, b)


def test_messaging_assertion_lists_every_problem(capotel):
    with tracer.start_as_current_span("process", kind=SpanKind.INTERNAL):
        pass
    with pytest.raises(AssertionError) as caught:
        assert_messaging_attributes(
            capotel.span("process"), expected={sc.MESSAGING_CONSUMER_GROUP_NAME: "g"}
        )
    message = str(caught.value)
    for problem in (
        "kind INTERNAL, expected CONSUMER",
        f"missing {sc.MESSAGING_SYSTEM}",
        f"{sc.MESSAGING_CONSUMER_GROUP_NAME}=None, expected 'g'",
    ):
        assert problem in message


def test_metric_lookup_failure_lists_the_streams(capotel):
    @traced_handler(group="g")
    def handle(rec):
        return None

    handle(make_record("orders"))
    with pytest.raises(AssertionError, match=r"no 'messaging\.client\.consumed\.messages' stream"):
        capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES, {sc.MESSAGING_DESTINATION_NAME: "x"})


def test_metrics_are_per_test_and_clear_forgets(capotel):
    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders"))
    assert capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES).value == 1
    handle(make_record("orders"))
    assert capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES).value == 2
    capotel.clear()
    handle(make_record("orders"))
    assert capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES).value == 1
    assert len(capotel.spans) == 1


def test_merged_streams_keep_only_the_attributes_they_share(capotel):
    for group in ("a", "b"):
        traced_handler(group=group)(lambda rec: None)(make_record("orders"))
    merged = capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES)
    assert merged.value == 2
    assert sc.MESSAGING_CONSUMER_GROUP_NAME not in merged.attributes
    assert merged.attributes[sc.MESSAGING_DESTINATION_NAME] == "orders"


def test_make_record_defaults_and_mapping_headers():
    record = make_record(headers={"a": b"1"}, timestamp=5, log_append_time=True)
    assert (record.topic, record.partition, record.offset) == ("test-topic", 0, 0)
    assert record.headers == [("a", b"1")]
    assert record.timestamp_type == 1


def test_messaging_assertion_refuses_an_operation_it_cannot_check_naming_those_it_can(capotel):
    with tracer.start_as_current_span("receive orders", kind=SpanKind.CONSUMER):
        pass
    with pytest.raises(ValueError, match=r"operation='receive'.*'process' or 'send'"):
        assert_messaging_attributes(capotel.span("receive orders"), operation="receive")


@pytest.mark.parametrize("count", [0, 1])
def test_same_trace_of_fewer_than_two_spans_says_two_are_needed(capotel, count):
    spans = _two_roots(capotel)[:count]
    with pytest.raises(AssertionError, match=rf"needs two spans or more, got {count}"):
        assert_same_trace(*spans)


def test_metric_lookup_of_an_unrecorded_name_lists_the_names_recorded(capotel):
    traced_handler(lambda rec: None)(make_record("orders"))
    with pytest.raises(AssertionError) as caught:
        capotel.metric("messaging.client.consumed.mesages")
    message = str(caught.value)
    assert "no metric 'messaging.client.consumed.mesages' was recorded" in message
    assert f"did you mean {sc.METRIC_CLIENT_CONSUMED_MESSAGES!r}?" in message
    assert sc.METRIC_PROCESS_DURATION in message  # every name recorded is listed


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("topic", 123),
        ("topic", b"orders"),
        ("partition", "0"),
        ("partition", True),
        ("offset", 1.5),
        ("timestamp", "1700000000000"),
    ],
)
def test_make_record_refuses_a_field_of_the_wrong_type_naming_it(option, value):
    with pytest.raises(TypeError, match=rf"make_record: {option} must be"):
        make_record(**{option: value})


@pytest.mark.parametrize("headers", ["abc", b"abc", 5, [("a",)], [("a", b"1", b"2")], ["ab"]])
def test_make_record_refuses_headers_that_are_not_name_value_pairs(headers):
    with pytest.raises(TypeError, match="make_record: headers must be"):
        make_record(headers=headers)


PLUGIN_USER_TEST = textwrap.dedent(
    """
    import logging
    from kafkascope import traced_handler
    from kafkascope.testing import make_record

    @traced_handler(group="g")
    def handle(record):
        logging.getLogger("user").info("handled %s", record.offset)

    def test_user(capotel):
        handle(make_record("orders", offset=3))
        span = capotel.span("process orders")
        assert capotel.log("handled 3").log_record.span_id == span.context.span_id

    def test_isolated(capotel):
        assert capotel.spans == []
    """
)


def test_the_plugin_works_in_a_users_project_with_no_conftest(tmp_path):
    (tmp_path / "test_user.py").write_text(PLUGIN_USER_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


# pytest-asyncio (installed here) warns when its loop scope is unset: not what these tests count.
USER_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def test_a_users_run_that_imports_kafka_shows_none_of_kafka_pythons_deprecation_warnings(
    pytester: pytest.Pytester,
):
    pytester.makeini(USER_INI)
    pytester.makepyfile(test_user="import kafka\n\ndef test_uses_kafka():\n    assert kafka\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=0)  # 218 warnings before


def test_a_conftest_that_imports_kafka_passes_under_filterwarnings_error(
    pytester: pytest.Pytester,
):
    pytester.makeini(USER_INI + "filterwarnings = error\n")
    pytester.makeconftest("import kafka\n")
    pytester.makepyfile(test_user="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=0)


def test_the_users_own_deprecation_warnings_still_show(pytester: pytest.Pytester):
    pytester.makeini(USER_INI)
    pytester.makepyfile(
        test_user="""
        import warnings

        import kafka

        def test_mine():
            warnings.warn("my_api is deprecated", DeprecationWarning)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*DeprecationWarning: my_api is deprecated*"])
