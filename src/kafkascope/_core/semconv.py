"""Attribute keys, values, metric names and the schema URL, from opentelemetry-semantic-conventions.

Names the conventions do not define yet are kafkascope's own and carry the ``kafkascope.`` prefix.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import messaging_attributes as _msg
from opentelemetry.semconv._incubating.metrics import messaging_metrics as _msg_metrics
from opentelemetry.semconv.attributes import error_attributes as _error
from opentelemetry.semconv.attributes import exception_attributes as _exception
from opentelemetry.semconv.attributes import server_attributes as _server
from opentelemetry.semconv.schemas import Schemas

MESSAGING_SYSTEM: Final = _msg.MESSAGING_SYSTEM
MESSAGING_OPERATION_NAME: Final = _msg.MESSAGING_OPERATION_NAME
MESSAGING_OPERATION_TYPE: Final = _msg.MESSAGING_OPERATION_TYPE
MESSAGING_DESTINATION_NAME: Final = _msg.MESSAGING_DESTINATION_NAME
MESSAGING_DESTINATION_PARTITION_ID: Final = _msg.MESSAGING_DESTINATION_PARTITION_ID
MESSAGING_CONSUMER_GROUP_NAME: Final = _msg.MESSAGING_CONSUMER_GROUP_NAME
MESSAGING_CLIENT_ID: Final = _msg.MESSAGING_CLIENT_ID
MESSAGING_KAFKA_CLUSTER_ID: Final = _msg.MESSAGING_KAFKA_CLUSTER_ID
MESSAGING_BATCH_MESSAGE_COUNT: Final = _msg.MESSAGING_BATCH_MESSAGE_COUNT
MESSAGING_KAFKA_OFFSET: Final = _msg.MESSAGING_KAFKA_OFFSET
MESSAGING_KAFKA_MESSAGE_KEY: Final = _msg.MESSAGING_KAFKA_MESSAGE_KEY
MESSAGING_KAFKA_MESSAGE_TOMBSTONE: Final = _msg.MESSAGING_KAFKA_MESSAGE_TOMBSTONE
MESSAGING_MESSAGE_BODY_SIZE: Final = _msg.MESSAGING_MESSAGE_BODY_SIZE
MESSAGING_MESSAGE_CONVERSATION_ID: Final = _msg.MESSAGING_MESSAGE_CONVERSATION_ID
ERROR_TYPE: Final = _error.ERROR_TYPE
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = _exception.EXCEPTION_TYPE
EXCEPTION_MESSAGE: Final = _exception.EXCEPTION_MESSAGE
EXCEPTION_STACKTRACE: Final = _exception.EXCEPTION_STACKTRACE
SERVER_ADDRESS: Final = _server.SERVER_ADDRESS
SERVER_PORT: Final = _server.SERVER_PORT

KAFKA: Final = _msg.MessagingSystemValues.KAFKA.value
OPERATION_PROCESS: Final = _msg.MessagingOperationTypeValues.PROCESS.value
OPERATION_SEND: Final = _msg.MessagingOperationTypeValues.SEND.value

METRIC_PROCESS_DURATION: Final = _msg_metrics.MESSAGING_PROCESS_DURATION
METRIC_CLIENT_OPERATION_DURATION: Final = _msg_metrics.MESSAGING_CLIENT_OPERATION_DURATION
METRIC_CLIENT_SENT_MESSAGES: Final = _msg_metrics.MESSAGING_CLIENT_SENT_MESSAGES
METRIC_CLIENT_CONSUMED_MESSAGES: Final = _msg_metrics.MESSAGING_CLIENT_CONSUMED_MESSAGES

# kafkascope's own names, for what the conventions do not cover yet. Defined once in the Weaver
# registry beside this module (registry/kafkascope.yaml); tests/unit/core/test_registry.py fails
# when a name here and there differ.
TIME_IN_QUEUE: Final = "kafkascope.message.time_in_queue"
"""Seconds from the record's timestamp to the start of its processing (span attribute and
histogram)."""
CONSUMER_LAG: Final = "kafkascope.consumer.lag"
"""Messages between a partition's high-water mark and the consumer's position (gauge)."""
DEAD_LETTERED: Final = "kafkascope.messages.dead_lettered"
"""Messages sent to a dead-letter topic by :func:`kafkascope.dead_letter` (counter)."""
DEAD_LETTER_SOURCE: Final = "kafkascope.dead_letter.source"
"""Attribute: the topic a dead-lettered message was consumed from."""
TIMESTAMP_TYPE: Final = "kafkascope.message.timestamp_type"
"""``create_time`` or ``log_append_time``: which clock the time in queue is measured from."""
TIMESTAMP_CREATE_TIME: Final = "create_time"
TIMESTAMP_LOG_APPEND_TIME: Final = "log_append_time"
REBALANCES: Final = "kafkascope.consumer.rebalances"
"""Partition assignments and revocations of a consumer (counter, by
``kafkascope.rebalance.type``)."""
REBALANCE_TYPE: Final = "kafkascope.rebalance.type"
"""Attribute: ``assigned`` or ``revoked`` (lost partitions count as revoked)."""
REBALANCE_ASSIGNED: Final = "assigned"
REBALANCE_REVOKED: Final = "revoked"
REBALANCE_PARTITIONS: Final = "kafkascope.rebalance.partitions"
"""Log attribute: the partitions assigned or revoked, as ``topic-partition`` strings."""
ASSIGNED_PARTITIONS: Final = "kafkascope.consumer.assigned_partitions"
"""Partitions currently assigned to the process's consumers (gauge)."""
CONSUMER_MEMBER_ID: Final = "kafkascope.consumer.member_id"
"""Log attribute: the consumer's member id in its group."""
POISON: Final = "kafkascope.messages.poison"
"""Messages whose processing failed the configured number of times in a row (counter)."""
MESSAGE_POISON: Final = "kafkascope.message.poison"
"""Span attribute: true on the process span of an attempt that made the message poison, and
on every later failed attempt."""
MESSAGE_ATTEMPT: Final = "kafkascope.message.attempt"
"""Span attribute: which attempt at processing this message the span is (1, 2, ...)."""
POISON_TRACE_IDS: Final = "kafkascope.poison.trace_ids"
"""Log attribute: the trace ids of the attempts at a poison message, oldest first."""
BODY_SIZE: Final = "kafkascope.message.body.size"
"""Bytes of the bodies of sent and processed messages (histogram; the conventions have a
proposal, semantic-conventions #2264, but no name yet)."""
LINK_TYPE: Final = "kafkascope.link.type"
"""Link attribute: what a span's link leads to."""
LINK_PREVIOUS_ATTEMPT: Final = "previous_attempt"
LINK_TRANSACTION_SEND: Final = "transaction_send"
LINK_TRANSACTION_OFFSETS: Final = "transaction_offsets"
TRANSACTIONS: Final = "kafkascope.producer.transactions"
"""Transactions a transactional producer ended (counter, by ``kafkascope.transaction.outcome``)."""
TRANSACTION_ID: Final = "kafkascope.transaction.id"
"""Attribute: the producer's ``transactional.id``, on its transaction spans and the send spans
made inside a transaction."""
TRANSACTION_OUTCOME: Final = "kafkascope.transaction.outcome"
"""Attribute: ``committed``, ``aborted`` or ``failed`` (the commit or abort raised)."""
TRANSACTION_COMMITTED: Final = "committed"
TRANSACTION_ABORTED: Final = "aborted"
TRANSACTION_FAILED: Final = "failed"
COMMIT_TRANSACTION: Final = "commit_transaction"
"""Span name and ``messaging.operation.name`` of a transaction's commit."""
ABORT_TRANSACTION: Final = "abort_transaction"
"""Span name and ``messaging.operation.name`` of a transaction's abort."""

