"""What the kafkascope services of the pipeline share: topics, arguments, shutdown, outcomes.

Not imported by ``audit.py``, which stays a plain kafka-python script.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DECLINED_CARD = "4000-0000-0000-0002"
"""Billing declines this card; ``orders`` gives it to every fifth order, so failures are
deterministic: order ``n`` is declined exactly when ``n % 5 == 0``."""


@dataclass(frozen=True)
class Topics:
    """The pipeline's topics, all named from one prefix (tests use a fresh prefix each)."""

    orders: str
    enriched: str
    dead_letter: str

    @classmethod
    def named(cls, prefix: str) -> Topics:
        """``{prefix}orders``, ``{prefix}orders.enriched``, ``{prefix}orders.dlq``."""
        return cls(f"{prefix}orders", f"{prefix}orders.enriched", f"{prefix}orders.dlq")


class PaymentDeclinedError(Exception):
    """The card was declined: retrying will not help, so billing dead-letters the order."""


CONSUMER_OPTIONS: dict[str, Any] = {
    "auto_offset_reset": "earliest",
    # A subscribed topic that does not exist yet is asked for again within a fraction of a
    # second (tests/integration/test_broker.py measures it); what only a periodic refresh
    # notices (partitions added to a topic, a group leader whose metadata was stale when it
    # assigned) takes 2 s instead of the default 5 min.
    "metadata_max_age_ms": 2000,
    # A member that vanished without leaving (or a join the broker still counts after the
    # client gave up on it) holds the group's next rebalance until its session expires: 6 s,
    # the broker's minimum, instead of 45 s.
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
}
"""kafka-python consumer settings of the pipeline's kafkascope services (audit has its own)."""


def group_id(prefix: str, service: str) -> str:
    """The consumer group of ``service``: its name, after the topic prefix."""
    return f"{prefix}{service}"


def declined(n: int) -> bool:
    """Whether order number ``n`` will be declined by billing."""
    return n % 5 == 0


REVIEW_SECONDS = 3.0
"""How long the enricher holds an order for review before forwarding it."""


def held_for_review(n: int) -> bool:
    """Whether order number ``n`` is held for review (slow on purpose): 7, 57, 107, ...

    The enricher forwards it :data:`REVIEW_SECONDS` late from a timer, without holding up the
    orders behind it, so its end-to-end latency downstream stands out alone in its bucket.
    """
    return n % 50 == 7


def arguments(description: str, *extra: tuple[str, dict[str, Any]]) -> argparse.Namespace:
    """``--bootstrap``, ``--prefix`` and ``--outcomes``, plus ``extra`` options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--prefix", default="", help="topic name prefix")
    parser.add_argument("--outcomes", type=Path, help="append one JSON line per handled message")
    for flag, options in extra:
        parser.add_argument(flag, **options)
    return parser.parse_args()


def log_to_stderr(service: str) -> None:
    """Plain log lines on stderr (the process's log file); kafka-python's own at WARNING, or
    at ``$PIPELINE_KAFKA_LOG_LEVEL``."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(os.environ.get("PIPELINE_KAFKA_LOG_LEVEL", "WARNING"))


class Stop:
    """Set by SIGTERM or SIGINT: the service finishes its current batch and exits cleanly.

    Installed before ``kafkascope.configure()``, which then leaves SIGTERM to us; the
    service shuts its telemetry down itself on the way out.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, signum: int, frame: object) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if asked to stop meanwhile."""
        return self._event.wait(seconds)


class Outcomes:
    """One JSON object per line, flushed at once, so a test can count results as they happen."""

    def __init__(self, path: Path | None) -> None:
        self._file = path.open("a", encoding="utf-8") if path is not None else None

    def write(self, **fields: Any) -> None:
        """Append one outcome."""
        if self._file is not None:
            self._file.write(json.dumps(fields) + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()


def holds_all_partitions(consumer: Any) -> bool:
    """Whether a kafka-python consumer is assigned every partition of every topic it subscribed
    to: what "ready" means for a group's only member. A non-empty assignment is not enough: a
    member that joined before one of its topics reached its metadata holds only the others."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for topic in consumer.subscription() or ():
        partitions = consumer.partitions_for_topic(topic)
        if not partitions or any((topic, p) not in assigned for p in partitions):
            return False
    return True


def ready(service: str) -> None:
    """Tell the launcher this service's consumer has its partitions (a line on stdout)."""
    print(f"{service} ready", flush=True)
