"""A three-node Apache Kafka KRaft cluster on 127.0.0.1: three JVMs, each broker and controller.

Each node is a :class:`devstack.kafka.KafkaBroker` with its own work directory, ports and
``node.id``; the controllers form a static quorum (``controller.quorum.voters``), and every
node's storage is formatted with the same cluster id. Internal topics and new topics default to
replication factor 3 with ``min.insync.replicas=2``, so the cluster keeps accepting
``acks=all`` writes with one node down. Each node is stopped (or killed) by its own PID.

    with KafkaCluster.start(tmp_path) as cluster:
        cluster.create_topics({"orders": 3})
        leader = cluster.leader_of("orders", 0)
        cluster.node(leader).kill()
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack._process import Server, ServerError
from devstack._support import free_ports
from devstack.kafka import (
    _TOOL_JVM_OPTIONS,
    HOST,
    KafkaBroker,
    _new_cluster_id,
    create_topics,
    kafka_libs,
)

CLUSTER_JVM_OPTIONS = ("-Xms128m", "-Xmx384m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
"""Three JVMs share two cores with everything else: small heaps, the C1 JIT, the serial GC."""

_CLUSTER_PROPERTIES = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
    # A killed node is fenced, and its partitions get new leaders, after 3 s instead of 9 s.
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}


class ClusterNode(KafkaBroker):
    """One node of a :class:`KafkaCluster` (broker + voter of the static controller quorum)."""

    def __init__(
        self,
        workdir: Path,
        *,
        node_id: int,
        voters: str,
        cluster_id: str,
        port: int,
        controller_port: int,
        libs: Path,
        jvm_options: tuple[str, ...],
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            workdir,
            port=port,
            controller_port=controller_port,
            libs=libs,
            jvm_options=jvm_options,
            extra_properties={**_CLUSTER_PROPERTIES, **(extra_properties or {})},
        )
        self.node_id = node_id
        self.voters = voters
        self.cluster_id = cluster_id

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ClusterNode {self.node_id} {self.bootstrap_servers} pid={self.pid} {state}>"

    def _properties(self) -> dict[str, str]:
        props = super()._properties()
        props.pop("controller.quorum.bootstrap.servers", None)
        props["node.id"] = str(self.node_id)
        props["controller.quorum.voters"] = self.voters
        props.update(self.extra_properties)
        return props

    def _format_storage(self) -> None:
        """``kafka-storage format`` with the cluster's id (static quorum: no --standalone)."""
        if (self.data_dir / "meta.properties").is_file():
            return
        argv = self._java_argv(
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            self.cluster_id,
            "--config",
            str(self.config_path),
            "--ignore-formatted",
            jvm_options=_TOOL_JVM_OPTIONS,
        )
        done = subprocess.run(
            argv, capture_output=True, text=True, cwd=self.workdir, timeout=120, check=False
        )
        output = (done.stdout + done.stderr).strip()
        with self.log_path.open("a") as log:
            log.write(f"$ {' '.join(argv)}\n{output}\n")
        if done.returncode != 0:
            raise ServerError(f"formatting node {self.node_id} failed:\n{output}")

    def launch(self, timeout: float) -> None:
        """Start this node's JVM and wait until it serves metadata (the quorum must be up)."""
        self._launch(timeout)


class KafkaCluster(Server):
    """Three :class:`ClusterNode` processes forming one KRaft cluster; build with :meth:`start`."""

    def __init__(self, nodes: list[ClusterNode]) -> None:
        self.nodes = nodes

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        size: int = 3,
        timeout: float = 120,
        jvm_options: tuple[str, ...] = CLUSTER_JVM_OPTIONS,
        extra_properties: Mapping[str, str] | None = None,
    ) -> KafkaCluster:
        """Configure, format and start ``size`` nodes at once; return when all are ready.

        The nodes are launched together (none is ready before a majority of the controllers
        is up). On failure every node that started is stopped again.
        """
        libs = kafka_libs()
        workdir = Path(workdir).resolve()
        ports = free_ports(2 * size)
        broker_ports, controller_ports = ports[:size], ports[size:]
        voters = ",".join(
            f"{index + 1}@{HOST}:{port}" for index, port in enumerate(controller_ports)
        )
        cluster_id = _new_cluster_id()
        nodes = [
            ClusterNode(
                workdir / f"node-{index + 1}",
                node_id=index + 1,
                voters=voters,
                cluster_id=cluster_id,
                port=broker_ports[index],
                controller_port=controller_ports[index],
                libs=libs,
                jvm_options=jvm_options,
                extra_properties=extra_properties,
            )
            for index in range(size)
        ]
        cluster = cls(nodes)
        try:
            for node in nodes:
                node.workdir.mkdir(parents=True, exist_ok=True)
                node._write_config()
                node._format_storage()
            cluster._launch_all(nodes, timeout)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @staticmethod
    def _launch_all(nodes: list[ClusterNode], timeout: float) -> None:
        errors: list[BaseException] = []

        def launch(node: ClusterNode) -> None:
            try:
                node.launch(timeout)
            except BaseException as exc:  # reported below, from the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=launch, args=(node,)) for node in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    # -- state -----------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """Every node's ``127.0.0.1:PORT``, comma-separated."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        """The node with ``node.id`` = ``node_id``."""
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id} in {self.nodes}")

    def running_nodes(self) -> list[ClusterNode]:
        """The nodes whose process is alive."""
        return [node for node in self.nodes if node.running]

    def admin(self, **configs: Any) -> Any:
        """A kafka-python admin client bootstrapped from the running nodes; caller closes it."""
        running = self.running_nodes()
        if not running:
            raise ServerError("no node of the cluster is running")
        return running[0].admin(
            bootstrap_servers=",".join(n.bootstrap_servers for n in running), **configs
        )

    def create_topics(self, topics: Mapping[str, int], *, timeout: float = 60) -> None:
        """Create ``topics`` (name -> partitions), replicated to all nodes, and wait for them."""
        create_topics(
            self.bootstrap_servers,
            topics,
            replication_factor=len(self.nodes),
            timeout=timeout,
        )

    def describe(self, topic: str) -> dict[int, dict[str, Any]]:
        """Partition -> ``{"leader": id, "replicas": [...], "isr": [...]}`` of ``topic``."""
        admin = self.admin()
        try:
            (described,) = admin.describe_topics([topic])
        finally:
            admin.close()
        return {
            int(p["partition_index"]): {
                "leader": int(p["leader_id"]),
                "replicas": list(p["replica_nodes"]),
                "isr": list(p["isr_nodes"]),
            }
            for p in described["partitions"]
        }

    def leader_of(self, topic: str, partition: int) -> int:
        """The node id leading ``topic``/``partition`` now."""
        return int(self.describe(topic)[partition]["leader"])

    def log_tails(self, lines: int = 20) -> str:
        """Each node's log tail, for a failing test's output."""
        return "\n".join(
            f"--- node {node.node_id} ({node.log_path})\n{node.log_tail(lines)}"
            for node in self.nodes
        )

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every node by its own PID (SIGTERM, SIGKILL after 30 s), all at once.

        One after the other, the last node's controlled shutdown would wait for a controller
        quorum that its peers' exits already broke, until the SIGKILL.
        """
        threads = [threading.Thread(target=node.stop) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