# Bucket boundaries the messaging conventions advise for their duration histograms (seconds).
DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip

SCHEMA_URL: Final = max(
    Schemas, key=lambda s: tuple(int(p) for p in s.value.rsplit("/", 1)[1].split("."))
).value


def process_span_name(topic: str | None) -> str:
    """``process {topic}``, or ``process`` when the destination is not one topic."""
    return f"{OPERATION_PROCESS} {topic}" if topic else OPERATION_PROCESS


def send_span_name(topic: str) -> str:
    """``send {topic}``."""
    return f"{OPERATION_SEND} {topic}"


CONSUMER_TIME_LAG: Final = "kafkascope.consumer.time_lag"
"""Seconds since the oldest record the consumer has not processed yet was written (gauge)."""
PIPELINE_LATENCY: Final = "kafkascope.pipeline.latency"
"""Seconds from the first traced send of a chain to the start of a handler (histogram and span
attribute)."""
PIPELINE_ORIGIN: Final = "kafkascope.pipeline.origin"
"""Attribute: the topic the first traced send of the chain went to."""
SPANS_DROPPED: Final = "kafkascope.spans.dropped"
"""Spans ``configure()``'s span pipeline dropped because its export queue was full (counter)."""

# The clients' own statistics (gauges and counters, see _core/client_metrics.py).
CLIENT_BROKER_RTT: Final = "kafkascope.client.broker.rtt"
CLIENT_BROKER_THROTTLE_TIME: Final = "kafkascope.client.broker.throttle_time"
CLIENT_REQUEST_RETRIES: Final = "kafkascope.client.request.retries"
CLIENT_REQUEST_TIMEOUTS: Final = "kafkascope.client.request.timeouts"
CLIENT_PRODUCER_QUEUE_MESSAGES: Final = "kafkascope.client.producer.queue.messages"
CLIENT_PRODUCER_QUEUE_BYTES: Final = "kafkascope.client.producer.queue.bytes"
CLIENT_PRODUCER_QUEUE_USAGE: Final = "kafkascope.client.producer.queue.usage"
CLIENT_FETCH_QUEUE_MESSAGES: Final = "kafkascope.client.consumer.fetch_queue.messages"
CLIENT_CONSUMER_LAG: Final = "kafkascope.client.consumer.lag"
CLIENT_CONSUMER_LAG_MAX: Final = "kafkascope.client.consumer.lag.max"
CLIENT_REBALANCES: Final = "kafkascope.client.consumer.rebalances"

