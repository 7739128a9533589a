"""What the health probe's readers make of a client's state."""

from __future__ import annotations

import types

import pytest
from kafka.coordinator.assignors.abstract import RebalanceProtocol
from kafka.structs import MemberState

from kafkascope._adapters.kafka_python import in_eager_rebalance


@pytest.mark.parametrize(
    ("state", "protocol", "holds_nothing"),
    [
        (MemberState.REBALANCING, RebalanceProtocol.EAGER, True),
        (MemberState.REBALANCING, None, True),  # before the protocol is chosen: eager
        (MemberState.REBALANCING, RebalanceProtocol.COOPERATIVE, False),
        (MemberState.STABLE, RebalanceProtocol.EAGER, False),
        (MemberState.UNJOINED, RebalanceProtocol.EAGER, False),
    ],
)
def test_only_an_eager_rebalance_in_progress_takes_a_kafka_python_members_partitions(
    state: str, protocol: RebalanceProtocol | None, holds_nothing: bool
) -> None:
    coordinator = types.SimpleNamespace(state=state, _rebalance_protocol=protocol)
    assert in_eager_rebalance(coordinator) is holds_nothing
