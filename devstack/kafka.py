"""A real single-node Apache Kafka 4.x broker (KRaft, broker + controller in one JVM).

The jars come from Maven Central (``scripts/fetch_kafka.sh``, versions pinned in
``devstack/builds/kafka-pom.xml``) and are cached under ``CACHE_DIR/kafka/<version>/libs``.
:meth:`KafkaBroker.start` writes ``server.properties`` and ``log4j2.properties`` into a work
directory, formats the storage there, runs ``kafka.Kafka`` bound to 127.0.0.1 on free ports and
returns once a kafka-python admin client can list the topics.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer

from devstack._process import (
    ManagedProcess,
    Server,
    ServerError,
    free_port,
    port_open,
    run_script,
)
from devstack.wait import wait_until

_HERE = Path(__file__).resolve().parent
FETCH_SCRIPT = _HERE.parent / "scripts" / "fetch_kafka.sh"
"""Downloads the broker's runtime jars from Maven Central (cached, idempotent)."""

HOST = "127.0.0.1"
DEFAULT_JVM_OPTIONS = ("-Xms256m", "-Xmx768m", "-XX:TieredStopAtLevel=1")
"""A modest heap, and the C1 JIT only: starts ~40% faster on 2 busy cores. For throughput
benchmarks pass ``jvm_options=("-Xms1g", "-Xmx1g")`` (full JIT) to :meth:`KafkaBroker.start`."""
_TOOL_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

_ADMIN_TIMEOUT_MS = 5000

_LOG4J2_PROPERTIES = """\
# Written by devstack/kafka.py: everything to the console (the process's log file), INFO.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apachekafka.name = org.apache.kafka
logger.apachekafka.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def kafka_libs(*, timeout: float = 900) -> Path:
    """The broker's runtime jars: ``scripts/fetch_kafka.sh`` (the one place that reads the
    POM and checks the cache) fetches them if needed and names the folder; quick when cached."""
    return run_script(FETCH_SCRIPT, what="Kafka's jars", timeout=timeout)


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise ServerError("missing tool: java (a Java 17+ runtime is needed to run Kafka)")
    return java


def _new_cluster_id() -> str:
    """A random Kafka Uuid in its text form (URL-safe base64 of 16 bytes, not starting '-')."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def create_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    configs: Mapping[str, str] | None = None,
    replication_factor: int = 1,
    timeout: float = 30,
) -> None:
    """Create ``topics`` (name -> partitions) and return once a consumer would see them.

    ``replication_factor`` is 1 for the single broker; a cluster passes its size
    (``devstack.cluster.KafkaCluster.create_topics``).

    Visible means: the admin client's describe shows a leader for every partition, *and* a
    plain client's metadata request (what a subscribing consumer's group leader assigns from)
    lists exactly the expected partitions. Raises :class:`ServerError` after ``timeout``.
    """
    specs: dict[str, Any] = {}
    for name, partitions in topics.items():
        spec: dict[str, Any] = {
            "num_partitions": partitions,
            "replication_factor": replication_factor,
        }
        if configs:
            spec["configs"] = dict(configs)
        specs[name] = spec
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="devstack-admin",
        request_timeout_ms=10_000,
        bootstrap_timeout_ms=10_000,
    )
    try:
        admin.create_topics(specs, timeout_ms=int(timeout * 1000))
        admin.wait_for_topics(list(topics), timeout_ms=int(timeout * 1000))
    finally:
        admin.close()
    wait_for_partitions(bootstrap_servers, topics, timeout=timeout)


def wait_for_partitions(
    bootstrap_servers: str, topics: Mapping[str, int], *, timeout: float = 30
) -> None:
    """Wait until a fresh client's metadata lists ``partitions`` partitions of each topic."""
    probe = KafkaConsumer(bootstrap_servers=bootstrap_servers, client_id="devstack-metadata")
    missing: dict[str, list[int]] = {}

    def all_visible() -> bool:
        probe.topics()  # a fresh metadata request for every topic, like a group leader's
        seen = {name: probe.partitions_for_topic(name) or set() for name in topics}
        missing.clear()
        missing.update(
            (name, sorted(seen[name]))
            for name, count in topics.items()
            if seen[name] != set(range(count))
        )
        return not missing

    try:
        wait_until(
            all_visible,
            timeout,
            lambda: f"topics visible with all their partitions: {missing} (wanted {dict(topics)})",
            interval=0.1,
        )
    except TimeoutError as exc:
        raise ServerError(str(exc)) from None  # what create_topics' callers (the demo) catch
    finally:
        probe.close()