OPERATION_SETTLE: Final = _msg.MessagingOperationTypeValues.SETTLE.value
OPERATION_COMMIT: Final = "commit"
"""``messaging.operation.name`` of Kafka's settle operation, as the conventions' Kafka page
names it (an offset commit)."""
COMMITS: Final = "kafkascope.consumer.commits"
"""Offset commits of the process's consumers, by outcome (counter)."""
COMMIT_OUTCOME: Final = "kafkascope.commit.outcome"
"""Attribute: ``success`` or ``failure``."""
COMMIT_SUCCESS: Final = "success"
COMMIT_FAILURE: Final = "failure"
COMMIT_TRIGGER: Final = "kafkascope.commit.trigger"
"""Attribute: ``application`` (the application called ``commit()``) or ``auto`` (the client's
auto-commit)."""
COMMIT_APPLICATION: Final = "application"
COMMIT_AUTO: Final = "auto"
COMMIT_PARTITIONS: Final = "kafkascope.commit.partitions"
"""Span attribute: the partition ids one commit span settles, when several (string[])."""
COMMIT_OFFSETS: Final = "kafkascope.commit.offsets"
"""Span attribute: the committed offsets, in the order of ``kafkascope.commit.partitions``
(int[])."""


def commit_span_name(topic: str | None) -> str:
    """``commit {topic}``, or ``commit`` when the topic is not known."""
    return f"{OPERATION_COMMIT} {topic}" if topic else OPERATION_COMMIT
