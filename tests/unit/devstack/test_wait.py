"""devstack's one bounded wait: the predicate's value, a step between checks, a clear timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from devstack.wait import wait_until


def test_returns_the_predicates_first_truthy_value():
    answers: Iterator[object] = iter([None, 0, [], "ready", "later"])
    assert wait_until(lambda: next(answers), 5, "an answer", interval=0) == "ready"
    assert next(answers) == "later"


def test_a_predicate_true_at_once_is_checked_once_and_nothing_is_stepped():
    calls: list[str] = []

    def predicate() -> bool:
        calls.append("check")
        return True

    assert wait_until(predicate, 5, "anything", step=lambda: calls.append("step")) is True
    assert calls == ["check"]


def test_the_step_runs_between_checks_instead_of_sleeping():
    calls: list[str] = []

    def predicate() -> bool:
        calls.append("check")
        return calls.count("check") == 3

    wait_until(predicate, 5, "the third check", step=lambda: calls.append("step"), interval=60)
    assert calls == ["check", "step", "check", "step", "check"]


def test_expiry_raises_timeout_error_naming_what_and_the_timeout():
    with pytest.raises(TimeoutError, match=r"^waited 0\.5s for the broker ready$"):
        wait_until(lambda: False, 0.5, "the broker ready", interval=0.1)


def test_a_described_wait_says_what_was_last_seen_when_it_expires():
    seen = [0]

    def predicate() -> bool:
        seen[0] += 1
        return False

    with pytest.raises(TimeoutError) as expired:
        wait_until(predicate, 0, lambda: f"three members ({seen[0]} seen)")
    assert str(expired.value) == "waited 0s for three members (1 seen)"


def test_the_predicate_is_checked_once_more_after_a_step_that_outlasts_the_deadline():
    done: list[bool] = []

    def slow_step() -> None:
        time.sleep(0.2)  # past the deadline below
        done.append(True)

    assert wait_until(lambda: bool(done), 0.01, "the step's result", step=slow_step) is True


def test_the_predicates_exception_propagates_unchanged():
    failure = ValueError("broken probe")

    def predicate() -> bool:
        raise failure

    with pytest.raises(ValueError, match="broken probe") as raised:
        wait_until(predicate, 5, "anything")
    assert raised.value is failure
