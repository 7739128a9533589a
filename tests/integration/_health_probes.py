"""Asking a consumer's health endpoint over real HTTP, for the health tests of every client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from devstack.wait import wait_until

from kafkascope import ConsumerHealth


def probe(health: ConsumerHealth) -> tuple[int, dict[str, Any]]:
    """The endpoint's status and JSON report, for 503 answers too."""
    try:
        with urllib.request.urlopen(health.url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def probe_until(
    health: ConsumerHealth, ok: Callable[[int, dict[str, Any]], bool], *, timeout: float = 20.0
) -> tuple[int, dict[str, Any]]:
    """Probe until ``ok(status, report)``; that answer, or a TimeoutError naming the last one."""
    last: list[tuple[int, dict[str, Any]]] = []

    def answered() -> tuple[int, dict[str, Any]] | None:
        last[:] = [probe(health)]
        return last[0] if ok(*last[0]) else None

    return wait_until(
        answered,
        timeout,
        lambda: f"the answer wanted (last {last[0] if last else None})",
        interval=0.1,
    )


def assert_no_progress_while_lag_grows(
    health: ConsumerHealth, handled: list[int], send_more: Callable[[], object]
) -> None:
    """Once the handler has seen the poison message (offset 0), traffic keeps arriving behind
    it: the probe must turn to 503 saying there is no progress while the lag grows."""
    status, report = probe_until(health, lambda s, r: s == 200 and bool(handled))
    assert status == 200, report

    def sent_and_stalled() -> tuple[int, dict[str, Any]] | None:
        send_more()
        answer = probe(health)
        return answer if answer[0] != 200 else None

    status, report = wait_until(
        sent_and_stalled, 15, "a 503 while more messages arrive", interval=0.1
    )
    assert status == 503, report
    [reason] = report["reasons"]
    assert reason.startswith("no progress for ")
    assert " while the lag grew from " in reason
    assert report["lag"] > 1
    assert set(handled) == {0}
