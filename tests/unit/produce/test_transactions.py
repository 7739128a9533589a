"""The transaction engine: which offsets a transaction commits, in each client's shape; send spans
inside and outside a transaction; the bound on links; a broken tracer never reaches the
application."""

from __future__ import annotations

from collections import namedtuple

import pytest
from aiokafka.structs import TopicPartition as AioPartition
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from kafkascope import TracedProducer, dead_letter, traced_batch_handler
from kafkascope._core import semconv as sc
from kafkascope._produce.transactions import MAX_LINKS, committed_offsets
from kafkascope.testing import make_record
from tests.unit._producers import BrokenTracerProvider, RecordingProducer, ack

ConfluentPartition = namedtuple("ConfluentPartition", "topic partition offset")


class TransactionalProducer(RecordingProducer):
    """A kafka-python producer stand-in with the transaction methods."""

    def __init__(self) -> None:
        super().__init__()
        self.config["transactional_id"] = "enricher-0"
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets, group_metadata) -> None:
        self.calls.append("offsets")

    def commit_transaction(self) -> None:
        self.calls.append("commit")

    def abort_transaction(self) -> None:
        raise RuntimeError("fenced")


def test_confluents_list_of_positions_is_read():
    positions = [ConfluentPartition("orders", 0, 12), ConfluentPartition("orders", 1, -1001)]
    assert list(committed_offsets(positions)) == [("orders", 0, 12)]  # -1001: no position


def test_kafka_pythons_offset_and_metadata_mapping_is_read():
    offsets = {TopicPartition("orders", 2): OffsetAndMetadata(7, "", -1)}
    assert list(committed_offsets(offsets)) == [("orders", 2, 7)]


def test_aiokafkas_int_and_pair_mappings_are_read():
    offsets = {AioPartition("orders", 0): 3, AioPartition("orders", 1): (9, "meta")}
    assert list(committed_offsets(offsets)) == [("orders", 0, 3), ("orders", 1, 9)]


def test_unreadable_offsets_are_skipped():
    assert list(committed_offsets({"orders": "x", 3: None})) == []
    assert list(committed_offsets(object())) == []


def test_a_send_outside_a_transaction_carries_no_transactional_id(capotel):
    producer = TracedProducer(TransactionalProducer())
    ack(producer.send("orders", b"v"))
    assert sc.TRANSACTION_ID not in (capotel.span("send orders").attributes or {})


def test_a_send_inside_a_transaction_carries_the_transactional_id(capotel):
    producer = TracedProducer(TransactionalProducer())
    producer.begin_transaction()
    ack(producer.send("orders", b"v"))
    assert (capotel.span("send orders").attributes or {})[sc.TRANSACTION_ID] == "enricher-0"


def test_sends_after_a_commit_are_outside_the_transaction(capotel):
    producer = TracedProducer(TransactionalProducer())
    producer.begin_transaction()
    producer.commit_transaction()
    ack(producer.send("orders", b"v"))
    assert sc.TRANSACTION_ID not in (capotel.span("send orders").attributes or {})
    assert not capotel.span(sc.COMMIT_TRANSACTION).links


def test_the_commit_span_links_to_at_most_max_links_sends(capotel):
    producer = TracedProducer(TransactionalProducer())
    producer.begin_transaction()
    for _ in range(MAX_LINKS + 5):
        producer.send("orders", b"v")
    producer.commit_transaction()
    assert len(capotel.span(sc.COMMIT_TRANSACTION).links) == MAX_LINKS


def test_an_abort_that_raises_is_reraised_unchanged_and_leaves_the_transaction_open(capotel):
    producer = TracedProducer(TransactionalProducer())
    producer.begin_transaction()
    ack(producer.send("orders", b"v"))
    with pytest.raises(RuntimeError, match="fenced"):
        producer.abort_transaction()
    ack(producer.send("orders", b"w"))
    (failed,) = capotel.spans_named(sc.ABORT_TRANSACTION)
    attributes = failed.attributes or {}
    assert (attributes[sc.TRANSACTION_OUTCOME], attributes[sc.ERROR_TYPE]) == (
        sc.TRANSACTION_FAILED,
        "RuntimeError",
    )
    assert all(
        (s.attributes or {}).get(sc.TRANSACTION_ID) == "enricher-0"
        for s in capotel.spans_named("send orders")
    )


def test_a_broken_tracer_never_stops_the_transaction(forgiving):
    raw = TransactionalProducer()
    producer = TracedProducer(raw, tracer_provider=BrokenTracerProvider())
    producer.begin_transaction()
    producer.send_offsets_to_transaction({TopicPartition("orders", 0): 1}, "g")
    producer.commit_transaction()
    assert raw.calls == ["begin", "offsets", "commit"]


def test_a_dead_letter_sent_inside_a_transaction_belongs_to_it(capotel):
    producer = TracedProducer(TransactionalProducer())
    producer.begin_transaction()
    ack(dead_letter(producer, make_record("orders"), KeyError("sku")))
    producer.commit_transaction()
    dlq = capotel.span("send orders.dlq")
    assert (dlq.attributes or {})[sc.TRANSACTION_ID] == "enricher-0"
    (link,) = capotel.span(sc.COMMIT_TRANSACTION).links
    assert link.context.span_id == dlq.context.span_id


def test_a_batch_whose_offsets_are_committed_is_linked_from_the_commit(capotel):
    producer = TracedProducer(TransactionalProducer())

    @traced_batch_handler(group="enricher")
    def enrich(records):
        producer.begin_transaction()
        ack(producer.send("enriched", b"v"))
        producer.send_offsets_to_transaction({TopicPartition("orders", 0): 12}, "enricher")
        producer.commit_transaction()

    enrich([make_record("orders", offset=10), make_record("orders", offset=11)])
    batch = capotel.span("process orders")
    offsets_links = [
        link
        for link in capotel.span(sc.COMMIT_TRANSACTION).links
        if (link.attributes or {}).get(sc.LINK_TYPE) == sc.LINK_TRANSACTION_OFFSETS
    ]
    assert [link.context.span_id for link in offsets_links] == [batch.context.span_id]