def subscribe_once_visible(
    consumer: Any, *topics: str, listener: Any = None, timeout: float = 30.0
) -> None:
    """Subscribe a kafka-python consumer to ``topics`` once its own metadata lists them.

    A group's assignment is computed from the leader's metadata when it joins. A member that
    joins before its topics are in that metadata gets no partitions of them ("No partition
    metadata for topic"), and kafka-python does not always rejoin when the metadata arrives:
    a pipeline's first run could hang there. Reading the partitions first (one metadata
    request for all topics) makes the first assignment complete.
    """
    wait_until(
        lambda: all(consumer.partitions_for_topic(topic) for topic in topics),
        timeout,
        f"topics {topics} in the broker's metadata",
        interval=0.1,
    )
    consumer.subscribe(list(topics), listener=listener)


class KafkaBroker(Server):
    """One Kafka 4.x process acting as broker and KRaft controller, on 127.0.0.1.

    Create it with :meth:`start`; stop it with :meth:`stop` (or use it as a context manager).
    The process's stdout and stderr, i.e. the broker log, go to :attr:`log_path`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int,
        controller_port: int,
        libs: Path,
        jvm_options: tuple[str, ...] = DEFAULT_JVM_OPTIONS,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        """Describe a broker without starting it; most callers want :meth:`start` instead."""
        self.workdir = workdir.resolve()
        self.host = HOST
        self.port = port
        self.controller_port = controller_port
        self.libs = libs
        self.jvm_options = jvm_options
        self.extra_properties = dict(extra_properties or {})
        self.config_path = self.workdir / "server.properties"
        self.log4j_path = self.workdir / "log4j2.properties"
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "kafka.log"
        self.ready_seconds: float | None = None
        """How long the most recent start or restart took until the broker was ready."""
        self._proc: ManagedProcess | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        timeout: float = 90,
        port: int | None = None,
        controller_port: int | None = None,
        jvm_options: tuple[str, ...] = DEFAULT_JVM_OPTIONS,
        extra_properties: Mapping[str, str] | None = None,
    ) -> KafkaBroker:
        """Configure, format and start a broker in ``workdir``; return once it serves metadata.

        Fetches the jars first if they are not cached. Ports default to free ones.
        ``jvm_options`` replace :data:`DEFAULT_JVM_OPTIONS`; ``extra_properties`` are added to
        (and override) the generated ``server.properties``.
        Raises :class:`ServerError`, with the tail of the broker log, if the broker exits or is
        not ready within ``timeout`` seconds.
        """
        libs = kafka_libs()
        workdir.mkdir(parents=True, exist_ok=True)
        broker = cls(
            workdir,
            port=port or free_port(),
            controller_port=controller_port or free_port(),
            libs=libs,
            jvm_options=jvm_options,
            extra_properties=extra_properties,
        )
        if broker.port == broker.controller_port:
            broker.controller_port = free_port()
        broker._write_config()
        broker._format_storage()
        broker._launch(timeout)
        return broker

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM to its own PID; SIGKILL after ``timeout``)."""
        if self._proc is not None:
            self._proc.stop(timeout=timeout)

    def kill(self) -> None:
        """Crash the broker: SIGKILL its own PID, no clean shutdown."""
        if self._proc is not None:
            self._proc.kill()

    def restart(self, *, timeout: float = 90, hard: bool = False) -> None:
        """Stop (or, with ``hard``, kill) the broker and start it again.

        It comes back on the same ports with the same data directory, so topics, committed
        offsets and the cluster id survive. Returns once it is ready again: ~3 s after a clean
        stop; after a kill ~12 s, because the controller refuses the new registration
        (DUPLICATE_BROKER_REGISTRATION) until the old session expires
        (``broker.session.timeout.ms``, 9 s by default).
        """
        if hard:
            self.kill()
        else:
            self.stop()
        self._launch(timeout)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<KafkaBroker {self.bootstrap_servers} pid={self.pid} {state} log={self.log_path}>"

    # -- state -----------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``"127.0.0.1:PORT"``, for ``bootstrap_servers=`` of any Kafka client."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The PID of the (most recent) broker process, or None if it was never launched."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.running()

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the broker log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- administration --------------------------------------------------------------------

    def admin(self, **configs: Any) -> Any:
        """A new kafka-python ``KafkaAdminClient`` for this broker; the caller closes it."""
        settings: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": "devstack-admin",
            "request_timeout_ms": 10_000,
            "bootstrap_timeout_ms": 10_000,
        }
        settings.update(configs)
        return KafkaAdminClient(**settings)

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        configs: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> str:
        """Create ``name`` and wait until a client's metadata shows every partition led."""
        create_topics(self.bootstrap_servers, {name: partitions}, configs=configs, timeout=timeout)
        return name

    # -- internals -------------------------------------------------------------------------

    def _properties(self) -> dict[str, str]:
        controller = f"{self.host}:{self.controller_port}"
        listeners = f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{controller}"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Dynamic quorum (KIP-853): storage is formatted with --standalone, which makes this
            # node the only voter; controller.quorum.voters must then be absent.
            "controller.quorum.bootstrap.servers": controller,
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            # Every topic is created with its partition count before anything subscribes to it
            # (create_topics). With auto-creation on, a consumer's metadata request for a topic
            # not created yet makes a one-partition topic behind the test's back.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            # One partition instead of 50: the first group join waits for __consumer_offsets to
            # be created and led (NOT_COORDINATOR meanwhile); on one broker 50 only cost time.
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update(self.extra_properties)
        return props

    def _write_config(self) -> None:
        lines = ["# Written by devstack/kafka.py; regenerated on every KafkaBroker.start."]
        lines += [f"{key}={value}" for key, value in self._properties().items()]
        self.config_path.write_text("\n".join(lines) + "\n")
        self.log4j_path.write_text(_LOG4J2_PROPERTIES)

    def _java_argv(self, main_class: str, *args: str, jvm_options: tuple[str, ...]) -> list[str]:
        return [
            _java(),
            *jvm_options,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            f"-Dkafka.logs.dir={self.workdir}",
            "-cp",
            f"{self.libs}/*",
            main_class,
            *args,
        ]

    @property
    def stored_cluster_id(self) -> str:
        """The cluster id the storage was formatted with (``meta.properties``)."""
        for line in (self.data_dir / "meta.properties").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        raise ServerError(f"no cluster.id in {self.data_dir / 'meta.properties'}")

    def _format_storage(self) -> None:
        """``kafka-storage format --standalone``; skipped when the data dir is formatted."""
        if (self.data_dir / "meta.properties").is_file():
            return
        argv = self._java_argv(
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "--cluster-id",
            _new_cluster_id(),
            "--config",
            str(self.config_path),
            "--ignore-formatted",
            jvm_options=_TOOL_JVM_OPTIONS,
        )
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                cwd=self.workdir,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerError("kafka StorageTool format did not finish within 120s") from exc
        output = (done.stdout + done.stderr).strip()
        with self.log_path.open("a") as log:
            log.write(f"$ {' '.join(argv)}\n{output}\n")
        if done.returncode != 0:
            raise ServerError(
                f"kafka StorageTool format failed with exit code {done.returncode}:\n{output}"
            )

    def _launch(self, timeout: float) -> None:
        argv = self._java_argv("kafka.Kafka", str(self.config_path), jvm_options=self.jvm_options)
        started = time.monotonic()
        self._proc = ManagedProcess("kafka", argv, log_path=self.log_path, cwd=self.workdir)
        try:
            self._proc.wait_until(
                self._ready, timeout=timeout, what=f"ready on {self.bootstrap_servers}"
            )
        except ServerError as exc:
            # The cause (e.g. "Address already in use") is often far above the shutdown noise
            # at the end of the log, so name the ERROR/FATAL lines too.
            errors = self._error_lines()
            if not errors:
                raise
            raise ServerError(f"{exc}\n-- ERROR/FATAL lines of the broker log:\n{errors}") from None
        self.ready_seconds = time.monotonic() - started

    def _error_lines(self, limit: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if "] ERROR " in line or "] FATAL " in line]
        return "\n".join(errors[:limit])

    def _ready(self) -> bool:
        if not port_open(self.port, self.host):
            return False
        admin = self.admin(
            client_id="devstack-readiness",
            request_timeout_ms=_ADMIN_TIMEOUT_MS,
            bootstrap_timeout_ms=_ADMIN_TIMEOUT_MS,
        )
        try:
            admin.list_topics()
        finally:
            admin.close()
        return True
